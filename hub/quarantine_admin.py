"""Steward access to quarantine: list, show, drop (retry lives in hub.sync)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from hub import audit
from hub.errors import NotFound, UsageError
from hub.models import Quarantine
from hub.types import utcnow


def _item(r: Any) -> dict[str, Any]:
    return {"id": r["id"], "connector": r["connector"], "entity": r["entity"], "source_id": r["source_id"],
            "kind": r["kind"], "reasons": r["reasons"], "status": r["status"], "attempts": r["attempts"],
            "raw": r["raw"], "created_at": r["created_at"], "updated_at": r["updated_at"]}


def list_items(engine: Engine, *, status: str | None = "parked", connector: str | None = None,
               entity: str | None = None, limit: int = 100,
               after: tuple[datetime, str] | None = None) -> list[dict[str, Any]]:
    """Items oldest first; ``after`` (created_at, id) starts after that row (keyset paging)."""
    qt = Quarantine.__table__
    q = select(qt).order_by(qt.c.created_at, qt.c.id).limit(limit)
    if after is not None:
        q = q.where(or_(qt.c.created_at > after[0], and_(qt.c.created_at == after[0], qt.c.id > after[1])))
    if status:
        q = q.where(qt.c.status == status)
    if connector:
        q = q.where(qt.c.connector == connector)
    if entity:
        q = q.where(qt.c.entity == entity)
    with engine.connect() as conn:
        return [_item(r) for r in conn.execute(q).mappings()]


def get_item(engine: Engine, item_id: str) -> dict[str, Any]:
    qt = Quarantine.__table__
    with engine.connect() as conn:
        r = conn.execute(select(qt).where(qt.c.id == item_id)).mappings().first()
    if r is None:
        raise NotFound(f"no quarantine item {item_id} (see `triad quarantine list`)")
    return _item(r)


def drop_item(engine: Engine, item_id: str, user: str, note: str | None) -> dict[str, Any]:
    item = get_item(engine, item_id)
    if item["status"] != "parked":
        raise UsageError(f"quarantine item {item_id} is {item['status']}, not parked")
    qt = Quarantine.__table__
    with engine.begin() as conn:
        conn.execute(update(qt).where(qt.c.id == item_id).values(status="dropped", updated_at=utcnow()))
        audit.record(conn, user, "quarantine.drop", f"quarantine:{item_id}", before={"status": "parked"},
                     after={"status": "dropped"}, note=note)
    return item
