"""Set-based writes at full speed: one compiled statement, one executemany per batch.

SQLAlchemy Core builds and compiles each statement once per dialect; the
rows' values go through the same bind processors SQLAlchemy would apply
(UTC timestamps, JSON, decimals), in one tight loop, and then straight to
the driver's executemany. This skips the per-row bookkeeping of a generic
``Connection.execute(stmt, rows)``, which costs more than the insert itself
on the hot tables (golden rows, xref, source_state, field_history, outbox).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement

_cache: dict[tuple[str, str, tuple[str, ...]], tuple[str, list[str], list[Callable | None], bool]] = {}


def _prepare(conn: Connection, stmt: ClauseElement, key: str, names: tuple[str, ...]):  # noqa: ANN202
    cache_key = (conn.dialect.name, key, names)
    hit = _cache.get(cache_key)
    if hit is None:
        dialect = conn.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=list(names))
        order = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        procs: list[Any] = []
        for name in order:
            bind = compiled.binds[name]
            proc = bind.type._cached_bind_processor(dialect)  # noqa: SLF001 - the processor SQLAlchemy uses
            if name not in names:   # a literal of the statement itself (version + 1): the same for every row
                value = bind.effective_value
                procs.append(("const", proc(value) if proc else value))
            else:
                procs.append(proc)
        hit = (compiled.string, order, procs, compiled.positional)
        _cache[cache_key] = hit
    return hit


def execute_many(conn: Connection, stmt: ClauseElement, rows: Sequence[dict[str, Any]], key: str) -> None:
    """Run ``stmt`` once per row dict (all rows have the same keys) with one executemany.

    Args:
        key: names the statement for the compile cache (the same key must always mean the same statement).
    """
    if not rows:
        return
    names = tuple(rows[0])
    sql, order, procs, positional = _prepare(conn, stmt, key, names)
    if any(isinstance(p, tuple) for p in procs):
        consts = {n: p[1] for n, p in zip(order, procs) if isinstance(p, tuple)}
        rows = [{**r, **consts} for r in rows]
        procs = [None if isinstance(p, tuple) else p for p in procs]
    pairs = [(n, _Memo(p) if p else None) for n, p in zip(order, procs)]
    if positional:
        params: list[Any] = [tuple(p(r[n]) if p else r[n] for n, p in pairs) for r in rows]
    else:
        params = [{n: (p(r[n]) if p else r[n]) for n, p in pairs} for r in rows]
    conn.exec_driver_sql(sql, params)


class _Memo:
    """A bind processor that reuses its last result for the very same object: a batch stamps
    every row with one `now`, so the timestamp is formatted once, not once per row."""

    __slots__ = ("proc", "last_in", "last_out")

    def __init__(self, proc: Callable) -> None:
        self.proc, self.last_in, self.last_out = proc, _NOTHING, None

    def __call__(self, value: Any) -> Any:
        if value is self.last_in:
            return self.last_out
        out = self.proc(value)
        self.last_in, self.last_out = value, out
        return out


_NOTHING = object()
