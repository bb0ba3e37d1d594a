"""Keyset-paged incremental reads of one table.

Pages are ``ORDER BY updated_at, key LIMIT n`` continued from the last row
seen (``(updated_at, key) > (last)``, spelled out with OR so every dialect
takes it), never OFFSET: a page costs the same at row one million as at row
one, and rows changing during the read cannot shift a page. The first page
of a run starts at the cursor with a closed bound (``updated_at >= ts``); the
pipeline drops rows it already has by hash. Rows without a stamp (NULL, or
empty text) cannot be placed before or after the cursor, so every read takes
them first, paged by key, and they leave the cursor where it was. Each page
uses its own connection, so a slow pipeline holds no transaction open on the
source.

Stamps kept as text compare as text. Text with a UTC offset (``...T22:00:00-05:00``,
``...Z``) does not sort in time order against the cursor written in the mapping's
zone, so once a read has seen such a stamp the cursor says so (``offsets``) and the
bound of later reads goes back by the span of the world's offsets (26 hours): rows
read again are skipped as unchanged, and none later in time sorts before the bound.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from sqlalchemy import Column, ColumnElement, String, Table, and_, not_, or_, select, type_coerce
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Engine

from connectors.file.timestamps import cap, parse_cursor_ts, parse_timestamp, to_iso
from connectors.sql.values import as_text, is_temporal, is_text, naive_local
from hub.connector import Batch, StreamSpec
from hub.errors import ConfigError

log = logging.getLogger(__name__)

# UTC-12 to UTC+14: how far apart two texts of one instant can be
OFFSET_SPAN = timedelta(hours=26)
# a time of day followed by a UTC offset or Z (a date alone, 2026-11-01, ends in "-01" too)
_WITH_OFFSET = re.compile(r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$")


@dataclass
class Plan:
    """What to select from a table for one stream, and how its key and timestamp compare."""

    names: list[str]
    exprs: list[ColumnElement[Any]]
    key: ColumnElement[Any]
    ts: ColumnElement[Any] | None
    ts_col: Column | None


def column(table: Table, name: str | None, what: str, stream: StreamSpec) -> Column:
    """The table's column ``name``.

    Raises:
        ConfigError: the table has no such column.
    """
    if name not in table.c:
        raise ConfigError(f"table '{table.fullname}' has no {what} column '{name}' "
                          f"(columns: {', '.join(table.c.keys())})", entity=stream.entity)
    return table.c[name]


def plan(table: Table, stream: StreamSpec, dialect: str) -> Plan:
    """Columns to select: the mapping's fields that exist (all columns when none are named)."""
    key_col = column(table, stream.key, "key", stream)
    ts_col = column(table, stream.updated_at, "updated_at", stream) if stream.updated_at else None
    if ts_col is not None and not (is_temporal(ts_col) or is_text(ts_col)):
        raise ConfigError(f"column '{ts_col.name}' of '{table.fullname}' is {ts_col.type}; the updated_at "
                          f"column must hold dates/times or timestamp text", entity=stream.entity)
    wanted = {f.split(".", 1)[0] for f in stream.fields} | {stream.key} | ({stream.updated_at} - {None})
    cols = [c for c in table.c if not stream.fields or c.name in wanted]
    missing = sorted(f for f in wanted if f not in table.c)
    if stream.fields and missing:
        log.warning("table %s has no column(s) %s named by the %s mapping", table.fullname, ", ".join(missing),
                    stream.entity)
    exprs = {c.name: _expr(c, dialect) for c in cols}
    return Plan(names=list(exprs), exprs=list(exprs.values()), key=exprs[key_col.name],
                ts=exprs[ts_col.name] if ts_col is not None else None, ts_col=ts_col)


def _expr(col: Column, dialect: str) -> ColumnElement[Any]:
    # SQLite stores dates as text in whatever form the writing program chose; take that text as it is
    # instead of letting the type parse it (which fails on forms it did not write itself)
    if dialect == "sqlite" and is_temporal(col):
        return type_coerce(col, String()).label(col.name)
    return col


def _bound(since: datetime, p: Plan, dialect: str, tz: str) -> Any:
    """The cursor as a value comparable with the updated_at column."""
    col = p.ts_col
    assert col is not None
    if isinstance(col.type, sqltypes.DateTime) and dialect != "sqlite":
        return since if getattr(col.type, "timezone", False) else naive_local(since, tz)
    if isinstance(col.type, sqltypes.Date) and not isinstance(col.type, sqltypes.DateTime):
        local = naive_local(since, tz).date()
        return local.isoformat() if dialect == "sqlite" else local
    # text (or SQLite's text dates) compares as text: whole seconds, so that a stamp written with fewer
    # fraction digits than the cursor's ('10:00:00.5' against '10:00:00.500000') is not taken for earlier;
    # the rows of that second read again are skipped as unchanged
    return naive_local(since, tz).replace(microsecond=0).isoformat(sep=" ")


def read_table(engine: Engine, table: Table, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
    """Batches of the table's rows changed at or after ``cursor`` (all rows when None)."""
    dialect = engine.dialect.name
    p = plan(table, stream, dialect)
    key_at = p.names.index(stream.key)
    if p.ts is None:  # no change stamp: a full read every run, the cursor stays
        yield from _pages(engine, p, stream, None, [key_at], lambda rows: cursor)
        return
    ts_at = p.names.index(stream.updated_at)
    since = parse_cursor_ts(cursor.get("ts") if isinstance(cursor, dict) else cursor)
    offsets = isinstance(cursor, dict) and bool(cursor.get("offsets"))
    # a row added or edited without a stamp could be anywhere relative to the cursor: every read takes them all
    unstamped = _unstamped(p, dialect)
    yield from _pages(engine, p, stream, unstamped, [key_at], lambda rows: cursor)
    if since is None:
        where = not_(unstamped)
    else:
        where = p.ts >= _bound(since - OFFSET_SPAN if offsets else since, p, dialect, stream.timezone)
    state = {"cursor": cursor, "offsets": offsets}
    as_text_stamps = _compares_as_text(p, dialect)

    def advance(rows: list[Any]) -> Any:
        if as_text_stamps and not state["offsets"]:
            state["offsets"] = any(isinstance(r[ts_at], str) and _WITH_OFFSET.search(r[ts_at]) for r in rows)
        last = rows[-1]
        ts = parse_timestamp(last[ts_at], stream.timezone)
        if ts is None:
            return state["cursor"]
        capped = cap(ts, stream.run_started_at)
        if since is not None and capped < since:
            capped = since
        state["cursor"] = {"ts": to_iso(capped), "key": as_text(last[key_at]) if capped == ts else None}
        if state["offsets"]:
            state["cursor"]["offsets"] = True
        return state["cursor"]

    yield from _pages(engine, p, stream, where, [ts_at, key_at], advance)


def _compares_as_text(p: Plan, dialect: str) -> bool:
    """The updated_at column holds text (SQLite keeps its dates as text too)."""
    assert p.ts_col is not None
    return is_text(p.ts_col) or (dialect == "sqlite" and is_temporal(p.ts_col))


def _unstamped(p: Plan, dialect: str) -> ColumnElement[bool]:
    """Rows whose updated_at holds no time: NULL, or empty where the column holds text."""
    assert p.ts is not None
    if _compares_as_text(p, dialect):
        return or_(p.ts.is_(None), p.ts == "")
    return p.ts.is_(None)


def _pages(engine: Engine, p: Plan, stream: StreamSpec, where: ColumnElement[bool] | None,
           order_at: list[int], advance: Callable[[list[Any]], Any]) -> Iterator[Batch]:
    order = [p.exprs[i] for i in order_at]
    base = select(*p.exprs)
    if where is not None:
        base = base.where(where)
    base = base.order_by(*order).limit(stream.batch_size)
    last: Any = None
    while True:
        query = base if last is None else base.where(_after(order, [last[i] for i in order_at]))
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        last = rows[-1]
        records = [{name: as_text(v) for name, v in zip(p.names, row)} for row in rows]
        yield Batch(records=records, cursor=advance(rows))
        if len(rows) < stream.batch_size:
            return


def _after(order: list[ColumnElement[Any]], last: list[Any]) -> ColumnElement[bool]:
    if len(order) == 1:
        return order[0] > last[0]
    ts, key = order
    return or_(ts > last[0], and_(ts == last[0], key > last[1]))
