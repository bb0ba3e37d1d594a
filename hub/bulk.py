"""Set-based writes at full speed: one compiled statement, one executemany per batch.

SQLAlchemy Core builds and compiles each statement once per dialect; the
rows' values go through the same bind processors SQLAlchemy would apply
(UTC timestamps, JSON, decimals), and then straight to the driver's
executemany. This skips the per-row bookkeeping of a generic
``Connection.execute(stmt, rows)``, which costs more than the insert itself
on the hot tables (golden rows, xref, source_state, field_history, outbox).
The per-row conversion is one generated function per statement: a tuple (or
dict) display with the processors inlined, the fastest form Python has. New
rows on PostgreSQL go as one ``COPY ... FROM STDIN`` (:func:`insert_many`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

_Prepared = tuple[str, Callable[[dict[str, Any]], Any]]
_cache: dict[tuple[str, str, tuple[str, ...]], _Prepared] = {}


def _prepare(conn: Connection, stmt: ClauseElement, key: str, names: tuple[str, ...]) -> _Prepared:
    cache_key = (conn.dialect.name, key, names)
    hit = _cache.get(cache_key)
    if hit is None:
        dialect = conn.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=list(names))
        order = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        env: dict[str, Any] = {}
        parts = []
        for n, name in enumerate(order):
            bind = compiled.binds[name]
            proc = bind.type._cached_bind_processor(dialect)  # noqa: SLF001 - the processor SQLAlchemy uses
            if name not in names:   # a literal of the statement itself (version + 1): the same for every row
                value = bind.effective_value
                env[f"c{n}"] = proc(value) if proc else value
                expr = f"c{n}"
            else:
                expr = _processed(env, n, name, proc)
            parts.append(expr if compiled.positional else f"{name!r}: {expr}")
        body = f"({', '.join(parts)},)" if compiled.positional else f"{{{', '.join(parts)}}}"
        convert = eval(f"lambda r: {body}", env)  # noqa: S307 - built from the statement's own bind names
        hit = (compiled.string, convert)
        _cache[cache_key] = hit
    return hit


def execute_many(conn: Connection, stmt: ClauseElement, rows: Sequence[dict[str, Any]], key: str) -> int:
    """Run ``stmt`` once per row dict (all rows have the same keys) with one executemany.

    Args:
        key: names the statement for the compile cache (the same key must always mean the same statement).

    Returns:
        The rows the statements matched in all (the stores' drivers count an executemany as a whole).
    """
    if not rows:
        return 0
    sql, convert = _prepare(conn, stmt, key, tuple(rows[0]))
    return conn.exec_driver_sql(sql, list(map(convert, rows))).rowcount


def _processed(env: dict[str, Any], n: int, name: str, proc: Callable | None) -> str:
    """The expression of a generated converter that gives row ``r``'s value of ``name`` as the driver takes it."""
    if proc is None:
        return f"r[{name!r}]"
    env[f"p{n}"] = _Memo(proc)
    return f"p{n}(r[{name!r}])"


class _Memo:
    """A bind processor that reuses its last result for the very same object: a batch stamps
    every row with one `now`, so the timestamp is formatted once, not once per row. The pair is
    replaced as one object, so threads sharing the cached statement never see a torn pair."""

    __slots__ = ("proc", "last")

    def __init__(self, proc: Callable) -> None:
        self.proc, self.last = proc, (_NOTHING, None)

    def __call__(self, value: Any) -> Any:
        last = self.last
        if value is last[0]:
            return last[1]
        out = self.proc(value)
        self.last = (value, out)
        return out


_NOTHING = object()


_copy_cache: dict[tuple[str, str, tuple[str, ...]], _Prepared] = {}


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Insert new rows (all with the same keys). On PostgreSQL one ``COPY ... FROM STDIN`` (about twice the
    rate of an executemany of INSERTs, whose time is the server's per-statement work); elsewhere
    :func:`execute_many`. Values go through the same bind processors; a database error is raised as
    SQLAlchemy raises it (``IntegrityError`` and the rest), and the rows are part of the open transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        execute_many(conn, insert(table), rows, key)
        return
    names = tuple(rows[0])
    sql, convert = _prepare_copy(conn, table, names)
    if not conn.in_transaction():    # as a statement would: the COPY then belongs to the transaction commit() ends
        conn.begin()
    dbapi = conn.connection.dbapi_connection
    import psycopg
    try:
        with dbapi.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(convert(row))
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc


def _prepare_copy(conn: Connection, table: Table, names: tuple[str, ...]) -> _Prepared:
    cache_key = (conn.dialect.name, table.name, names)
    hit = _copy_cache.get(cache_key)
    if hit is None:
        dialect = conn.dialect
        quote = dialect.identifier_preparer.quote
        env: dict[str, Any] = {}
        parts = [_processed(env, n, name, table.c[name].type._cached_bind_processor(dialect))  # noqa: SLF001
                 for n, name in enumerate(names)]
        convert = eval(f"lambda r: ({', '.join(parts)},)", env)  # noqa: S307 - built from the table's own columns
        sql = (f"COPY {dialect.identifier_preparer.format_table(table)} "
               f"({', '.join(quote(name) for name in names)}) FROM STDIN")
        hit = (sql, convert)
        _copy_cache[cache_key] = hit
    return hit
