"""Write 50,000 readings through the buffered writer and read back one-second averages."""

import datetime as dt
import tempfile

from lab_utils.database import BufferedWriter, DataType, embedded_database

COLUMNS = ["time", "temperature", "pressure"]


def main() -> None:
    db = embedded_database("examples")
    try:
        db.create_timescale_db("readings")
        for column in COLUMNS[1:]:
            db.new_column("readings", column, DataType.double)
        start = dt.datetime.now(dt.timezone.utc)
        with BufferedWriter(db, "readings", COLUMNS, spool_dir=tempfile.mkdtemp()) as writer:
            for n in range(50_000):
                writer.add([start + dt.timedelta(milliseconds=n / 10), 4.2 + n * 1e-6, 1e-6])
        print("rows written:", writer.rows_written)
        for bucket, temperature in db.fetch_averages(
            "readings", ["temperature"], bucket="1 second"
        ):
            print(bucket.isoformat(), f"{temperature:.4f} K")
    finally:
        db.close()


if __name__ == "__main__":
    main()
