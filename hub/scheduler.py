"""`triad scheduler start | jobs`: the `schedules` of triad.yaml as APScheduler jobs kept in the hub database.

One job per schedule entry, with a stable id: ``sync:<connector>:<entity>`` (``*``
when the entry names no entity: the connector's streams run in reference order,
customers before their orders) and ``push:<connector or all>``. Jobs live in
APScheduler's SQLAlchemy job store (table ``apscheduler_jobs`` in the hub store) and
are re-added with ``replace_existing`` on every start; jobs no longer configured are
removed. ``max_instances=1`` and coalescing keep one process from piling runs up;
several schedulers (and workers) sharing a PostgreSQL store never run one stream
twice at once because :func:`hub.sync.run_stream` holds the stream's lease row, and
outbox rows are claimed one by one.

SIGTERM stops the scheduler from starting jobs, sets the cancellation flag that
running syncs and pushes check between batches, and waits for them to commit.

A sync job that changed golden records then runs the `flows:` (new trigger events
start runs, runs waiting on a changed record move on), so hand-offs happen without
a manual `triad flows run`; the outbox rows they queue go out with the push jobs.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from sqlalchemy import Engine

from hub import durations
from hub.config import TriadConfig
from hub.streams import Parts, inbound_streams

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
PREFIXES = ("sync:", "push:")
JOB_FUNC = "hub.scheduler:run_job"
MISFIRE_GRACE = 120          # seconds a late job may still start (a busy or restarted node)
CHANGE_COUNTS = ("created", "updated", "deleted", "linked")   # a sync run that may have written golden history


@dataclass(frozen=True)
class JobSpec:
    id: str
    kind: str                     # sync | push
    connector: str
    entity: str | None
    every: str | None = None
    cron: str | None = None

    @property
    def schedule(self) -> str:
        return f"every {self.every}" if self.every else f"cron {self.cron}"

    def trigger(self) -> Any:
        if self.every:
            from apscheduler.triggers.interval import IntervalTrigger
            return IntervalTrigger(seconds=every_seconds(self.every), timezone=timezone.utc)
        from apscheduler.triggers.cron import CronTrigger
        return CronTrigger.from_crontab(str(self.cron), timezone=timezone.utc)


def every_seconds(text: str) -> float:
    """An ``every:`` interval (``30s``, ``5m``, ``1.5h``, ``2w`` ...) in seconds.

    Raises:
        hub.durations.DurationError: also for 0, which APScheduler would quietly run every second.
    """
    return durations.parse(text, name="every").total_seconds()


def job_specs(cfg: TriadConfig) -> list[JobSpec]:
    """The jobs the config asks for (a repeated entry keeps its first trigger)."""
    out: dict[str, JobSpec] = {}
    for s in cfg.schedules:
        if s.push:
            spec = JobSpec(f"push:{s.push}", "push", s.push, None, s.every, s.cron)
        else:
            spec = JobSpec(f"sync:{s.connector}:{s.entity or '*'}", "sync", str(s.connector), s.entity, s.every, s.cron)
        if spec.id in out:
            log.warning("schedule %s is listed twice; keeping %s", spec.id, out[spec.id].schedule)
            continue
        out[spec.id] = spec
    return list(out.values())


@dataclass
class Runtime:
    """What jobs run with in this process: APScheduler keeps only a function reference and arguments."""

    engine: Engine
    cfg: TriadConfig
    user: str = "scheduler"
    cancel: threading.Event = field(default_factory=threading.Event)
    _local: threading.local = field(default_factory=threading.local)
    _all: list[Parts] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def parts(self) -> Parts:
        """One Parts per executor thread: connector sessions are never shared between running jobs."""
        p = getattr(self._local, "parts", None)
        if p is None:
            p = self._local.parts = Parts(self.cfg)
            with self._lock:
                self._all.append(p)
        return p

    def close(self) -> None:
        with self._lock:
            for p in self._all:
                p.close()
            self._all.clear()


# The job store holds "hub.scheduler:run_job" and its arguments; the running process's engine
# and config cannot be pickled, so the function finds them here (set by `start`, one per process).
_RUNTIME: Runtime | None = None


def run_job(kind: str, connector: str, entity: str | None = None) -> dict[str, Any]:
    """The body of every scheduled job: a sync of one stream (or a connector's streams), or a push."""
    rt = _RUNTIME
    if rt is None or rt.cancel.is_set():
        log.warning("job %s %s skipped: the scheduler is stopping", kind, connector)
        return {"skipped": True}
    from hub.push import push
    from hub.sync import run_stream, worker_id
    parts = rt.parts()
    if kind == "push":
        reports = push(rt.engine, parts, () if connector == "all" else (connector,), worker=f"{worker_id()}:scheduler",
                       cancel=rt.cancel)
        done = {k: sum(r.counts[k] for r in reports) for k in ("written", "created", "failed", "dead")}
        log.info("push %s: %s", connector, ", ".join(f"{v} {k}" for k, v in done.items()))
        return {"pushes": [r.as_dict() for r in reports]}
    streams = [(connector, entity)] if entity else inbound_streams(rt.cfg, (connector,))
    runs = []
    for name, ent in streams:
        if rt.cancel.is_set():
            break
        r = run_stream(rt.engine, parts, name, ent, user=rt.user, cancel=rt.cancel)
        runs.append(r.as_dict())
        level = logging.WARNING if r.status == "error" else logging.INFO
        log.log(level, "sync %s/%s: %s, %d read, %d created, %d updated%s", name, ent, r.status, r.counts["read"],
                r.counts["created"], r.counts["updated"], f" ({r.error})" if r.error else "")
    if rt.cfg.flows and not rt.cancel.is_set() and any(r[k] for r in runs for k in CHANGE_COUNTS):
        from hub.worker import move_flows
        move_flows(rt.engine, parts)     # hand-offs now; their outbox rows go out with the push jobs
    return {"runs": runs}


def make_scheduler(engine: Engine, *, workers: int = 4, stopping: threading.Event | None = None) -> Any:
    """A BackgroundScheduler on the hub store's job table (not started).

    Args:
        stopping: once set, due jobs are no longer handed to the thread pool.
    """
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    store = SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)
    _create_table(store, engine)
    executor = _executor(workers, stopping or threading.Event())
    return BackgroundScheduler(jobstores={"default": store}, executors={"default": executor},
                               job_defaults={"coalesce": True, "max_instances": 1,
                                             "misfire_grace_time": MISFIRE_GRACE},
                               timezone=timezone.utc)


def _executor(workers: int, stopping: threading.Event) -> Any:
    """APScheduler's thread pool, refusing new jobs quietly once ``stopping`` is set.

    APScheduler's loop thread can wake from its timed wait while `shutdown` runs and then
    hand a due job to the pool already shut down: a RuntimeError traceback on every stop.
    ``stopping`` is set before `shutdown` starts, so such a late job is dropped here.
    """
    from apscheduler.executors.pool import ThreadPoolExecutor

    class StoppableExecutor(ThreadPoolExecutor):
        def _do_submit_job(self, job: Any, run_times: list[Any]) -> None:
            if stopping.is_set():
                log.debug("job %s not started: the scheduler is stopping", job.id)
                return
            super()._do_submit_job(job, run_times)
    return StoppableExecutor(workers)


def _create_table(store: Any, engine: Engine) -> None:
    """Create the job table; two nodes starting at once may race on it, which is fine."""
    try:
        store.jobs_t.create(engine, checkfirst=True)
    except Exception as exc:  # another scheduler created it between the check and the CREATE
        from sqlalchemy import inspect
        if not inspect(engine).has_table(JOBSTORE_TABLE):
            raise
        log.debug("job table created concurrently: %s", exc)


def install_jobs(scheduler: Any, specs: list[JobSpec]) -> None:
    """Add or replace the configured jobs; remove the ones no longer configured."""
    wanted = {s.id for s in specs}
    for job in scheduler.get_jobs():
        if job.id.startswith(PREFIXES) and job.id not in wanted:
            log.info("removing job %s (no longer in schedules)", job.id)
            scheduler.remove_job(job.id)
    for s in specs:
        scheduler.add_job(JOB_FUNC, trigger=s.trigger(), args=[s.kind, s.connector, s.entity], id=s.id,
                          name=f"{s.id} ({s.schedule})", replace_existing=True)


def start(engine: Engine, cfg: TriadConfig, stop: threading.Event, *, user: str = "scheduler",
          on_started: Any = None) -> None:
    """Run the configured jobs until ``stop`` is set; then let running jobs finish their batch.

    Args:
        on_started: called with the list of installed jobs once the scheduler runs.
    """
    global _RUNTIME
    specs = job_specs(cfg)
    rt = Runtime(engine, cfg, user=user)
    _RUNTIME = rt
    scheduler = make_scheduler(engine, stopping=rt.cancel)
    try:
        if cfg.flows:
            from hub.flows import start_cursor
            start_cursor(engine)      # the changes of the first sync count for the flows
        scheduler.start(paused=True)
        install_jobs(scheduler, specs)
        scheduler.resume()
        if on_started is not None:
            on_started(describe_jobs(scheduler.get_jobs(), specs))
        while not stop.wait(1.0):
            pass
        log.info("stopping: no new jobs; running jobs finish their current batch")
        rt.cancel.set()           # first: the pool takes no job from here on
        scheduler.shutdown(wait=True)
    finally:
        if scheduler.running:
            rt.cancel.set()
            scheduler.shutdown(wait=True)
        rt.close()
        _RUNTIME = None


def list_jobs(engine: Engine, cfg: TriadConfig) -> list[dict[str, Any]]:
    """Jobs in the store with their next run times, and configured schedules not installed yet."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy import inspect
    specs = job_specs(cfg)
    jobs: list[Any] = []
    if inspect(engine).has_table(JOBSTORE_TABLE):
        # read the store itself: a scheduler that is not running lists only the jobs it was handed
        store = SQLAlchemyJobStore(engine=engine, tablename=JOBSTORE_TABLE)
        store.start(BackgroundScheduler(timezone=timezone.utc), "default")
        jobs = store.get_all_jobs()
    return describe_jobs(jobs, specs)


def describe_jobs(jobs: list[Any], specs: list[JobSpec]) -> list[dict[str, Any]]:
    by_id = {s.id: s for s in specs}
    out = []
    for job in jobs:
        spec = by_id.get(job.id)
        nxt = getattr(job, "next_run_time", None)
        out.append({"id": job.id, "schedule": spec.schedule if spec else str(job.trigger),
                    "next_run_at": nxt.astimezone(timezone.utc).isoformat() if nxt else None,
                    "configured": spec is not None, "installed": True})
    installed = {j.id for j in jobs}
    for s in specs:
        if s.id not in installed:
            out.append({"id": s.id, "schedule": s.schedule, "next_run_at": None, "configured": True,
                        "installed": False})
    return sorted(out, key=lambda j: j["id"])
