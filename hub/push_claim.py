"""Claiming outbox rows for delivery: one worker at a time per row, and per record and system.

A claim names its holder (``host:pid``) and runs out after :data:`CLAIM`; :mod:`hub.push` delivers
what it claimed and settles every claimed row, or gives it back with :func:`_release`.
"""
from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, literal_column, or_, select, update

from hub.liveness import dead_here
from hub.models import Outbox, Xref
from hub.sqlutil import chunks
from hub.types import utcnow

CLAIM = timedelta(minutes=5)
# status = 'pending' written out, not bound: only then do PostgreSQL and SQLite use the outbox's partial
# indexes over pending rows (a claim then reads its batch, not the whole backlog: pushing 200,000 queued
# writes was quadratic, 535 s on PostgreSQL)
PENDING = Outbox.__table__.c.status == literal_column("'pending'")
CLAIM_LOCK = 7370003      # advisory lock namespace; hub.audit uses 7370001, hub.changefeed 7370002


def _claimable(conn: Connection, where: ColumnElement[bool], now: datetime, limit: int | None = None
               ) -> list[dict[str, Any]]:
    """Due pending rows matching ``where`` that nobody holds, oldest first, locked until the claim commits.

    A row is free when never claimed, when its claim ran out, or when its holder (``host:pid``) is a
    dead process of this host: a push killed here frees its rows at once instead of after :data:`CLAIM`.
    Rows of a record another live worker is delivering to that system are left out: two workers each
    holding one change of a record the system does not know yet would both create it.
    """
    ot = Outbox.__table__
    in_flight = and_(PENDING, ot.c.claimed_until.is_not(None), ot.c.claimed_until >= now)
    holders = conn.scalars(select(ot.c.claimed_by).where(where, in_flight).distinct())
    dead = sorted(h for h in holders if h and dead_here(h))
    free = or_(ot.c.claimed_until.is_(None), ot.c.claimed_until < now, ot.c.claimed_by.in_(dead))
    q = select(ot).where(where, PENDING, ot.c.next_attempt_at <= now, free)
    q = q.order_by(ot.c.created_at, ot.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = [dict(r) for r in conn.execute(q).mappings()]
    entities = sorted({r["entity"] for r in rows})
    busy = set()
    for part in chunks(sorted({r["record_id"] for r in rows})):
        for r in conn.execute(select(ot.c.connector, ot.c.entity, ot.c.record_id, ot.c.claimed_by).where(
                ot.c.entity.in_(entities), ot.c.record_id.in_(part), in_flight)):
            if r.claimed_by not in dead and not dead_here(r.claimed_by or ""):
                busy.add((r.connector, r.entity, r.record_id))
    return [r for r in rows if (r["connector"], r["entity"], r["record_id"]) not in busy]


def _serialize_claims(conn: Connection, streams: list[tuple[str, str]]) -> None:
    """On PostgreSQL, claims on one (connector, entity) are taken one transaction at a time, so a claim sees
    the claims committed just before it (SKIP LOCKED alone would not show a concurrent claim's rows of the
    same record). Held only for the claim's selects and update."""
    if conn.dialect.name != "postgresql":
        return      # SQLite: the write lock does the same
    for name, entity in sorted(set(streams)):
        key = zlib.crc32(f"{name}\0{entity}".encode()) - 2 ** 31       # a signed int4
        conn.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK, key)))


def _mark_claimed(conn: Connection, rows: list[dict[str, Any]], worker: str, now: datetime) -> None:
    ot = Outbox.__table__
    for part in chunks([r["id"] for r in rows]):
        conn.execute(update(ot).where(ot.c.id.in_(part)).values(claimed_by=worker, claimed_until=now + CLAIM))


def _claim(engine: Engine, name: str, entity: str, worker: str, limit: int) -> list[dict[str, Any]]:
    """Take up to ``limit`` due pending rows of one stream (see :func:`_claimable`)."""
    ot = Outbox.__table__
    now = utcnow()
    with engine.begin() as conn:
        _serialize_claims(conn, [(name, entity)])
        rows = _claimable(conn, and_(ot.c.connector == name, ot.c.entity == entity), now, limit)
        _mark_claimed(conn, rows, worker, now)
    return rows


def _claim_ids(engine: Engine, ids: list[str], worker: str) -> list[dict[str, Any]]:
    """Claim the given rows if they are still pending, due and free (same rules as :func:`_claim`)."""
    ot = Outbox.__table__
    now = utcnow()
    out: list[dict[str, Any]] = []
    parts = list(chunks(sorted(set(ids))))
    with engine.begin() as conn:
        _serialize_claims(conn, [tuple(r) for part in parts for r in conn.execute(
            select(ot.c.connector, ot.c.entity).where(ot.c.id.in_(part)).distinct())])
        for part in parts:
            rows = _claimable(conn, ot.c.id.in_(part), now)
            _mark_claimed(conn, rows, worker, now)
            out += rows
    out.sort(key=lambda r: (r["created_at"], r["id"]))
    return out


def _create_attempts(conn: Connection, name: str, entity: str, groups: dict[str, list[dict[str, Any]]]
                     ) -> dict[str, tuple[str, datetime | None]]:
    """Per record to create in ``name``: the key its create is sent under and, when an earlier attempt may
    have sent it, the earliest time it could have (else None).

    The key is the first attempt's, however many rows a delivery combines and whether or not that row is
    due: every attempt of a create goes under one key, so a system's idempotency (a resubmit key, a field
    holding the change id) finds it. The first attempt is the oldest pending row's, or, older still, a
    create given up on (dead, or dropped by a steward) since the record was last written there, if it
    may have reached the system: a later change then finds what that attempt made instead of making a
    second record. An attempt may have reached the system when a row failed before (a timeout), was
    claimed and never settled (its push died: every settle and release clears the claim), or was retried
    by a steward after either (``tried``). ``groups`` are claimed rows as read before the claim.
    """
    ot = Outbox.__table__
    rows = {rid: list(group) for rid, group in groups.items()}
    claimed = {r["id"] for group in groups.values() for r in group}
    xt = Xref.__table__
    for part in chunks(sorted(groups)):
        # a row given up on before the record's last write there, or before its link there ended, was an
        # update of what the system held then, not an attempt of this create
        since: dict[str, datetime] = {}
        for rid, at in [*conn.execute(select(ot.c.record_id, func.max(ot.c.created_at)).where(
                            ot.c.connector == name, ot.c.entity == entity, ot.c.status == "done",
                            ot.c.record_id.in_(part)).group_by(ot.c.record_id)),
                        *conn.execute(select(xt.c.record_id, func.max(xt.c.updated_at)).where(
                            xt.c.entity == entity, xt.c.system == name, xt.c.record_id.in_(part))
                            .group_by(xt.c.record_id))]:
            since[rid] = max(at, since.get(rid, at))
        for r in conn.execute(select(ot).where(ot.c.connector == name, ot.c.entity == entity,
                                               ot.c.record_id.in_(part),
                                               or_(PENDING, and_(ot.c.status.in_(("dead", "dropped")),
                                                                 ot.c.operation != "delete")))).mappings():
            if r["id"] in claimed:
                continue
            if r["status"] != "pending":
                bound = since.get(r["record_id"])
                if not _tried(r) or (bound is not None and r["created_at"] <= bound):
                    continue
            rows[r["record_id"]].append(dict(r))
    out: dict[str, tuple[str, datetime | None]] = {}
    for rid, group in rows.items():
        first = min(group, key=lambda r: (r["created_at"], r["id"]))
        sent = any(_tried(r) for r in group)
        out[rid] = (first["idempotency_key"], first["created_at"] if sent else None)
    return out


def _tried(row: dict[str, Any]) -> bool:
    """An attempt of this outbox row may have reached its system."""
    return bool(row["attempts"] or row["claimed_until"] is not None or row.get("tried"))


def _release(engine: Engine, ids: list[str]) -> None:
    """Give claimed rows back untouched (no attempt spent): another push takes them."""
    if not ids:
        return
    ot = Outbox.__table__
    with engine.begin() as conn:
        for part in chunks(ids):
            conn.execute(update(ot).where(ot.c.id.in_(part), ot.c.status == "pending")
                         .values(claimed_by=None, claimed_until=None))
