"""Set-based SQL helpers: dialect upserts and chunked IN lookups (no per-record round trips)."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import Connection, Table, tuple_
from sqlalchemy.sql.elements import ColumnElement

IN_CHUNK = 900   # stays under every dialect's bound-parameter limit


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: Sequence[str],
           update: Iterable[str] | None = None) -> None:
    """Insert rows, updating ``update`` columns of rows whose ``keys`` exist already (one statement)."""
    if not rows:
        return
    dialect = conn.dialect.name
    update_cols = list(update) if update is not None else [c for c in rows[0] if c not in keys]
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(table)
        if update_cols:
            stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                              set_={c: stmt.excluded[c] for c in update_cols})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    elif dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert
        stmt = insert(table)
        if update_cols:
            stmt = stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in update_cols})
        else:
            stmt = stmt.prefix_with("IGNORE")
    else:  # pragma: no cover - other dialects are not supported as stores
        raise NotImplementedError(f"upsert on {dialect}")
    from hub.bulk import execute_many
    execute_many(conn, stmt, rows, f"upsert:{table.name}:{','.join(keys)}:{','.join(update_cols)}")


def key_parts(conn: Connection, keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """Parts of ``keys`` to look up with :func:`among`: all of them at once on PostgreSQL (one array
    parameter: one statement and one plan per batch, not one per 900 keys), IN_CHUNK elsewhere."""
    if conn.dialect.name == "postgresql":
        if keys:
            yield keys
        return
    yield from chunks(keys)


def among(conn: Connection, column: ColumnElement, keys: Sequence[Any]) -> ColumnElement:
    """``column`` is one of ``keys`` (a part from :func:`key_parts`)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import String, any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY
        # unsized: a cast to varchar(n)[] would cut a longer key to n characters, and match another
        item = String() if isinstance(column.type, String) else column.type
        return column == any_(bindparam(None, list(keys), type_=ARRAY(item), unique=True))
    return column.in_(keys)


def in_clause(column: ColumnElement, values: Sequence[Any]) -> ColumnElement:
    return column.in_(values)


def tuple_in(columns: Sequence[ColumnElement], values: Sequence[tuple]) -> ColumnElement:
    return tuple_(*columns).in_(values)
