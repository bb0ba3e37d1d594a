"""The audit log: append-only, each entry's hash covering the previous one, so an edit is detectable.

The chain alone cannot show that its newest entries were deleted, so the head (the newest entry's
seq and hash) is also kept as a cursor in ``stream_state``, like :mod:`hub.flows` keeps its own:
a removed tail no longer matches the head, and the next entry chains to the head, not to what is left.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, Engine, func, insert, select

from hub.models import AuditLog, StreamState
from hub.sqlutil import upsert
from hub.types import utcnow

GENESIS = "0" * 64
HEAD_KEY = ("__audit__", "head")   # stream_state (connector, entity) of the chain's head: {"seq", "hash"}


def _digest(prev: str, at: datetime, user: str, action: str, target: str | None, before: Any, after: Any,
            note: str | None, outcome: str) -> str:
    payload = json.dumps([prev, at.isoformat(), user, action, target, before, after, note, outcome],
                         sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(conn: Connection, user: str, action: str, target: str | None = None, *, before: Any = None,
           after: Any = None, note: str | None = None, outcome: str = "ok") -> None:
    """Append one entry in the caller's transaction (the action, its audit entry and the head commit together)."""
    record_many(conn, user, [{"action": action, "target": target, "before": before, "after": after, "note": note}],
                outcome)


def record_many(conn: Connection, user: str, entries: Sequence[dict[str, Any]], outcome: str = "ok") -> None:
    """Append entries (each: action, target, before, after, note) in order, in one statement."""
    if not entries:
        return
    tbl = AuditLog.__table__
    if conn.dialect.name == "postgresql":   # one writer at a time extends the chain
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7370001)")
    head = _head(conn)
    # after the head, not after the newest row: entries deleted from the end stay a visible gap
    prev = head["hash"] if head else conn.scalar(select(tbl.c.hash).order_by(tbl.c.seq.desc()).limit(1)) or GENESIS
    at = utcnow()
    rows = []
    for e in entries:
        before, after = _plain(e.get("before")), _plain(e.get("after"))
        digest = _digest(prev, at, user, e["action"], e.get("target"), before, after, e.get("note"), outcome)
        rows.append({"at": at, "user": user, "action": e["action"], "target": e.get("target"), "before": before,
                     "after": after, "note": e.get("note"), "outcome": outcome, "prev_hash": prev, "hash": digest})
        prev = digest
    if len(rows) == 1:
        seq = conn.execute(insert(tbl).values(rows[0])).inserted_primary_key[0]
    else:   # the chain's lock (or SQLite's one writer) is held: the newest seq is this statement's last row
        conn.execute(insert(tbl), rows)
        seq = conn.scalar(select(func.max(tbl.c.seq)))
    upsert(conn, StreamState.__table__, [{"connector": HEAD_KEY[0], "entity": HEAD_KEY[1], "updated_at": at,
                                          "cursor": {"seq": seq, "hash": prev}}],
           ["connector", "entity"], ["cursor", "updated_at"])


def record_command(engine: Engine, user: str, action: str, target: str | None = None, *, after: Any = None,
                   note: str | None = None) -> None:
    """One entry for an admin command that did its work in transactions of its own (a sync run, a push,
    a migration): what it did and to what, appended once the work is done."""
    with engine.begin() as conn:
        record(conn, user, action, target, after=after, note=note)


def _head(conn: Connection) -> dict[str, Any] | None:
    st = StreamState.__table__
    head = conn.scalar(select(st.c.cursor).where(st.c.connector == HEAD_KEY[0], st.c.entity == HEAD_KEY[1]))
    return head if isinstance(head, dict) and head.get("hash") else None


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str, ensure_ascii=False)) if v is not None else None


def verify(engine: Engine) -> dict[str, Any]:
    """Walk the chain, then hold its end against the recorded head; the first mismatch is reported."""
    tbl = AuditLog.__table__
    prev, last_seq = GENESIS, None
    n = 0
    with engine.connect() as conn:
        head = _head(conn)
        for r in conn.execute(select(tbl).order_by(tbl.c.seq)).mappings():
            n += 1
            expected = _digest(prev, r["at"], r["user"], r["action"], r["target"], r["before"], r["after"],
                               r["note"], r["outcome"])
            if r["prev_hash"] != prev:
                after = f"entry {last_seq}" if last_seq is not None else "the start of the log"
                return _broken(n, r["seq"], f"entry {r['seq']} ({r['action']} by {r['user']}) does not follow "
                                            f"{after}: entries before it were removed or altered")
            if r["hash"] != expected:
                return _broken(n, r["seq"], f"entry {r['seq']} ({r['action']} by {r['user']}) does not match its hash")
            prev, last_seq = r["hash"], r["seq"]
    problem = _tail_problem(head, last_seq, prev)
    if problem:
        return _broken(n, last_seq, problem)
    return {"ok": True, "entries": n, "broken_at": None, "detail": "chain intact"}


def _tail_problem(head: dict[str, Any] | None, last_seq: int | None, last_hash: str) -> str | None:
    """Why the chain's end does not match the recorded head, or None when it does."""
    where = f"stream_state {HEAD_KEY[0]}/{HEAD_KEY[1]}"
    if head is None:
        if last_seq is None:
            return None   # nothing was ever recorded
        return (f"the head of the chain ({where}) is missing, so entries at the end may have been removed "
                f"(a store written before heads were kept gets one with its next audited action)")
    if last_seq is None:
        return f"the log is empty but its head ({where}) names entry {head.get('seq')}: every entry was removed"
    if head["hash"] != last_hash:
        if head.get("seq") is not None and int(head["seq"]) > last_seq:
            return (f"the newest entry is {last_seq} but the head ({where}) names entry {head['seq']}: "
                    f"entries at the end were removed")
        return f"the newest entry {last_seq} is not the recorded head ({where}, entry {head.get('seq')})"
    return None


def _broken(entries: int, seq: int | None, detail: str) -> dict[str, Any]:
    return {"ok": False, "entries": entries, "broken_at": seq, "detail": detail}


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
