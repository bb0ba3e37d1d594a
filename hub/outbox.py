"""Queueing changes for systems (inside the batch transaction) and listing/retrying/dropping them.

Delivery lives in :mod:`hub.push`. One outbox row is one change for one
record in one system; its id is the idempotency key sent with the write.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Collection

from sqlalchemy import Connection, Engine, Select, case, func, or_, select, update

from hub.errors import NotFound, UsageError
from hub.models import Outbox
from hub.sqlutil import chunks
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
        from hub.bulk import insert_many
        insert_many(conn, Outbox.__table__, list(self.rows.values()), "outbox-insert")
        n = len(self.rows)
        self.rows = {}
        return n


# a pending write held for a referenced record whose own latest write here is dead or dropped says so in its
# last_error: no push sends that record by itself, so what waits for it would otherwise wait silently
BLOCKED_MARK = "its write here failed for good"
DROPPED_MARK = "its write here was dropped"
BLOCKED_MARKS = (BLOCKED_MARK, DROPPED_MARK)


def waiting_for(entity: str, record_id: str) -> str:
    """A held write's ``last_error`` while the record it references has not reached the system yet."""
    return f"waiting for {entity} {record_id} to reach this system first"


def blocked_note(item_id: str, status: str = "dead") -> str:
    """The part of a held write's ``last_error`` naming the dead or dropped write it waits for."""
    if status == "dropped":
        return f"{DROPPED_MARK} (outbox item {item_id} was dropped)"
    return f"{BLOCKED_MARK} (outbox item {item_id} is dead)"


def held_note(entity: str, record_id: str, item_id: str, status: str) -> str:
    """Why a write held for ``entity record_id`` waits for ever, and what helps."""
    if status == "dropped":
        return (f"{blocked_note(item_id, status)}: {entity} {record_id} reaches this system only when a later "
                f"change to it queues a write here again, or drop this item")
    return (f"{blocked_note(item_id, status)}: `triad outbox retry {item_id}` once its cause is fixed "
            f"(see `triad outbox list --status dead`), or drop this item")


def is_blocked(column: Any) -> Any:
    """SQL: a ``last_error`` that names a dead or dropped write it waits for."""
    return or_(*(column.like(f"%{m}%") for m in BLOCKED_MARKS))


def blocking_writes(conn: Connection, connector: str, refs: Collection[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """(entity, id) -> its latest write to ``connector`` (id, status) when that is dead or dropped and none of
    its writes there is still pending: the record will not reach the system by itself."""
    ot = Outbox.__table__
    latest: dict[tuple[str, str], Any] = {}
    pending: set[tuple[str, str]] = set()
    by_entity: dict[str, list[str]] = {}
    for e, rid in refs:
        by_entity.setdefault(e, []).append(rid)
    for e, ids in sorted(by_entity.items()):
        for part in chunks(sorted(set(ids))):
            for r in conn.execute(select(ot.c.id, ot.c.record_id, ot.c.status).where(
                    ot.c.connector == connector, ot.c.entity == e, ot.c.record_id.in_(part))
                    .order_by(ot.c.created_at, ot.c.id)):
                latest[(e, r.record_id)] = r
                if r.status == "pending":
                    pending.add((e, r.record_id))
    return {ref: r for ref, r in latest.items() if r.status in ("dead", "dropped") and ref not in pending}


def _reconsider_held(conn: Connection, item: dict[str, Any], **values: Any) -> None:
    """Writes held for the item's record there show at once what they wait for now that the item was retried
    or dropped: blocked on its latest dead or dropped write, or plainly waiting (and ``values``)."""
    ot = Outbox.__table__
    entity, rid = item["entity"], item["record_id"]
    r = blocking_writes(conn, item["connector"], [(entity, rid)]).get((entity, rid))
    text = waiting_for(entity, rid)
    if r is not None:
        text += f", but {held_note(entity, rid, r.id, r.status)}"
    conn.execute(update(ot).where(ot.c.connector == item["connector"], ot.c.status == "pending",
                                  ot.c.last_error.like(_escaped(waiting_for(entity, rid)) + "%", escape="\\"))
                 .values(last_error=text, **values))


def _escaped(text: str) -> str:
    """``text`` matched literally by LIKE (record ids may hold % or _)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# dead items wait for a decision and pending ones show what is stuck; delivered and dropped rows are history
_LIST_ORDER = {"dead": 0, "pending": 1}
RETRYABLE = ("dead", "pending")     # a waiting item may be made due now; a delivered one is never re-sent
DROPPABLE = ("dead", "pending")


def list_items(engine: Engine, *, status: str | None = None, connector: str | None = None,
               entities: Collection[str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Items dead first, then pending, then the rest, newest first within each status.

    ``entities``: only these (the caller's readable entities); None means all.
    """
    ot = Outbox.__table__
    rank = case(_LIST_ORDER, value=ot.c.status, else_=len(_LIST_ORDER))
    q = _filtered(select(ot), status, connector, entities).order_by(rank, ot.c.created_at.desc(), ot.c.id.desc())
    with engine.connect() as conn:
        return [_item(r) for r in conn.execute(q.limit(limit)).mappings()]


def count_items(engine: Engine, *, status: str | None = None, connector: str | None = None,
                entities: Collection[str] | None = None) -> int:
    """How many items :func:`list_items` would show without a limit."""
    q = _filtered(select(func.count()).select_from(Outbox.__table__), status, connector, entities)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def _filtered(q: Select, status: str | None, connector: str | None, entities: Collection[str] | None) -> Select:
    ot = Outbox.__table__
    if status:
        q = q.where(ot.c.status == status)
    if connector:
        q = q.where(ot.c.connector == connector)
    if entities is not None:
        q = q.where(ot.c.entity.in_(sorted(entities)))
    return q


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
    """A dead (or waiting) item goes back to pending, due now, with a fresh attempt count; whether an
    attempt may have reached the system is kept (``tried``): a create is then looked up there first."""
    before = _checked(conn, item_id, RETRYABLE, "retried")
    now = utcnow()
    ot = Outbox.__table__
    held = conn.execute(select(ot.c.tried, ot.c.claimed_until).where(ot.c.id == item_id)).one()
    tried = bool(held.tried or before["attempts"] or held.claimed_until is not None)
    _move(conn, before, status="pending", attempts=0, tried=tried, next_attempt_at=now, claimed_by=None,
          claimed_until=None)
    _reconsider_held(conn, before, next_attempt_at=now)   # due with it, not after their long wait
    return before


def drop(conn: Connection, item_id: str) -> dict[str, Any]:
    """Give up on an item: it stays in the table as ``dropped`` (nothing is deleted)."""
    before = _checked(conn, item_id, DROPPABLE, "dropped")
    _move(conn, before, status="dropped")
    _reconsider_held(conn, before)
    return before


def _checked(conn: Connection, item_id: str, allowed: tuple[str, ...], verb: str) -> dict[str, Any]:
    """The item, if its status allows the action; a delivered or dropped one is refused (exit 2)."""
    item = get(conn, item_id)
    if item["status"] not in allowed:
        why = {"done": " (delivered already)", "dropped": " (given up on already)"}.get(item["status"], "")
        raise UsageError(f"outbox item {item_id} is {item['status']}{why}; only {' or '.join(allowed)} "
                         f"items can be {verb}")
    return item


def _move(conn: Connection, before: dict[str, Any], **values: Any) -> None:
    """Update the item only if its status is still the one checked (a worker may have delivered it since)."""
    ot = Outbox.__table__
    done = conn.execute(update(ot).where(ot.c.id == before["id"], ot.c.status == before["status"])
                        .values(**values, updated_at=utcnow()))
    if done.rowcount != 1:
        raise UsageError(f"outbox item {before['id']} changed while this ran (it was {before['status']}); "
                         f"see `triad outbox list`")


def depth(conn: Connection) -> dict[str, int]:
    ot = Outbox.__table__
    return {s: n for s, n in conn.execute(select(ot.c.status, func.count()).group_by(ot.c.status))}
