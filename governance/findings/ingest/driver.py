"""Every private psycopg or Django database API the import uses, in one place (psycopg and Django are pinned in
requirements.txt; an upgrade re-runs tests/findings and bench/ingest.py). Each one is here for a measured reason
(bench/README.md), said next to it. Nothing else in Rampart reaches below the ORM or a Django cursor."""
from __future__ import annotations

import time

from django.db import connection
from psycopg.adapt import Dumper
from psycopg.pq import Format

from governance.findings.search import PackedTerms

_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # then flags and header extension length, both 0
_BINARY_TRAILER = b"\xff\xff"


def query_logged(sql: str, started: float) -> None:
    """A statement sent outside Django's cursors (a COPY, the dictionary's connection) is logged like any query,
    so the query-count tests (django_assert_max_num_queries) see it. Private: connection.queries_log."""
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def server_bound_cursor():
    """A cursor on the same connection (and transaction) that sends parameters separately from the SQL.

    Django's default psycopg cursor binds client-side: a 3 MB JSON parameter would be escaped into the SQL text in
    Python and parsed back as a literal by PostgreSQL. Private: ServerBindingCursor and connection._prepare_cursor,
    which wraps it like any Django cursor (queries logged and counted, errors translated).
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    return connection._prepare_cursor(ServerBindingCursor(connection.connection))


def copy_binary(table: str, columns: tuple[tuple[str, str], ...], rows: list) -> None:
    """Binary COPY of rows into table, in the import's transaction. Rows built ahead are already the bytes of a
    binary COPY row (sent as they are, joined); others are tuples in `columns` order. Django has no COPY: this
    uses the raw psycopg connection under Django's error translation (COPY is ~85 % of a fresh import's time:
    any slower insert path shows at once in bench/ingest.py)."""
    sql = f"COPY {table} ({', '.join(name for name, _ in columns)}) FROM STDIN (FORMAT BINARY)"
    started = time.monotonic()
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.adapters.register_dumper(PackedTerms, _PackedTermsDumper)
        with cursor.copy(sql) as copy:
            if isinstance(rows[0], bytes):
                copy.write(b"".join([_BINARY_SIGNATURE, *rows, _BINARY_TRAILER]))
            else:
                copy.set_types([kind for _, kind in columns])
                for row in rows:
                    copy.write_row(row)
    query_logged(f"{sql} -- {len(rows)} rows", started)


def binary_row_formatter(columns: tuple[tuple[str, str], ...]):
    """A function from a row tuple (`columns` order) to the bytes of that row in a binary COPY, with psycopg's own
    C formatter, so the parsing process builds rows ready to send and the writer only joins them (the writer then
    keeps up with PostgreSQL, bench/README.md). Private: psycopg._copy_base.format_row_binary."""
    from psycopg import postgres
    from psycopg._copy_base import format_row_binary
    from psycopg.adapt import AdaptersMap, Transformer

    class Context:
        adapters, connection = AdaptersMap(postgres.adapters), None

    Context.adapters.register_dumper(PackedTerms, _PackedTermsDumper)
    transformer = Transformer(Context)
    transformer.set_dumper_types([_type_oid(kind) for _, kind in columns], Format.BINARY)

    def binary_row(row: tuple) -> bytes:
        out = bytearray()
        format_row_binary(row, transformer, out)
        return bytes(out)

    return binary_row


def _type_oid(name: str) -> int:
    from psycopg import postgres

    if name.endswith("[]"):
        return postgres.types.get(name[:-2]).array_oid
    return postgres.types.get(name).oid


class _PackedTermsDumper(Dumper):
    """Sends search.PackedTerms as they are: they already are a binary int8[] (psycopg's array dumper is Python
    code, 22 µs a finding)."""

    format = Format.BINARY
    oid = 1016  # int8[]

    def dump(self, obj):
        return obj


def autocommit_connection():
    """A second connection to the same database, committing each statement: the word dictionary is written
    outside the import's transaction (governance.findings.ingest.postgres.Dictionary says why). Django opens
    connections per thread only: this uses its backend's own way to open one (get_new_connection)."""
    conn = connection.get_new_connection(connection.get_connection_params())
    conn.autocommit = True
    return conn


def execute_on(conn, sql: str, params, note: str) -> None:
    """One statement on a connection from autocommit_connection(), its errors translated to Django's and logged
    like the import's own queries (private: connection.wrap_database_errors)."""
    started = time.monotonic()
    with connection.wrap_database_errors:
        conn.execute(sql, params)
    query_logged(f"{sql} -- {note}", started)


def socket_fds() -> tuple[int, ...]:
    """The connection's socket, which a forked parsing process must close (so a dead parent's session ends with
    the parent, not with the child)."""
    connection.ensure_connection()
    return (connection.connection.fileno(),)
