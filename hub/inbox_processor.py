"""Inbox rows through the pipeline in micro-batches: one transaction and one validation per stream.

:class:`InboxProcessor` parses stored rows with their connector, groups the events of
one gathering window by (connector, entity) and runs each group through
:func:`hub.pipeline.process_batch` in one transaction that also marks its rows done:
one validation call per group, never one per event. A row stays ``pending`` until that
transaction commits, so a process killed at any point loses nothing; a body its
connector cannot read becomes ``error`` with the reason, visible and never dropped.
Several workers may share a store: each group transaction first re-checks that its
rows are still pending (the row locks on PostgreSQL, the write lock on SQLite), so no
row is applied twice.

The group's records are validated before its transaction begins (the pipeline then
takes each row's outcome from that run): on SQLite every transaction holds the
store's one write lock, and a validation call (tens of milliseconds, more on a busy
machine) inside it would make every webhook request wait that long to be stored.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from hub import planner_stats
from hub.inbox import call_hook, unpack
from hub.models import Inbox, Outbox, SourceState, SyncRun
from hub.pipeline import StreamContext, process_batch
from hub.sqlutil import chunks
from hub.streams import ENTITY_ORDER, Parts
from hub.sync import RunReport, _mark_resolved, _matcher, _retry_parked, _save_run
from hub.types import new_id, utcnow
from hub.values import encode_record, values_hash

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5                 # transient failures (fetch, database) before a row becomes `error`
RUN_ROTATION = timedelta(minutes=15)   # one sync_run per stream and worker for this long


@dataclass
class _Group:
    connector: str
    entity: str
    rows: dict[str, dict[str, list]] = field(default_factory=dict)   # inbox id -> its records and deletes

    def records(self) -> list[dict[str, Any]]:
        return [r for part in self.rows.values() for r in part["records"]]

    def deleted(self) -> list[str]:
        return [d for part in self.rows.values() for d in part["deleted"]]


@dataclass
class CycleReport:
    """What one :meth:`InboxProcessor.run_once` did."""

    rows: int = 0
    done: int = 0
    errors: int = 0
    retry: int = 0
    stale: int = 0
    outbox_ids: list[str] = field(default_factory=list)


class InboxProcessor:
    """Runs pending inbox rows through the pipeline; one per worker thread (it owns ``parts``).

    Args:
        worker: this worker's name (host:pid), recorded on the runs it opens.
        metrics: a :class:`hub.metrics.Metrics`, or None.
        max_rows: rows taken per cycle (bounds a transaction after a long outage).
    """

    def __init__(self, engine: Engine, parts: Parts, *, worker: str, metrics: Any = None,
                 max_rows: int = 500) -> None:
        self.engine, self.parts, self.worker, self.metrics, self.max_rows = engine, parts, worker, metrics, max_rows
        self._runs: dict[tuple[str, str], tuple[StreamContext, RunReport, float]] = {}
        self._not_before: dict[str, float] = {}      # inbox id -> monotonic time of its next try

    # -- one cycle ---------------------------------------------------------------------------------
    def run_once(self) -> CycleReport:
        """Process up to ``max_rows`` pending rows, oldest first."""
        report = CycleReport()
        rows = self._pending()
        if not rows:
            return report
        report.rows = len(rows)
        groups, finals, empty = self._parse(rows, report)
        if empty:
            self._finish_empty(empty, report)
        order = {e: n for n, e in enumerate(ENTITY_ORDER)}
        received = {r["id"]: r["received_at"] for r in rows}
        failed: set[str] = set()
        for key in sorted(groups, key=lambda k: (order.get(k[1], len(order)), k[0])):
            g = groups[key]
            for row_id in failed & set(g.rows):     # a row that failed in an earlier group waits as a whole
                del g.rows[row_id]
            if g.rows:
                failed |= self._run_group(g, finals, received, report)
        if groups:
            planner_stats.refresh(self.engine)   # a burst of events grows tables as a load does
        return report

    def _pending(self) -> list[dict[str, Any]]:
        it = Inbox.__table__
        now = time.monotonic()
        skip = {i for i, t in self._not_before.items() if t > now}
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(
                select(it).where(it.c.status == "pending").order_by(it.c.received_at, it.c.id)
                .limit(self.max_rows + len(skip))).mappings()]
        return [r for r in rows if r["id"] not in skip][: self.max_rows]

    def _parse(self, rows: list[dict[str, Any]], report: CycleReport
               ) -> tuple[dict[tuple[str, str], _Group], dict[str, tuple[str, str]], list[str]]:
        """Parse rows into groups; the group that finishes each row is the last one it takes part in."""
        groups: dict[tuple[str, str], _Group] = {}
        failed: list[tuple[dict[str, Any], str, bool]] = []
        empty: list[str] = []
        fetches: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
        for row in rows:
            name = row["connector"]
            c = self.parts.cfg.connectors.get(name)
            if c is None or c.direction == "out":
                failed.append((row, f"connector '{name}' is not configured to receive changes", True))
                continue
            try:
                connector = self.parts.connector(name)
            except Exception as exc:  # a config problem: the row waits for the fix
                failed.append((row, f"connector '{name}' cannot be set up: {exc}", False))
                continue
            try:
                headers, body, query = unpack(row)
                events = call_hook(connector.parse_webhook, headers, body, query)
            except Exception as exc:  # whatever the body holds, the row must end up visible
                failed.append((row, f"cannot read the delivery: {type(exc).__name__}: {exc}", True))
                continue
            bad = [str(e.entity) for e in events if not isinstance(e.entity, str) or e.entity not in c.entities]
            if bad:
                failed.append((row, f"connector '{name}' does not sync {', '.join(sorted(set(bad)))}", True))
                continue
            if not events:
                empty.append(row["id"])
            for ev in events:
                g = groups.setdefault((name, ev.entity), _Group(name, ev.entity))
                part = g.rows.setdefault(row["id"], {"records": [], "deleted": []})
                part["records"] += ev.records
                part["deleted"] += [str(x) for x in ev.deleted]
                if ev.fetch_ids:
                    fetches.setdefault((name, ev.entity), []).append((row["id"], [str(x) for x in ev.fetch_ids]))
        for (name, entity), wanted in fetches.items():
            g = groups[(name, entity)]
            ids = sorted({i for _, ids in wanted for i in ids})
            try:
                found = self.parts.connector(name).fetch(self.parts.stream_spec(name, entity, None), ids)
            except Exception as exc:  # the system is away: the rows wait and are tried again
                for row_id, _ in wanted:
                    g.rows.pop(row_id, None)
                    failed.append((next(r for r in rows if r["id"] == row_id),
                                   f"cannot fetch {entity} {', '.join(ids[:5])} from {name}: {exc}", False))
                continue
            key = self.parts.mapping(name, entity).key
            by_id = {str(r.get(key)): r for r in found}
            for row_id, row_ids in wanted:
                if row_id in g.rows:
                    g.rows[row_id]["records"] += [by_id[i] for i in row_ids if i in by_id]
        waiting = {row["id"] for row, _, final in failed if not final}
        for g in groups.values():          # a row that waits takes part in none of its groups now
            for row_id in waiting & set(g.rows):
                del g.rows[row_id]
        self._fail(failed, report)
        finals: dict[str, tuple[str, str]] = {}
        order = {e: n for n, e in enumerate(ENTITY_ORDER)}
        for key in sorted(groups, key=lambda k: (order.get(k[1], len(order)), k[0])):
            for row_id in groups[key].rows:
                finals[row_id] = key
        return {k: g for k, g in groups.items() if g.rows}, finals, empty

    # -- one group, one transaction ----------------------------------------------------------------
    def _run_group(self, g: _Group, finals: dict[str, tuple[str, str]], received: dict[str, datetime],
                   report: CycleReport, *, isolate: bool = True) -> set[str]:
        """One group in one transaction; returns the rows that failed (they wait for a later cycle)."""
        key = (g.connector, g.entity)
        finishing = [i for i in g.rows if finals.get(i) == key]
        try:
            ctx, run = self._context(*key)
            ctx.now = utcnow()
            records, values = self._drop_stale(ctx, g.records(), report)
            if ctx.validator is not None and values:
                ctx = replace(ctx, validator=Prevalidated(ctx.validator, values))
            with self.engine.connect() as conn:
                tx = conn.begin()
                try:
                    if not self._guard(conn, list(g.rows), finishing, ctx.now):
                        tx.rollback()
                        log.info("inbox rows of %s/%s were taken by another worker", *key)
                        return set(g.rows)
                    stats = process_batch(conn, ctx, records, g.deleted())
                    _mark_resolved(conn, stats.resolved_quarantine, ctx.now)
                    run.absorb(stats)
                    _save_run(conn, run)
                    ot = Outbox.__table__
                    created = list(conn.scalars(select(ot.c.id).where(
                        ot.c.run_id == ctx.run_id, ot.c.created_at >= ctx.now, ot.c.status == "pending")))
                    planner_stats.count_now(conn)
                except BaseException:
                    tx.rollback()
                    raise
                tx.commit()
        except Exception as exc:
            if isolate and len(g.rows) > 1:   # find the row that fails; the others go through
                log.warning("inbox group %s/%s failed (%s); retrying its %d rows one by one", *key, exc, len(g.rows))
                failed: set[str] = set()
                for row_id, part in g.rows.items():
                    failed |= self._run_group(_Group(g.connector, g.entity, {row_id: part}), finals, received,
                                              report, isolate=False)
                return failed
            log.warning("inbox rows %s of %s/%s failed: %s", ", ".join(g.rows), *key, exc)
            rows = self._rows(list(g.rows))
            self._fail([(r, f"{type(exc).__name__}: {exc}", False) for r in rows], report)
            return set(g.rows)
        report.done += len(finishing)
        report.outbox_ids += created
        now = utcnow()
        for row_id in finishing:
            self._not_before.pop(row_id, None)
            if self.metrics is not None and row_id in received:
                self.metrics.observe("triad_inbox_processing_seconds", (now - received[row_id]).total_seconds())
        if self.metrics is not None:
            self.metrics.inc("triad_inbox_events_processed_total", len(finishing), connector=g.connector,
                             status="done")
            if stats.counts["conflicts"]:
                self.metrics.inc("triad_conflicts_opened_total", stats.counts["conflicts"], connector=g.connector)
        if stats.counts["created"] or stats.counts["linked"]:
            report.outbox_ids += self._retry_waiting(g.connector, g.entity)
        return set()

    @staticmethod
    def _guard(conn: Connection, row_ids: list[str], finishing: list[str], now: datetime) -> bool:
        """Take the rows in this transaction (still pending?) and mark the finishing ones done."""
        it = Inbox.__table__
        fin = set(finishing)
        n = 0
        for part in chunks([i for i in row_ids if i in fin]):
            n += conn.execute(update(it).where(it.c.id.in_(part), it.c.status == "pending").values(
                status="done", processed_at=now, error=None, attempts=it.c.attempts + 1)).rowcount
        for part in chunks([i for i in row_ids if i not in fin]):
            n += conn.execute(update(it).where(it.c.id.in_(part), it.c.status == "pending")
                              .values(attempts=it.c.attempts)).rowcount
        return n == len(row_ids)

    def _drop_stale(self, ctx: StreamContext, records: list[dict[str, Any]], report: CycleReport
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Skip records older than what the hub already holds from this system (webhooks arrive out of order).

        Returns the records to run and the canonical values of the ones that map (the last per key).
        """
        mapped: list[tuple[dict[str, Any], str | None, datetime | None]] = []
        values: dict[str, dict[str, Any]] = {}
        for raw in records:
            try:
                rec = ctx.mapping.to_canonical(raw)
                mapped.append((raw, rec.source_id, rec.source_ts))
                values.pop(rec.source_id, None)
                values[rec.source_id] = rec.values
            except Exception:  # the pipeline parks it with the reason
                mapped.append((raw, None, None))
        if not records or not ctx.mapping.updated_at:
            return records, list(values.values())
        st = SourceState.__table__
        seen: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for part in chunks(sorted({sid for _, sid, _ in mapped if sid})):
                for r in conn.execute(select(st.c.source_id, st.c.source_ts).where(
                        st.c.entity == ctx.entity, st.c.system == ctx.system, st.c.source_id.in_(part))):
                    if r.source_ts is not None:
                        seen[r.source_id] = r.source_ts
        stale = {sid for _, sid, ts in mapped if sid in seen and ts is not None and ts < seen[sid]}
        keep = [raw for raw, sid, ts in mapped if not (sid in seen and ts is not None and ts < seen[sid])]
        if len(keep) < len(records):
            report.stale += len(records) - len(keep)
            if self.metrics is not None:
                self.metrics.inc("triad_inbox_records_stale_total", len(records) - len(keep), connector=ctx.system)
        return keep, [v for sid, v in values.items() if sid not in stale]

    def _retry_waiting(self, name: str, entity: str) -> list[str]:
        """Records of this connector parked for a reference that may have just arrived go through now."""
        out: list[str] = []
        after = ENTITY_ORDER[ENTITY_ORDER.index(entity) + 1:] if entity in ENTITY_ORDER else ()
        for later in after:
            if later not in self.parts.cfg.connectors[name].entities:
                continue
            ctx, run = self._context(name, later)
            ctx.now = utcnow()
            try:
                if _retry_parked(self.engine, ctx, run, False, kinds=("unresolved_ref",)):
                    ot = Outbox.__table__
                    with self.engine.connect() as conn:
                        out += list(conn.scalars(select(ot.c.id).where(
                            ot.c.run_id == ctx.run_id, ot.c.created_at >= ctx.now, ot.c.status == "pending")))
            except Exception as exc:  # the scheduled sync retries them too
                log.warning("retrying parked %s/%s failed: %s", name, later, exc)
        return out

    # -- bookkeeping -------------------------------------------------------------------------------
    def _context(self, name: str, entity: str) -> tuple[StreamContext, RunReport]:
        """The stream's context and its open run (a ``webhook`` sync_run, rotated every 15 minutes)."""
        entry = self._runs.get((name, entity))
        if entry is not None and time.monotonic() - entry[2] < RUN_ROTATION.total_seconds():
            return entry[0], entry[1]
        if entry is not None:
            self._close_run(entry[1])
        p = self.parts
        report = RunReport(new_id(), name, entity)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(SyncRun.__table__), [{
                "id": report.id, "connector": name, "entity": entity, "kind": "webhook", "status": "running",
                "dry_run": False, "stats": report.counts, "cursor": None, "error": None, "user": self.worker,
                "started_at": now, "finished_at": None}])
        ctx = StreamContext(system=name, entity=entity, mapping=p.mapping(name, entity), rules=p.rules(entity),
                            exact_keys=p.exact_keys(entity), out_systems=p.out_systems(entity),
                            delete_targets=p.delete_targets(entity), run_id=report.id, now=now,
                            validator=p.validator(name, entity), matcher=_matcher(p, entity),
                            out_fields=p.out_fields(entity))
        self._runs[(name, entity)] = (ctx, report, time.monotonic())
        return ctx, report

    def _close_run(self, report: RunReport) -> None:
        report.status = "ok"
        try:
            with self.engine.begin() as conn:
                _save_run(conn, report, finished=True)
        except Exception as exc:  # closing must not hide the reason the worker stops
            log.warning("cannot close run %s: %s", report.id, exc)

    def close(self) -> None:
        """Finish the runs this processor opened."""
        for _, report, _ in self._runs.values():
            self._close_run(report)
        self._runs.clear()

    def _rows(self, ids: list[str]) -> list[dict[str, Any]]:
        it = Inbox.__table__
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(it.c.id, it.c.connector, it.c.attempts)
                                                  .where(it.c.id.in_(ids))).mappings()]

    def _finish_empty(self, ids: list[str], report: CycleReport) -> None:
        it = Inbox.__table__
        with self.engine.begin() as conn:
            n = conn.execute(update(it).where(it.c.id.in_(ids), it.c.status == "pending").values(
                status="done", processed_at=utcnow(), attempts=it.c.attempts + 1)).rowcount
        report.done += n

    def _fail(self, failed: list[tuple[dict[str, Any], str, bool]], report: CycleReport) -> None:
        """Record why rows failed: final ones become ``error``, the others wait (backing off) and try again."""
        once = {row["id"]: (row, message, final) for row, message, final in reversed(failed)}
        if not once:
            return
        it = Inbox.__table__
        now = utcnow()
        with self.engine.begin() as conn:
            for row, message, final in once.values():
                attempts = row["attempts"] + 1
                status = "error" if final or attempts >= MAX_ATTEMPTS else "pending"
                conn.execute(update(it).where(it.c.id == row["id"], it.c.status == "pending").values(
                    status=status, attempts=attempts, error=message[:4000],
                    processed_at=now if status == "error" else None))
                if status == "error":
                    report.errors += 1
                    self._not_before.pop(row["id"], None)
                    log.error("inbox row %s of %s failed for good: %s", row["id"], row["connector"], message)
                    if self.metrics is not None:
                        self.metrics.inc("triad_inbox_events_processed_total", connector=row["connector"],
                                         status="error")
                else:
                    report.retry += 1
                    self._not_before[row["id"]] = time.monotonic() + min(60.0, 2.0 ** attempts)


class Prevalidated:
    """A validator answering from one run made before the transaction, row by row.

    The pipeline validates the rows that changed; their outcomes are looked up by
    their values. A row that was not in the earlier run (none should be) is validated
    on the spot. Expectations on the whole batch see the group as it was received.
    """

    def __init__(self, inner: Any, rows: list[dict[str, Any]]) -> None:
        self.inner = inner
        result = inner.validate(rows)
        self.table_failures = list(getattr(result, "table_failures", []))
        self.failures: dict[str, list] = {}
        for n, row in enumerate(rows):
            self.failures[_fingerprint(row)] = result.row_failures.get(n, [])

    def validate(self, rows: list[dict[str, Any]]) -> Any:
        from hub.validation import ValidationResult
        out = ValidationResult(table_failures=list(self.table_failures))
        unknown = []
        for n, row in enumerate(rows):
            found = self.failures.get(_fingerprint(row))
            if found is None:
                unknown.append(n)
            elif found:
                out.row_failures[n] = found
        if unknown:
            late = self.inner.validate([rows[n] for n in unknown])
            for i, n in enumerate(unknown):
                if i in late.row_failures:
                    out.row_failures[n] = late.row_failures[i]
        return out


def _fingerprint(row: dict[str, Any]) -> str:
    return values_hash(encode_record(row))
