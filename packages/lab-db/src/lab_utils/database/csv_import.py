"""``lab-db import-csv``: a CSV file whose header names the columns, in one transaction.

A bad field stops the import before anything is written, naming its line; so does a row
the server refuses (the whole file is one transaction: nothing half-imported).
"""

from __future__ import annotations

import array
import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import psycopg2

from lab_utils.database.cli_errors import CommandError
from lab_utils.database.column_types import text_reader
from lab_utils.database.database import Database
from lab_utils.database.progress import Progress
from lab_utils.database.table_info import require_columns

_COPY_LINE = re.compile(r"COPY \S+, line (\d+)")
_OTHER_DELIMITERS = (";", "\t", "|", ",")


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def _delimiter_hint(line: list[str], delimiter: str) -> str | None:
    text = delimiter.join(line)
    for other in _OTHER_DELIMITERS:
        if other != delimiter and other in text:
            shown = "tab" if other == "\t" else repr(other)
            return f"the file seems to separate fields with {shown}: add --delimiter {shown}"
    return None


def import_csv(db: Database, table: str, file: str, delimiter: str, progress_stream: TextIO) -> int:
    """Import ``file`` into ``table``; return the number of rows.

    Raises
    ------
    CommandError
        Missing file, table or column; a field that does not parse; a row the server
        refuses. Each names the line; nothing is imported then.
    """
    path = Path(file)
    if not path.is_file():
        raise CommandError(f"CSV file {file} not found", str(path.absolute()))
    total = max(_count_lines(path) - 1, 0)
    lines = array.array("q")  # CSV line of each row, to name a row the server refuses
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise CommandError("the file is empty: no header line", file)
        hint = _delimiter_hint(header, delimiter) if len(header) == 1 else None
        if hint:
            raise CommandError(f"line 1: the header is one field, {header[0]!r}", file, hint)
        try:
            readers = [text_reader(t) for t in require_columns(db, table, header)]
        except ValueError as error:  # a column of a type lab-db does not read
            raise CommandError(f"{error}; nothing was imported", f"table {table}") from None
        progress = Progress(total, progress_stream)

        def rows() -> Iterator[list[object]]:
            for row in reader:
                line = reader.line_num
                if len(row) != len(header):
                    raise CommandError(
                        f"line {line} has {len(row)} fields, the header {len(header)};"
                        " nothing was imported",
                        file,
                        _delimiter_hint(row, delimiter),
                    )
                values = []
                for name, read, text in zip(header, readers, row, strict=True):
                    try:
                        values.append(read(text))
                    except ValueError as error:
                        raise CommandError(
                            f"line {line}, column {name}: {error}; nothing was imported", file
                        ) from None
                lines.append(line)
                progress.advance()
                yield values

        try:
            count = db.insert_many(table, header, rows())
        except psycopg2.Error as error:
            reason = str(error).strip().splitlines()[0]
            found = _COPY_LINE.search(str(error))
            at = f"line {lines[int(found.group(1)) - 1]}: " if found else ""
            raise CommandError(f"{at}{reason}; nothing was imported", file) from error
        progress.finish()
    return count
