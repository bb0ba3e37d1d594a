"""Settling delivered rows in the store: done, failed (backoff, dead), dropped or deferred.

A success also records what the system now holds (its merge base, or values waiting to come back)
and folds a read-back of a create into the created record.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from hub import golden
from hub.echoes import WRITTEN, add_written
from hub.models import Outbox, SourceState, Xref
from hub.outbox import BLOCKED_MARKS, is_blocked
from hub.push_claim import PENDING
from hub.push_rules import NOT_READ_YET, _waiting_for
from hub.sqlutil import chunks, upsert
from hub.streams import Parts
from hub.types import new_id, utcnow

log = logging.getLogger(__name__)
SYSTEM_USER = "triad"     # who merges the read-back echo of a create (audit log, merge log)


@dataclass
class PushReport:
    connector: str
    entity: str
    status: str = "ok"
    # unchanged: rows settled without a write (the system holds those values already); retried: requests
    # sent again (the system failed, timed out or throttled them)
    counts: dict[str, int] = field(default_factory=lambda: {"written": 0, "created": 0, "unchanged": 0, "failed": 0,
                                                             "dead": 0, "deferred": 0, "skipped": 0, "retried": 0})
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # the system answered, but some writes failed (to be retried) or went dead: not "ok"
        status = "partial" if self.status == "ok" and (self.counts["failed"] or self.counts["dead"]) else self.status
        return {"connector": self.connector, "entity": self.entity, "status": status, **self.counts,
                "error": self.error}


def _mark_done(engine: Engine, ids: list[str]) -> None:
    ot = Outbox.__table__
    with engine.begin() as conn:
        conn.execute(update(ot).where(ot.c.id.in_(ids)).values(status="done", last_error=None, updated_at=utcnow(),
                                                                claimed_by=None, claimed_until=None))


def _settle_success(engine: Engine, parts: Parts, name: str, entity: str, ok: list, change_rows: dict,
                    report: PushReport, written: dict[str, dict[str, Any]], visible: bool) -> None:
    if not ok:
        return
    now = utcnow()
    ot, xt = Outbox.__table__, Xref.__table__
    with engine.begin() as conn:
        done_ids = [r["id"] for ch, _ in ok for r in change_rows[ch.change_id]]
        for part in chunks(done_ids):
            conn.execute(update(ot).where(ot.c.id.in_(part)).values(status="done", attempts=ot.c.attempts + 1,
                                                                     last_error=None, updated_at=now,
                                                                     claimed_by=None, claimed_until=None))
        new_links = [{"id": new_id(), "entity": entity, "system": name, "source_id": res.source_id,
                      "record_id": ch.record_id, "status": "active", "created_at": now, "updated_at": now}
                     for ch, res in ok if ch.source_id is None and res.source_id and not ch.delete]
        if new_links:
            _fold_read_backs(conn, parts, name, entity, new_links)
            upsert(conn, xt, new_links, ["entity", "system", "source_id"], ["record_id", "status", "updated_at"])
            _wake_waiting_for(conn, name, entity, [x["record_id"] for x in new_links], now)
        gone = [{"_sid": ch.source_id} for ch, _ in ok if ch.delete and ch.source_id]
        if gone:     # deleted there now: later changes of the record are not sent to it
            conn.execute(update(xt).where(xt.c.entity == entity, xt.c.system == name,
                                          xt.c.source_id == bindparam("_sid")).values(status="deleted",
                                                                                       updated_at=now), gone)
            _recreate_came_back(conn, name, entity, [ch.record_id for ch, _ in ok if ch.delete and ch.source_id],
                                now)
        report.counts["created"] += len(new_links)
        report.counts["written"] += len(ok)
        if visible:
            _record_bases(conn, name, entity, ok, written, now)
        else:
            _record_written(conn, name, entity, ok, written, now)


RECREATE = "recreate"      # an outbox operation: create the record again in a system whose copy the hub deleted


def _recreate_came_back(conn: Connection, name: str, entity: str, record_ids: list[str], now: datetime) -> None:
    """Records whose delete just landed in ``name`` but which came back meanwhile (read again in the system
    that had deleted them while the delete was on its way): deleted nowhere now, yet ``name`` may no longer
    hold them, and its deleted link stops every later write there. A create of the whole golden record is
    put before a steward as a dead outbox item, not sent by itself: a system that archives or cancels instead
    of deleting (an SAP business partner, an approval) still holds the record, and a workflow must not
    start again unasked. ``triad outbox retry ID`` sends it, ``triad outbox drop ID`` leaves it."""
    t = golden.table_of(entity)
    back: list[str] = []
    for part in chunks(sorted(set(record_ids))):
        back += conn.scalars(select(t.c.id).where(t.c.id.in_(part), t.c.deleted_in.is_(None),
                                                  t.c.merged_into.is_(None))).all()
    if not back:
        return
    from hub.outbox import OutboxQueue
    queue = OutboxQueue(entity, None, now)
    for rid in back:
        queue.queue(name, rid, {}, operation=RECREATE)
    for row in queue.rows.values():
        row["status"] = "dead"
        row["last_error"] = (f"{entity} {row['record_id']} came back while its delete was on its way to {name}, "
                             f"which may no longer hold it: `triad outbox retry {row['id']}` creates it there again, "
                             f"`triad outbox drop {row['id']}` leaves it (where {name} archived it instead)")
    queue.flush(conn)
    log.warning("%s: %d %s record(s) came back while their delete was on its way there; a create of each waits "
                "in the outbox as dead (triad outbox list --status dead): %s", name, len(back), entity,
                ", ".join(back[:10]) + (" ..." if len(back) > 10 else ""), extra={"connector": name})


def _fold_read_backs(conn: Connection, parts: Parts, name: str, entity: str, new_links: list[dict[str, Any]]) -> None:
    """A system record the hub just created may have been read before this link was recorded (a read
    between the write and now, or before a retried create after a lost answer): that read made another
    golden record of it. That record is the echo of this create: it is merged into the created one
    (undoable, `triad matches unmerge`) instead of being left behind without its link."""
    xt, t = Xref.__table__, golden.table_of(entity)
    target = {x["source_id"]: x["record_id"] for x in new_links}
    echoes: dict[str, str] = {}     # golden record read back -> the record the hub created
    created = set(target.values())
    for part in chunks(sorted(target)):
        for sid, rid in conn.execute(select(xt.c.source_id, xt.c.record_id).where(
                xt.c.entity == entity, xt.c.system == name, xt.c.source_id.in_(part))):
            if rid != target[sid]:
                echoes.setdefault(rid, target[sid])
    if not echoes:
        return
    merged: set[str] = set()
    for part in chunks(sorted({*echoes, *echoes.values()})):
        merged |= set(conn.scalars(select(t.c.id).where(t.c.id.in_(part), t.c.merged_into.is_not(None))))
    from hub.matching_merge import merge
    for loser, winner in sorted(echoes.items()):
        if loser in merged or winner in merged or loser in created:
            continue    # merged away already (or itself a record just created here): linked as before
        merge(conn, entity, winner, loser, user=SYSTEM_USER, rules=parts.rules(entity),
              out_systems=parts.out_systems(entity),
              note=f"{entity} {loser} was read from {name} before the hub recorded its own create there")
        log.info("merged %s %s into %s: read back from %s before its create was linked", entity, loser, winner, name)


def _record_bases(conn: Connection, name: str, entity: str, ok: list, written: dict[str, dict[str, Any]],
                  now: datetime) -> None:
    """The system now holds what was written: that becomes its merge base, so its next read compares
    against it (an echo is case 1, a later edit in the system is an informed change, not a concurrent one)."""
    st = SourceState.__table__
    sids = {ch.change_id: ch.source_id or res.source_id for ch, res in ok if not ch.delete}
    bases: dict[str, dict[str, Any]] = {}
    for part in chunks([s for s in sids.values() if s]):
        for r in conn.execute(select(st.c.source_id, st.c["values"]).where(
                st.c.entity == entity, st.c.system == name, st.c.source_id.in_(part))):
            bases[r.source_id] = dict(r[1] or {})
    rows = []
    for ch, _ in ok:
        sid = sids.get(ch.change_id)
        if not sid or ch.change_id not in written:
            continue
        values = {**bases.get(sid, {}), **written[ch.change_id]}
        rows.append({"entity": entity, "system": name, "source_id": sid, "record_id": ch.record_id,
                     "values": values, "row_hash": WRITTEN, "raw_hash": None, "source_ts": None,
                     "seen_at": now, "run_id": None})
    upsert(conn, st, rows, ["entity", "system", "source_id"], ["record_id", "values", "row_hash", "raw_hash", "seen_at"])


def _record_written(conn: Connection, name: str, entity: str, ok: list, written: dict[str, dict[str, Any]],
                    now: datetime) -> None:
    """The system takes what was written in later (it imports a file): its base stays what it last showed,
    and the values wait in ``written`` to be told apart from its own edits when they come back."""
    st = SourceState.__table__
    sids = {ch.change_id: ch.source_id or res.source_id for ch, res in ok if not ch.delete}
    pending: dict[str, dict[str, list] | None] = {}
    for part in chunks(sorted({s for s in sids.values() if s})):
        for r in conn.execute(select(st.c.source_id, st.c.written).where(
                st.c.entity == entity, st.c.system == name, st.c.source_id.in_(part))):
            pending[r.source_id] = r.written
    rows: dict[str, dict[str, Any]] = {}
    for ch, _ in ok:
        sid = sids.get(ch.change_id)
        if not sid or not written.get(ch.change_id):
            continue
        pending[sid] = add_written(pending.get(sid), written[ch.change_id])
        # a record the hub created there has no state yet: an empty base (nothing seen from it), not shown as read
        rows[sid] = {"entity": entity, "system": name, "source_id": sid, "record_id": ch.record_id, "values": {},
                     "row_hash": WRITTEN, "raw_hash": None, "source_ts": None, "seen_at": now, "run_id": None,
                     "written": pending[sid]}
    upsert(conn, st, list(rows.values()), ["entity", "system", "source_id"], ["written"])


def _wake_waiting_for(conn: Connection, name: str, entity: str, record_ids: list[str], now: datetime) -> None:
    """Writes to ``name`` held until these records reached it (an order waiting for its customer) are due
    now, not after their retry delay: another worker may have been creating the customer meanwhile.

    One still marked as held by a dead or dropped write of the record (a later write of it went) is no
    longer blocked: it gets the plain waiting text, so `triad status` stops counting it."""
    ot = Outbox.__table__
    for part in chunks(record_ids):
        conn.execute(update(ot).where(ot.c.connector == name, PENDING, ot.c.last_error.is_not(None),
                                      ot.c.last_error.in_([_waiting_for(entity, rid) for rid in part]))
                     .values(next_attempt_at=now))
    texts = {_waiting_for(entity, rid) for rid in record_ids}
    marked = [{"_id": r.id, "err": r.last_error.split(", but ", 1)[0]} for r in conn.execute(
        select(ot.c.id, ot.c.last_error).where(ot.c.connector == name, PENDING, ot.c.last_error.is_not(None),
                                               ot.c.last_error.like(f"waiting for {entity} %"),
                                               is_blocked(ot.c.last_error)))
        if r.last_error.split(", but ", 1)[0] in texts]
    if marked:
        conn.execute(update(ot).where(ot.c.id == bindparam("_id")).values(
            last_error=bindparam("err"), next_attempt_at=now), marked)


def _backoff(parts: Parts, attempts: int, retry_after: float | None) -> timedelta:
    o = parts.cfg.outbox
    if retry_after is not None:
        return timedelta(seconds=retry_after)
    wait = min(o.max_backoff_seconds, o.backoff_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=wait * (0.5 + random.random()))   # jitter: workers do not retry in step


def _settle_failures(engine: Engine, failed: list[tuple[dict[str, Any], str, bool, float | None]], parts: Parts,
                     report: PushReport) -> None:
    ot = Outbox.__table__
    now = utcnow()
    params = []
    for row, error, retriable, retry_after in failed:
        attempts = row["attempts"] + 1
        is_dead = not retriable or attempts >= parts.cfg.outbox.max_attempts
        params.append({"_id": row["id"], "status": "dead" if is_dead else "pending", "attempts": attempts,
                       "last_error": error[:2000], "next_attempt_at": now + _backoff(parts, attempts, retry_after)})
        report.counts["dead" if is_dead else "failed"] += 1
        report.error = report.error or error[:500]    # the first cause, where an admin reads it
    with engine.begin() as conn:
        conn.execute(update(ot).where(ot.c.id == bindparam("_id")).values(
            status=bindparam("status"), attempts=bindparam("attempts"), last_error=bindparam("last_error"),
            next_attempt_at=bindparam("next_attempt_at"), updated_at=now, claimed_by=None, claimed_until=None), params)


def _fail_all(engine: Engine, rows: list[dict[str, Any]], error: str, retry_after: float | None, parts: Parts,
              report: PushReport) -> None:
    _settle_failures(engine, [(r, error, True, retry_after) for r in rows], parts, report)


def _skip(engine: Engine, skipped: list[tuple[dict[str, Any], str]], report: PushReport) -> None:
    """Rows the hub decided not to send: ``dropped`` (not delivered, kept) with the reason in ``last_error``."""
    ot = Outbox.__table__
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(ot).where(ot.c.id == bindparam("_id")).values(
            status="dropped", last_error=bindparam("err"), claimed_by=None, claimed_until=None, updated_at=now),
            [{"_id": r["id"], "err": e[:2000]} for r, e in skipped])
    report.counts["skipped"] += len(skipped)


def _retry_delay(why: str) -> timedelta:
    """When a deferred row is due again. A successful read of its stream makes a row waiting for a read
    due at once (hub.sync); the delay is for reads that come another way (a webhook)."""
    if NOT_READ_YET in why:
        return timedelta(minutes=1)      # nothing else will change before that first read
    if any(m in why for m in BLOCKED_MARKS):
        return timedelta(minutes=5)      # the record reaching the system (or a retry) wakes it
    return timedelta(seconds=1 if "waiting for a read" in why else 30)


def _defer(engine: Engine, deferred: list[tuple[dict[str, Any], str]], report: PushReport) -> None:
    """Rows waiting for a referenced record: tried again soon, without spending an attempt."""
    ot = Outbox.__table__
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(ot).where(ot.c.id == bindparam("_id")).values(
            last_error=bindparam("err"), next_attempt_at=bindparam("at"), claimed_by=None, claimed_until=None,
            updated_at=now), [{"_id": r["id"], "err": e, "at": now + _retry_delay(e)} for r, e in deferred])
    report.counts["deferred"] += len(deferred)
