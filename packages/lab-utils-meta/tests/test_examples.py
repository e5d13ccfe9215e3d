"""Every example script runs with nothing configured, and the command lines answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*/*.py"))
EXPECTED = {
    "create_column.py": "latest: (",
    "ingest.py": "rows written: 50000",
    "echo_daemon.py": "hello, lab\n42.0\nGoodbye!",
    "logging_demo.py": "daily file:",
}


def test_every_example_is_checked() -> None:
    assert sorted(p.name for p in SCRIPTS) == sorted(EXPECTED)


@pytest.mark.parametrize("script", SCRIPTS, ids=[f"{p.parent.name}/{p.name}" for p in SCRIPTS])
def test_example_runs(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[script.name] in result.stdout


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("lab_utils.database", "check-table"),
        ("lab_utils.socket_comm", "shell"),
        ("lab_utils.custom_logging", "listen"),
    ],
)
def test_command_lines_from_the_installed_wheels(module: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
