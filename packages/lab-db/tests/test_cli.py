"""``python -m lab_utils.database`` in a subprocess against the test server."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from lab_utils.database import Database


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab_utils.database", "--config", str(config), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cli_table_column_insert_import_latest(db: Database, tmp_path: Path) -> None:
    config = tmp_path / "db.ini"
    config.write_text(
        f"[Overall]\nhost = {db.host}\nport = {db.port}\ndatabase = {db.database}\n"
        f"user = {db.user}\npassfile = ~/.pgpass\n"
    )
    assert _run(config, "check-table", "gauges").returncode == 1
    assert _run(config, "create-table", "gauges").returncode == 0
    assert _run(config, "create-column", "gauges", "p1", "double", "--positive").returncode == 0
    assert _run(config, "check-table", "gauges").returncode == 0
    assert _run(config, "insert", "gauges", "p1=0.5").returncode == 0
    csv_file = tmp_path / "data.csv"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    lines = ["time,p1"] + [
        f"{(start + dt.timedelta(seconds=n)).isoformat()},{n}" for n in range(12_000)
    ]
    csv_file.write_text("\n".join(lines) + "\n")
    imported = _run(config, "import-csv", "gauges", str(csv_file))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "12000 rows imported into gauges\n"
    assert "12000/12000 rows" in imported.stderr
    latest = _run(config, "latest", "gauges", "--rows", "1")
    assert latest.stdout.strip().endswith("0.5")
    refused = _run(config, "insert", "gauges", "p1=-1")
    assert refused.returncode == 2
    assert "check constraint" in refused.stderr
