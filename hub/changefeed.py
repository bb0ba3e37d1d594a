"""The change feed: every golden change (``field_history``) in ``seq`` order, without gaps or repeats.

``field_history.seq`` is an autoincrement. On PostgreSQL two transactions can
draw sequence numbers in one order and commit in the other, so a reader that
polls ``seq > since`` could pass over a row that commits a moment later. So
every writer of history takes one transaction-level advisory lock right before
its history insert and holds it to commit (:func:`lock_history`): numbers are
drawn in commit order, and a visible row implies every lower row is visible or
was rolled back. SQLite serializes writers already (``BEGIN IMMEDIATE``).

Lock order for writers: golden row locks, then this lock, then the audit lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection

from sqlalchemy import Connection, func, select

from hub.merge import CREATED
from hub.models import FieldHistory

HISTORY_LOCK = 7370002     # hub.audit uses 7370001
ROWS_PER_CHANGE = 32       # one record change writes at most one row per field (customer has 18)


def lock_history(conn: Connection) -> None:
    """Serialize history writers until this transaction ends (PostgreSQL; a no-op elsewhere).

    Call it in the writing transaction before inserting into ``field_history``.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({HISTORY_LOCK})")


@dataclass
class _Group:
    key: tuple
    rows: list[Any] = field(default_factory=list)


def head(conn: Connection) -> int:
    """The highest sequence number committed so far (0 for an empty feed)."""
    ht = FieldHistory.__table__
    return conn.scalar(select(func.max(ht.c.seq))) or 0


def read(conn: Connection, since: int, *, limit: int = 100, entities: Collection[str] | None = None,
         denied: Callable[[str], frozenset[str]] = lambda _e: frozenset()) -> tuple[list[dict[str, Any]], int]:
    """Record changes after ``since``, oldest first, and the sequence number to resume from.

    One change is the history rows one transaction wrote for one record. A
    change is never split across two reads. Fields in ``denied(entity)`` are left
    out; a change with nothing left to show is skipped (the cursor still moves on).

    Args:
        since: the last sequence number the consumer has processed (0 for the beginning).
        limit: at most this many changes.
        entities: only these entities (None for all).
        denied: fields hidden from the caller, per entity.
    """
    ht = FieldHistory.__table__
    top = head(conn)   # read first: every row up to it is committed, so a bounded scan misses nothing
    cap = limit * ROWS_PER_CHANGE
    q = select(ht).where(ht.c.seq > since, ht.c.seq <= top).order_by(ht.c.seq).limit(cap)
    if entities is not None:
        q = q.where(ht.c.entity.in_(sorted(entities)))
    rows = list(conn.execute(q))
    groups: list[_Group] = []
    for r in rows:
        key = (r.entity, r.record_id, r.run_id, r.system, r.user, r.at)
        if groups and groups[-1].key == key:
            groups[-1].rows.append(r)
        else:
            groups.append(_Group(key, [r]))
    full = len(rows) == cap
    if full and len(groups) > 1:
        groups.pop()       # the last change may go on past this read
    complete = not full and len(groups) <= limit
    groups = groups[:limit]
    # a complete read scanned everything up to the head: resume there, past rows other entities wrote
    nxt = max(since, top) if complete else groups[-1].rows[-1].seq
    changes = [c for c in (_change(g, denied) for g in groups) if c is not None]
    return changes, nxt


def _change(g: _Group, denied: Callable[[str], frozenset[str]]) -> dict[str, Any] | None:
    entity, record_id, run_id, system, user, at = g.key
    hidden = denied(entity)
    fields: dict[str, dict[str, Any]] = {}
    kind = "update"
    for r in g.rows:
        if r.field == CREATED:
            kind = "create"
            for f, v in (r.new or {}).items():
                if f not in hidden:
                    fields[f] = {"old": None, "new": v}
        elif r.field not in hidden:
            if r.field == "deleted_in" and kind == "update":
                kind = "delete" if r.new else "restore"
            prev = fields.get(r.field)
            fields[r.field] = {"old": prev["old"] if prev else r.old, "new": r.new}
    if not fields:
        return None
    return {"seq": g.rows[-1].seq, "first_seq": g.rows[0].seq, "entity": entity, "record_id": record_id,
            "kind": kind, "at": at, "system": system, "user": user, "run_id": run_id,
            "reasons": sorted({r.reason for r in g.rows if r.reason}), "fields": fields}
