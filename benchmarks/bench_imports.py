"""Import cost of each module, compared with starting a bare interpreter (`python -c pass`)."""

from __future__ import annotations

import subprocess
import sys

from report import Comparison, best_of, timed

MODULES = ["lab_utils.database", "lab_utils.socket_comm", "lab_utils.custom_logging"]
ROUNDS = 7


def _start(code: str) -> float:
    return timed(lambda: subprocess.run([sys.executable, "-c", code], check=True))


def run(quick: bool = False) -> list[Comparison]:
    """Best-of-7 (quick: 3) start-up time of a Python importing each module, in ms."""
    rows = []
    for module in MODULES:
        bare, with_import = best_of(
            3 if quick else ROUNDS,
            lambda: _start("pass"),
            lambda m=module: _start(f"import {m}"),
            higher_is_better=False,
        )
        rows.append(
            Comparison(
                area="imports",
                what=f"import {module}",
                unit="ms",
                ours=with_import * 1000,
                peer=bare * 1000,
                peer_name="python -c pass",
                target="report",
                notes={"import_cost_ms": (with_import - bare) * 1000},
            )
        )
    return rows
