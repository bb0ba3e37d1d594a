"""Queueing changes for systems (inside the batch transaction) and listing/retrying/dropping them.

Delivery lives in :mod:`hub.push`. One outbox row is one change for one
record in one system; its id is the idempotency key sent with the write.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from hub.errors import NotFound
from hub.models import Outbox
from hub.types import new_id, utcnow


class OutboxQueue:
    """Collects a batch's outbound changes, one row per (system, record), written in one statement."""

    def __init__(self, entity: str, run_id: str | None, now: datetime) -> None:
        self.entity, self.run_id, self.now = entity, run_id, now
        self.rows: dict[tuple[str, str, str], dict[str, Any]] = {}

    def queue(self, connector: str, record_id: str, fields: dict[str, Any], operation: str = "upsert") -> None:
        key = (connector, record_id, operation)
        row = self.rows.get(key)
        if row is None:
            rid = new_id()
            self.rows[key] = {"id": rid, "connector": connector, "entity": self.entity, "record_id": record_id,
                              "operation": operation, "fields": dict(fields), "idempotency_key": rid,
                              "status": "pending", "attempts": 0, "next_attempt_at": self.now, "last_error": None,
                              "run_id": self.run_id, "claimed_by": None, "claimed_until": None,
                              "created_at": self.now, "updated_at": self.now}
        else:
            row["fields"].update(fields)

    def flush(self, conn: Connection) -> int:
        if not self.rows:
            return 0
        from hub.bulk import execute_many
        execute_many(conn, insert(Outbox.__table__), list(self.rows.values()), "outbox-insert")
        n = len(self.rows)
        self.rows = {}
        return n


def list_items(engine: Engine, *, status: str | None = None, connector: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    ot = Outbox.__table__
    q = select(ot).order_by(ot.c.created_at, ot.c.id).limit(limit)
    if status:
        q = q.where(ot.c.status == status)
    if connector:
        q = q.where(ot.c.connector == connector)
    with engine.connect() as conn:
        return [_item(r) for r in conn.execute(q).mappings()]


def _item(r: Any) -> dict[str, Any]:
    return {"id": r["id"], "connector": r["connector"], "entity": r["entity"], "record_id": r["record_id"],
            "operation": r["operation"], "fields": r["fields"], "status": r["status"], "attempts": r["attempts"],
            "next_attempt_at": r["next_attempt_at"], "last_error": r["last_error"], "created_at": r["created_at"]}


def get(conn: Connection, item_id: str) -> dict[str, Any]:
    ot = Outbox.__table__
    r = conn.execute(select(ot).where(ot.c.id == item_id)).mappings().first()
    if r is None:
        raise NotFound(f"no outbox item {item_id} (see `triad outbox list`)")
    return _item(r)


def retry(conn: Connection, item_id: str) -> dict[str, Any]:
    """A dead (or waiting) item goes back to pending, due now, with a fresh attempt count."""
    before = get(conn, item_id)
    ot = Outbox.__table__
    conn.execute(update(ot).where(ot.c.id == item_id).values(status="pending", attempts=0, next_attempt_at=utcnow(),
                                                              claimed_by=None, claimed_until=None,
                                                              updated_at=utcnow()))
    return before


def drop(conn: Connection, item_id: str) -> dict[str, Any]:
    """Give up on an item: it stays in the table as ``dropped`` (nothing is deleted)."""
    before = get(conn, item_id)
    ot = Outbox.__table__
    conn.execute(update(ot).where(ot.c.id == item_id).values(status="dropped", updated_at=utcnow()))
    return before


def depth(conn: Connection) -> dict[str, int]:
    ot = Outbox.__table__
    return {s: n for s, n in conn.execute(select(ot.c.status, func.count()).group_by(ot.c.status))}
