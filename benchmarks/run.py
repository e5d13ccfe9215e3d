"""Run the benchmarks, print one table with the ratios, write the results as JSON.

Usage: python benchmarks/run.py [--only AREA ...] [--json PATH] [--quick]
(`nox -s bench` runs it with the suite installed.)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from report import Comparison, print_table, write_json  # noqa: E402

AREAS = ["database", "socket_comm", "logging", "imports"]


def main(argv: list[str] | None = None) -> int:
    """Run the chosen areas; return 0 (a missed target is reported, not an error)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=AREAS, default=AREAS, help="areas to run")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="output file")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)

    rows: list[Comparison] = []
    for area in args.only:
        module = importlib.import_module(f"bench_{area}")
        print(f"== {area}", flush=True)
        area_rows = module.run(quick=args.quick)
        print_table(area_rows)
        print(flush=True)
        rows += area_rows
    print("== all results")
    print_table(rows)
    write_json(rows, args.json)
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
