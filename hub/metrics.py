"""Counters of the real-time path and their Prometheus text exposition (``GET /metrics``).

Counters and the latency histogram live in memory (one :class:`Metrics` per app,
shared by the request handlers and the worker threads); depths are read from the
store at scrape time, so they are right across processes and restarts.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Iterable

from sqlalchemy import Engine, func, select

from hub.types import utcnow

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)

HELP = {
    "triad_webhook_events_received_total": ("counter", "Webhook deliveries accepted and stored in the inbox."),
    "triad_webhook_events_duplicate_total": ("counter", "Replayed deliveries answered without storing them again."),
    "triad_webhook_events_rejected_total": ("counter", "Webhook deliveries refused (bad signature, too large, ...)."),
    "triad_inbox_events_processed_total": ("counter", "Inbox rows the worker finished, by outcome."),
    "triad_inbox_records_stale_total": ("counter", "Records older than what the hub already saw (skipped)."),
    "triad_conflicts_opened_total": ("counter", "Conflicts recorded by the real-time pipeline."),
    "triad_outbox_pushed_total": ("counter", "Outbox changes delivered by the real-time push, by outcome."),
    "triad_inbox_processing_seconds": ("histogram", "Seconds from receipt of a delivery to its commit."),
    "triad_inbox_pending": ("gauge", "Inbox rows waiting for the worker."),
    "triad_inbox_errors": ("gauge", "Inbox rows that could not be processed (status error)."),
    "triad_inbox_lag_seconds": ("gauge", "Age of the oldest pending inbox row."),
    "triad_outbox_depth": ("gauge", "Outbox rows by status."),
    "triad_conflicts_open": ("gauge", "Conflicts waiting for a steward."),
    "triad_worker_up": ("gauge", "1 while the inbox worker thread runs."),
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Thread-safe counters and one histogram."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, Labels], float] = {}
        self._hist: dict[str, list[float]] = {}      # name -> [bucket counts..., sum, count]

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + value

    def observe(self, name: str, seconds: float) -> None:
        with self._lock:
            h = self._hist.setdefault(name, [0.0] * (len(LATENCY_BUCKETS) + 2))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def value(self, name: str, **labels: str) -> float:
        """One counter's value (0 when never incremented); labels must match exactly."""
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0)

    def render(self, engine: Engine | None = None, *, worker_up: bool | None = None) -> str:
        """The Prometheus text exposition: in-memory counters plus depths read from ``engine``."""
        samples: dict[str, list[tuple[str, Labels, float]]] = {}
        with self._lock:
            for (name, labels), v in self._counters.items():
                samples.setdefault(name, []).append((name, labels, v))
            for name, h in self._hist.items():
                rows = samples.setdefault(name, [])
                for i, bound in enumerate(LATENCY_BUCKETS):
                    rows.append((name + "_bucket", (("le", _num(bound)),), h[i]))
                rows.append((name + "_bucket", (("le", "+Inf"),), h[-1]))
                rows.append((name + "_sum", (), h[-2]))
                rows.append((name + "_count", (), h[-1]))
        if engine is not None:
            try:
                for name, labels, v in store_gauges(engine):
                    samples.setdefault(name, []).append((name, labels, v))
            except Exception as exc:  # a scrape must answer even when the store is down
                log.warning("metrics: cannot read the store: %s", exc)
        if worker_up is not None:
            samples["triad_worker_up"] = [("triad_worker_up", (), 1.0 if worker_up else 0.0)]
        lines: list[str] = []
        for name in sorted(samples):
            kind, text = HELP.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            for sample, labels, v in sorted(samples[name], key=lambda s: (s[0], s[1])):
                lines.append(f"{sample}{_labels(labels)} {_num(v)}")
        return "\n".join(lines) + "\n"


def store_gauges(engine: Engine) -> Iterable[tuple[str, Labels, float]]:
    """Depths that must be true across processes: inbox backlog and lag, outbox by status, open conflicts."""
    from hub.models import Conflict, Inbox, Outbox
    it, ot, ct = Inbox.__table__, Outbox.__table__, Conflict.__table__
    with engine.connect() as conn:
        pending, oldest = conn.execute(select(func.count(), func.min(it.c.received_at))
                                       .where(it.c.status == "pending")).one()
        errors = conn.scalar(select(func.count()).where(it.c.status == "error"))
        depth = dict(conn.execute(select(ot.c.status, func.count()).group_by(ot.c.status)).all())
        open_conflicts = conn.scalar(select(func.count()).where(ct.c.status == "open"))
    lag = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    yield "triad_inbox_pending", (), float(pending)
    yield "triad_inbox_errors", (), float(errors or 0)
    yield "triad_inbox_lag_seconds", (), lag
    for status in sorted(set(depth) | {"pending", "dead"}):
        yield "triad_outbox_depth", (("status", status),), float(depth.get(status, 0))
    yield "triad_conflicts_open", (), float(open_conflicts or 0)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))
