"""The README's first command: the demo runs end to end and leaves nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_demo_acquires_writes_reports_and_cleans_up() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--seconds", "1.5"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    written = int(re.search(r"rows written:\s+(\d+)", out)[1])  # type: ignore[index]
    in_table = int(re.search(r"rows in the table:\s+(\d+)", out)[1])  # type: ignore[index]
    assert written > 0
    assert in_table == written
    assert "> status: idle; readings 0" in out
    assert re.search(r"> stop: stopped after \d+ readings", out)
    assert "> quit: Goodbye!" in out
    assert "daemon port closed:  True; PID lock released: True" in out
    assert "== Latest readings" in out
    log_file = Path(re.search(r"log file:\s+(\S+)", out)[1])  # type: ignore[index]
    assert "Acquisition started" in log_file.read_text()
