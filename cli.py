"""The ``triad`` command line: parse, call one hub function, render. Nothing else lives here.

Exit codes: 0 success; 1 the command ran but something failed; 2 bad usage,
bad config or permission denied.
"""
from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable

import click

from hub.context import Context
from hub.errors import TriadError

pass_ctx = click.make_pass_decorator(Context)


def reporting(fn: Callable) -> Callable:
    """Adds ``--json`` to a command (also accepted before the command name)."""
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
    @functools.wraps(fn)
    def wrapper(*args: Any, as_json: bool = False, **kwargs: Any) -> Any:
        ctx = click.get_current_context().find_object(Context)
        if as_json and ctx is not None:
            ctx.as_json = True
        return fn(*args, **kwargs)
    return wrapper


def emit(ctx: Context, data: Any, human: Callable[[], None]) -> None:
    from hub import render
    if ctx.as_json:
        render.print_json(data)
    else:
        human()


class TriadGroup(click.Group):
    """Turns hub errors into one clear line and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TriadError as exc:
            from hub import render
            render.error(str(exc))
            sys.exit(exc.exit_code)


@click.group(cls=TriadGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", metavar="PATH", help="Config file (else $TRIAD_CONFIG, else ./triad.yaml).")
@click.option("--user", "user_name", metavar="NAME", help="Act as this user (else $TRIAD_USER, else the OS login).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one JSON document on stdout.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.version_option(package_name="triad-hub", prog_name="triad")
@click.pass_context
def main(click_ctx: click.Context, config_path: str | None, user_name: str | None, as_json: bool, verbose: int) -> None:
    """Triad keeps ERP, CRM and OA systems consistent through one golden store.

    \b
    Start here:
      triad init demo && cd demo     # a config, mappings and a store
      triad sync run                 # read every connector into the golden store
      triad status                   # streams, records, open conflicts, outbox
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = Context(config_path=config_path, user_name=user_name, as_json=as_json)
    click_ctx.obj = ctx
    click_ctx.call_on_close(ctx.close)


# --- init, config, db ------------------------------------------------------------------------------

@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing triad.yaml.")
@reporting
@pass_ctx
def init(ctx: Context, directory: str, force: bool) -> None:
    """Write triad.yaml, a mappings/ folder and sample exports, and create the database.

    \b
    Example:
      triad init demo && cd demo && triad status
    """
    from hub import render
    from hub.setup import init_project
    result = init_project(directory, force=force)
    emit(ctx, result, lambda: (
        render.say(f"Created {result['config']} and the store at {result['store']}"),
        render.hint(f"cd {directory} && triad config validate && triad sync run")))


@main.group()
def config() -> None:
    """Check the configuration."""


@config.command("validate")
@reporting
@pass_ctx
def config_validate(ctx: Context) -> None:
    """Validate triad.yaml and every mapping it uses; prints the config with secrets as ***.

    \b
    Example:
      triad --config prod.yaml config validate
    """
    from hub import render
    from hub.setup import validate_all
    report = validate_all(ctx.config())
    data = {"ok": not report["problems"], "config": str(ctx.config().path), "problems": report["problems"],
            "connectors": report["connectors"], "effective": ctx.config().printable()}

    def human() -> None:
        render.say(f"config: {data['config']}")
        render.table("connectors", ["name", "type", "direction", "entities"],
                     [(c["name"], c["type"], c["direction"], ", ".join(c["entities"])) for c in report["connectors"]])
        for p in report["problems"]:
            render.error(p)
        render.say("[green]ok[/green]" if data["ok"] else f"[red]{len(report['problems'])} problem(s)[/red]")
    emit(ctx, data, human)
    if report["problems"]:
        sys.exit(2)


@main.group()
def db() -> None:
    """Schema migrations of the hub store (alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@reporting
@pass_ctx
def db_upgrade(ctx: Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: head).

    \b
    Example:
      TRIAD_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/triad triad db upgrade
    """
    from hub import render
    from hub.store import current_revision, upgrade
    engine = ctx.engine(check_schema=False)
    before = current_revision(engine)
    upgrade(engine, revision)
    after = current_revision(engine)
    emit(ctx, {"from": before, "to": after}, lambda: render.say(f"database at revision {after} (was {before or 'empty'})"))


@db.command("current")
@reporting
@pass_ctx
def db_current(ctx: Context) -> None:
    """Show the database's revision and the code's head.

    \b
    Example:
      triad db current --json
    """
    from hub import render
    from hub.store import current_revision, head_revision
    engine = ctx.engine(check_schema=False)
    cur, head = current_revision(engine), head_revision()
    emit(ctx, {"current": cur, "head": head, "up_to_date": cur == head},
         lambda: render.say(f"current: {cur or 'none'}  head: {head}" + ("" if cur == head else "  (run `triad db upgrade`)")))
    if cur != head:
        sys.exit(1)


@db.command("check")
@reporting
@pass_ctx
def db_check(ctx: Context) -> None:
    """Fail (exit 1) when the database is behind or the models and migrations differ.

    \b
    Example:
      triad db check && echo schema ok
    """
    from hub import render
    from hub.store import current_revision, head_revision, schema_diff
    engine = ctx.engine(check_schema=False)
    cur, head = current_revision(engine), head_revision()
    diffs = [str(d) for d in schema_diff(engine)] if cur == head else []
    ok = cur == head and not diffs
    data = {"ok": ok, "current": cur, "head": head, "differences": diffs}

    def human() -> None:
        if cur != head:
            render.error(f"database at {cur or 'none'}, migrations at {head}: run `triad db upgrade`")
        for d in diffs:
            render.error(f"models and migrations differ: {d}")
        if ok:
            render.say(f"[green]ok[/green]: database at {head}, models match the migrations")
    emit(ctx, data, human)
    if not ok:
        sys.exit(1)


# --- status ----------------------------------------------------------------------------------------

@main.command()
@reporting
@pass_ctx
def status(ctx: Context) -> None:
    """Streams, record counts per entity, open conflicts, quarantine and outbox at a glance.

    \b
    Example:
      triad status --json
    """
    from hub import render
    from hub.status import hub_status
    data = hub_status(ctx.engine(), ctx.config(required=False))

    def human() -> None:
        render.table("records", ["entity", "golden", "deleted somewhere"],
                     [(e, c["count"], c["deleted"]) for e, c in data["records"].items()])
        render.table("streams", ["connector", "entity", "cursor", "last run", "status"],
                     [(s["connector"], s["entity"], s["cursor"], s["last_run_at"], s["last_status"]) for s in data["streams"]])
        o = data["outbox"]
        render.kv("open items", [("open conflicts", data["conflicts"]["open"]),
                                 ("parked in quarantine", data["quarantine"]["parked"]),
                                 ("open match candidates", data["matches"]["open"]),
                                 ("outbox pending / dead", f"{o['pending']} / {o['dead']}")])
        for h in data["hints"]:
            render.hint(h)
    emit(ctx, data, human)


if __name__ == "__main__":  # pragma: no cover
    main()
