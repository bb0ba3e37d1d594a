"""`triad sync push`: deliver queued changes to the systems, batch by batch per connector and entity.

Rows of one record are coalesced into one write (later values win). A record
the system does not know yet is created there with the full golden record and
linked in xref; a record whose link in the system is ``deleted`` gets no create
and no update there (the row is ``dropped`` with the reason), and a delivered
delete marks the link deleted. Fields with an open manual conflict are held back
(SPEC §5; resolving it queues the decided value). Every change carries an
idempotency key (the outbox row's id; connectors create by upsert on an external
id where the system has one), so a re-delivery after a lost acknowledgement never
writes twice. Transient failures back off exponentially with jitter (Retry-After
wins when the system sends one); after ``outbox.max_attempts`` a row is ``dead``
with its last error.

Echoes: after a successful write to a system whose writes show in its reads
(``Connector.writes_visible``), what was written becomes that system's merge base,
so when the system returns it every field equals its base (case 1) and nothing
bounces, even if the golden record moved on meanwhile; a system that keeps its own
copy elsewhere (files) keeps its last-read base and reads as unchanged.

:func:`push` drains due rows stream by stream; :func:`push_ids` delivers given rows
at once (the real-time path of `triad serve`).
"""
from __future__ import annotations

import logging
import random
import threading
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, bindparam, func, or_, select, update

from hub import golden
from hub.canonical import ENTITIES
from hub.connector import WriteChange, WriteResult
from hub.echoes import WRITTEN, add_written, held_by_source
from hub.errors import LimitExceeded, MappingError, RetriableError, TriadError
from hub.liveness import dead_here, worker_id
from hub.models import Outbox, SourceState, Xref
from hub.open_conflicts import open_fields
from hub.outbox import BLOCKED_MARK, blocked_note
from hub.sqlutil import chunks, upsert
from hub.streams import ENTITY_ORDER, Parts
from hub.types import new_id, utcnow
from hub.values import decode_record

log = logging.getLogger(__name__)
CLAIM = timedelta(minutes=5)
NOT_READ_YET = "has not been read yet"
SYSTEM_USER = "triad"     # who merges the read-back echo of a create (audit log, merge log)
CLAIM_LOCK = 7370003      # advisory lock namespace; hub.audit uses 7370001, hub.changefeed 7370002


@dataclass
class PushReport:
    connector: str
    entity: str
    status: str = "ok"
    counts: dict[str, int] = field(default_factory=lambda: {"written": 0, "created": 0, "failed": 0, "dead": 0,
                                                             "deferred": 0, "skipped": 0})
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"connector": self.connector, "entity": self.entity, "status": self.status, **self.counts,
                "error": self.error}


def push(engine: Engine, parts: Parts, connectors: tuple[str, ...] = (), *, worker: str | None = None,
         max_batches: int | None = None, cancel: threading.Event | None = None) -> list[PushReport]:
    """Drain due outbox rows of every out/both connector, entity by entity in reference order.

    ``worker`` names the claims (default this process, ``host:pid``); ``cancel`` stops after the
    batch in progress (claimed rows are always settled).
    """
    worker = worker or worker_id()
    reports = []
    for name, c in parts.cfg.connectors.items():
        if connectors and name not in connectors:
            continue
        if c.direction not in ("out", "both"):
            continue
        for entity in ENTITY_ORDER:
            if cancel is not None and cancel.is_set():
                return reports
            if entity in c.entities:
                reports.append(push_stream(engine, parts, name, entity, worker=worker, max_batches=max_batches,
                                           cancel=cancel))
    if not connectors and not (cancel is not None and cancel.is_set()):
        from hub import subscriptions   # subscribers are outbox targets too (sub:<name>)
        reports += subscriptions.deliver(engine, parts, worker=worker, max_batches=max_batches)
    return reports


def push_stream(engine: Engine, parts: Parts, name: str, entity: str, *, worker: str | None = None,
                max_batches: int | None = None, cancel: threading.Event | None = None) -> PushReport:
    worker = worker or worker_id()
    report = PushReport(name, entity)
    ocfg = parts.cfg.outbox
    n = 0
    while max_batches is None or n < max_batches:
        if cancel is not None and cancel.is_set():
            break
        n += 1
        claimed = _claim(engine, name, entity, worker, ocfg.batch_size)
        if not claimed or not _deliver_claimed(engine, parts, name, entity, claimed, report):
            break
    return report


def push_ids(engine: Engine, parts: Parts, ids: list[str], *, worker: str | None = None) -> list[PushReport]:
    """Deliver just these outbox rows now (the real-time path), in reference order.

    Rows that are no longer pending, not yet due, or claimed by another worker are
    left alone; whatever is not delivered here is picked up by a later ``push``.
    """
    claimed = _claim_ids(engine, ids, worker or worker_id())
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in claimed:
        groups.setdefault((r["connector"], r["entity"]), []).append(r)
    reports = []
    size = parts.cfg.outbox.batch_size
    order = {e: n for n, e in enumerate(ENTITY_ORDER)}
    for name, entity in sorted(groups, key=lambda k: (order.get(k[1], len(order)), k[0])):
        rows = groups[(name, entity)]
        if name.startswith("sub:"):   # a subscriber: its own delivery (hub.subscriptions), done below
            _release(engine, [r["id"] for r in rows])
            continue
        report = PushReport(name, entity)
        if name not in parts.cfg.connectors:
            _settle_failures(engine, [(r, f"connector '{name}' is no longer configured", False, None) for r in rows],
                             parts, report)
        else:
            for i in range(0, len(rows), size):
                if not _deliver_claimed(engine, parts, name, entity, rows[i:i + size], report):
                    _release(engine, [r["id"] for r in rows[i + size:]])
                    break
        reports.append(report)
    subscribers = sorted({name.removeprefix("sub:") for name, _ in groups if name.startswith("sub:")})
    if subscribers:
        from hub import subscriptions
        reports += subscriptions.deliver(engine, parts, subscribers, worker=worker or worker_id())
    return reports


def _deliver_claimed(engine: Engine, parts: Parts, name: str, entity: str, claimed: list[dict[str, Any]],
                     report: PushReport) -> bool:
    """Deliver claimed rows; False when the system failed as a whole (the caller stops for now)."""
    try:
        _deliver(engine, parts, name, entity, claimed, report)
    except LimitExceeded as exc:
        _fail_all(engine, claimed, str(exc), exc.retry_after, parts, report)
        report.status, report.error = "stopped", str(exc)
        return False
    except (RetriableError, TriadError, Exception) as exc:  # the whole call failed: back off every row
        _fail_all(engine, claimed, _describe(exc), getattr(exc, "retry_after", None), parts, report)
        report.status, report.error = "error", _describe(exc)
        log.warning("push %s/%s failed: %s", name, entity, report.error)
        return False
    return True


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, TriadError) else f"{type(exc).__name__}: {exc}"


def _claimable(conn: Connection, where: ColumnElement[bool], now: datetime, limit: int | None = None
               ) -> list[dict[str, Any]]:
    """Due pending rows matching ``where`` that nobody holds, oldest first, locked until the claim commits.

    A row is free when never claimed, when its claim ran out, or when its holder (``host:pid``) is a
    dead process of this host: a push killed here frees its rows at once instead of after :data:`CLAIM`.
    Rows of a record another live worker is delivering to that system are left out: two workers each
    holding one change of a record the system does not know yet would both create it.
    """
    ot = Outbox.__table__
    in_flight = and_(ot.c.status == "pending", ot.c.claimed_until >= now)
    holders = conn.scalars(select(ot.c.claimed_by).where(where, in_flight).distinct())
    dead = sorted(h for h in holders if h and dead_here(h))
    free = or_(ot.c.claimed_until.is_(None), ot.c.claimed_until < now, ot.c.claimed_by.in_(dead))
    q = select(ot).where(where, ot.c.status == "pending", ot.c.next_attempt_at <= now, free)
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


def _release(engine: Engine, ids: list[str]) -> None:
    """Give claimed rows back untouched (no attempt spent): another push takes them."""
    if not ids:
        return
    ot = Outbox.__table__
    with engine.begin() as conn:
        for part in chunks(ids):
            conn.execute(update(ot).where(ot.c.id.in_(part), ot.c.status == "pending")
                         .values(claimed_by=None, claimed_until=None))


def _deliver(engine: Engine, parts: Parts, name: str, entity: str, rows: list[dict[str, Any]],
             report: PushReport) -> None:
    mapping = parts.mapping(name, entity)
    connector = parts.connector(name)
    spec = parts.stream_spec(name, entity, None)
    by_record: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_record.setdefault(r["record_id"], []).append(r)
    with engine.connect() as conn:
        links, gone = _links(conn, name, entity, list(by_record))
        held = open_fields(conn, entity, list(by_record))
        holds = held_by_source(conn, entity, name, [links[rid] for rid in by_record if rid in links])
        current = golden.load(conn, entity, list(by_record))
        ref_ids = _ref_targets(conn, name, entity, current, by_record)
        unread = _unread_changes(conn, connector, spec, mapping, name, entity,
                                 {rid: links[rid] for rid in by_record if rid in links})
        first_read = _first_read_pending(conn, parts, name, entity)
        undecided = _open_candidates(conn, entity, list(by_record))
    changes: list[WriteChange] = []
    change_rows: dict[str, list[dict[str, Any]]] = {}
    written: dict[str, dict[str, Any]] = {}     # change -> canonical values the system now holds
    deferred: list[tuple[dict[str, Any], str]] = []
    dead: list[tuple[dict[str, Any], str]] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    waits: list[tuple[dict[str, Any], tuple[str, str]]] = []     # rows held for a referenced record
    for rid, group in by_record.items():
        g = current.get(rid)
        delete = any(r["operation"] == "delete" for r in group)
        if g is None and not delete:
            dead += [(r, f"the golden {entity} {rid} no longer exists") for r in group]
            continue
        if g is not None and g.merged_into:     # its links and values went to the surviving record
            skipped += [(r, f"not sent: {entity} {rid} was merged into {g.merged_into}, which carries its values")
                        for r in group]
            continue
        source_id = links.get(rid)
        if delete:
            if source_id is None:
                _mark_done(engine, [r["id"] for r in group])
                continue
            changes.append(WriteChange(group[-1]["idempotency_key"], rid, source_id, {}, delete=True))
            change_rows[group[-1]["idempotency_key"]] = group
            continue
        if source_id is None and rid in gone:   # deleted there: creating it again would undo the delete
            skipped += [(r, f"not sent: {entity} {rid} is deleted in {name}") for r in group]
            continue
        if source_id is not None and rid in unread:   # writing now would overwrite a change the hub has not read
            deferred += [(r, unread[rid]) for r in group]
            continue
        if source_id is None and first_read:    # it may hold this record already: the read links it, then update
            deferred += [(r, first_read) for r in group]
            continue
        if source_id is None and rid in undecided:    # created now, a merge would leave two records there
            deferred += [(r, f"not created in {name} yet: {entity} {rid} may be the same as {undecided[rid]}, "
                              f"waiting for a steward (triad matches list)") for r in group]
            continue
        hold = held.get(rid, set())     # not propagated until resolved; the resolution is queued anew
        if source_id is None:    # unknown to this system: create it with the whole golden record
            values = {k: v for k, v in g.values.items() if v not in (None, []) and k not in hold}
        else:
            waiting = [r for r in group if r["fields"] and set(r["fields"]) <= hold]
            skipped += [(r, f"not sent: {', '.join(sorted(r['fields']))} of {entity} {rid} has an open manual "
                            f"conflict; its resolution is queued anew") for r in waiting]
            group = [r for r in group if r not in waiting]
            if not group:
                continue
            values = {}
            for r in group:
                values.update(r["fields"])
            # the latest golden value of each changed field, but not one the system holds already (the
            # winner of a concurrent change, say): such a row is settled without a write
            have = holds.get(source_id, {})
            values = {k: g.values.get(k) for k in values
                      if k not in hold and not (k in have and have[k] == g.values.get(k))}
        canonical = dict(values)          # before references become this system's ids
        missing = _resolve_refs(entity, values, ref_ids, frozenset(parts.cfg.connectors[name].entities))
        if missing:
            waits += [(r, missing) for r in group]
            continue
        try:
            payload = mapping.to_source(decode_record(entity, values))
        except (MappingError, ValueError) as exc:
            dead += [(r, f"cannot map to {name}: {exc}") for r in group]
            continue
        if not payload and source_id is not None:
            _mark_done(engine, [r["id"] for r in group])    # nothing this system holds has changed
            continue
        key = group[-1]["idempotency_key"]
        changes.append(WriteChange(key, rid, source_id, payload))
        change_rows[key] = group
        written[key] = _as_read_back(mapping, canonical, payload)
    if waits:
        with engine.connect() as conn:
            blocking = _dead_writes(conn, name, {ref for _, ref in waits})
        deferred += [(r, _waiting_for(*ref) + (f", but {blocking[ref]}" if ref in blocking else ""))
                     for r, ref in waits]
    if dead:
        _settle_failures(engine, [(r, e, False, None) for r, e in dead], parts, report)
    if deferred:
        _defer(engine, deferred, report)
    if skipped:
        _skip(engine, skipped, report)
    if not changes:
        return
    results = connector.write(spec, changes)
    by_key = {r.change_id: r for r in results}
    ok: list[tuple[WriteChange, WriteResult]] = []
    failed: list[tuple[dict[str, Any], str, bool, float | None]] = []
    for ch in changes:
        res = by_key.get(ch.change_id) or WriteResult(ch.change_id, False, error="the connector returned no result",
                                                      retriable=True)
        if res.ok:
            ok.append((ch, res))
        else:
            failed += [(r, res.error or "write failed", res.retriable, res.retry_after) for r in change_rows[ch.change_id]]
    _settle_success(engine, parts, name, entity, ok, change_rows, report, written, connector.writes_visible)
    if failed:
        _settle_failures(engine, failed, parts, report)


def _links(conn: Connection, name: str, entity: str, record_ids: list[str]) -> tuple[dict[str, str], set[str]]:
    """Record id -> the system's id (active links), and the records whose only links there are deleted."""
    xt = Xref.__table__
    links: dict[str, str] = {}
    deleted: set[str] = set()
    for part in chunks(record_ids):
        for x in conn.execute(select(xt.c.record_id, xt.c.source_id, xt.c.status).where(
                xt.c.entity == entity, xt.c.system == name, xt.c.status.in_(("active", "deleted")),
                xt.c.record_id.in_(part))):
            if x.status == "active":
                links.setdefault(x.record_id, x.source_id)
            else:
                deleted.add(x.record_id)
    return links, deleted - set(links)


def _ref_targets(conn: Connection, name: str, entity: str, current: dict[str, golden.GoldenRow],
                 by_record: dict[str, list]) -> dict[tuple[str, str], str]:
    refs = ENTITIES[entity].refs
    wanted: dict[str, set[str]] = {}
    for row in current.values():
        for f, ref_entity in refs.items():
            if row.values.get(f):
                wanted.setdefault(ref_entity, set()).add(row.values[f])
    xt = Xref.__table__
    out: dict[tuple[str, str], str] = {}
    for ref_entity, ids in wanted.items():
        for part in chunks(sorted(ids)):
            for x in conn.execute(select(xt.c.record_id, xt.c.source_id).where(
                    xt.c.entity == ref_entity, xt.c.system == name, xt.c.status == "active",
                    xt.c.record_id.in_(part))):
                out[(ref_entity, x.record_id)] = x.source_id
    return out


def _resolve_refs(entity: str, values: dict[str, Any], ref_ids: dict[tuple[str, str], str],
                  synced: frozenset[str]) -> tuple[str, str] | None:
    """Canonical ids in reference fields become this system's ids; None when all are known, else the
    (entity, id) of a referenced record the system does not hold yet.

    A reference to an entity this system does not sync is left out of the write: it could never resolve.
    """
    for f, ref_entity in ENTITIES[entity].refs.items():
        if f in values and ref_entity not in synced:
            del values[f]
            continue
        rid = values.get(f)
        if rid:
            sid = ref_ids.get((ref_entity, rid))
            if sid is None:
                return ref_entity, rid
            values[f] = sid
    return None


def _mark_done(engine: Engine, ids: list[str]) -> None:
    ot = Outbox.__table__
    with engine.begin() as conn:
        conn.execute(update(ot).where(ot.c.id.in_(ids)).values(status="done", updated_at=utcnow(), claimed_by=None,
                                                                claimed_until=None))


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
        report.counts["created"] += len(new_links)
        report.counts["written"] += len(ok)
        if visible:
            _record_bases(conn, name, entity, ok, written, now)
        else:
            _record_written(conn, name, entity, ok, written, now)


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


def _open_candidates(conn: Connection, entity: str, record_ids: list[str]) -> dict[str, str]:
    """Record id -> another record it may be the same as (an open match candidate a steward has not decided)."""
    from hub.models import MatchCandidate
    mt = MatchCandidate.__table__
    out: dict[str, str] = {}
    for part in chunks(record_ids):
        for a, b in conn.execute(select(mt.c.record_a, mt.c.record_b).where(
                mt.c.status == "open", mt.c.entity == entity, or_(mt.c.record_a.in_(part), mt.c.record_b.in_(part)))):
            out.setdefault(a, b)
            out.setdefault(b, a)
    return out


def _first_read_pending(conn: Connection, parts: Parts, name: str, entity: str) -> str | None:
    """Why a create must wait, or None: a system the hub also reads is not sent new records before its
    first complete read, which links the records it holds already (a create would make a second one)."""
    if parts.cfg.connectors[name].direction == "out":
        return None
    from hub.models import SyncRun
    sr = SyncRun.__table__
    read = conn.execute(select(sr.c.id).where(sr.c.connector == name, sr.c.entity == entity, sr.c.kind == "sync",
                                              sr.c.status == "ok", sr.c.dry_run.is_(False)).limit(1)).first()
    if read is not None:
        return None
    return (f"{name}/{entity} {NOT_READ_YET} and may hold this {entity} already "
            f"(`triad sync run --connector {name} --entity {entity}`): waiting for a read")


def _unread_changes(conn: Connection, connector: Any, spec: Any, mapping: Any, name: str, entity: str,
                    links: dict[str, str]) -> dict[str, str]:
    """Records whose system may hold a change the hub has not read yet: record id -> why.

    An update is held back (1) while the stream's last read failed -- the system's own edits are
    unknown -- and (2) for connectors that can fetch by id, when the record as the system holds it now
    differs from the base the hub last saw. The next read brings the change in and the merge rules
    decide; the write then carries the outcome instead of overwriting the edit.
    """
    if not links:
        return {}
    from hub.models import SyncRun
    sr = SyncRun.__table__
    last = conn.execute(select(sr.c.status, sr.c.error).where(sr.c.connector == name, sr.c.entity == entity,
                                                                sr.c.kind == "sync", sr.c.dry_run.is_(False),
                                                                sr.c.status != "skipped")
                        .order_by(sr.c.started_at.desc()).limit(1)).first()
    if last is not None and last.status in ("error", "stopped"):
        why = f"the last read of {name}/{entity} failed ({(last.error or last.status)[:120]}): waiting for a read"
        return {rid: why for rid in links}
    try:
        raws = connector.fetch(spec, sorted(set(links.values())))
    except NotImplementedError:
        return {}
    except Exception as exc:  # the check is a precaution: a failing fetch leaves the write to its own retries
        log.info("cannot fetch %s/%s before writing: %s", name, entity, exc)
        return {}
    st = SourceState.__table__
    bases: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(set(links.values()))):
        for r in conn.execute(select(st.c.source_id, st.c["values"]).where(
                st.c.entity == entity, st.c.system == name, st.c.source_id.in_(part))):
            bases[r.source_id] = r[1] or {}
    by_source = {sid: rid for rid, sid in links.items()}
    refs = set(ENTITIES[entity].refs)
    out: dict[str, str] = {}
    from hub.values import encode_record
    for raw in raws:
        try:
            rec = mapping.to_canonical(raw)
        except Exception:  # an unreadable record is left to the next read to park
            continue
        base = bases.get(rec.source_id)
        rid = by_source.get(rec.source_id)
        if base is None or rid is None:
            continue
        now = encode_record(rec.values)
        changed = [f for f, v in now.items() if f not in refs and f in mapping.writable_fields and v != base.get(f)]
        if changed:
            out[rid] = f"{name} changed {', '.join(sorted(changed))} since the last read: waiting for a read"
    return out


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


def _wake_waiting_for(conn: Connection, name: str, entity: str, record_ids: list[str], now: datetime) -> None:
    """Writes to ``name`` held until these records reached it (an order waiting for its customer) are due
    now, not after their retry delay: another worker may have been creating the customer meanwhile."""
    ot = Outbox.__table__
    for part in chunks(record_ids):
        conn.execute(update(ot).where(ot.c.connector == name, ot.c.status == "pending",
                                      ot.c.last_error.in_([_waiting_for(entity, rid) for rid in part]))
                     .values(next_attempt_at=now))


def _dead_writes(conn: Connection, name: str, refs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(entity, id) -> why it will not reach ``name`` by itself: its latest write there is dead. Without
    this, what waits for it would wait silently for ever."""
    ot = Outbox.__table__
    latest: dict[tuple[str, str], Any] = {}
    by_entity: dict[str, list[str]] = {}
    for e, rid in refs:
        by_entity.setdefault(e, []).append(rid)
    for e, ids in sorted(by_entity.items()):
        for part in chunks(sorted(ids)):
            for r in conn.execute(select(ot.c.id, ot.c.record_id, ot.c.status).where(
                    ot.c.connector == name, ot.c.entity == e, ot.c.record_id.in_(part))
                    .order_by(ot.c.created_at, ot.c.id)):
                latest[(e, r.record_id)] = r
    return {ref: f"{blocked_note(r.id)}: `triad outbox retry {r.id}` once its cause is fixed "
                 f"(see `triad outbox list --status dead`), or drop this item"
            for ref, r in latest.items() if r.status == "dead"}


def _waiting_for(ref_entity: str, rid: str) -> str:
    return f"waiting for {ref_entity} {rid} to reach this system first"


def _as_read_back(mapping: Any, canonical: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The canonical values the system holds after this write, as its next read will show them: a lossy
    outbound value map (``blocked`` sent as ``Active__c=false``) reads back as ``inactive``; taking that
    for the system's own change would set the golden value back and forth on every cycle."""
    from hub.values import encode
    shown = mapping.read_back(payload)
    return {k: (encode(shown[k]) if shown.get(k) is not None or v is None else v) for k, v in canonical.items()
            if k in mapping.writable_fields}


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
    if BLOCKED_MARK in why:
        return timedelta(minutes=5)      # `triad outbox retry` of the dead write makes it due at once
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
