"""Create a time-series table, add a column, insert and read back a row.

Uses the server of an [Overall] database file given as the first argument, or an
embedded PostgreSQL when run with no argument (needs ``lab-db[embedded]``).
"""

import sys

from lab_utils.database import Constraint, Database, DataType, embedded_database


def main() -> None:
    if len(sys.argv) > 1:
        db = Database(config_file=sys.argv[1])
        db.connect(print_version=True)
    else:
        db = embedded_database("examples")
    try:
        if not db.check_table("pressure"):
            db.create_timescale_db("pressure")
        db.new_column("pressure", "gauge1", DataType.double, [Constraint.positive])
        db.new_entry("pressure", ["gauge1"], [1.2e-6])
        print("latest:", db.fetch_latest_value("pressure", ["gauge1"]))
    finally:
        db.close()


if __name__ == "__main__":
    main()
