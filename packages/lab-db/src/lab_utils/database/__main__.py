"""Command line: ``python -m lab_utils.database --config db.ini COMMAND ...``.

Commands: ``check-table``, ``create-table``, ``create-column``, ``insert``,
``import-csv`` (with a progress bar on long imports) and ``latest``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import psycopg2

from lab_utils.database.database import Database
from lab_utils.database.sql_types import Constraint, DataType


def _progress(total: int, out: TextIO) -> Iterator[None]:
    """Yield once per row; draw a bar on ``out`` every 1 % (only for long imports)."""
    step = max(total // 100, 1)
    for done in range(1, total + 1):
        yield
        if total >= 10_000 and (done % step == 0 or done == total):
            filled = done * 40 // total
            out.write(f"\r[{'#' * filled}{'.' * (40 - filled)}] {done}/{total} rows")
            out.flush()
    if total >= 10_000:
        out.write("\n")


def _converter(type_name: str) -> Callable[[str], object]:
    """How to turn a CSV field into a value of a column of ``type_name``."""
    if type_name.startswith("timestamp"):
        return dt.datetime.fromisoformat
    if type_name == "boolean":
        return lambda text: text.strip().lower() in ("1", "t", "true", "yes", "on")
    if type_name in ("integer", "bigint", "smallint"):
        return int
    if type_name in ("double precision", "real"):
        return float
    return str


def _import_csv(db: Database, args: argparse.Namespace) -> int:
    path = Path(args.file)
    with path.open(newline="", encoding="utf-8") as handle:
        total = max(sum(1 for _ in handle) - 1, 0)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        columns = next(reader)
        converters = [_converter(t) for t in db.column_types(args.table, columns)]
        ticks = _progress(total, sys.stderr)

        def rows() -> Iterator[list[object]]:
            for row in reader:
                next(ticks, None)
                yield [
                    None if v in ("", "NULL") else c(v)
                    for c, v in zip(converters, row, strict=True)
                ]
            next(ticks, None)  # draws the last step of the bar

        count = db.insert_many(args.table, columns, rows())
    sys.stdout.write(f"{count} rows imported into {args.table}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lab_utils.database")
    parser.add_argument(
        "--config",
        required=True,
        help="INI file with [Overall] host, port, database, user, passfile",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-table", help="exit 0 when the table exists, 1 when not")
    check.add_argument("table")
    create = commands.add_parser("create-table", help="create a time-series table")
    create.add_argument("table")
    column = commands.add_parser("create-column", help="add a column")
    column.add_argument("table")
    column.add_argument("column")
    column.add_argument("type", choices=[t.name for t in DataType])
    column.add_argument("--positive", action="store_true", help="values must be >= 0")
    insert = commands.add_parser("insert", help="insert one row: COLUMN=VALUE ...")
    insert.add_argument("table")
    insert.add_argument("values", nargs="+", metavar="COLUMN=VALUE")
    importer = commands.add_parser(
        "import-csv", help="import a CSV file whose header names the columns"
    )
    importer.add_argument("table")
    importer.add_argument("file")
    latest = commands.add_parser("latest", help="show the latest rows")
    latest.add_argument("table")
    latest.add_argument("--rows", type=int, default=10)
    args = parser.parse_args(argv)

    db = Database(config_file=args.config)
    try:
        db.connect()
        if args.command == "check-table":
            exists = db.check_table(args.table)
            sys.stdout.write(f"{args.table}: {'exists' if exists else 'missing'}\n")
            return 0 if exists else 1
        if args.command == "create-table":
            db.create_timescale_db(args.table)
        elif args.command == "create-column":
            constraints = [Constraint.positive] if args.positive else None
            db.new_column(args.table, args.column, DataType[args.type], constraints)
        elif args.command == "insert":
            pairs = [value.split("=", 1) for value in args.values]
            db.new_entry(
                args.table, [p[0] for p in pairs], [p[1] if len(p) > 1 else None for p in pairs]
            )
        elif args.command == "import-csv":
            return _import_csv(db, args)
        elif args.command == "latest":
            for row in db.fetch_latest(args.table, limit=args.rows):
                sys.stdout.write("  ".join(str(v) for v in row) + "\n")
            return 0
        sys.stdout.write("done\n")
        return 0
    except (psycopg2.Error, ValueError, OSError) as error:
        sys.stderr.write(f"error: {str(error).strip()}\n")
        return 2
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
