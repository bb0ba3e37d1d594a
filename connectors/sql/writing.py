"""Upserts by key: dialect upserts, executemany in one transaction, per-record errors as results.

The whole call is one transaction. If the database refuses it (a NOT NULL
column left empty, a value too long ...), every change is tried again on its
own so the good ones land and each refused one is reported with the
database's reason; nothing raises for a bad record. A lost connection fails
every change of the call as retriable.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, Table, bindparam, delete, insert, select, update
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from connectors.sql.upsert import upsert_statement
from connectors.sql.values import coerce, is_text
from hub.column_fit import SQLITE_EXACT_DIGITS
from hub.connector import StreamSpec, WriteChange, WriteResult

log = logging.getLogger(__name__)

NEW_ID_PREFIX = "T-"
KEY_PARAM = "_triad_key"


@dataclass
class _Op:
    change: WriteChange
    kind: str                     # update | upsert (create with a key) | insert (autoincrement key) | delete
    params: dict[str, Any]
    source_id: str | None


def _unique_key(table: Table, key: Column) -> bool:
    if key.primary_key and len(table.primary_key.columns) == 1:
        return True
    singles = [list(i.columns) for i in table.indexes if i.unique]
    singles += [list(c.columns) for c in table.constraints if c.__class__.__name__ == "UniqueConstraint"]
    return any(len(cols) == 1 and cols[0].name == key.name for cols in singles)


def _autoincrement(key: Column) -> bool:
    return isinstance(key.type, sqltypes.Integer) and key.primary_key and key.autoincrement in (True, "auto")


def _stamp(col: Column, tz: str) -> Any:
    now = datetime.now(timezone.utc).replace(microsecond=0)  # many columns keep whole seconds (and round up)
    return coerce(col, now, tz)


class TableWriter:
    """Applies changes to one table."""

    def __init__(self, engine: Engine, table: Table, stream: StreamSpec, *, touch_updated_at: bool = True) -> None:
        self.engine = engine
        self.table = table
        self.stream = stream
        self.key = table.c[stream.key]
        self.touch = touch_updated_at and stream.updated_at in table.c if stream.updated_at else False
        self.unique = _unique_key(table, self.key)

    def write(self, changes: list[WriteChange]) -> list[WriteResult]:
        results: dict[str, WriteResult] = {}
        ops: list[_Op] = []
        for ch in changes:
            try:
                ops.append(self._prepare(ch))
            except ValueError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, ok=False, error=str(exc))
        if ops:
            self._apply(ops, results)
        return [results[ch.change_id] for ch in changes]

    def _prepare(self, ch: WriteChange) -> _Op:
        tz = self.stream.timezone
        if ch.delete:
            if not ch.source_id:
                raise ValueError("cannot delete a record that has no source id")
            return _Op(ch, "delete", {KEY_PARAM: coerce(self.key, ch.source_id, tz)}, ch.source_id)
        unknown = sorted(k for k in ch.values if k not in self.table.c)
        if unknown:
            raise ValueError(f"table '{self.table.fullname}' has no column(s) {', '.join(unknown)}")
        exact = SQLITE_EXACT_DIGITS if self.engine.dialect.name == "sqlite" else None
        params = {k: coerce(self.table.c[k], v, tz, exact) for k, v in ch.values.items() if k != self.key.name}
        if self.touch and self.stream.updated_at not in ch.values:
            # a change written here is a change of this system: stamp it like the system would
            params[self.stream.updated_at] = _stamp(self.table.c[self.stream.updated_at], tz)
        given = ch.source_id if ch.source_id else ch.values.get(self.key.name)
        if given in (None, "") and _autoincrement(self.key):
            return _Op(ch, "insert", params, None)
        if given in (None, ""):
            if not is_text(self.key):
                raise ValueError(f"key column {self.key.name} is {self.key.type}: a new record needs a key value")
            given = f"{NEW_ID_PREFIX}{ch.record_id}"
        params[self.key.name] = coerce(self.key, given, tz)
        return _Op(ch, "update" if ch.source_id else "upsert", params, str(given))

    def _apply(self, ops: list[_Op], results: dict[str, WriteResult]) -> None:
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            self._fail_all(ops, results, f"cannot connect: {db_reason(exc)}", retriable=True)
            return
        with conn:
            try:
                with conn.begin():
                    ids = self._execute(conn, ops)
            except SQLAlchemyError as exc:
                if getattr(exc, "connection_invalidated", False):
                    self._fail_all(ops, results, f"connection lost: {db_reason(exc)}", retriable=True)
                    return
                log.info("batch write to %s refused (%s); retrying change by change", self.table.fullname,
                         db_reason(exc))
                self._one_by_one(conn, ops, results)
                return
        for op, sid in zip(ops, ids):
            results[op.change.change_id] = WriteResult(op.change.change_id, ok=True, source_id=sid)

    def _one_by_one(self, conn: Connection, ops: list[_Op], results: dict[str, WriteResult]) -> None:
        for op in ops:
            try:
                with conn.begin():
                    (sid,) = self._execute(conn, [op])
            except SQLAlchemyError as exc:
                results[op.change.change_id] = WriteResult(
                    op.change.change_id, ok=False, error=db_reason(exc),
                    retriable=bool(getattr(exc, "connection_invalidated", False)))
            else:
                results[op.change.change_id] = WriteResult(op.change.change_id, ok=True, source_id=sid)

    def _execute(self, conn: Connection, ops: list[_Op]) -> list[str | None]:
        """Run ``ops`` on ``conn``; the source id of each, in order.

        Updates of rows that exist are UPDATEs of the given columns only (an
        outbound change carries the changed fields, and an INSERT .. ON CONFLICT
        of a partial row would trip NOT NULL columns it leaves out); creates, and
        updates of rows that are gone, are dialect upserts of the whole row.
        """
        key = self.key.name
        existing = self._existing(conn, [op.params[key] for op in ops if op.kind == "update"])
        upserts: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        deletes: list[dict[str, Any]] = []
        ids: list[str | None] = []
        for op in ops:
            if op.kind == "insert":
                result = conn.execute(insert(self.table), op.params)
                ids.append(str(result.inserted_primary_key[0]))
                continue
            ids.append(op.source_id)
            if op.kind == "delete":
                deletes.append(op.params)
            elif op.kind == "update" and op.params[key] in existing:
                updates.setdefault(tuple(sorted(op.params)), []).append(op.params)
            else:
                upserts.setdefault(tuple(sorted(op.params)), []).append(op.params)
        for columns, rows in updates.items():
            others = [c for c in columns if c != key]
            if others:
                conn.execute(self._update(others), [self._update_params(others, row) for row in rows])
        for columns, rows in upserts.items():
            stmt = upsert_statement(conn.dialect.name, self.table, key, columns) if self.unique else None
            if stmt is not None:
                conn.execute(stmt, rows)
            else:
                self._update_or_insert(conn, columns, rows)
        if deletes:
            conn.execute(delete(self.table).where(self.key == bindparam(KEY_PARAM)), deletes)
        return ids

    def _existing(self, conn: Connection, keys: list[Any]) -> set[Any]:
        found: set[Any] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            found.update(conn.execute(select(self.key).where(self.key.in_(chunk))).scalars())
        return found

    def _update(self, others: list[str]) -> Any:
        # bind names must differ from column names in an UPDATE's SET clause
        return (update(self.table).where(self.key == bindparam(KEY_PARAM))
                .values({c: bindparam(f"v{i}") for i, c in enumerate(others)}))

    def _update_params(self, others: list[str], row: dict[str, Any]) -> dict[str, Any]:
        return {**{f"v{i}": row[c] for i, c in enumerate(others)}, KEY_PARAM: row[self.key.name]}

    def _update_or_insert(self, conn: Connection, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        # no usable unique key, or a dialect without an upsert: the portable two steps, row by row
        others = [c for c in columns if c != self.key.name]
        for row in rows:
            if others:
                found = conn.execute(self._update(others), self._update_params(others, row)).rowcount > 0
            else:
                found = conn.execute(select(self.key).where(self.key == row[self.key.name])).first() is not None
            if not found:
                conn.execute(insert(self.table), row)

    @staticmethod
    def _fail_all(ops: list[_Op], results: dict[str, WriteResult], error: str, retriable: bool) -> None:
        for op in ops:
            results[op.change.change_id] = WriteResult(op.change.change_id, ok=False, error=error,
                                                       retriable=retriable)


def db_reason(exc: SQLAlchemyError) -> str:
    """The database's own message, without the statement and parameters SQLAlchemy appends."""
    orig = getattr(exc, "orig", None)
    return str(orig) if orig is not None else str(exc).split("\n")[0]
