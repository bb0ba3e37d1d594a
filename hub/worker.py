"""Background work: the inbox and push threads behind `triad serve`, and the `triad worker` loop.

The inbox thread sleeps until a delivery arrives (or ``poll_seconds`` pass, for rows
stored by other processes or left by a crash), lets the gathering window pass so
the events of a burst share one pipeline batch, and delivers the outbox rows each
batch created right after its commit. A batch that changed golden records also runs
the `flows:` (an approval callback moves its run on at once) and delivers what they
queue. A sweep thread delivers every due row (retries, backlog) every
``push_interval_seconds``, after running the flows if anything else changed the golden
records meanwhile. Each thread builds its own :class:`hub.streams.Parts`, so no
connector session is shared between threads.

``serve`` options in triad.yaml: ``window_ms`` (150), ``poll_seconds`` (1),
``push_interval_seconds`` (10; 0 turns the sweep off), ``max_rows`` (500 rows per cycle),
``worker`` (true; false leaves the inbox to `triad worker`).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from hub.config import TriadConfig
from hub.inbox_processor import InboxProcessor
from hub.push import PushReport, push, push_ids
from hub.streams import Parts, inbound_streams
from hub.liveness import worker_id
from hub.sync import run_sync

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RealtimeOptions:
    window: float = 0.15
    poll: float = 1.0
    push_interval: float = 10.0
    max_rows: int = 500
    enabled: bool = True

    @classmethod
    def from_config(cls, serve: Any) -> "RealtimeOptions":
        """From the checked ``serve:`` section (hub.config.ServeConfig)."""
        return cls(window=serve.window_ms / 1000.0, poll=serve.poll_seconds, push_interval=serve.push_interval_seconds,
                   max_rows=serve.max_rows, enabled=serve.worker)


class Notifier:
    """Wakes the inbox thread; remembers when the first event not yet taken arrived."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._first: float | None = None

    def notify(self) -> None:
        with self._cond:
            if self._first is None:
                self._first = time.monotonic()
            self._cond.notify_all()

    def wait(self, timeout: float) -> float | None:
        """Block until notified or ``timeout``; the monotonic arrival time of the first new event, or None."""
        with self._cond:
            if self._first is None:
                self._cond.wait(timeout)
            first, self._first = self._first, None
            return first


def count_pushes(metrics: Any, reports: list[PushReport]) -> None:
    if metrics is None:
        return
    for r in reports:
        for result in ("written", "failed", "dead"):
            if r.counts[result]:
                metrics.inc("triad_outbox_pushed_total", r.counts[result], connector=r.connector, result=result)


class SweepThread(threading.Thread):
    """Delivers every due outbox row now and then: retries after a backoff, rows left by a crash."""

    def __init__(self, engine: Engine, cfg: TriadConfig, options: RealtimeOptions, metrics: Any = None) -> None:
        super().__init__(name="triad-push-sweep", daemon=True)
        self.engine, self.cfg, self.options, self.metrics = engine, cfg, options, metrics
        self.halt = threading.Event()

    def stop(self) -> None:
        self.halt.set()

    def run(self) -> None:
        parts = Parts(self.cfg)
        name = worker_id("sweep")
        try:
            while not self.halt.is_set():
                move_flows(self.engine, parts)
                try:
                    count_pushes(self.metrics, push(self.engine, parts, worker=name, max_batches=1, cancel=self.halt))
                except Exception:  # the rows stay pending; the next sweep tries again
                    log.exception("push sweep failed")
                self.halt.wait(self.options.push_interval)
        finally:
            parts.close()


class InboxThread(threading.Thread):
    """Processes pending inbox rows in micro-batches until stopped, pushing each batch's changes at once.

    The push runs in this thread, right after the batch commits: on SQLite a second
    writer thread would only queue behind the batch transactions for the write lock.
    """

    def __init__(self, engine: Engine, cfg: TriadConfig, notifier: Notifier, options: RealtimeOptions,
                 metrics: Any = None) -> None:
        super().__init__(name="triad-inbox", daemon=True)
        self.engine, self.cfg, self.notifier, self.options = engine, cfg, notifier, options
        self.metrics = metrics
        self.halt = threading.Event()
        self.ready = threading.Event()
        self.finished = 0       # rows done or in error, for `triad worker`'s totals

    def stop(self) -> None:
        self.halt.set()
        self.notifier.notify()

    def run(self) -> None:
        parts = Parts(self.cfg)
        name = worker_id("inbox")
        proc = InboxProcessor(self.engine, parts, worker=name, metrics=self.metrics, max_rows=self.options.max_rows)

        def deliver(ids: list[str]) -> None:
            started = time.perf_counter()
            count_pushes(self.metrics, push_ids(self.engine, parts, ids, worker=name))
            log.debug("pushed %d outbox row(s) in %.0f ms", len(ids), (time.perf_counter() - started) * 1000)
        try:
            warm(parts)
            start_flows(self.engine, self.cfg)
            self.ready.set()
            while not self.halt.is_set():
                try:
                    finished = drain(proc, deliver, self.halt)
                except Exception:  # the rows stay pending; try again shortly
                    log.exception("inbox thread: cycle failed")
                    self.halt.wait(1.0)
                else:
                    self.finished += finished
                    if finished:
                        move_flows(self.engine, parts, deliver)
                first = self.notifier.wait(self.options.poll)
                if first is not None and self.options.window > 0:
                    delay = first + self.options.window - time.monotonic()
                    if delay > 0:
                        self.halt.wait(delay)      # let the burst gather into one batch
        finally:
            self.ready.set()
            proc.close()
            parts.close()


def drain(proc: InboxProcessor, deliver: Any, halt: threading.Event) -> int:
    """Run cycles until the inbox has nothing due, handing each cycle's outbox rows to ``deliver``."""
    finished = 0
    while not halt.is_set():
        started = time.perf_counter()
        rep = proc.run_once()
        if rep.rows:
            log.debug("inbox cycle: %d row(s), %d done, %d error(s), %d waiting, %d outbox row(s) in %.0f ms",
                      rep.rows, rep.done, rep.errors, rep.retry, len(rep.outbox_ids),
                      (time.perf_counter() - started) * 1000)
        finished += rep.done + rep.errors
        if rep.outbox_ids and deliver is not None:
            deliver(rep.outbox_ids)
        if rep.rows < proc.max_rows or rep.done + rep.errors + rep.retry == 0:
            break
    return finished


def start_flows(engine: Engine, cfg: TriadConfig) -> None:
    """Flows count the changes from this process's start on (the first pass would place the cursor later)."""
    if not cfg.flows:
        return
    from hub.flows import start_cursor
    try:
        start_cursor(engine)
    except Exception:  # the first pass places it instead
        log.exception("flows: could not place the history cursor")


def move_flows(engine: Engine, parts: Parts, deliver: Any = None, *, changed_only: bool = True) -> None:
    """Start and move the flows after golden changes, handing the outbox rows they queue to ``deliver``.

    A flow error is logged and the caller goes on: its runs stay open for the next pass.
    """
    if not parts.cfg.flows:
        return
    from hub.flows import run_flows
    try:
        report = run_flows(engine, parts, changed_only=changed_only)
    except Exception:
        log.exception("flows: could not start or move runs; the next pass tries again")
        return
    if report.started or report.advanced:
        log.info("flows: %d started, %d moved (%d waiting, %d done, %d failed)", report.started, report.advanced,
                 report.waiting, report.done, report.failed)
    if report.outbox_ids and deliver is not None:
        try:
            deliver(report.outbox_ids)
        except Exception:   # the rows stay pending for the sweep
            log.exception("flows: delivering %d outbox row(s) failed", len(report.outbox_ids))


def warm(parts: Parts) -> None:
    """Build mappings and validators up front, so the first event does not pay for them."""
    for name, entity in inbound_streams(parts.cfg):
        try:
            parts.validator(name, entity, prepare=True)
        except Exception as exc:  # reported again, per row, when an event needs it
            log.warning("cannot prepare %s/%s: %s", name, entity, exc)


class RealtimeWorker:
    """The two threads of `triad serve`, started and stopped together."""

    def __init__(self, engine: Engine, cfg: TriadConfig, notifier: Notifier, metrics: Any = None) -> None:
        self.options = RealtimeOptions.from_config(cfg.serve)
        self.inbox = InboxThread(engine, cfg, notifier, self.options, metrics)
        self.sweep = SweepThread(engine, cfg, self.options, metrics) if self.options.push_interval > 0 else None

    def start(self) -> None:
        self.inbox.start()
        if self.sweep is not None:
            self.sweep.start()

    @property
    def alive(self) -> bool:
        return self.inbox.is_alive()

    @property
    def state(self) -> str:
        """starting (preparing mappings and validators), running, or stopped."""
        if not self.inbox.is_alive():
            return "stopped"
        return "running" if self.inbox.ready.is_set() else "starting"

    def stop(self, timeout: float = 30.0) -> None:
        """Let the batch in progress commit, then stop both threads."""
        self.inbox.stop()
        if self.sweep is not None:
            self.sweep.stop()
        self.inbox.join(timeout)
        if self.sweep is not None:
            self.sweep.join(timeout)


def run_worker(engine: Engine, cfg: TriadConfig, *, interval: float = 60.0, once: bool = False,
               inbox: bool = True, cancel: threading.Event | None = None, user: str | None = None) -> dict[str, Any]:
    """`triad worker`: inbox, then every inbound stream, then the outbox; again every ``interval`` seconds.

    Looping, the inbox has its own thread polling every ``serve.poll_seconds`` (1 s), so a webhook
    event waits neither for ``interval`` nor for a long stream sync or push. On SQLite its
    transactions take turns with the cycle's batches (BEGIN IMMEDIATE), as in `triad serve`.
    ``once`` takes the inbox first, in this thread, and exits after the cycle.

    Streams are taken through their leases and outbox rows through claims, so any number
    of workers (and schedulers) can run side by side without doing the same work twice.
    """
    cancel = cancel or threading.Event()
    parts = Parts(cfg)
    name = worker_id()
    proc = InboxProcessor(engine, parts, worker=f"{name}:inbox", max_rows=500) if inbox and once else None
    events = _worker_inbox(engine, cfg) if inbox and not once else None
    totals: dict[str, Any] = {"cycles": 0, "inbox_rows": 0, "runs": [], "pushes": []}
    start_flows(engine, cfg)
    try:
        if events is not None:
            events.start()
        while not cancel.is_set():
            totals["cycles"] += 1
            if proc is not None:
                totals["inbox_rows"] += drain(proc, lambda ids: push_ids(engine, parts, ids, worker=name), cancel)
            runs = run_sync(engine, parts, user=user or name, cancel=cancel)
            if not cancel.is_set():
                move_flows(engine, parts, changed_only=False)   # every open run, as `triad flows run`
            pushes = push(engine, parts, worker=name, cancel=cancel)
            totals["runs"] = [r.as_dict() for r in runs]          # the last cycle's (memory stays flat)
            totals["pushes"] = [p.as_dict() for p in pushes]
            log.info("worker cycle %d: %d stream run(s), %d push report(s)", totals["cycles"], len(runs), len(pushes))
            if once:
                break
            cancel.wait(interval)
    finally:
        if events is not None:
            events.stop()
            events.join(60)     # the batch in progress commits
            totals["inbox_rows"] += events.finished
        if proc is not None:
            proc.close()
        parts.close()
    return totals


def _worker_inbox(engine: Engine, cfg: TriadConfig) -> InboxThread:
    """The inbox thread of a looping worker: nothing notifies it, so it polls; no gathering window."""
    options = RealtimeOptions.from_config(cfg.serve)
    return InboxThread(engine, cfg, Notifier(), RealtimeOptions(window=0, poll=options.poll,
                                                                max_rows=options.max_rows))
