"""CLI commands for scheduled and continuous work: `triad scheduler start | jobs` and `triad worker`.

Standalone click objects; cli.py registers them with ``main.add_command``.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

import click

from hub.clikit import emit, pass_ctx, reporting
from hub.context import Context


def _admin(ctx: Context, target: str) -> None:
    from hub.rbac import principal, require
    engine = ctx.engine()
    require(engine, principal(engine, ctx.config(), ctx.user), "admin", target=target)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C): the work in progress finishes its batch."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():       # `timeout` signals the process and then its group: one line is enough
            return
        logging.getLogger("hub").warning("%s received: finishing the current batch", signal.Signals(signum).name)
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _show_progress() -> None:
    """Long-running commands report each run on stderr unless -v asked for more already."""
    for name in ("hub.scheduler", "hub.worker"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


@click.group()
def scheduler() -> None:
    """Run the `schedules` of triad.yaml (sync streams and push) as persistent jobs."""


@scheduler.command("start")
@pass_ctx
def scheduler_start(ctx: Context) -> None:
    """Run scheduled syncs and pushes until SIGTERM or Ctrl-C, then finish the current batch.

    Jobs live in the hub database; several schedulers may share a PostgreSQL store:
    a stream never runs twice at once.

    \b
    Example (triad.yaml):
      schedules:
        - {connector: erp, entity: customer, every: 5m}
        - {push: all, every: 30s}
    then:
      triad scheduler start
    """
    from hub import render
    from hub.scheduler import start
    engine = ctx.engine()
    _admin(ctx, "scheduler start")
    cfg = ctx.config()
    if not cfg.schedules:
        from hub.errors import UsageError
        raise UsageError(f"{cfg.path}: no schedules to run; add e.g. `schedules: [{{connector: erp, every: 5m}}]`")
    _show_progress()
    stop = _stop_on_signals()

    def started(jobs: list[dict[str, Any]]) -> None:
        render.say(f"scheduler running {len(jobs)} job(s): " + ", ".join(f"{j['id']} ({j['schedule']})"
                                                                           for j in jobs))
        sys.stdout.flush()
    start(engine, cfg, stop, user=ctx.user, on_started=started)
    render.say("scheduler stopped")


@scheduler.command("jobs")
@reporting
@pass_ctx
def scheduler_jobs(ctx: Context) -> None:
    """List the scheduled jobs with their next run times (and schedules not started yet).

    \b
    Example:
      triad scheduler jobs --json
    """
    from hub import render
    from hub.scheduler import list_jobs
    jobs = list_jobs(ctx.engine(), ctx.config())

    def human() -> None:
        render.table("jobs", ["id", "schedule", "next run (UTC)", "installed"],
                     [(j["id"], j["schedule"], j["next_run_at"] or "", "yes" if j["installed"] else "no")
                      for j in jobs])
        if any(not j["installed"] for j in jobs):
            render.hint("install and run them: triad scheduler start")
    emit(ctx, {"jobs": jobs}, human)


@click.command()
@click.option("--interval", default=60.0, show_default=True,
              help="Seconds between cycles (webhook events are taken every second all the same).")
@click.option("--once", is_flag=True, help="One cycle, then exit (exit 1 if a stream or push failed).")
@click.option("--no-inbox", is_flag=True, help="Leave webhook events to `triad serve`.")
@reporting
@pass_ctx
def worker(ctx: Context, interval: float, once: bool, no_inbox: bool) -> None:
    """Process webhook events, every inbound stream and the outbox, in a loop (several may run).

    Streams are taken through leases and outbox rows through claims, so workers and
    schedulers on one store never do the same work twice. SIGTERM finishes the batch.

    \b
    Examples:
      triad worker --interval 30
      triad worker --once --json
    """
    from hub import render
    from hub.worker import run_worker
    engine = ctx.engine()
    _admin(ctx, "worker")
    _show_progress()
    stop = _stop_on_signals()
    totals = run_worker(engine, ctx.config(), interval=interval, once=once, inbox=not no_inbox, cancel=stop,
                        user=ctx.user)
    failed = any(r["status"] == "error" for r in totals["runs"]) or any(
        p["status"] == "error" or p["dead"] or p["failed"] for p in totals["pushes"])   # as `sync push`

    def human() -> None:
        render.say(f"{totals['cycles']} cycle(s), {totals['inbox_rows']} webhook event(s) processed")
        cols = ["connector", "entity", "status", "read", "created", "updated", "queued"]
        render.table("last cycle: sync", cols, [[r[c] for c in cols] for r in totals["runs"]])
        cols = ["connector", "entity", "status", "written", "created", "failed", "dead"]
        render.table("last cycle: push", cols, [[p[c] for c in cols] for p in totals["pushes"]])
    emit(ctx, totals, human)
    if once and failed:
        sys.exit(1)
