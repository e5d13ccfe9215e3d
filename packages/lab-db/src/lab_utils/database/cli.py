"""The ``lab-db`` command line (also ``python -m lab_utils.database``).

Manners shared by the suite's command lines: ``--version``; global options before or
after the command; the database from ``--config FILE``, else ``DATABASE_URL``, else
libpq's ``PG*`` variables; exit status 0 done, 1 the answer is no, 2 a usage,
configuration or connection problem, reported as one ``error:`` line (and a ``hint:``)
without a traceback unless ``--debug`` or ``LAB_UTILS_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import psycopg2

from lab_utils.database.__about__ import __version__
from lab_utils.database.cli_errors import CommandError
from lab_utils.database.column_types import text_reader
from lab_utils.database.connection_settings import settings
from lab_utils.database.database import Database
from lab_utils.database.sql_types import Constraint, DataType
from lab_utils.database.table_info import columns, require_columns, where

PROG = "lab-db"


class _Parser(argparse.ArgumentParser):
    """argparse with the suite's one-line usage errors (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: message`` and a hint, then exit with status 2."""
        self.exit(2, f"error: {message}\nhint: {self.prog} --help\n")


def _common() -> _Parser:
    # SUPPRESS: an option given after the command does not overwrite one given before it.
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="INI file with [Overall] host, port, database, user, passfile"
        " (default: $DATABASE_URL, else the PG* variables)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        help="log everything and show tracebacks (also LAB_UTILS_DEBUG=1)",
    )
    return common


def _pair(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not COLUMN=VALUE")
    return name, value


def _delimiter(text: str) -> str:
    text = "\t" if text in ("tab", "\\t") else text
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one character (or 'tab')")
    return text


def parser() -> argparse.ArgumentParser:
    """Return the command line's parser."""
    common = _common()
    top = _Parser(
        prog=PROG, parents=[common], description="PostgreSQL/TimescaleDB tables for lab data."
    )
    top.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        found = commands.add_parser(name, help=text, description=text, parents=[common])
        found.prog = f"{PROG} {name}"
        return found

    check = command("check-table", "exit 0 when the table exists, 1 when not")
    check.add_argument("table")
    create = command("create-table", "create a time-series table (a hypertable with TimescaleDB)")
    create.add_argument("table")
    column = command("create-column", "add a column to a table")
    column.add_argument("table")
    column.add_argument("column")
    column.add_argument("type", choices=[t.name for t in DataType])
    column.add_argument("--positive", action="store_true", help="values must be >= 0")
    insert = command("insert", "insert one row (time is now unless given)")
    insert.add_argument("table")
    insert.add_argument("values", nargs="+", metavar="COLUMN=VALUE", type=_pair)
    importer = command("import-csv", "import a CSV file whose header names the columns")
    importer.add_argument("table")
    importer.add_argument("file")
    importer.add_argument(
        "--delimiter",
        type=_delimiter,
        default=",",
        help="field separator: one character or 'tab' (default ',')",
    )
    latest = command("latest", "show the latest rows, newest first")
    latest.add_argument("table")
    latest.add_argument("columns", nargs="*", metavar="COLUMN", help="(default: all)")
    latest.add_argument("--rows", type=int, default=10, help="how many (default 10)")
    latest.add_argument("--json", action="store_true", help="print one JSON document")
    serve = command("serve", "run an embedded PostgreSQL until Ctrl-C; print how to reach it")
    serve.add_argument("--data", metavar="DIR", help="keep the cluster in DIR (default: temporary)")
    serve.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--database", default="lab", help="database to create (default 'lab')")
    from lab_utils.database.plot_command import add_plot_command

    add_plot_command(command("plot", "draw columns over a time range to PNG, SVG or PDF"))
    return top


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def _print_rows(names: list[str], rows: list[tuple[Any, ...]], as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump(
            [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in rows],
            out,
            default=str,
            indent=1,
        )
        out.write("\n")
        return
    texts = [["" if v is None else str(_plain(v)) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in texts)]) for i, n in enumerate(names)]
    for row in [names, *texts]:
        out.write("  ".join(t.ljust(w) for t, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _run(db: Database, args: argparse.Namespace, out: TextIO) -> int:
    table = args.table
    if args.command == "check-table":
        exists = db.check_table(table)
        out.write(f"{table}: {'exists' if exists else 'missing'}\n")
        return 0 if exists else 1
    if args.command == "create-table":
        db.create_timescale_db(table)
        out.write(f"table {table} ready\n")
    elif args.command == "create-column":
        columns(db, table)  # a missing table is named as such, with the command to make it
        constraints = [Constraint.positive] if args.positive else None
        db.new_column(table, args.column, DataType[args.type], constraints)
        out.write(f"column {args.column} of {table} ready\n")
    elif args.command == "insert":
        names = [name for name, _ in args.values]
        types = require_columns(db, table, names)
        values = []
        for (name, text), type_name in zip(args.values, types, strict=True):
            try:
                values.append(text_reader(type_name)(text))
            except ValueError as error:
                raise CommandError(f"column {name}: {error}", f"table {table}") from None
        db.new_entry(table, names, values)
        out.write(f"1 row inserted into {table}\n")
    elif args.command == "import-csv":
        from lab_utils.database.csv_import import import_csv

        count = import_csv(db, table, args.file, args.delimiter, sys.stderr)
        out.write(f"{count} rows imported into {table}\n")
    elif args.command == "latest":
        found = columns(db, table)
        wanted = args.columns or [c for c in found if c != "time"]
        require_columns(db, table, wanted)
        rows = db.fetch_latest(table, wanted, limit=args.rows)
        _print_rows(["time", *(c for c in wanted if c != "time")], rows, args.json, out)
    elif args.command == "plot":
        from lab_utils.database.plot_command import run_plot

        return run_plot(db, args, out)
    return 0


class _Lowercase(logging.Formatter):
    """``warning: ...``, the way the command's own ``error:`` lines look."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - stdlib name
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _ShowBelowError(logging.Filter):
    """Let warnings through; errors reach the user once, as the command's error line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def _logging(debug: bool) -> tuple[logging.Handler, int]:
    """Send log records to stderr; return the handler and the root level to restore."""
    handler = logging.StreamHandler(sys.stderr)
    if debug:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setLevel(logging.WARNING)
        handler.addFilter(_ShowBelowError())
        handler.setFormatter(_Lowercase("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    return handler, previous


def _connection_error(db: Database, error: psycopg2.Error) -> CommandError:
    # libpq's first line is the reason; the rest repeats the address or guesses.
    reason = (str(error).strip().splitlines() or ["no reason given"])[0]
    return CommandError(
        f"cannot connect: {reason}",
        where(db),
        "give --config FILE, or set DATABASE_URL or PGHOST/PGPORT/PGUSER",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parser().parse_args(argv)
    debug = getattr(args, "debug", False) or os.environ.get("LAB_UTILS_DEBUG") == "1"
    handler, level = _logging(debug)
    try:
        if args.command == "serve":
            from lab_utils.database.serve import serve

            return serve(args.data, args.port, args.database, sys.stdout)
        kwargs, password = settings(getattr(args, "config", None), os.environ)
        if password is not None:
            # libpq reads it from there; Database takes no password argument by design.
            os.environ["PGPASSWORD"] = password
        db = Database(**kwargs)
        db.log_failures = False  # a refused statement is reported once, as the error line
        try:
            try:
                db.connect()
            except psycopg2.OperationalError as error:
                raise _connection_error(db, error) from error
            return _run(db, args, sys.stdout)
        except psycopg2.Error as error:
            raise CommandError(" ".join(str(error).split()), where(db)) from error
        finally:
            db.close()
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except (CommandError, OSError, ValueError) as error:
        if debug:
            traceback.print_exc()
        found = error if isinstance(error, CommandError) else CommandError(str(error))
        sys.stderr.write("\n".join(found.lines()) + "\n")
        return 2
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
