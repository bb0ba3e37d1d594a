"""`triad sync run`: each stream read batch by batch, each batch committed with its cursor.

A crash loses nothing and duplicates nothing: a rerun resumes from the last
committed cursor, and records read again hash the same and change nothing.
Rows parked for unresolved references are retried first on every run.

A dry run (``--dry-run``) runs every stream exactly so, but in one transaction
on one connection, each batch a savepoint in it, rolled back when the last
stream is done: each stream sees what the earlier ones would have written (the
figures are a real run's), and nothing stays, not even the runs' own rows.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError

from hub import planner_stats
from hub.absence import Absence
from hub.errors import FatalError, LimitExceeded, RetriableError, TriadError
from hub.liveness import dead_here, worker_id
from hub.models import Outbox, Quarantine, StreamState, SyncRun
from hub.pipeline import STAT_KEYS, BatchStats, StreamContext, process_batch
from hub.retry_tally import counting_retries
from hub.sqlutil import chunks, upsert
from hub.streams import Parts, inbound_streams
from hub.types import new_id, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)   # renewed with every batch; a dead worker's lease runs out soon
Progress = Callable[[str, str, dict[str, int]], None]


@dataclass
class RunReport:
    id: str
    connector: str
    entity: str
    status: str = "running"
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAT_KEYS, 0))
    cursor: Any = None
    error: str | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "connector": self.connector, "entity": self.entity, "status": self.status,
                **self.counts, "cursor": self.cursor, "error": self.error, "dry_run": self.dry_run}

    def absorb(self, stats: BatchStats) -> None:
        for k, v in stats.counts.items():
            self.counts[k] += v

    def note(self, *notes: str) -> None:
        """Say something beside the figures of a run that did not fail (kept in its ``error`` text)."""
        for text in notes:
            self.error = f"{self.error}; {text}" if self.error else text


class _Store:
    """Where a run's transactions go: the engine, each one committed; or, in a dry run, one
    connection whose transaction is rolled back at the end, each unit of work a savepoint in it
    (a failed batch is undone alone, as in a real run, and the transaction stays usable on PostgreSQL)."""

    def __init__(self, engine: Engine, dry: Connection | None = None) -> None:
        self.engine, self.dry = engine, dry

    @property
    def dry_run(self) -> bool:
        return self.dry is not None

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """A transaction, committed when the block ends (a savepoint released, in a dry run)."""
        if self.dry is None:
            with self.engine.begin() as conn:
                yield conn
        else:
            with self.dry.begin_nested():
                yield self.dry


@contextmanager
def _dry_store(engine: Engine) -> Iterator[_Store]:
    """One transaction for a whole dry run, rolled back however the run ends.

    Everything a run writes (golden rows, xrefs, history, outbox, quarantine,
    conflicts, cursors, its sync_run rows) goes through this connection; connectors
    are only read. On SQLite it holds the write lock until the dry run ends, on
    PostgreSQL the row and advisory locks its batches take: writers wait for it.
    """
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            yield _Store(engine, conn)
        finally:
            tx.rollback()


def run_sync(engine: Engine, parts: Parts, *, connectors: tuple[str, ...] = (), entities: tuple[str, ...] = (),
             full: bool = False, dry_run: bool = False, user: str | None = None,
             progress: Progress | None = None, cancel: threading.Event | None = None) -> list[RunReport]:
    """Run every selected inbound stream; one report per stream (errors are reported, not raised).

    ``cancel`` (set by a SIGTERM handler, say) stops after the batch in progress; streams not begun are skipped.
    ``dry_run``: the same streams and figures as a real run, and the store left as it was (see the module).
    """
    streams = inbound_streams(parts.cfg, connectors, entities)
    if not dry_run:
        return _run_streams(_Store(engine), parts, streams, full, user, progress, cancel)
    with _dry_store(engine) as store:
        return _run_streams(store, parts, streams, full, user, progress, cancel)


def _run_streams(store: _Store, parts: Parts, streams: list[tuple[str, str]], full: bool, user: str | None,
                 progress: Progress | None, cancel: threading.Event | None) -> list[RunReport]:
    reports = []
    for name, entity in streams:
        if cancel is not None and cancel.is_set():
            break
        reports.append(_run_stream(store, parts, name, entity, full=full, user=user, progress=progress,
                                   cancel=cancel))
    return reports


def run_stream(engine: Engine, parts: Parts, name: str, entity: str, *, full: bool = False, dry_run: bool = False,
               user: str | None = None, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> RunReport:
    """Read one stream batch by batch; each batch commits with its cursor (a dry run: see the module).

    ``cancel`` is checked between batches: when set, the run ends after the batch in
    progress with status ``stopped`` and the next run resumes from the committed cursor.
    """
    if not dry_run:
        return _run_stream(_Store(engine), parts, name, entity, full=full, user=user, progress=progress,
                           cancel=cancel)
    with _dry_store(engine) as store:
        return _run_stream(store, parts, name, entity, full=full, user=user, progress=progress, cancel=cancel)


def _run_stream(store: _Store, parts: Parts, name: str, entity: str, *, full: bool, user: str | None,
                progress: Progress | None, cancel: threading.Event | None) -> RunReport:
    dry_run = store.dry_run
    report = RunReport(new_id(), name, entity, dry_run=dry_run)
    owner = worker_id(f"t{threading.get_ident()}")   # two threads of one process are two holders
    # a dry run takes no lease: taking one commits (it may create the stream's state row)
    if not dry_run and not _take_lease(store.engine, name, entity, owner, utcnow()):
        report.status = "skipped"
        report.error = "another worker is running this stream"
        return report
    started = utcnow()    # after the lease: runs of one stream never overlap in sync_run
    with store.tx() as conn:
        conn.execute(insert(SyncRun.__table__), [{
            "id": report.id, "connector": name, "entity": entity, "kind": "sync", "status": "running",
            "dry_run": dry_run, "stats": report.counts, "cursor": None, "error": None, "user": user,
            "started_at": started, "finished_at": None}])
    with counting_retries() as retried:   # said with the run's figures: how often its system failed it
        try:
            ctx = StreamContext(system=name, entity=entity, mapping=parts.mapping(name, entity),
                                rules=parts.rules(entity), exact_keys=parts.exact_keys(entity),
                                out_systems=parts.out_systems(entity), delete_targets=parts.delete_targets(entity),
                                run_id=report.id, now=started, validator=parts.validator(name, entity),
                                synced=frozenset(parts.cfg.connectors[name].entities),
                                matcher=_matcher(parts, entity), out_fields=parts.out_fields(entity))
            _retry_parked(store, ctx, report, kinds=("unresolved_ref",))
            with store.tx() as conn:
                cursor = None if full else _cursor(conn, name, entity)
            report.cursor = cursor
            spec = parts.stream_spec(name, entity, started)
            connector = parts.connector(name)
            absence = _absence(parts, name, entity, ctx) if cursor is None else None
            if not dry_run:   # tables loaded earlier (or by another worker) may not have been analyzed yet
                planner_stats.refresh(store.engine)
            for batch in connector.read(spec, cursor):
                ctx.now = utcnow()
                with store.tx() as conn:    # the batch, its cursor and the run's figures, or none of them
                    stats = process_batch(conn, ctx, batch.records, batch.deleted)
                    if absence is not None:
                        absence.seen(conn, batch.records, ctx.now)
                    _mark_resolved(conn, stats.resolved_quarantine, ctx.now)
                    if batch.cursor is not None:
                        _save_cursor(conn, name, entity, batch.cursor, ctx.now)
                    if not dry_run:
                        _renew_lease(conn, name, entity, owner)
                    report.absorb(stats)
                    report.counts["retried"] = retried[0]
                    report.note(*batch.notes)
                    report.cursor = batch.cursor if batch.cursor is not None else report.cursor
                    _save_run(conn, report)
                    planner_stats.count_now(conn)
                if not dry_run:   # a load's later batches look their keys up in what the earlier ones wrote
                    planner_stats.refresh(store.engine)
                if progress:
                    progress(name, entity, report.counts)
                if cancel is not None and cancel.is_set():
                    report.status, report.error = "stopped", STOPPED_ON_REQUEST
                    break
            else:
                if absence is not None:   # a complete read: what it did not return is gone from the system
                    _flag_missing(store, ctx, report, absence, started, spec.batch_size, owner, progress)
                report.status = "ok"
        except LimitExceeded as exc:
            report.status, report.error = "stopped", f"request limit reached, resumes next run: {exc}"
            log.warning("stream %s/%s stopped: %s", name, entity, exc)
        except (TriadError, Exception) as exc:  # one stream's failure must not stop the others
            report.status, report.error = "error", _describe(exc)
            log.error("stream %s/%s failed: %s", name, entity, report.error, exc_info=not isinstance(exc, TriadError))
        except KeyboardInterrupt:   # Ctrl-C: the run ends as stopped (not "running" forever), then the command stops
            report.status, report.error = "stopped", INTERRUPTED
            raise
        finally:
            report.counts["retried"] = retried[0]
            with store.tx() as conn:
                _save_run(conn, report, finished=True)
                if not dry_run:
                    _release_lease(conn, name, entity, owner)
                    if report.status == "ok":
                        _wake_writes_waiting_for_a_read(conn, name, entity)
    return report


def _absence(parts: Parts, name: str, entity: str, ctx: StreamContext) -> Absence | None:
    binding = parts.binding(name, entity)
    if not binding.deleted_when_missing:
        return None
    return Absence(name, entity, ctx.mapping, binding.deleted_when_missing_limit)


def _flag_missing(store: _Store, ctx: StreamContext, report: RunReport, absence: Absence, started: datetime,
                  size: int, owner: str, progress: Progress | None) -> None:
    """Flag the records a complete read did not return, as deletes the connector reported, a batch at a time."""
    with store.tx() as conn:
        gone, why = absence.missing(conn, started)
    if why:
        report.note(why)    # the run is ok; the summary shows why nothing was flagged
    for part in chunks(gone, size):
        ctx.now = utcnow()
        with store.tx() as conn:
            report.absorb(process_batch(conn, ctx, [], part))
            if not store.dry_run:
                _renew_lease(conn, ctx.system, ctx.entity, owner)
            _save_run(conn, report)
        if progress:
            progress(ctx.system, ctx.entity, report.counts)


def _wake_writes_waiting_for_a_read(conn: Connection, name: str, entity: str) -> None:
    """Writes to this stream held until the hub had read it (hub.push) are due now: the read has happened."""
    ot = Outbox.__table__
    conn.execute(update(ot).where(ot.c.connector == name, ot.c.entity == entity, ot.c.status == "pending",
                                  ot.c.last_error.like("%waiting for a read")).values(next_attempt_at=utcnow()))


INTERRUPTED = "interrupted (Ctrl-C); the next run resumes after the last committed batch"
STOPPED_ON_REQUEST = "stopped on request (Ctrl-C or SIGTERM); the next run resumes after the last committed batch"


def _describe(exc: BaseException) -> str:
    """The error a run records: a database error by the driver's first line, without the statement and
    its parameters (customer data, and kilobytes of SQL no admin reads)."""
    if isinstance(exc, TriadError):
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        first = (str(exc.orig).strip().splitlines() or [""])[0]
        return f"{type(exc).__name__} ({type(exc.orig).__name__}): {first}"
    return f"{type(exc).__name__}: {exc}"


def _matcher(parts: Parts, entity: str) -> Any:
    m = parts.cfg.matching.get(entity)
    if not m or not m.fuzzy or not m.fuzzy.fields:
        return None
    from hub.matching import FuzzyMatcher
    return FuzzyMatcher(entity, m.fuzzy)


def _cursor(conn: Connection, name: str, entity: str) -> Any:
    st = StreamState.__table__
    return conn.scalar(select(st.c.cursor).where(st.c.connector == name, st.c.entity == entity))


def _save_cursor(conn: Connection, name: str, entity: str, cursor: Any, now: datetime) -> None:
    st = StreamState.__table__
    upsert(conn, st, [{"connector": name, "entity": entity, "cursor": cursor, "updated_at": now}],
           ["connector", "entity"], ["cursor", "updated_at"])


def _save_run(conn: Connection, report: RunReport, finished: bool = False) -> None:
    st = SyncRun.__table__
    values: dict[str, Any] = {"stats": dict(report.counts), "cursor": report.cursor, "status": report.status,
                              "error": report.error}
    if finished:
        values["finished_at"] = utcnow()
    conn.execute(update(st).where(st.c.id == report.id).values(**values))


def _take_lease(engine: Engine, name: str, entity: str, owner: str, now: datetime) -> bool:
    """One run per stream at a time, also across processes and machines sharing the store.

    A lease held by a process of this machine that no longer exists is taken over at once;
    one held elsewhere is taken over when it runs out (it is renewed with every batch).
    """
    st = StreamState.__table__
    with engine.begin() as conn:
        upsert(conn, st, [{"connector": name, "entity": entity, "cursor": None, "updated_at": now,
                           "lease_owner": None, "lease_until": None}], ["connector", "entity"], [])
        holder = conn.scalar(select(st.c.lease_owner).where(st.c.connector == name, st.c.entity == entity))
        stale = holder is not None and dead_here(holder)
        res = conn.execute(update(st).where(
            st.c.connector == name, st.c.entity == entity,
            (st.c.lease_until.is_(None)) | (st.c.lease_until < now) | (st.c.lease_owner == owner)
            | (st.c.lease_owner == (holder if stale else "")))
            .values(lease_owner=owner, lease_until=now + LEASE))
        if res.rowcount != 1:
            return False
        if holder is not None and holder != owner:   # taken over: the run it left is over, say so
            sr = SyncRun.__table__
            conn.execute(update(sr).where(sr.c.connector == name, sr.c.entity == entity, sr.c.status == "running",
                                          sr.c.started_at < now)
                         .values(status="error", finished_at=now,
                                 error=f"stopped: its worker ({holder}) went away; the next run went on "
                                       f"from the last committed batch"))
        return True


def _renew_lease(conn: Connection, name: str, entity: str, owner: str) -> None:
    """Raises (the batch rolls back) when the lease ran out and another worker took the stream."""
    st = StreamState.__table__
    res = conn.execute(update(st).where(st.c.connector == name, st.c.entity == entity, st.c.lease_owner == owner)
                       .values(lease_until=utcnow() + LEASE))
    if res.rowcount != 1:
        raise RetriableError(f"the lease on {name}/{entity} ran out and another worker took the stream over",
                             connector=name, entity=entity)


def _release_lease(conn: Connection, name: str, entity: str, owner: str) -> None:
    st = StreamState.__table__
    conn.execute(update(st).where(st.c.connector == name, st.c.entity == entity, st.c.lease_owner == owner)
                 .values(lease_owner=None, lease_until=None))


def _mark_resolved(conn: Connection, ids: list[str], now: datetime) -> None:
    if ids:
        qt = Quarantine.__table__
        conn.execute(update(qt).where(qt.c.id.in_(ids), qt.c.status == "parked").values(status="resolved",
                                                                                          updated_at=now))


def _retry_parked(store: Engine | _Store, ctx: StreamContext, report: RunReport, dry_run: bool = False,
                  kinds: tuple[str, ...] | None = None, ids: list[str] | None = None) -> int:
    """Re-run parked raw payloads of this stream through the current mapping, oldest first.

    ``store``: an engine (the retry commits; rolled back with ``dry_run``), or a run's store.
    """
    if not isinstance(store, _Store):
        if dry_run:
            with _dry_store(store) as dry:
                return _retry_parked(dry, ctx, report, kinds=kinds, ids=ids)
        store = _Store(store)
    qt = Quarantine.__table__
    q = select(qt.c.id, qt.c.source_id, qt.c.raw).where(qt.c.connector == ctx.system, qt.c.entity == ctx.entity,
                                                         qt.c.status == "parked").order_by(qt.c.created_at, qt.c.id)
    if kinds:
        q = q.where(qt.c.kind.in_(kinds))
    if ids:
        q = q.where(qt.c.id.in_(ids))
    with store.tx() as conn:
        rows = list(conn.execute(q))
    if not rows:
        return 0
    by_sid = {r.source_id: r.id for r in rows if r.source_id}
    with store.tx() as conn:
        stats = process_batch(conn, ctx, [r.raw for r in rows], from_quarantine=by_sid)
        keyless = [r.id for r in rows if not r.source_id]
        _mark_resolved(conn, stats.resolved_quarantine, ctx.now)
        if keyless:   # a keyless row that parses now went through or was parked again under its key
            conn.execute(update(qt).where(qt.c.id.in_(keyless), qt.c.run_id != ctx.run_id)
                         .values(status="resolved", updated_at=ctx.now))
        stats.counts["read"] = 0   # retried rows were counted when first read
        report.absorb(stats)
        _save_run(conn, report)
    return len(rows)


def retry_quarantine(engine: Engine, parts: Parts, ids: list[str], user: str | None = None,
                     entities: frozenset[str] | None = None) -> list[RunReport]:
    """`triad quarantine retry [ID...]`: re-run parked rows (all, or the given ids) per stream.

    ``entities``: only rows of these (the caller's), None means all. Each report counts in
    ``still_parked`` the retried rows that are parked after the retry: a row that fails the same
    way again is not newly quarantined (it counts as unchanged), yet it is still there.
    """
    from sqlalchemy import func, or_
    qt = Quarantine.__table__
    q = select(qt.c.connector, qt.c.entity).where(qt.c.status == "parked").distinct()
    if ids:
        q = q.where(qt.c.id.in_(ids))
    if entities is not None:
        q = q.where(qt.c.entity.in_(sorted(entities)))
    with engine.connect() as conn:
        streams = sorted(set(conn.execute(q).all()))
        if ids:
            known = {r.id for r in conn.execute(select(qt.c.id).where(qt.c.id.in_(ids), qt.c.status == "parked"))}
            unknown = [i for i in ids if i not in known]
            if unknown:
                from hub.errors import NotFound
                raise NotFound(f"no quarantine item {', '.join(unknown)} is parked (see `triad quarantine list`)")
    reports = []
    for name, entity in streams:
        if name not in parts.cfg.connectors:
            raise FatalError(f"parked rows of connector '{name}', which is no longer configured")
        started = utcnow()
        report = RunReport(new_id(), name, entity)
        with engine.begin() as conn:
            conn.execute(insert(SyncRun.__table__), [{
                "id": report.id, "connector": name, "entity": entity, "kind": "retry", "status": "running",
                "dry_run": False, "stats": report.counts, "cursor": None, "error": None, "user": user,
                "started_at": started, "finished_at": None}])
        ctx = StreamContext(system=name, entity=entity, mapping=parts.mapping(name, entity), rules=parts.rules(entity),
                            exact_keys=parts.exact_keys(entity), out_systems=parts.out_systems(entity),
                            delete_targets=parts.delete_targets(entity), run_id=report.id, now=started,
                            synced=frozenset(parts.cfg.connectors[name].entities),
                            validator=parts.validator(name, entity), matcher=_matcher(parts, entity),
                            out_fields=parts.out_fields(entity))
        try:
            _retry_parked(engine, ctx, report, False, ids=ids or None)
            report.status = "ok"
        except Exception as exc:  # reported per stream
            report.status, report.error = "error", _describe(exc)
        with engine.begin() as conn:
            # the rows asked for (all of the stream's) still parked, and any parked anew under their key
            left = select(func.count()).select_from(qt).where(qt.c.connector == name, qt.c.entity == entity,
                                                              qt.c.status == "parked")
            if ids:
                left = left.where(or_(qt.c.id.in_(ids), qt.c.run_id == report.id))
            report.counts["still_parked"] = int(conn.execute(left).scalar_one())
            _save_run(conn, report, finished=True)
        reports.append(report)
    return reports
