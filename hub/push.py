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

Its parts: :mod:`hub.push_claim` takes rows, :mod:`hub.push_deliver` writes a batch to its system,
:mod:`hub.push_rules` says what waits and resolves references, :mod:`hub.push_settle` records outcomes.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine

from hub import planner_stats
from hub.errors import LimitExceeded, RetriableError, TriadError
from hub.liveness import worker_id
from hub.push_claim import CLAIM, _claim, _claim_ids, _release, _serialize_claims
from hub.push_deliver import _deliver
from hub.push_settle import PushReport, _fail_all, _mark_done, _settle_failures
from hub.retry_tally import counting_retries
from hub.streams import ENTITY_ORDER, Parts

# helpers other modules (hub.subscriptions) and tests take from here
__all__ = ["CLAIM", "PushReport", "push", "push_ids", "push_stream",
           "_claim", "_claim_ids", "_mark_done", "_serialize_claims", "_settle_failures"]

log = logging.getLogger(__name__)


def push(engine: Engine, parts: Parts, connectors: tuple[str, ...] = (), *, worker: str | None = None,
         max_batches: int | None = None, cancel: threading.Event | None = None) -> list[PushReport]:
    """Drain due outbox rows of every out/both connector, entity by entity in reference order.

    ``worker`` names the claims (default this process, ``host:pid``); ``cancel`` stops after the
    batch in progress (claimed rows are always settled).
    """
    worker = worker or worker_id()
    planner_stats.refresh_outbox(engine)    # claims read the pending rows through their index
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
        with counting_retries() as retried:
            try:
                _deliver(engine, parts, name, entity, claimed, report)
            finally:
                report.counts["retried"] += retried[0]
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
