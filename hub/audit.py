"""The audit log: append-only, each entry's hash covering the previous one, so an edit is detectable."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from hub.models import AuditLog
from hub.types import utcnow

GENESIS = "0" * 64


def _digest(prev: str, at: datetime, user: str, action: str, target: str | None, before: Any, after: Any,
            note: str | None, outcome: str) -> str:
    payload = json.dumps([prev, at.isoformat(), user, action, target, before, after, note, outcome],
                         sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(conn: Connection, user: str, action: str, target: str | None = None, *, before: Any = None,
           after: Any = None, note: str | None = None, outcome: str = "ok") -> None:
    """Append one entry in the caller's transaction (the action and its audit commit together)."""
    tbl = AuditLog.__table__
    if conn.dialect.name == "postgresql":   # one writer at a time extends the chain
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7370001)")
    prev = conn.scalar(select(tbl.c.hash).order_by(tbl.c.seq.desc()).limit(1)) or GENESIS
    at = utcnow()
    before, after = _plain(before), _plain(after)
    conn.execute(insert(tbl), [{"at": at, "user": user, "action": action, "target": target, "before": before,
                                "after": after, "note": note, "outcome": outcome, "prev_hash": prev,
                                "hash": _digest(prev, at, user, action, target, before, after, note, outcome)}])


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str, ensure_ascii=False)) if v is not None else None


def verify(engine: Engine) -> dict[str, Any]:
    """Walk the chain; the first entry whose hash does not match is reported."""
    tbl = AuditLog.__table__
    prev = GENESIS
    n = 0
    with engine.connect() as conn:
        for r in conn.execute(select(tbl).order_by(tbl.c.seq)).mappings():
            n += 1
            expected = _digest(prev, r["at"], r["user"], r["action"], r["target"], r["before"], r["after"],
                               r["note"], r["outcome"])
            if r["prev_hash"] != prev or r["hash"] != expected:
                return {"ok": False, "entries": n, "broken_at": r["seq"],
                        "detail": f"entry {r['seq']} ({r['action']} by {r['user']}) does not match its hash"}
            prev = r["hash"]
    return {"ok": True, "entries": n, "broken_at": None, "detail": "chain intact"}


def list_entries(engine: Engine, *, user: str | None = None, since: datetime | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
    tbl = AuditLog.__table__
    q = select(tbl).order_by(tbl.c.seq.desc()).limit(limit)
    if user:
        q = q.where(tbl.c.user == user)
    if since:
        q = q.where(tbl.c.at >= since)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
