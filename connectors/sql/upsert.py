"""Dialect upsert statements (insert, or update the row with the same key)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table


def upsert_statement(dialect: str, table: Table, key: str, columns: tuple[str, ...]) -> Any:
    """An executemany-able upsert of ``columns`` keyed by ``key``, or None when the dialect has none.

    SQLite and PostgreSQL: ``INSERT .. ON CONFLICT (key) DO UPDATE``;
    MySQL and MariaDB: ``INSERT .. ON DUPLICATE KEY UPDATE``.
    """
    others = [c for c in columns if c != key]
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        stmt = insert(table)
        if not others:
            return stmt.on_conflict_do_nothing(index_elements=[table.c[key]])
        return stmt.on_conflict_do_update(index_elements=[table.c[key]],
                                          set_={c: stmt.excluded[c] for c in others})
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert
        stmt = insert(table)
        return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in (others or [key])})
    return None
