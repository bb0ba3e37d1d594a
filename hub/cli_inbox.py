"""CLI commands for stored webhook events: `triad inbox list | show`.

A delivery answered 202 whose body the hub cannot read becomes an inbox row in
status ``error`` rather than being dropped; these commands let an admin see them.
Standalone click objects; cli.py registers them with ``main.add_command``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from hub.cli_api import _admin     # the caller, if an admin (the refusal audited)
from hub.clikit import emit, pass_ctx, reporting
from hub.context import Context

if TYPE_CHECKING:
    from sqlalchemy import Engine

LISTED = ("id", "connector", "status", "error", "received_at")


def list_rows(engine: Engine, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Newest first, without the bodies (up to 1 MiB each)."""
    from sqlalchemy import select

    from hub.models import Inbox
    it = Inbox.__table__
    q = select(*(it.c[c] for c in LISTED)).order_by(it.c.received_at.desc(), it.c.id.desc()).limit(limit)
    if status:
        q = q.where(it.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def one_row(engine: Engine, row_id: str) -> dict[str, Any]:
    """The whole row; the vendor's query parameters and the body's encoding taken out of the headers."""
    from sqlalchemy import select

    from hub.errors import NotFound
    from hub.inbox import ENCODING_KEY, QUERY_KEY
    from hub.models import Inbox
    it = Inbox.__table__
    with engine.connect() as conn:
        row = conn.execute(select(it).where(it.c.id == row_id)).mappings().first()
    if row is None:
        raise NotFound(f"no inbox row {row_id!r}: triad inbox list shows the stored events")
    out = dict(row)
    headers = dict(out.pop("headers") or {})
    out["query"] = headers.pop(QUERY_KEY, None) or {}
    out["body_encoding"] = headers.pop(ENCODING_KEY, None) or "utf-8"   # base64: kept byte for byte
    out["headers"] = headers
    return out


@click.group()
def inbox() -> None:
    """Webhook events stored by `triad serve`: pending, applied (done) and unreadable (error)."""


@inbox.command("list")
@click.option("--status", type=click.Choice(["pending", "error", "done"]), help="Only this status.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@reporting
@pass_ctx
def inbox_list(ctx: Context, status: str | None, limit: int) -> None:
    """List stored webhook events, newest first, with the error of those that could not be read.

    The bodies are left out (up to 1 MiB each): `triad inbox show ID` prints one.

    \b
    Example:
      triad inbox list --status error
    """
    from hub import render
    engine, _ = _admin(ctx, "inbox list")
    rows = list_rows(engine, status, limit + 1)     # one more than shown tells whether the list is cut
    more = len(rows) > limit
    rows = rows[:limit]

    def human() -> None:
        render.table("inbox", ["id", "connector", "status", "received (UTC)", "error"],
                     [(r["id"], r["connector"], r["status"], r["received_at"], r["error"]) for r in rows],
                     width=120)     # the error is what the list is read for
        if more:
            render.hint(f"showing the newest {limit}: narrow with --status or raise --limit")
        elif any(r["status"] == "error" for r in rows):
            render.hint("the body of one: triad inbox show ID")
    emit(ctx, {"items": rows, "more": more}, human)


@inbox.command("show")
@click.argument("row_id", metavar="ID")
@reporting
@pass_ctx
def inbox_show(ctx: Context, row_id: str) -> None:
    """Show one stored webhook event: status, error, headers (credentials were never stored) and body.

    \b
    Example:
      triad inbox show 01J9Z3K6Q8WZ7X4M2T5N0B1C2D
    """
    from hub import render
    engine, _ = _admin(ctx, f"inbox:{row_id}")
    row = one_row(engine, row_id)

    def human() -> None:
        keys = ("connector", "status", "error", "attempts", "event_key", "received_at", "processed_at", "headers",
                "query", "body_encoding")
        render.table(f"inbox {row['id']}", ["key", "value"], [(k, row[k]) for k in keys], width=2000)
        click.echo(row["body"])     # as stored: never read as markup
    emit(ctx, row, human)
