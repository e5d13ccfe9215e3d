"""Writing rows: one row (``new_entry``), many rows by binary COPY, and updates by id."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence, Sized

import psycopg2
import psycopg2.extensions
from psycopg2 import sql
from psycopg2.extensions import STATUS_READY

from lab_utils.database import batches
from lab_utils.database.identifiers import ident
from lab_utils.database.schema import Schema

# typing costs milliseconds at import; annotations are strings here, mypy reads this block.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lab_utils.database.binary_copy import CopyStream, EncodedStream, RowEncoder

log = logging.getLogger("lab_utils.database.database")


# Rows per chunk of COPY data (110-220 KiB of DAQ rows): large enough that the calls per
# chunk do not count, small enough to stay in the CPU's cache while it is encoded and sent,
# and for the server to start parsing early (10,000 rows of columns cost 0.19 us of client
# CPU per row, 2,000 rows 0.14). Chunks are encoded in the sending thread: the socket's
# buffer lets the server parse one while the next is encoded (an encoding thread measured
# slower, see binary_copy.CopyStream).
_ROWS_PER_CHUNK = 1_000
_COLUMN_ROWS_PER_CHUNK = 2_000


def _column_list(columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(ident(c, "column name") for c in columns)


class Ingest(Schema):
    """Inserting and updating rows."""

    def new_entry(
        self,
        table_name: str,
        columns: Sequence[str],
        data: Sequence[Any],
        check_columns: bool = False,
    ) -> None:
        """Insert one row and commit; ``time`` is filled by the table default.

        Raises
        ------
        psycopg2.DataError
            ``columns`` and ``data`` differ in length, or are empty.
        MissingTableError, MissingColumnError
            With ``check_columns``: the table or a column does not exist (each an
            ``IntegrityError``).
        psycopg2.DatabaseError
            Not connected.
        """
        self.require_connection()
        if len(columns) != len(data):
            raise psycopg2.DataError(
                "Data and column lists have different sizes"
                f" ({len(data)} values, {len(columns)} columns)"
            )
        if not columns:
            raise psycopg2.DataError("Empty data")
        if check_columns:
            self._require_columns(table_name, columns, f"new_entry({table_name!r})")
        connection = self.require_connection()
        cache: dict[tuple[str, tuple[str, ...]], str] | None = self.__dict__.get("_inserts")
        if cache is None or self.__dict__.get("_inserts_for") is not connection:
            cache = self.__dict__["_inserts"] = {}
            self.__dict__["_inserts_for"] = connection
        key = (table_name, tuple(columns))
        query = cache.get(key)
        if query is None:
            # Composed (every name checked) once per connection, table and columns.
            query = cache[key] = (
                sql.SQL("INSERT INTO {} ({}) VALUES ({})")
                .format(
                    ident(table_name, "table name"),
                    _column_list(columns),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                )
                .as_string(connection)
            )
        values = data if isinstance(data, (list, tuple)) else list(data)
        if connection.status != STATUS_READY or connection.autocommit:
            with self.transaction(f"new_entry({table_name!r})") as cursor:
                cursor.execute(query, values)
            return
        # No transaction open: the one INSERT commits by itself, one round trip instead of
        # three (psycopg2's BEGIN, the INSERT, COMMIT) for the same atomic, committed row.
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(query, values)
        except psycopg2.Error as error:
            if self.log_failures and not isinstance(
                error, (psycopg2.OperationalError, psycopg2.InterfaceError)
            ):
                log.error("new_entry(%r) failed: %s", table_name, str(error).strip())
            raise
        finally:
            if not connection.closed:
                connection.autocommit = False

    def insert_many(
        self,
        table_name: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        batch: tuple[str, str] | None = None,
        encoder: RowEncoder | None = None,
        encoded: bytes | None = None,
    ) -> int:
        """Insert many rows in one transaction with binary COPY; return how many.

        ``columns`` usually starts with ``time``; values are Python numbers, booleans,
        strings, datetimes (naive ones are local time), Unix times for time columns, or None.

        Parameters
        ----------
        table_name : str
            The table.
        columns : sequence of str
            The columns the rows give values for.
        rows : iterable of sequences
            The rows.
        batch : tuple of str, optional
            ``(bookkeeping table, batch id)``: record the id with the row count in the
            same transaction (and round trip) as the rows, and write nothing (returning 0,
            logged) if that id was already recorded. The table is the one the buffered
            writer keeps (``lab_utils_batches``, made by :func:`batches.create`).
        encoder : RowEncoder, optional
            An encoder for the types of ``columns`` (saves asking the server for them).
        encoded : bytes, optional
            The complete binary COPY data of ``rows`` (:func:`binary_copy.copy_data` of
            what a :class:`RowEncoder` for these columns gave), sent as it is; ``rows``
            must then be a sequence.

        Raises
        ------
        psycopg2.IntegrityError
            The table or a column does not exist.
        ValueError, TypeError
            A row of the wrong length or a value of the wrong kind (nothing is written).
        """
        # The COPY encoder (and psycopg 3 with lab-db[fast]) is imported by the first COPY,
        # not by a program that only writes rows one at a time.
        from lab_utils.database.binary_copy import CopyStream, EncodedStream, RowEncoder

        if encoded is not None:
            count = len(rows) if isinstance(rows, Sized) else 0
            return self._copy(
                "insert_many", table_name, columns, EncodedStream(encoded, count), batch, count
            )
        if encoder is None:
            encoder = RowEncoder(self.column_types(table_name, columns))
        stream = CopyStream(encoder, rows, _ROWS_PER_CHUNK, overlap=False)
        # A sized collection's count goes with the id ahead of the rows (one round trip).
        known = len(rows) if isinstance(rows, Sized) else None
        return self._copy("insert_many", table_name, columns, stream, batch, known)

    def insert_columns(
        self,
        table_name: str,
        columns: Sequence[str],
        data: Sequence[Any],
        *,
        encoder: RowEncoder | None = None,
    ) -> int:
        """Insert rows given column by column, in one transaction with binary COPY.

        The way DAQ hardware delivers data: one array per channel. Same values and
        checks as :meth:`insert_many`, without building rows.

        Parameters
        ----------
        table_name : str
            The table.
        columns : sequence of str
            The column names, one per entry of ``data``.
        data : sequence
            One entry per column, all of the same length: a sequence of values, a buffer
            (``array.array``, ``memoryview``) or a numpy array. ``datetime64`` arrays are
            UTC; numbers in a time column are Unix seconds; None (and NaT) is NULL.
        encoder : RowEncoder, optional
            An encoder for the types of ``columns``.

        Returns
        -------
        int
            How many rows were written.

        Raises
        ------
        psycopg2.IntegrityError
            The table or a column does not exist.
        ValueError, TypeError
            Columns of different lengths, or a value of the wrong kind (nothing is written).
        """
        from lab_utils.database.binary_copy import ColumnStream, RowEncoder

        if encoder is None:
            encoder = RowEncoder(self.column_types(table_name, columns))
        stream = ColumnStream(encoder, data, _COLUMN_ROWS_PER_CHUNK, overlap=False)
        return self._copy("insert_columns", table_name, columns, stream, None)

    def _copy(
        self,
        what: str,
        table_name: str,
        columns: Sequence[str],
        stream: CopyStream | EncodedStream,
        batch: tuple[str, str] | None,
        count: int | None = None,
    ) -> int:
        """COPY the stream's rows (and record the batch id) in one transaction; return the rows.

        ``count`` is the number of rows when known before the COPY starts.

        The way the buffered writer sends its batches, in as few round trips as the count
        allows. The connection is put in autocommit for the call and the server runs one
        query string as one implicit transaction: the id's INSERT (with the count) and the
        COPY, so an id already recorded stops it before any row is sent, in one round trip
        instead of BEGIN, the id, the COPY, its count and COMMIT. With the count known only
        at the end (an iterator): ``BEGIN; COPY``, then the id with the count and the
        ``COMMIT`` in a second round trip. A failure anywhere rolls everything back.
        """
        connection = self.require_connection()
        copy = (
            sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)")
            .format(ident(table_name, "table name"), _column_list(columns))
            .as_string(connection)
        )
        if connection.status != STATUS_READY:
            return self._copy_joined(what, table_name, copy, stream, batch)
        ahead = batch is not None and count is not None
        if batch is None:
            query = copy
        elif count is not None:
            query = f"{_claim(connection, batch, table_name, count)}; {copy}"
        else:
            query = f"BEGIN; {copy}"
        autocommit = connection.autocommit
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                _send(cursor, query, stream)
                if batch is not None and not ahead:
                    claim = _claim(connection, batch, table_name, stream.rows)
                    cursor.execute(f"{claim}; COMMIT")
        except BaseException as error:
            batches.roll_back(connection)
            if batch is not None and batches.already_written(error, batch[0]):
                log.info("Batch %s is already in %r: not written twice", batch[1], table_name)
                return 0
            if (
                self.log_failures
                and isinstance(error, psycopg2.Error)
                and not isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError))
            ):
                log.error("%s(%r) failed: %s", what, table_name, str(error).strip())
            raise
        finally:
            if not connection.closed:
                connection.autocommit = autocommit
        return stream.rows

    def _copy_joined(
        self,
        what: str,
        table_name: str,
        copy: str,
        stream: CopyStream | EncodedStream,
        batch: tuple[str, str] | None,
    ) -> int:
        """COPY within a transaction of the caller's, committed with the rows.

        A known batch id must leave the caller's statements in place (committed, as
        :meth:`transaction` does), so it is looked for before the COPY rather than left
        to fail the transaction.
        """
        with self.transaction(f"{what}({table_name!r})") as cursor:
            if batch is not None and not batches.claim(cursor, batch[0], batch[1], table_name):
                log.info("Batch %s is already in %r: not written twice", batch[1], table_name)
                stream.close()
                return 0
            _send(cursor, copy, stream)
            if batch is not None:
                batches.set_count(cursor, batch[0], batch[1], stream.rows)
        return stream.rows

    def update_measurement(
        self,
        table_name: str,
        measurement_id: int,
        columns: Sequence[str] | None = None,
        values: Sequence[Any] | None = None,
        pairs: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        """Set columns of the row whose ``id`` is ``measurement_id`` (0.5).

        Give either ``columns`` and ``values``, or ``pairs`` of ``(column, value)``.
        Names are quoted identifiers and values parameters, so any text is stored as given.

        Raises
        ------
        psycopg2.DataError
            No data, or ``columns`` and ``values`` differ in length.
        psycopg2.DatabaseError
            Not connected.
        MissingTableError, MissingColumnError
            The table or a column does not exist (each an ``IntegrityError``).
        ValueError
            An impossible column name.
        """
        if pairs is None:
            if values is None or columns is None:
                raise psycopg2.DataError("Empty data")
            if len(values) != len(columns):
                raise psycopg2.DataError("Data and column lists have different sizes")
            pairs = list(zip(columns, values, strict=True))
        if len(pairs) == 0:
            raise psycopg2.DataError("Empty data")
        self.require_connection()
        self._require_columns(
            table_name, [column for column, _ in pairs], f"update_measurement({table_name!r})"
        )
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(ident(pair[0], "column name")) for pair in pairs
        )
        query = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(
            ident(table_name, "table name"), assignments
        )
        log.info("Modifying measurement entry %s in table <%s>", measurement_id, table_name)
        with self.transaction(f"update_measurement({table_name!r})") as cursor:
            cursor.execute(query, [pair[1] for pair in pairs] + [measurement_id])


def _claim(connection: Any, batch: tuple[str, str], table_name: str, rows: int) -> str:
    """Return the statement recording ``batch``'s id with its row count, as text."""
    return batches.claiming(batch[0], [(batch[1], rows)], table_name).as_string(connection)


def _send(
    cursor: psycopg2.extensions.cursor, query: str, stream: CopyStream | EncodedStream
) -> None:
    """Run ``query`` (ending in a COPY) with the stream's data; a bad row's own error raised."""
    try:
        cursor.copy_expert(query, stream, size=1 << 20)
    except psycopg2.Error:
        if stream.error is not None:  # a bad row, not the server: say which
            raise stream.error from None
        raise
    finally:
        stream.close()
