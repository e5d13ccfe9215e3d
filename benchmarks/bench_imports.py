"""Import cost of each module over a bare interpreter, read from `python -X importtime`.

`-X importtime` gives each import's cumulative time inside the process, so the figure is
the module's own cost (what it and everything it pulls in add to a bare `python -c pass`),
free of the process start-up noise a wall-clock difference carries. Each module is measured
interleaved with `logging.handlers`, the standard-library floor lab_utils.custom_logging is
built on, and the best of several rounds is kept.
"""

from __future__ import annotations

import os
import subprocess
import sys

from report import Comparison, best_of

MODULES = ["lab_utils.database", "lab_utils.socket_comm", "lab_utils.custom_logging"]
STATEMENTS = {"lab_utils.socket_comm": "from lab_utils.socket_comm import Server, Client"}
"""What an app imports of a module whose names load on first use (PEP 562): the module's
own import costs nearly nothing then, and says nothing of what a 0.4 app pays."""
ROUNDS = 9
BUDGET_MS = {"lab_utils.custom_logging": 30.0}
"""Import budgets in ms over a bare interpreter; modules without one are reported only."""

FLOOR = "logging.handlers"

# Installed packages import from bytecode (pip compiles it at install time): measure that,
# not the compilation of every module from source that PYTHONDONTWRITEBYTECODE would force.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def importtime(code: str) -> list[tuple[float, float, str]]:
    """Run `code` under `-X importtime`; one (own ms, cumulative ms, name) per import.

    The name keeps its indentation: one space at the top level, more below.
    """
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True, text=True, check=True, env=_ENV,
    )  # fmt: skip
    rows = []
    for line in result.stderr.splitlines():
        fields = line.split("|")
        own = fields[0].split(":")[-1].strip()
        if len(fields) == 3 and own.isdigit():
            rows.append((int(own) / 1000, int(fields[1]) / 1000, fields[2]))
    return rows


def _top_level(code: str) -> dict[str, float]:
    return {name.strip(): total for _, total, name in importtime(code) if name[1:2] != " "}


def import_ms(module: str) -> float:
    """Milliseconds `import module` adds to a fresh interpreter, per `-X importtime`."""
    # The module's line at the top level is its cumulative import.
    total = _top_level(f"import {module}").get(module)
    if total is None:
        raise RuntimeError(f"no -X importtime line for {module}")
    return total


def statement_ms(code: str) -> float:
    """Milliseconds `code` adds to a fresh interpreter, per `-X importtime`.

    The sum of the top-level imports a bare interpreter does not make: names a package
    imports on first use are imported from its `__getattr__`, outside the package's own
    import, so its cumulative line does not hold them.
    """
    start_up = set(_top_level("pass"))
    return sum(ms for name, ms in _top_level(code).items() if name not in start_up)


def heaviest(module: str, count: int = 5) -> list[tuple[str, float]]:
    """The `count` imports with the largest own time under `module`, in ms (one run)."""

    def own_times(code: str) -> dict[str, float]:
        return {name.strip(): own for own, _, name in importtime(code)}

    start_up = own_times("pass")  # what every interpreter imports before our code runs
    code = STATEMENTS.get(module, f"import {module}")
    rows = [(n, t) for n, t in own_times(code).items() if n not in start_up]
    return sorted(rows, key=lambda row: -row[1])[:count]


def run(quick: bool = False) -> list[Comparison]:
    """Best-of-9 (quick: 3) import cost of each module, in ms, next to its budget."""
    rows = []
    for module in MODULES:
        import_ms(module)  # writes the bytecode the measured rounds then read
        floor, cost = best_of(
            3 if quick else ROUNDS,
            lambda: import_ms(FLOOR),
            lambda m=module: import_ms(m),
            higher_is_better=False,
        )
        budget = BUDGET_MS.get(module)
        rows.append(
            Comparison(
                area="imports",
                what=f"import {module} (-X importtime)",
                unit="ms",
                ours=cost,
                peer=budget if budget is not None else floor,
                peer_name=f"budget {budget:.0f} ms" if budget is not None else f"import {FLOOR}",
                target="<=1.0x" if budget is not None else "report",
                notes={f"import_{FLOOR}_ms": floor, "import_cost_ms": cost},
            )
        )
        statement = STATEMENTS.get(module)
        if statement is not None:
            floor, cost = best_of(
                3 if quick else ROUNDS,
                lambda: import_ms(FLOOR),
                lambda code=statement: statement_ms(code),
                higher_is_better=False,
            )
            rows.append(
                Comparison(
                    area="imports",
                    what=f"{statement} (-X importtime)",
                    unit="ms",
                    ours=cost,
                    peer=floor,
                    peer_name=f"import {FLOOR}",
                    target="report",
                    notes={f"import_{FLOOR}_ms": floor, "import_cost_ms": cost},
                )
            )
        if not quick:
            print(
                f"   heaviest under {module}:",
                ", ".join(f"{n} {t:.1f}" for n, t in heaviest(module)),
            )
    return rows
