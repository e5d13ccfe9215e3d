"""``lab-db plot``: its options, and turning them into a picture file."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable
from typing import TextIO

from lab_utils.database.cli_errors import CommandError
from lab_utils.database.database import Database
from lab_utils.database.table_info import columns, require_columns, where
from lab_utils.database.timerange import duration, moment

NUMERIC = ("double precision", "real", "integer", "bigint", "smallint")
"""Column types a plot draws (``numeric(...)`` too)."""


def _typed(kind: Callable[[str], object]) -> Callable[[str], object]:
    def parse(text: str) -> object:
        try:
            return kind(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _size(text: str) -> tuple[int, int]:
    found = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not found or not 16 <= int(found[1]) <= 20000 or not 16 <= int(found[2]) <= 20000:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT in pixels, e.g. 1200x800")
    return int(found[1]), int(found[2])


def _unit(text: str) -> tuple[str, str]:
    column, equals, unit = text.partition("=")
    if not equals or not column or not unit:
        raise argparse.ArgumentTypeError(f"{text!r} is not COLUMN=UNIT")
    return column, unit


def add_plot_command(command: argparse.ArgumentParser) -> None:
    """Add ``plot``'s arguments to its parser."""
    command.add_argument("table")
    command.add_argument(
        "columns",
        nargs="*",
        metavar="COLUMN",
        help="columns to draw (default: every numeric column)",
    )
    command.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="picture to write: .png, .svg or .pdf"
    )
    when = command.add_mutually_exclusive_group()
    when.add_argument(
        "--since",
        type=_typed(duration),
        metavar="DURATION",
        help="the last DURATION up to now: 90s, 15min, 1h, 7d",
    )
    when.add_argument(
        "--from",
        dest="start",
        type=_typed(moment),
        metavar="TIME",
        help="ISO 8601 start (local time unless a zone is given)",
    )
    command.add_argument(
        "--to",
        dest="end",
        type=_typed(moment),
        metavar="TIME",
        help="ISO 8601 end (default: now, or the last row)",
    )
    command.add_argument(
        "--per",
        choices=["column", "unit"],
        default="column",
        help="one panel per column (default) or per unit",
    )
    command.add_argument(
        "--unit",
        action="append",
        type=_unit,
        default=[],
        metavar="COLUMN=UNIT",
        help="a column's unit, for labels and --per unit (repeatable)",
    )
    command.add_argument(
        "--size",
        type=_size,
        default=(1200, 800),
        metavar="WxH",
        help="picture size in pixels (default 1200x800)",
    )
    command.add_argument("--dpi", type=int, default=100, help="dots per inch (default 100)")
    command.add_argument(
        "--points",
        type=int,
        default=2000,
        help="at most this many points per line; more rows are bucketed in"
        " the database with min/max bands (default 2000)",
    )


def _range(db: Database, table: str, args: argparse.Namespace) -> tuple[dt.datetime, dt.datetime]:
    from lab_utils.database.downsample import span

    now = dt.datetime.now(dt.timezone.utc)
    if args.since is not None:
        return now - args.since, now
    if args.start is not None:
        return args.start, args.end or now
    found = span(db, table)
    if found is None:
        raise CommandError(f"table {table!r} has no rows to plot", where(db))
    end = args.end or found[1] + dt.timedelta(microseconds=1)
    return found[0], end


def run_plot(db: Database, args: argparse.Namespace, out: TextIO) -> int:
    """Draw the plot ``args`` ask for; print the file's path; return 0."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandError("lab-db plot needs matplotlib, which is not installed",
                           hint="pip install 'lab-db[plot]'") from None  # fmt: skip
    from lab_utils.database.plot import FORMATS, plot_table, save

    if not args.output.lower().endswith(FORMATS):
        raise CommandError(f"-o {args.output}: the file name must end in {', '.join(FORMATS)}")
    if args.points < 2:
        raise CommandError(f"--points {args.points}: at least 2")
    table = args.table
    found = columns(db, table)
    wanted = args.columns or [
        c for c, t in found.items() if c != "time" and (t in NUMERIC or t.startswith("numeric"))
    ]
    if not wanted:
        raise CommandError(f"table {table!r} has no numeric column to plot", where(db))
    for name, type_name in zip(wanted, require_columns(db, table, wanted), strict=True):
        if not (type_name in NUMERIC or type_name.startswith("numeric")):
            raise CommandError(f"column {name} is {type_name}, not a number", f"table {table}")
    start, end = _range(db, table, args)
    if end <= start:
        raise CommandError(f"--to {end.isoformat()} is not after the start {start.isoformat()}")
    fig = plot_table(
        db,
        table,
        wanted,
        start,
        end,
        per=args.per,
        units=dict(args.unit),
        points=args.points,
        size=args.size,
        dpi=args.dpi,
    )
    path = save(fig, args.output)
    out.write(f"{path}\n")
    return 0
