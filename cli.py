"""The ``triad`` command line: parse, call one hub function, render. Nothing else lives here.

Exit codes: 0 success; 1 the command ran but something failed; 2 bad usage,
bad config or permission denied.
"""
from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import click

from hub.context import Context
from hub.errors import TriadError, UsageError

from hub.clikit import count_bar, emit, pass_ctx, reporting, spinner  # noqa: E402 - shared with command modules


_raw_args: ContextVar[list[str]] = ContextVar("triad_raw_args", default=[])


def _show_version(click_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`triad --version`; under --json the one document every command prints."""
    if not value or click_ctx.resilient_parsing:
        return
    from importlib.metadata import version
    number = version("triad-hub")
    raw = _raw_args.get()
    if "--json" in (raw[:raw.index("--")] if "--" in raw else raw):
        from hub import render
        render.print_json({"version": number})
    else:
        click.echo(f"triad, version {number}")
    click_ctx.exit()


class TriadGroup(click.Group):
    """Turns hub errors into one clear line and the right exit code."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        from hub import render
        render.start_command()
        raw = list(args)
        _raw_args.set(raw)       # read by the eager --version, which runs before --json is parsed
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:    # a bad global option: Click prints the usage and exits
            _json_usage_failure(exc, raw, None)
            raise
        ctx.meta["triad.raw_args"] = raw
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        from hub import render
        render.start_command()
        try:
            return super().invoke(ctx)
        except TriadError as exc:
            render.error(str(exc))
            obj = ctx.find_object(Context)
            if obj is not None and obj.as_json:
                render.json_failure(str(exc), exc.exit_code)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:    # unknown command, bad option or value: Click prints the usage
            _json_usage_failure(exc, ctx.meta.get("triad.raw_args", []), ctx.find_object(Context))
            raise


def _json_usage_failure(exc: click.ClickException, raw_args: list[str], obj: Context | None) -> None:
    """Under --json, Click's own errors get the failure document too. A command's --json may not be parsed
    yet when Click fails, so the raw arguments (before a ``--``) count as well."""
    from hub import render
    before = raw_args[:raw_args.index("--")] if "--" in raw_args else raw_args
    if (obj is not None and obj.as_json) or "--json" in before:
        no_command = getattr(click.exceptions, "NoArgsIsHelpError", ())    # its message is the whole help text
        message = "Missing command." if isinstance(exc, no_command) else exc.format_message()
        render.json_failure(message, exc.exit_code)


class _TerminalFormatter(logging.Formatter):
    """``warning: message``, as the CLI's own errors read (``error: ...``)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return f"{record.levelname.lower()}: {record.message}"


@click.group(cls=TriadGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", metavar="PATH", help="Config file (else $TRIAD_CONFIG, else ./triad.yaml).")
@click.option("--user", "user_name", metavar="NAME", help="Act as this user (else $TRIAD_USER, else the OS login).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one JSON document on stdout.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
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
    # a one-shot command talks to the admin at the terminal ("warning: ..."); the long-running ones, and -v,
    # keep the time and the logger of each line for the log they end up in
    long_running = click_ctx.invoked_subcommand in ("serve", "worker", "scheduler", "simulate")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
                         if verbose or long_running else _TerminalFormatter())
    logging.basicConfig(level=max(level, logging.DEBUG), handlers=[handler])
    ctx = Context(config_path=config_path, user_name=user_name, as_json=as_json)
    click_ctx.obj = ctx
    click_ctx.call_on_close(ctx.close)
    if user_name is not None and not user_name.strip():
        raise UsageError("--user: a user name cannot be empty (leave the option out to act as $TRIAD_USER "
                         "or the OS login)")


# --- init, config, db ------------------------------------------------------------------------------

@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing triad.yaml (sample exports and mappings "
                                            "already in DIRECTORY are kept).")
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
    named = " (named by $TRIAD_DATABASE_URL)" if result["store_from_env"] else ""
    said = (f"Created {result['config']}; the store at {result['store']}{named} was there already and keeps its "
            f"data (migrated to the current schema)" if result["store_existed"]
            else f"Created {result['config']} and the store at {result['store']}{named}")
    emit(ctx, result, lambda: (
        render.say(said),
        render.hint(f"cd {directory} && triad config validate && triad sync run")))


@main.group()
def config() -> None:
    """Check the configuration."""


@config.command("validate")
@reporting
@pass_ctx
def config_validate(ctx: Context) -> None:
    """Validate triad.yaml and every mapping it uses; --json adds the effective config, secrets as ***.

    \b
    Example:
      triad --config prod.yaml config validate
    """
    from hub import render
    from hub.setup import store_report, validate_all
    report = validate_all(ctx.config())
    # a valid config can name a store that cannot be opened now (a server down, a file not made yet): a warning
    store = store_report(ctx, check=not report["problems"])
    if store["problem"]:
        report["problems" if store["config_error"] else "warnings"].append(store["problem"])
    data = {"ok": not report["problems"], "config": str(ctx.config().path), "problems": report["problems"],
            "warnings": report["warnings"], "connectors": report["connectors"], "store": store,
            "effective": ctx.config().printable()}

    def human() -> None:
        render.say(f"config: {data['config']}")
        render.say(f"store: {store['url']}" + (" (from $TRIAD_DATABASE_URL)" if store["from_env"] else ""))
        render.table("connectors", ["name", "type", "direction", "entities"],
                     [(c["name"], c["type"], c["direction"], ", ".join(c["entities"])) for c in report["connectors"]])
        for p in report["problems"]:
            render.error(p)
        for w in report["warnings"]:
            render.say(f"[yellow]warning[/yellow] {w}")
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
    from hub import audit, render
    from hub.rbac import principal, require
    from hub.store import current_revision, upgrade
    engine = ctx.engine(check_schema=False, create=True)
    before = current_revision(engine)
    # an empty store has no users of its own yet: the config's decide
    who = principal(engine if before is not None else None, ctx.config(required=False), ctx.user)
    require(engine if before is not None else None, who, "admin", target="db upgrade")
    upgrade(engine, revision)
    after = current_revision(engine)
    if after != before:
        audit.record_command(engine, ctx.user, "db.upgrade", after={"from": before, "to": after})
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
    from hub.store import current_revision, describe_difference, head_revision, schema_diff
    engine = ctx.engine(check_schema=False)
    cur, head = current_revision(engine), head_revision()
    diffs = [describe_difference(d) for d in schema_diff(engine)] if cur == head else []
    ok = cur == head and not diffs
    data = {"ok": ok, "current": cur, "head": head, "differences": diffs}

    def human() -> None:
        if cur != head:
            render.error(f"database at {cur or 'none'}, migrations at {head}: run `triad db upgrade`")
        for d in diffs:
            render.error(f"the database and the models differ: {d}")
        if ok:
            render.say(f"[green]ok[/green]: database at {head}, models match the migrations")
    emit(ctx, data, human)
    if not ok:
        sys.exit(1)


def _cursor_text(cursor: object) -> object:
    """A stream cursor as a person reads it: its change time, and for files how many were read in full
    (the whole cursor is in `--json`)."""
    if isinstance(cursor, dict) and "ts" in cursor:
        files = cursor.get("files")
        return (cursor["ts"] or "-") + (f" ({len(files)} file(s) read in full)" if files else "")
    return cursor


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
                     [(s["connector"], s["entity"], _cursor_text(s["cursor"]), s["last_run_at"], s["last_status"])
                      for s in data["streams"]])
        o = data["outbox"]
        render.kv("open items", [("open conflicts", data["conflicts"]["open"]),
                                 ("parked in quarantine", data["quarantine"]["parked"]),
                                 ("open match candidates", data["matches"]["open"]),
                                 ("outbox pending / dead", f"{o['pending']} / {o['dead']}")])
        for h in data["hints"]:
            render.hint(h)
    emit(ctx, data, human)


def _who(ctx: Context):  # noqa: ANN202 - hub.rbac.Principal
    from hub.rbac import principal
    return principal(ctx.engine(), ctx.config(), ctx.user)


def _parts(ctx: Context):  # noqa: ANN202 - hub.streams.Parts
    from hub.streams import Parts
    return Parts(ctx.config())


def _build_connectors(parts, names) -> None:  # noqa: ANN001 - hub.streams.Parts, iterable of names
    """Build the connectors a command will use before any work: an invalid connector setting (an API
    description with an unknown paging style, say) is a config error (exit 2) naming it, not a failed stream."""
    try:
        for name in sorted(names):
            parts.connector(name)
    except BaseException:
        parts.close()
        raise


# --- connectors and mappings ------------------------------------------------------------------------

@main.group()
def connectors() -> None:
    """Configured connectors and installed connector types."""


@connectors.command("list")
@reporting
@pass_ctx
def connectors_list(ctx: Context) -> None:
    """List configured connectors and every installed connector type.

    \b
    Example:
      triad connectors list --json
    """
    from hub import render
    from hub.connector import load_registry
    registry = load_registry()
    cfg = ctx.config(required=False)
    data = {"connectors": [{"name": n, "type": c.type, "direction": c.direction, "entities": list(c.entities),
                            "installed": c.type in registry} for n, c in cfg.connectors.items()],
            "types": [{"type": t, "class": f"{cls.__module__}.{cls.__name__}", "entities": list(cls.entities)}
                      for t, cls in sorted(registry.items())]}

    def human() -> None:
        render.table("configured", ["name", "type", "direction", "entities"],
                     [(c["name"], c["type"], c["direction"], ", ".join(c["entities"])) for c in data["connectors"]])
        render.table("installed types", ["type", "entities", "class"],
                     [(t["type"], ", ".join(t["entities"]), t["class"]) for t in data["types"]])
    emit(ctx, data, human)


@connectors.command("check")
@click.argument("name")
@reporting
@pass_ctx
def connectors_check(ctx: Context, name: str) -> None:
    """Reach a connector's system and prove its credentials work (exit 1 if not).

    A system that does not answer is tried twice, a second apart (a sync run
    retries with backoff, as the connector's `retries` option says).

    \b
    Example:
      triad connectors check crm
    """
    from hub import render
    from hub.http import answering_quickly
    parts = _parts(ctx)
    try:
        with answering_quickly():    # a verdict in seconds: one retry, short waits (a sync run is more patient)
            result = parts.connector(name).check()
    finally:
        parts.close()
    data = {"name": name, "ok": result.ok, "detail": result.detail, "info": result.info}
    emit(ctx, data, lambda: render.say(("[green]ok[/green] " if result.ok else "[red]failed[/red] ") + f"{name}: {result.detail}"))
    if not result.ok:
        sys.exit(1)


@main.group()
def mappings() -> None:
    """Check mapping files and preview what they make of real records."""


@mappings.command("validate")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--entity", help="The entity of FILES (else taken from the file name, e.g. customer.yaml).")
@reporting
@pass_ctx
def mappings_validate(ctx: Context, files: tuple[str, ...], entity: str | None) -> None:
    """Validate the mappings the config uses (or FILES); every problem with file and line.

    \b
    Examples:
      triad mappings validate
      triad mappings validate mappings/crm_customer.yaml --entity customer
    """
    from pathlib import Path

    from hub import render
    from hub.mapping import find_mapping, validate_mapping_file
    targets: list[tuple[str, str]] = []
    if files:
        for f in files:
            ent = entity or Path(f).stem.split("_")[-1]
            targets.append((f, ent))
    else:
        cfg = ctx.config()
        for name, c in cfg.connectors.items():
            for ent, binding in c.entities.items():
                targets.append((str(find_mapping(c.type, ent, binding.mapping, str(cfg.base_dir))), ent))
    problems, checked = [], []
    for path, ent in targets:
        issues = validate_mapping_file(path, ent)
        checked.append({"file": path, "entity": ent, "ok": not issues})
        problems += [str(i) for i in issues]
    data = {"ok": not problems, "files": checked, "problems": problems}

    def human() -> None:
        for c in checked:
            render.say(("[green]ok[/green]     " if c["ok"] else "[red]failed[/red] ") + f"{c['file']} ({c['entity']})")
        for p in problems:
            render.error(p)
    emit(ctx, data, human)
    if problems:
        sys.exit(1)


@mappings.command("preview")
@click.argument("connector")
@click.argument("entity")
@click.option("--limit", default=5, show_default=True, type=click.IntRange(1, 100_000), help="How many source records to show.")
@reporting
@pass_ctx
def mappings_preview(ctx: Context, connector: str, entity: str, limit: int) -> None:
    """Read a few records from CONNECTOR and show raw -> canonical side by side. Writes nothing.

    \b
    Example:
      triad mappings preview crm customer --limit 3
    """
    from hub import render
    from hub.mapping import raw_at, preview
    from hub.rbac import require
    from hub.types import utcnow
    # raw source records, every field of them: what an admin sees, not a role with hidden fields
    require(ctx.engine(), _who(ctx), "admin", target=f"mappings preview {connector} {entity}")
    parts = _parts(ctx)
    try:
        spec = parts.stream_spec(connector, entity, utcnow())
        raws: list[dict] = []
        for batch in parts.connector(connector).read(spec, None):
            raws += batch.records
            if len(raws) >= limit:
                break
        rows = preview(parts.mapping(connector, entity), raws[:limit])
    finally:
        parts.close()
    data = {"connector": connector, "entity": entity, "records": rows}

    def human() -> None:
        from rich.markup import escape
        for n, r in enumerate(rows, 1):
            if "error" in r:
                for e in r.get("errors") or [{"error": r["error"]}]:
                    render.say(f"[red]#{n}: cannot map[/red] {escape(e['error'])}")
                render.table(f"#{n}: the raw record", ["source field", "value"], r["raw"].items())
            else:
                render.table(f"#{n}: {r['source_id']}", ["source field", "raw value", "canonical field", "value"],
                             [(r["sources"].get(f, "(default)"), raw_at(r["raw"], r["sources"].get(f)), f, v)
                              for f, v in r["canonical"].items()])
    emit(ctx, data, human)


# --- sync ------------------------------------------------------------------------------------------

@main.group()
def sync() -> None:
    """Read systems into the golden store, and push changes back out."""


@sync.command("run")
@click.option("--connector", "-c", "connector_names", multiple=True, help="Only this connector (repeatable).")
@click.option("--entity", "-e", "entity_names", multiple=True, help="Only this entity (repeatable).")
@click.option("--full", is_flag=True, help="Ignore the saved cursors and read everything again.")
@click.option("--dry-run", is_flag=True, help="Compute and report everything, write nothing.")
@reporting
@pass_ctx
def sync_run(ctx: Context, connector_names: tuple[str, ...], entity_names: tuple[str, ...], full: bool,
             dry_run: bool) -> None:
    """Read every inbound stream (connector x entity) batch by batch into the golden store.

    Each batch commits together with the stream's cursor: an interrupted run resumes
    where it stopped, and records read again change nothing. Flows (`flows:` in
    triad.yaml) then move on. Exit 1 if a stream or a flow run failed. Ctrl-C lets
    the batch in progress commit and stops (exit 130); Ctrl-C again stops at once.
    SIGTERM (kill, a service manager, timeout) stops the same way (exit 143).
    Columns shown only when not zero: deleted, still_parked, older and retried
    (requests the system failed, timed out or throttled, sent again).

    \b
    Examples:
      triad sync run
      triad sync run --connector crm --entity customer --dry-run
    """
    from hub import render
    from hub.interrupts import finish_batch_on_ctrl_c
    from hub.rbac import require
    from hub.streams import check_selection, inbound_streams
    from hub.sync import run_sync
    engine = ctx.engine()
    require(engine, _who(ctx), "admin", target="sync run")
    parts = _parts(ctx)
    streams = inbound_streams(parts.cfg, connector_names, entity_names)
    check_selection(parts.cfg, connector_names, entity_names, streams)
    _build_connectors(parts, {name for name, _ in streams})
    try:
        with finish_batch_on_ctrl_c(sigterm=True) as interrupted, spinner(ctx, "starting") as say:
            progress = None if say is None else lambda name, entity, counts: say(
                f"{name}/{entity}: {counts['read']} read, {counts['created']} created, {counts['updated']} updated")
            if parts.cfg.flows and not dry_run:
                from hub.flows import start_cursor
                start_cursor(engine)        # flows configured just now react to this sync's changes, not older ones
            reports = run_sync(engine, parts, connectors=connector_names, entities=entity_names, full=full,
                               dry_run=dry_run, user=ctx.user, progress=progress, cancel=interrupted)
            flow_report = None
            if parts.cfg.flows and not dry_run and not interrupted.is_set():
                from hub.flows import run_flows
                flow_report = run_flows(engine, parts).as_dict()
            if not dry_run:   # a dry run changes nothing: nothing to account for
                from hub import audit
                audit.record_command(engine, ctx.user, "sync.run", ",".join(connector_names) or "all", after={
                    "runs": [{"id": r.id, "connector": r.connector, "entity": r.entity, "status": r.status}
                             for r in reports], "full": full})
    except KeyboardInterrupt:   # Ctrl-C twice: the batch in progress rolled back; the spinner is gone by now
        render.error(INTERRUPTED_LINE)
        sys.exit(130)
    finally:
        parts.close()
    data = {"runs": [r.as_dict() for r in reports], "dry_run": dry_run}
    if flow_report:
        data["flows"] = flow_report

    def human() -> None:
        cols = ["connector", "entity", "status", "read", "created", "updated", "unchanged", "linked",
                "quarantined", "conflicts", "queued"]
        if any(r.counts["deleted"] for r in reports):    # flagged deleted in their source (a dry run: would be)
            cols.insert(cols.index("quarantined"), "deleted")
        if any(r.counts["still_parked"] for r in reports):   # parked rows tried again and parked again
            cols.insert(cols.index("quarantined") + 1, "still_parked")
        if any(r.counts["older"] for r in reports):     # among the unchanged: older than the version taken in
            cols.insert(cols.index("unchanged") + 1, "older")
        if any(r.counts["retried"] for r in reports):   # requests the system failed or throttled, sent again
            cols.append("retried")
        render.table("dry run (nothing written)" if dry_run else "sync", cols,
                     [[r.as_dict()[c] for c in cols] for r in reports])
        for r in reports:
            if r.error:   # an ok or stopped run's text says what to know (it resumes next run), not what failed
                (render.error if r.status == "error" else render.note)(f"{r.connector}/{r.entity}: {r.error}")
        tot = {k: sum(r.counts[k] for r in reports) for k in ("conflicts", "quarantined", "queued", "older")}
        if tot["older"]:
            render.hint(f"{tot['older']} row(s) not taken: older than the version taken in (a superseded export "
                        "read again, or the source's clock or mapping timezone changed)")
        if tot["conflicts"]:
            render.hint("conflicts: triad conflicts list")
        if tot["quarantined"]:
            render.hint("parked rows: triad quarantine list")
        if tot["queued"]:
            render.hint("changes for other systems: triad sync push")
        if flow_report and flow_report["failed"]:
            render.error(f"flows: {flow_report['failed']} run(s) failed at a step")
            render.hint("why: triad flows list --status failed; after a fix: triad flows retry RUN_ID")
    emit(ctx, data, human)
    if interrupted.is_set():   # a stopped stream's line above says how to go on
        if not any(r.status == "stopped" for r in reports):
            render.note("interrupted after the last batch: the load is complete")
        sys.exit(128 + interrupted.signum)     # 130 after Ctrl-C, 143 after SIGTERM
    if any(r.status == "error" for r in reports) or (flow_report and flow_report["failed"]):
        sys.exit(1)


INTERRUPTED_LINE = ("interrupted: the run is recorded as stopped; the next `triad sync run` resumes after the last "
                    "committed batch")


@sync.command("push")
@click.option("--connector", "-c", "connector_names", multiple=True, help="Only this connector (repeatable).")
@reporting
@pass_ctx
def sync_push(ctx: Context, connector_names: tuple[str, ...]) -> None:
    """Drain the outbox: write queued changes to each system, creating and linking unknown records.

    \b
    Per connector and entity: written (records written; created: those of them new
    there), unchanged (settled without a write: the system holds those values already),
    failed (retried with backoff), dead, deferred (waiting for a read, a record or a
    steward) and skipped (not to be sent, with the reason in `triad outbox list`);
    retried, when there were any: requests the system failed, timed out or
    throttled and that were sent again.

    Ctrl-C lets the writes in flight finish and be recorded, then stops (exit 130);
    Ctrl-C again stops at once. SIGTERM stops the same way (exit 143).

    \b
    Example:
      triad sync push --connector crm
    """
    from hub import audit, render
    from hub.push import push
    from hub.rbac import require
    engine = ctx.engine()
    require(engine, _who(ctx), "admin", target="sync push")
    parts = _parts(ctx)
    for name in connector_names:
        c = parts.cfg.connectors.get(name)
        if c is None:
            raise UsageError(f"unknown connector '{name}'; configured: {', '.join(parts.cfg.connectors) or 'none'}")
        if c.direction not in ("out", "both"):
            raise UsageError(f"connector '{name}' has direction {c.direction}: Triad does not write to it")
    _build_connectors(parts, connector_names or [n for n, c in parts.cfg.connectors.items()
                                                 if c.direction in ("out", "both")])
    from hub.interrupts import finish_batch_on_ctrl_c
    try:
        with finish_batch_on_ctrl_c(sigterm=True) as interrupted:   # a write in flight gets its answer recorded
            reports = push(engine, parts, connector_names, cancel=interrupted)
    except KeyboardInterrupt:   # Ctrl-C twice: what was in flight is sent again, as a create that may have been
        render.error("interrupted: writes in flight are sent again by the next `triad sync push`")
        sys.exit(130)
    finally:
        parts.close()
    data = {"pushes": [r.as_dict() for r in reports]}
    audit.record_command(engine, ctx.user, "sync.push", ",".join(connector_names) or "all", after={"pushes": [
        {k: d[k] for k in ("connector", "entity", "status", "written", "created", "failed", "dead")}
        for d in data["pushes"]]})

    def human() -> None:
        cols = ["connector", "entity", "status", "written", "created", "unchanged", "failed", "dead", "deferred",
                "skipped"]
        if any(r.counts["retried"] for r in reports):    # requests the system failed or throttled, sent again
            cols.append("retried")
        render.table("push", cols, [[r.as_dict()[c] for c in cols] for r in reports])
        for r in reports:
            if r.error:
                render.error(f"{r.connector}/{r.entity}: {r.error}")
        if any(r.counts["dead"] for r in reports):
            render.hint("failed for good: triad outbox list --status dead")
        if any(r.counts["failed"] for r in reports):
            render.hint("failed writes are retried with backoff: triad outbox list --status pending")
    emit(ctx, data, human)
    if interrupted.is_set():
        render.error("interrupted: the writes in flight were settled; the next `triad sync push` sends the rest")
        sys.exit(128 + interrupted.signum)
    if any(r.status == "error" or r.counts["dead"] or r.counts["failed"] for r in reports):
        sys.exit(1)


@main.group()
def runs() -> None:
    """Past sync runs and their figures."""


@runs.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000))
@reporting
@pass_ctx
def runs_list(ctx: Context, limit: int) -> None:
    """The latest runs, newest first.

    \b
    Example:
      triad runs list --limit 5
    """
    from hub import render
    from hub.runs import list_runs
    rows = list_runs(ctx.engine(), limit)
    emit(ctx, {"runs": rows}, lambda: render.table("runs", ["id", "kind", "connector", "entity", "status", "started", "read", "created", "updated", "quarantined"],
                                                   [(r["id"], r["kind"], r["connector"], r["entity"], r["status"], r["started_at"], r["read"], r["created"], r["updated"], r["quarantined"]) for r in rows]))


@runs.command("show")
@click.argument("run_id")
@reporting
@pass_ctx
def runs_show(ctx: Context, run_id: str) -> None:
    """One run: its figures, cursor and error.

    \b
    Example:
      triad runs show 01J9Z...
    """
    from hub import render
    from hub.runs import show_run
    r = show_run(ctx.engine(), run_id)
    emit(ctx, r, lambda: render.kv(f"run {run_id}", r.items()))


# --- records ---------------------------------------------------------------------------------------

@main.group()
def records() -> None:
    """Golden records: list, inspect, trace."""


@records.command("list")
@click.argument("entity")
@click.option("--where", multiple=True, metavar="FIELD=VALUE", help="Filter on a field (repeatable).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0, 10**12), help="Skip this many (paging).")
@reporting
@pass_ctx
def records_list(ctx: Context, entity: str, where: tuple[str, ...], limit: int, offset: int) -> None:
    """List golden records of ENTITY with their ids in every system.

    \b
    Examples:
      triad records list customer --where country=CN --limit 10
      triad records list order --where status=confirmed --json
    """
    from hub import render
    from hub.canonical import entity as entity_def
    from hub.rbac import require
    from hub.records import list_records
    entity_def(entity)
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "read", entity)
    for condition in where:    # filtering on a hidden field would reveal its values one guess at a time
        require(engine, who, "read", entity, condition.split("=", 1)[0].strip())
    rows = list_records(engine, entity, where, limit, offset, who.denied_fields(entity))

    def human() -> None:
        keys = [k for k in ("code", "order_no", "contract_no", "payment_no", "approval_no", "name", "status", "tax_id", "email", "phone", "total_amount", "amount") if rows and k in rows[0]["fields"]][:6]
        render.table(f"{entity} ({len(rows)} shown)", ["id", *keys, "xrefs"],
                     [(r["id"], *[r["fields"].get(k) for k in keys],
                       "; ".join(f"{s}:{','.join(ids)}" for s, ids in r["xrefs"].items())) for r in rows])
        if len(rows) == limit:
            render.hint(f"more: --offset {offset + limit}")
    emit(ctx, {"records": rows}, human)


@records.command("show")
@click.argument("entity")
@click.argument("record_id")
@reporting
@pass_ctx
def records_show(ctx: Context, entity: str, record_id: str) -> None:
    """One golden record: fields with provenance, every system's values, xrefs, history, open items.

    \b
    Example:
      triad records show customer 01J9Z...
    """
    from hub import render
    from hub.canonical import entity as entity_def
    from hub.rbac import require
    from hub.records import show_record
    entity_def(entity)
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "read", entity)
    r = show_record(engine, entity, record_id, who.denied_fields(entity))

    def human() -> None:
        systems = sorted(r["sources"])
        rows = []
        for f, v in r["fields"].items():
            p = r["provenance"].get(f, {})
            src = []
            for s in systems:
                vals = [sv["values"].get(f) for sv in r["sources"][s].values()]
                src.append(", ".join(str(x) for x in vals if x is not None))
            rows.append((f, v, f"{p.get('system', '')} {p.get('at') or ''}".strip(), *src))
        render.table(f"{entity} {record_id}" + (f" (deleted in {', '.join(r['deleted_in'])})" if r["deleted_in"] else ""),
                     ["field", "golden", "from", *systems], rows)
        render.table("xrefs", ["system", "source ids"], [(s, ", ".join(ids)) for s, ids in r["xrefs"].items()])
        render.table("history (newest first)", ["at", "field", "old", "new", "by", "why"],
                     [(h["at"], h["field"], h["old"], h["new"], h["user"] or h["system"], h["reason"]) for h in r["history"][:20]])
        if r["conflicts"]:
            render.table("conflicts", ["id", "field", "status", "rule", "values"],
                         [(c["id"], c["field"], c["status"], c["rule"], c["values"]) for c in r["conflicts"]])
        if r["quarantine"]:
            render.table("quarantined versions", ["id", "connector", "kind", "status"],
                         [(q["id"], q["connector"], q["kind"], q["status"]) for q in r["quarantine"]])
    emit(ctx, r, human)


@records.command("history")
@click.argument("entity")
@click.argument("record_id")
@click.option("--field", "field_name", help="Only this field.")
@reporting
@pass_ctx
def records_history(ctx: Context, entity: str, record_id: str, field_name: str | None) -> None:
    """Every change of a record (or of one field): old, new, who or which system, when.

    \b
    Example:
      triad records history customer 01J9Z... --field phone
    """
    from hub import render
    from hub.canonical import entity as entity_def
    from hub.rbac import require
    from hub.records import history
    entity_def(entity)
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "read", entity, field_name)
    denied = who.denied_fields(entity)
    rows = [h for h in history(engine, entity, record_id, field_name, denied=denied) if h["field"] not in denied]
    emit(ctx, {"history": rows}, lambda: render.table(f"history of {entity} {record_id}", ["at", "field", "old", "new", "by", "why"],
                                                      [(h["at"], h["field"], h["old"], h["new"], h["user"] or h["system"], h["reason"]) for h in rows]))


# --- conflicts -------------------------------------------------------------------------------------

@main.group()
def conflicts() -> None:
    """Concurrent changes the rules settled (auto) or left for a steward (open)."""


def _check_conflict_filters(ctx: Context, entity: str | None, field: str | None, system: str | None) -> None:
    """A misspelt --field or --system is bad usage, not an empty answer."""
    from hub.canonical import ENTITIES
    from hub.config_checks import expected_among
    if field:
        fields = set(ENTITIES[entity].fields) if entity else {f for e in ENTITIES.values() for f in e.fields}
        if field not in fields:
            raise UsageError(f"--field {field}: not a field of {entity or 'any entity'}{expected_among(field, fields)}")
    if system:
        names = set(ctx.config().connectors)
        if system not in names:
            raise UsageError(f"--system {system}: no connector of that name{expected_among(system, names)}")


@conflicts.command("list")
@click.option("--status", type=click.Choice(["open", "resolved", "auto"]), help="Only this status.")
@click.option("--entity", help="Only this entity.")
@click.option("--field", "field_name", help="Only this field.")
@click.option("--system", help="Only conflicts involving this system.")
@click.option("--older-than", help="Only conflicts older than this (30m, 12h, 7d, 2w).")
@click.option("--include-merged", is_flag=True,
              help="Also the open conflicts of records merged into another one (left out otherwise).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0, 10**12))
@reporting
@pass_ctx
def conflicts_list(ctx: Context, status: str | None, entity: str | None, field_name: str | None,
                   system: str | None, older_than: str | None, include_merged: bool, limit: int, offset: int) -> None:
    """List conflicts with both values and the golden one.

    An open conflict of a record that was merged into another one is not open work
    (it cannot be resolved; the surviving record holds the decision), so it is left
    out unless --include-merged is given; each row's merged_into names the surviving
    record (null while the record lives).

    \b
    Examples:
      triad conflicts list --status open
      triad conflicts list --entity customer --field phone --system erp --json
    """
    from hub import render
    from hub.canonical import entity as entity_def
    from hub.conflicts import list_conflicts, parse_age
    from hub.rbac import require
    if entity:
        entity_def(entity)
    _check_conflict_filters(ctx, entity, field_name, system)
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "read", entity)
    allowed = who.allowed_entities("read")
    rows = list_conflicts(engine, status=status, entity=entity, field=field_name, system=system,
                          older_than=parse_age(older_than), limit=limit, offset=offset,
                          entities=None if who.single_user else allowed,
                          denied={e: who.denied_fields(e) for e in allowed}, include_merged=include_merged)

    def state(r: dict) -> str:
        return f"{r['status']} (merged into {r['merged_into']})" if r["merged_into"] else r["status"]
    emit(ctx, {"conflicts": rows}, lambda: (
        render.table("conflicts", ["id", "entity", "record", "field", "status", "rule", "values", "golden"],
                     [(r["id"], r["entity"], r["record_id"], r["field"], state(r), r["rule"], r["values"], r["golden"]) for r in rows]),
        render.hint("resolve: triad conflicts resolve ID --take SYSTEM | --value V | --keep")
        if any(r["status"] == "open" and not r["merged_into"] for r in rows) else None))


@conflicts.command("show")
@click.argument("conflict_id")
@reporting
@pass_ctx
def conflicts_show(ctx: Context, conflict_id: str) -> None:
    """One conflict: each system's value and timestamp, the golden value, the rule, the record.

    \b
    Example:
      triad conflicts show 01J9Z...
    """
    from hub import render
    from hub.conflicts import show_conflict, without_denied
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    c = show_conflict(engine, conflict_id)
    require(engine, who, "read", c["entity"], c["field"])
    c = without_denied(c, who.denied_fields(c["entity"]))

    def human() -> None:
        merged = [("merged into", f"{c['entity']} {c['merged_into']}")] if c["merged_into"] else []
        render.kv(f"conflict {conflict_id}", [("record", f"{c['entity']} {c['record_id']}"), *merged,
                                              ("field", c["field"]), ("status", c["status"]), ("rule", c["rule"]),
                                              ("winner", c["winner"]), ("golden now", c["current_golden"]),
                                              *_settled_rows(c)])
        render.table("values", ["system", "value", "source time"],
                     [(s, v, (c["timestamps"] or {}).get(s)) for s, v in (c["values"] or {}).items()])
        if c["merged_into"]:
            render.hint(f"the record was merged away: triad records show {c['entity']} {c['merged_into']}")
        elif c["status"] == "open":
            render.hint(f"triad conflicts resolve {conflict_id} --take {next(iter(c['values'] or {'SYSTEM': 0}))}")
        else:   # settled: what it says is history; the field's story goes on in the record
            render.hint(f"triad records history {c['entity']} {c['record_id']} --field {c['field']}")
    emit(ctx, c, human)


def _settled_rows(c: dict) -> list[tuple[str, object]]:
    """Who settled a conflict, when and why (nothing for an open one)."""
    if c["status"] == "open":
        return []
    # a rule settles a conflict as the run records it: its time is the conflict's own
    rows = [("settled by", c.get("resolved_by") or f"the rule ({c['rule']})"),
            ("settled at", c.get("resolved_at") or c.get("created_at"))]
    return rows + ([("note", c["note"])] if c.get("note") else [])


@conflicts.command("resolve")
@click.argument("conflict_ids", nargs=-1)
@click.option("--take", metavar="SYSTEM", help="Make this system's value golden.")
@click.option("--value", metavar="VALUE", help="Make this value golden.")
@click.option("--keep", is_flag=True, help="Keep the golden value as it is.")
@click.option("--note", help="Why (kept in the audit log).")
@click.option("--all", "all_open", is_flag=True,
              help="Every open conflict matching --entity/--field/--system that you may see and resolve.")
@click.option("--entity", help="With --all: only this entity.")
@click.option("--field", "field_name", help="With --all: only this field.")
@click.option("--system", help="With --all: only conflicts involving this system.")
@click.option("--yes", is_flag=True, help="With --all: do not ask for confirmation.")
@reporting
@pass_ctx
def conflicts_resolve(ctx: Context, conflict_ids: tuple[str, ...], take: str | None, value: str | None, keep: bool,
                      note: str | None, all_open: bool, entity: str | None, field_name: str | None,
                      system: str | None, yes: bool) -> None:
    """Resolve conflicts: the chosen value becomes golden, goes to history and to every system.

    A conflict of a record merged into another one is refused (exit 2): its
    resolution would re-create the merged-away record in every system; the
    surviving record holds the decision. --all leaves such conflicts out (and
    names them), and is refused when they are all it matches. --all selects only
    conflicts your roles let you see and resolve (not those on denied fields);
    with --take SYSTEM, only those SYSTEM has a value for. Of several conflicts,
    one that cannot be resolved is named and the others go on (exit 1).

    \b
    Examples:
      triad conflicts resolve 01J9Z... --take crm --note "customer confirmed by phone"
      triad conflicts resolve --all --entity customer --field phone --take erp --yes
    """
    from hub import render
    from hub.canonical import entity as entity_def
    from hub.conflict_resolution import Decision, resolve_many
    from hub.conflicts import get_conflict, left_out_note, resolve, select_all
    from hub.rbac import require
    from hub.streams import Parts
    engine = ctx.engine()
    who = _who(ctx)
    if all_open == bool(conflict_ids):
        raise UsageError("give conflict ids, or --all with filters")
    decision = Decision(who.name, take, value, keep, note)
    decision.check()
    left_out: list[dict] = []
    if all_open:
        if entity:
            entity_def(entity)
        _check_conflict_filters(ctx, entity, field_name, system)
        # --take S settles only what S has a value for: the others stay open, not fail half-way
        targets, left_out = select_all(engine, who, entity=entity, field=field_name, system=system or take)
        if not targets:
            emit(ctx, {"resolved": [], "left_out": left_out}, lambda: render.say("no open conflicts match"))
            return
        if not yes:
            if ctx.as_json or not sys.stdin.isatty():
                raise UsageError(f"{len(targets)} conflict{'' if len(targets) == 1 else 's'} match; add --yes to resolve them all")
            render.table("to resolve", ["id", "entity", "field", "values"],
                         [(t["id"], t["entity"], t["field"], t["values"]) for t in targets[:20]])
            click.confirm(f"Resolve these {len(targets)} conflicts?", abort=True)
        ids = [t["id"] for t in targets]
    else:
        ids = list(conflict_ids)
    parts = Parts(ctx.config())
    if len(ids) == 1:   # its failure is the command's
        with engine.connect() as conn:
            c = get_conflict(conn, ids[0])
        require(engine, who, "resolve", c["entity"], c["field"], target=f"conflict:{ids[0]}")
        with engine.begin() as conn:
            done = [resolve(conn, ids[0], user=who.name, out_systems=parts.out_systems(c["entity"]), take=take,
                            value=value, keep=keep, note=note, suite_override=parts.suite_override(c["entity"]))]
        failed: list[dict] = []
    else:   # chunk by chunk; those done stay done: the others that fail are named
        with count_bar(ctx, "resolving", len(ids)) as progress:
            done, failed = resolve_many(engine, ids, decision, who, out_systems=parts.out_systems,
                                        suite_override=parts.suite_override, progress=progress)
    data = {"resolved": done, **({"left_out": left_out} if all_open else {}), **({"failed": failed} if failed else {})}
    shown = 50   # a terminal shows the first ones; --json lists them all
    emit(ctx, data, lambda: (
        render.table("resolved", ["id", "entity", "field", "old", "new", "queued"],
                     [(d["id"], d["entity"], d["field"], d["old"], d["new"], d["queued"]) for d in done[:shown]]),
        render.say(f"... and {len(done) - shown} more ({len(done)} resolved; --json lists them all)")
        if len(done) > shown else None,
        render.hint(left_out_note(left_out)) if left_out else None,
        [render.error(f"conflict {f['id']}: {f['error']}") for f in failed],
        render.hint("send the decisions to the systems: triad sync push") if done else None))
    if failed:
        sys.exit(1)


# --- quarantine ------------------------------------------------------------------------------------

@main.group()
def quarantine() -> None:
    """Rows parked by mapping errors, failed expectations or unresolved references."""


@quarantine.command("list")
@click.option("--status", type=click.Choice(["parked", "resolved", "dropped"]), default="parked", show_default=True)
@click.option("--connector", help="Only this connector.")
@click.option("--entity", help="Only this entity.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@reporting
@pass_ctx
def quarantine_list(ctx: Context, status: str, connector: str | None, entity: str | None, limit: int) -> None:
    """List parked rows with their reasons.

    \b
    Example:
      triad quarantine list --connector erp --json
    """
    from hub import render
    from hub.quarantine_admin import Redactor, list_items, reason_text
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "read", entity)
    readable = None if who.single_user else who.allowed_entities("read")
    parts = _parts(ctx)
    try:   # the raw payload is in source field names: the mapping tells which ones hold hidden fields
        rows = list(map(Redactor(who, parts.mapping), list_items(engine, status=status, connector=connector,
                                                                  entity=entity, limit=limit + 1, entities=readable)))
    finally:
        parts.close()
    more, rows = len(rows) > limit, rows[:limit]     # one row past the limit tells whether the list was cut
    kinds = {r["kind"] for r in rows}

    def hints() -> None:
        if more:
            render.hint(f"the oldest {limit} shown: narrow with --connector/--entity or raise --limit")
        if status == "parked" and kinds - {"unresolved_ref"}:
            render.hint("after fixing a mapping: triad quarantine retry (it re-runs the stored rows); after fixing "
                        "a source row, the next sync run takes it if its change time moved on, else sync run --full")
        if status == "parked" and "unresolved_ref" in kinds:
            render.hint("unresolved references are retried on every sync run, once the record they point to arrives")
    emit(ctx, {"items": rows, "more": more}, lambda: (
        render.table(f"quarantine ({status})", ["id", "connector", "entity", "source id", "kind", "reasons"],
                     [(r["id"], r["connector"], r["entity"], r["source_id"], r["kind"],
                       "; ".join(reason_text(x) for x in r["reasons"])) for r in rows]),
        hints()))


@quarantine.command("show")
@click.argument("item_id")
@reporting
@pass_ctx
def quarantine_show(ctx: Context, item_id: str) -> None:
    """One parked row: the raw payload as received and every reason.

    \b
    Example:
      triad quarantine show 01J9Z...
    """
    from hub import render
    from hub.quarantine_admin import Redactor, get_item, reason_text
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    item = get_item(engine, item_id)
    require(engine, who, "read", item["entity"], target=f"quarantine:{item_id}")
    parts = _parts(ctx)
    try:
        item = Redactor(who, parts.mapping)(item)
    finally:
        parts.close()
    emit(ctx, item, lambda: (render.kv(f"quarantine {item_id}", [(k, item[k]) for k in ("connector", "entity", "source_id", "kind", "status", "attempts", "created_at")]),
                             render.table("reasons", ["reason", "field", "detail"], [(x.get("reason"), x.get("field") or x.get("column"), reason_text(x)) for x in item["reasons"]], width=1000),
                             render.table("raw payload", ["field", "value"], item["raw"].items()),
                             render.hint(f"denied to your roles, so hidden: {', '.join(item['hidden_fields'])} and the "
                                         "payload fields mapped to it") if item.get("hidden_fields") else None))


@quarantine.command("retry")
@click.argument("item_ids", nargs=-1)
@reporting
@pass_ctx
def quarantine_retry(ctx: Context, item_ids: tuple[str, ...]) -> None:
    """Re-run parked rows (all, or the given ids) through the current mapping and rules.

    A given id that is not parked (resolved or dropped) is refused (exit 2). When a
    given row is still parked after the retry, its reasons are shown and the exit
    code is 1; retrying all rows reports how many are still parked (exit 0, as rows
    waiting for a referenced record are expected to stay).

    \b
    Examples:
      triad quarantine retry
      triad quarantine retry 01J9Z... 01J9Y...
    """
    from hub import audit, render
    from hub.canonical import ENTITIES
    from hub.quarantine_admin import Redactor, entities_of, reason_text, require_parked, still_parked
    from hub.rbac import require
    from hub.sync import retry_quarantine
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "retry", target="quarantine retry")
    for item_id, entity in sorted(entities_of(engine, item_ids).items()):   # unknown ids: reported below
        require(engine, who, "retry", entity, target=f"quarantine:{item_id}")
    if item_ids:
        require_parked(engine, item_ids, "retried")
    # retrying everything covers only the entities the caller may retry (None: all of them)
    allowed = who.allowed_entities("retry")
    allowed = None if who.single_user or allowed >= set(ENTITIES) else allowed
    parts = _parts(ctx)
    try:
        reports = retry_quarantine(engine, parts, list(item_ids), user=who.name, entities=allowed)
        # a row asked for by id that is parked still did not go through: show why, hidden fields hidden
        redact = Redactor(who, parts.mapping)
        failing = [redact(i) for i in still_parked(engine, item_ids, [r.id for r in reports])] if item_ids else []
    finally:
        parts.close()
    failed = bool(failing) or any(r.status == "error" for r in reports)
    with engine.begin() as conn:
        audit.record(conn, who.name, "quarantine.retry", ",".join(item_ids) or "all",
                     after=[r.as_dict() for r in reports], outcome="failed" if failed else "ok")
    parked = sum(r.counts["still_parked"] for r in reports)
    data = {"runs": [r.as_dict() for r in reports], "still_parked": parked}
    if item_ids:
        data["still_parked_items"] = failing
    emit(ctx, data, lambda: (render.table(
        "retried", ["connector", "entity", "status", "created", "updated", "linked", "quarantined", "still parked"],
        [(r.connector, r.entity, r.status, r.counts["created"], r.counts["updated"], r.counts["linked"], r.counts["quarantined"], r.counts["still_parked"]) for r in reports]),
        render.hint(f"{parked} row(s) still parked: triad quarantine list") if parked and not failing else None,
        render.hint(f"only rows of {', '.join(sorted(allowed))} were retried (your roles' entities)")
        if allowed is not None and not item_ids else None))
    for item in failing:
        render.error(f"quarantine item {item['id']} ({item['connector']} {item['entity']} {item['source_id']}) is "
                     f"still parked: {'; '.join(reason_text(x) for x in item['reasons'] or []) or item['kind']}")
    for r in reports:
        if r.error:
            render.error(f"{r.connector}/{r.entity}: {r.error}")
    if failed:
        sys.exit(1)


@quarantine.command("drop")
@click.argument("item_id")
@click.option("--note", help="Why (kept in the audit log).")
@reporting
@pass_ctx
def quarantine_drop(ctx: Context, item_id: str, note: str | None) -> None:
    """Give up on a parked row: it is kept as 'dropped' (nothing is deleted) and no longer retried.

    \b
    Example:
      triad quarantine drop 01J9Z... --note "test record"
    """
    from hub import render
    from hub.quarantine_admin import Redactor, drop_item, get_item
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "retry", target=f"quarantine:{item_id}")
    require(engine, who, "retry", get_item(engine, item_id)["entity"], target=f"quarantine:{item_id}")
    parts = _parts(ctx)
    try:   # the dropped item is shown back: with the caller's hidden fields hidden
        item = Redactor(who, parts.mapping)(drop_item(engine, item_id, who.name, note))
    finally:
        parts.close()
    emit(ctx, {"dropped": item}, lambda: render.say(f"dropped {item_id}"))


# --- outbox ----------------------------------------------------------------------------------------

@main.group()
def outbox() -> None:
    """Changes waiting to be written to systems (and those that failed for good)."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["pending", "done", "dead", "dropped"]), help="Only this status.")
@click.option("--connector", help="Only this connector.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@reporting
@pass_ctx
def outbox_list(ctx: Context, status: str | None, connector: str | None, limit: int) -> None:
    """List outbox items with their fields, attempts and last error.

    Dead items come first, then pending ones (what needs a decision or is still
    waiting), then delivered and dropped ones; newest first within each status.
    Only entities your roles may read are listed.

    \b
    Example:
      triad outbox list --status dead
    """
    from hub import render
    from hub.outbox import count_items, list_items
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "read", target="outbox list")
    readable = None if who.single_user else who.allowed_entities("read")
    scope = {"status": status, "connector": connector, "entities": readable}
    rows = list_items(engine, limit=limit + 1, **scope)   # one more than shown tells whether the list is cut
    more = len(rows) > limit
    rows = rows[:limit]
    total = count_items(engine, **scope) if more else len(rows)
    for r in rows:   # a queued write carries field values: the caller's hidden fields stay hidden
        denied = who.denied_fields(r["entity"])
        if denied and isinstance(r.get("fields"), dict):
            r["fields"] = {f: v for f, v in r["fields"].items() if f not in denied}
    emit(ctx, {"items": rows, "more": more, "total": total}, lambda: (
        render.table("outbox", ["id", "connector", "entity", "record", "operation", "status", "attempts", "fields",
                                "last error"],
                     [(r["id"], r["connector"], r["entity"], r["record_id"], r["operation"], r["status"], r["attempts"],
                       r["fields"], r["last_error"]) for r in rows]),
        render.hint(f"showing {len(rows)} of {total} items (dead, then pending, newest first): "
                    "narrow with --status/--connector or raise --limit") if more else None))


@outbox.command("retry")
@click.argument("item_id")
@reporting
@pass_ctx
def outbox_retry(ctx: Context, item_id: str) -> None:
    """Put a dead item back in the queue, due now, with a fresh attempt count.

    A pending item waiting out its backoff is made due now; a delivered (done) or
    dropped item is refused. A create that may have reached the system before
    (a timeout, a push that died) goes under its first key and is looked up
    there first, so the retry does not make a second record.

    \b
    Example:
      triad outbox retry 01J9Z... && triad sync push
    """
    from hub import audit, render
    from hub.outbox import get, retry
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "retry", target=f"outbox:{item_id}")
    with engine.connect() as conn:
        entity = get(conn, item_id)["entity"]
    require(engine, who, "retry", entity, target=f"outbox:{item_id}")
    with engine.begin() as conn:
        before = retry(conn, item_id)
        audit.record(conn, who.name, "outbox.retry", f"outbox:{item_id}", before={"status": before["status"]},
                     after={"status": "pending"})
    emit(ctx, {"retried": item_id}, lambda: render.say(f"{item_id} queued again"))


@outbox.command("drop")
@click.argument("item_id")
@click.option("--note", help="Why (kept in the audit log).")
@reporting
@pass_ctx
def outbox_drop(ctx: Context, item_id: str, note: str | None) -> None:
    """Give up on a pending or dead item; it stays visible as 'dropped'.

    \b
    Example:
      triad outbox drop 01J9Z... --note "record deleted in the CRM"
    """
    from hub import audit, render
    from hub.outbox import drop, get
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "retry", target=f"outbox:{item_id}")
    with engine.connect() as conn:
        entity = get(conn, item_id)["entity"]
    require(engine, who, "retry", entity, target=f"outbox:{item_id}")
    with engine.begin() as conn:
        before = drop(conn, item_id)
        audit.record(conn, who.name, "outbox.drop", f"outbox:{item_id}", before={"status": before["status"]},
                     after={"status": "dropped"}, note=note)
    emit(ctx, {"dropped": item_id}, lambda: render.say(f"{item_id} dropped"))


@outbox.command("purge")
@click.option("--older-than", required=True, metavar="AGE",
              help="Delete delivered and dropped items last changed longer ago than this (12h, 30d, 2w).")
@click.option("--connector", help="Only this connector's items.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@reporting
@pass_ctx
def outbox_purge(ctx: Context, older_than: str, connector: str | None, dry_run: bool, yes: bool) -> None:
    """Delete old delivered (done) and dropped items so the outbox does not grow for ever.

    Pending and dead items are never deleted, nor the newest item of a record
    for a system, whatever its status: it tells whether the record is still
    blocked there. Deletes in chunks, one transaction each. One audit entry
    records the count and the cutoff.

    \b
    Examples:
      triad outbox purge --older-than 30d --dry-run
      triad outbox purge --older-than 30d --connector crm --yes
    """
    from hub import render
    from hub.conflicts import parse_age
    from hub.outbox_purge import count, purge
    from hub.rbac import require
    from hub.types import utcnow
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "admin", target="outbox purge")
    cutoff = utcnow() - parse_age(older_than)
    scope = f" of {connector}" if connector else ""

    def done(n: int) -> None:
        verb = "would purge" if dry_run else "purged"
        emit(ctx, {"purged": n, "dry_run": dry_run, "cutoff": cutoff.isoformat()}, lambda: render.say(
            f"{verb} {n} delivered/dropped write{'' if n == 1 else 's'}{scope} older than {older_than} "
            f"(last changed before {cutoff:%Y-%m-%d %H:%M:%S} UTC)"))

    if dry_run or not yes:
        n = count(engine, cutoff, connector=connector)
        if dry_run or n == 0:
            done(n)
            return
        if ctx.as_json or not sys.stdin.isatty():
            raise UsageError(f"{n} outbox item{'' if n == 1 else 's'} match; add --yes to purge them")
        click.confirm(f"Delete {n} delivered/dropped outbox item{'' if n == 1 else 's'}?", abort=True)
    with spinner(ctx, "purging") as say:
        n = purge(engine, cutoff, user=who.name, connector=connector,
                  progress=None if say is None else lambda purged: say(f"{purged} purged"))
    done(n)


# --- audit -----------------------------------------------------------------------------------------

@main.group()
def audit() -> None:
    """Every steward and admin action, chained by hash."""


@audit.command("list")
@click.option("--user", "by_user", help="Only this user's actions.")
@click.option("--since", help="An ISO-8601 time or an age like 24h, 7d.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@reporting
@pass_ctx
def audit_list(ctx: Context, by_user: str | None, since: str | None, limit: int) -> None:
    """List audit entries, newest first.

    \b
    Example:
      triad audit list --user bob --since 7d
    """
    from hub import audit as audit_log, render
    from hub.durations import since as parse_since
    from hub.rbac import require
    engine = ctx.engine()
    require(engine, _who(ctx), "admin", target="audit list")
    rows = audit_log.list_entries(engine, user=by_user, since=parse_since(since), limit=limit)
    emit(ctx, {"entries": rows}, lambda: render.table("audit", ["seq", "at", "user", "action", "target", "outcome", "note"],
                                                      [(r["seq"], r["at"], r["user"], r["action"], r["target"], r["outcome"], r["note"]) for r in rows]))


@audit.command("verify")
@reporting
@pass_ctx
def audit_verify(ctx: Context) -> None:
    """Check the hash chain; exit 1 if any entry was altered or removed.

    \b
    Example:
      triad audit verify
    """
    from hub import audit as audit_log, render
    result = audit_log.verify(ctx.engine())
    emit(ctx, result, lambda: render.say(("[green]ok[/green]: " if result["ok"] else "[red]broken[/red]: ") + f"{result['entries']} entries, {result['detail']}"))
    if not result["ok"]:
        sys.exit(1)


# --- flows ----------------------------------------------------------------------------------------

@main.group()
def flows() -> None:
    """Cross-system business flows (`flows:` in triad.yaml): runs, their steps, retries."""


@flows.command("run")
@reporting
@pass_ctx
def flows_run(ctx: Context) -> None:
    """Start runs for new trigger events and move every open run forward.

    `triad sync run`, `triad scheduler start`, `triad worker` and `triad serve` do this after each
    sync or webhook batch; this command does it on demand. Flows react to changes made after they are
    configured: a deal already past its trigger when `flows:` is added starts nothing.

    \b
    Example:
      triad flows run && triad sync push
    """
    from hub import audit, render
    from hub.flows import run_flows
    from hub.rbac import require
    engine = ctx.engine()
    require(engine, _who(ctx), "admin", target="flows run")
    parts = _parts(ctx)
    try:
        report = run_flows(engine, parts)
    finally:
        parts.close()
    audit.record_command(engine, ctx.user, "flows.run", after={k: v for k, v in report.as_dict().items() if k != "runs"})
    emit(ctx, report.as_dict(), lambda: render.kv("flows", [(k, v) for k, v in report.as_dict().items() if k != "runs"]))
    if report.failed:
        sys.exit(1)


@flows.command("list")
@click.option("--status", type=click.Choice(["running", "waiting", "done", "failed"]), help="Only this status.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@reporting
@pass_ctx
def flows_list(ctx: Context, status: str | None, limit: int) -> None:
    """Flow runs, newest first, with where each one stands.

    \b
    Example:
      triad flows list --status waiting
    """
    from hub import render
    from hub.flows import list_runs
    from hub.rbac import require
    engine = ctx.engine()
    require(engine, _who(ctx), "read")
    rows = list_runs(engine, status, limit)
    emit(ctx, {"runs": rows}, lambda: render.table("flow runs", ["id", "flow", "record", "status", "step", "started"],
                                                   [(r["id"], r["flow"], f"{r['entity']} {r['record_id']}", r["status"],
                                                     (r["context"] or {}).get("next"), r["created_at"]) for r in rows]))


@flows.command("show")
@click.argument("run_id")
@reporting
@pass_ctx
def flows_show(ctx: Context, run_id: str) -> None:
    """One flow run: every step with its state, the records it made and any error.

    \b
    Example:
      triad flows show 01J9Z...
    """
    from hub import render
    from hub.flows import show_run
    from hub.rbac import require
    engine = ctx.engine()
    require(engine, _who(ctx), "read")
    run = show_run(engine, run_id)

    def human() -> None:
        render.kv(f"flow run {run_id}", [("flow", run["flow"]), ("status", run["status"]),
                                         ("trigger", f"{run['entity']} {run['record_id']}"),
                                         ("records", (run["context"] or {}).get("records"))])
        render.table("steps", ["#", "name", "action", "status", "attempts", "result", "delivery", "error"],
                     [(s["step_no"], s["name"], s["action"], s["status"], s["attempts"],
                       s["result"].get("record_id") if s["result"] else None,
                       ", ".join(f"{d['connector']} {d['status']}" for d in s["deliveries"]) or None, s["error"])
                      for s in run["steps"]])
        dead = [(s["name"], d) for s in run["steps"] for d in s["deliveries"] if d["status"] == "dead"]
        for name, d in dead:
            render.error(f"step {name}: the write to {d['connector']} is dead (outbox item {d['id']}): "
                         f"{d['last_error']}")
        if dead:
            render.hint("after a fix: triad outbox retry ID (a step waiting on that system waits until then)")
    emit(ctx, run, human)


@flows.command("retry")
@click.argument("run_id")
@reporting
@pass_ctx
def flows_retry(ctx: Context, run_id: str) -> None:
    """Run a failed flow again from the step that failed (records made before are not made twice).

    \b
    Example:
      triad flows retry 01J9Z...
    """
    from hub import audit, render
    from hub.flows import retry_run
    from hub.rbac import require
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "retry", target=f"flow:{run_id}")
    parts = _parts(ctx)
    try:
        status = retry_run(engine, parts, run_id)
    finally:
        parts.close()
    with engine.begin() as conn:
        audit.record(conn, who.name, "flows.retry", f"flow:{run_id}", after={"status": status})
    emit(ctx, {"id": run_id, "status": status}, lambda: render.say(f"flow run {run_id}: {status}"))
    if status == "failed":
        sys.exit(1)


# --- demo -----------------------------------------------------------------------------------------

@main.command()
@click.option("--dir", "directory", default="triad-demo", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo's config and store go (its store is recreated each time).")
@click.option("--keep", is_flag=True, help="Leave the simulators and `triad serve` running afterwards.")
@click.option("--seed", default=42, show_default=True, help="The simulators' data set.")
@reporting
@pass_ctx
def demo(ctx: Context, directory: str, keep: bool, seed: int) -> None:
    """Tell the whole story with no configuration: CRM, ERP and OA simulators, an embedded hub,
    an initial sync, identity and conflicts, and a deal that becomes orders in both systems.

    \b
    Example:
      triad demo && triad --config triad-demo/triad.yaml conflicts list
    """
    from pathlib import Path

    from hub import render
    from hub.demo import run_demo
    say = (lambda _text: None) if ctx.as_json else render.say
    summary = run_demo(Path(directory), say, keep=keep, seed=seed)
    if ctx.as_json:
        render.print_json(summary)


# --- users ----------------------------------------------------------------------------------------

@main.group()
def users() -> None:
    """Users and roles kept in the database (besides `users:` and `roles:` in triad.yaml)."""


@users.command("list")
@reporting
@pass_ctx
def users_list(ctx: Context) -> None:
    """Every user with their roles, from the config and the database (admin only, as changing them is).

    \b
    Example:
      triad users list
    """
    from hub import render
    from hub.rbac import require
    from hub.users import list_users
    engine = ctx.engine()
    require(engine, _who(ctx), "admin", target="users list")
    with engine.connect() as conn:
        rows = list_users(conn, ctx.config(required=False))
    emit(ctx, {"users": rows}, lambda: render.table("users", ["name", "roles", "from"],
                                                    [(u["name"], ", ".join(u["roles"]), u["source"]) for u in rows]))


@users.command("add")
@click.argument("name")
@reporting
@pass_ctx
def users_add(ctx: Context, name: str) -> None:
    """Add a user to the database (grant roles next).

    \b
    Example:
      triad --user alice users add bob && triad --user alice users grant bob steward_sales
    """
    from hub import render
    from hub.rbac import require
    from hub.users import add_user
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "admin", target=f"user:{name}")
    with engine.begin() as conn:
        add_user(conn, ctx.config(required=False), who.name, name)
    emit(ctx, {"added": name}, lambda: render.say(f"added {name}"))


@users.command("role")
@click.argument("name")
@click.option("--entity", "entities", multiple=True, help="An entity the role covers (repeatable; default all).")
@click.option("--deny-field", "fields_denied", multiple=True, help="A field the role may not see or change.")
@click.option("--can", "can", multiple=True, help="An action: read, resolve, merge, retry, admin (repeatable).")
@reporting
@pass_ctx
def users_role(ctx: Context, name: str, entities: tuple[str, ...], fields_denied: tuple[str, ...],
               can: tuple[str, ...]) -> None:
    """Define (or redefine) a role in the database.

    \b
    Example:
      triad users role steward_sales --entity customer --entity order --deny-field credit_limit --can read --can resolve
    """
    from hub import render
    from hub.rbac import require
    from hub.users import define_role
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "admin", target=f"role:{name}")
    with engine.begin() as conn:
        define_role(conn, who.name, name, list(entities), list(fields_denied), list(can), cfg=ctx.config(required=False))
    emit(ctx, {"role": name}, lambda: render.say(f"role {name} saved"))


@users.command("grant")
@click.argument("name")
@click.argument("role")
@reporting
@pass_ctx
def users_grant(ctx: Context, name: str, role: str) -> None:
    """Give a database user a role (from triad.yaml `roles:`, the database, or `admin`).

    \b
    Example:
      triad users grant bob finance
    """
    from hub import render
    from hub.rbac import require
    from hub.users import grant
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "admin", target=f"user:{name}")
    with engine.begin() as conn:
        grant(conn, ctx.config(required=False), who.name, name, role)
    emit(ctx, {"granted": {"user": name, "role": role}}, lambda: render.say(f"{name} now has {role}"))


@users.command("revoke")
@click.argument("name")
@click.argument("role")
@reporting
@pass_ctx
def users_revoke(ctx: Context, name: str, role: str) -> None:
    """Take a role away from a database user.

    \b
    Example:
      triad users revoke bob finance
    """
    from hub import render
    from hub.rbac import require
    from hub.users import revoke
    engine = ctx.engine()
    who = _who(ctx)
    require(engine, who, "admin", target=f"user:{name}")
    with engine.begin() as conn:
        revoke(conn, who.name, name, role, cfg=ctx.config(required=False))
    emit(ctx, {"revoked": {"user": name, "role": role}}, lambda: render.say(f"{name} no longer has {role}"))


# --- serve ----------------------------------------------------------------------------------------

@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@pass_ctx
def serve(ctx: Context, host: str, port: int) -> None:
    """Serve webhooks (POST /webhooks/<connector>), the data API (/api/v1) and /healthz until stopped.

    Webhook events are stored durably before the 2xx answer; a worker runs them
    through the pipeline within a second and pushes the results. Needs the admin
    permission, as `triad worker` does: the process writes golden records and pushes.

    \b
    Example:
      triad serve --port 8700
    """
    from hub.api.auth import oidc_config
    from hub.rbac import principal, require
    from hub.server import serve as run_server
    engine = ctx.engine()          # fail fast on a missing or unmigrated store
    cfg = ctx.config(required=False)
    require(engine, principal(engine, cfg, ctx.user), "admin", target="serve")
    oidc_config(cfg)   # and on a bad serve.oidc section
    run_server(ctx, host, port)


# --- simulators ------------------------------------------------------------------------------------

@main.command()
@click.argument("system")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--seed", default=42, show_default=True, help="Same seed, same data.")
@click.option("--records", default=100, show_default=True, type=click.IntRange(min=0),
              help="How many records per main object.")
@click.option("--fail-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of requests answered 503.")
@click.option("--rate-limit-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of requests throttled, as the vendor does it (429 with Retry-After; Salesforce "
                   "403 REQUEST_LIMIT_EXCEEDED; Kingdee, Yonyou, DingTalk, Feishu their error codes).")
@click.option("--truncate-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of bodies cut short.")
@click.option("--latency-ms", default=0, show_default=True, type=click.IntRange(min=0), help="Added to every request.")
@click.option("--request-budget", type=click.IntRange(min=0), help="API calls before the vendor's limit error.")
@click.option("--token-ttl", type=click.FloatRange(min=0), help="Seconds before issued tokens expire.")
@click.option("--state", type=click.Path(dir_okay=False), help="Keep the data in this JSON file across restarts.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a self-signed certificate (path on line 2).")
@click.option("--client-id", default="triad-client", show_default=True)
@click.option("--client-secret", default="triad-secret", show_default=True)
@click.option("--username", default="demo@triad.local", show_default=True)
@click.option("--password", default="triad-pass", show_default=True)
@click.option("--acct-id", default="triad-acct", show_default=True, help="Kingdee account set.")
def simulate(system: str, host: str, port: int, seed: int, records: int, fail_rate: float, rate_limit_rate: float,
             truncate_rate: float, latency_ms: int, request_budget: int | None, token_ttl: float | None,
             state: str | None, tls: bool, client_id: str, client_secret: str, username: str, password: str,
             acct_id: str) -> None:
    """Serve a vendor simulator (salesforce, sap, kingdee, yonyou, dingtalk, feishu, rest) speaking the
    real wire format.

    The first line on stdout is `listening on <base url>`; with --tls the second
    is the certificate path. Serves until killed.

    \b
    Example:
      triad simulate salesforce --port 8701 --records 500 --fail-rate 0.05
    """
    from connectors.simkit import SimOptions, SimServer, load_simulator
    factory = load_simulator(system)
    opts = SimOptions(seed=seed, records=records, fail_rate=fail_rate, rate_limit_rate=rate_limit_rate,
                      truncate_rate=truncate_rate, latency_ms=latency_ms, request_budget=request_budget,
                      token_ttl=token_ttl, state=state, client_id=client_id, client_secret=client_secret,
                      user=username, password=password, acct_id=acct_id)
    try:
        server = SimServer(factory(opts), host=host, port=port, tls=tls)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    click.echo(f"listening on {server.base_url}")
    if server.cert_path:
        click.echo(server.cert_path)      # the second line is the path alone: a client's `verify=`
    sys.stdout.flush()
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # a kill takes the certificate with it
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _register_command_modules() -> None:
    """Command groups kept in their own modules (each imports only hub.clikit, never this file)."""
    from hub.cli_api import subscriptions, tokens
    from hub.cli_inbox import inbox
    from hub.cli_matches import matches
    from hub.cli_realtime import scheduler, worker
    for group in (tokens, subscriptions, scheduler, worker, matches, inbox):
        main.add_command(group)


_register_command_modules()


def run() -> None:
    """The ``triad`` command as a process (the console script and ``python -m cli``)."""
    skip_final_collection_at_exit()
    main()


def skip_final_collection_at_exit() -> None:
    """At exit, leave the objects alive now to the operating system instead of the garbage collector.

    The interpreter's last collection walks every container the imports made (great-expectations,
    pandas, SQLAlchemy: some 10^5) only to free memory the process gives back anyway. Stores are
    closed first, as that collection would have closed them: the last connection of a SQLite file
    takes the rest of its log into the file. atexit handlers and stream flushes still run.
    """
    import atexit
    atexit.register(_leave_heap_to_the_os)


def _leave_heap_to_the_os() -> None:
    import gc
    from hub.sqlite_checkpoint import dispose_all
    dispose_all()
    gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    run()
