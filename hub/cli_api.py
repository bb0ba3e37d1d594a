"""`triad tokens` and `triad subscriptions`: access to the data API and outbound webhooks.

Both are admin actions (checked and audited). The CLI adds these groups with
``main.add_command(tokens)`` and ``main.add_command(subscriptions)``.
"""
from __future__ import annotations

import click

from hub.clikit import emit, pass_ctx, reporting
from hub.context import Context


def _admin(ctx: Context, target: str):  # noqa: ANN202 - (Engine, hub.rbac.Principal)
    """The caller, if an admin; ``target`` (the command) goes into the audited refusal."""
    from hub.rbac import principal, require
    engine = ctx.engine()
    who = principal(engine, ctx.config(required=False), ctx.user)
    require(engine, who, "admin", target=target)
    return engine, who


@click.group()
def tokens() -> None:
    """API tokens for the data API (/api/v1): create, list, revoke."""


@tokens.command("create")
@click.option("--user", "for_user", required=True, help="The user the token acts as (its roles apply).")
@click.option("--name", help="A label, e.g. the integration that uses it.")
@click.option("--expires", default="90d", show_default=True, help="Lifetime: 12h, 30d, 2w ... or 'never'.")
@reporting
@pass_ctx
def tokens_create(ctx: Context, for_user: str, name: str | None, expires: str) -> None:
    """Create a token for USER; the secret is printed once and stored only as a hash.

    \b
    Example:
      triad tokens create --user erp-sync --name "ERP nightly" --expires 30d
      curl -H "Authorization: Bearer tri_..." http://127.0.0.1:8700/api/v1/me
    """
    from hub import render, tokens as token_ops
    from hub.errors import UsageError
    from hub.rbac import principal
    engine, who = _admin(ctx, "tokens create")
    target = principal(engine, ctx.config(required=False), for_user)
    if not target.roles:
        raise UsageError(f"user '{for_user}' has no roles, so a token could do nothing; "
                         f"give the user roles first (users: in triad.yaml, or `triad users grant`)")
    result = token_ops.create(engine, for_user, by=who.name, name=name, ttl=token_ops.parse_ttl(expires))
    emit(ctx, result, lambda: (
        render.kv(f"token {result['id']}", [("user", for_user), ("name", name),
                                           ("expires", result["expires_at"] or "never")]),
        render.say(result["token"]),
        render.hint("shown only now: store it where the integration keeps its secrets")))


@tokens.command("list")
@click.option("--user", "for_user", help="Only this user's tokens.")
@click.option("--all", "show_all", is_flag=True, help="Also expired and revoked tokens.")
@reporting
@pass_ctx
def tokens_list(ctx: Context, for_user: str | None, show_all: bool) -> None:
    """List tokens (never their secrets).

    \b
    Example:
      triad tokens list --user erp-sync --all
    """
    from hub import render, tokens as token_ops
    engine, _ = _admin(ctx, "tokens list")
    rows = token_ops.list_tokens(engine, user=for_user, include_inactive=show_all)
    emit(ctx, {"tokens": rows}, lambda: render.table(
        "tokens", ["id", "user", "name", "state", "expires", "last used"],
        [(t["id"], t["user"], t["name"], t["state"], t["expires_at"] or "never", t["last_used_at"]) for t in rows]))


@tokens.command("revoke")
@click.argument("token_id")
@reporting
@pass_ctx
def tokens_revoke(ctx: Context, token_id: str) -> None:
    """Revoke a token at once; requests with it get 401 from then on.

    \b
    Example:
      triad tokens revoke 01J9Z...
    """
    from hub import render, tokens as token_ops
    engine, who = _admin(ctx, f"token:{token_id}")
    result = token_ops.revoke(engine, token_id, by=who.name)
    emit(ctx, result, lambda: render.say(f"token {token_id} of {result['user']} revoked"))


@click.group()
def subscriptions() -> None:
    """Outbound webhooks: systems that receive signed golden-record changes."""


@subscriptions.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--entity", "-e", "entities", multiple=True, required=True, help="An entity to receive (repeatable).")
@click.option("--secret-env", required=True, metavar="VAR",
              help="Environment variable holding the HMAC signing secret (the secret is never stored).")
@reporting
@pass_ctx
def subscriptions_add(ctx: Context, name: str, url: str, entities: tuple[str, ...], secret_env: str) -> None:
    """Register NAME to receive changes of the given entities at URL.

    Each change is POSTed as JSON with `X-Triad-Signature: sha256=<HMAC of the
    body>` and `X-Triad-Event-Id`. An endpoint that is down, times out or answers
    5xx, 408, 425 or 429 is retried with backoff; another 4xx refuses the event,
    which goes dead at once; dead events are in `triad outbox list` like connector writes.

    \b
    Example:
      triad subscriptions add billing https://billing.example.com/hooks/triad -e customer -e order --secret-env BILLING_HOOK_SECRET
    """
    from hub import render, subscriptions as subs
    engine, who = _admin(ctx, f"subscription:{name}")
    result = subs.add(engine, name, url, entities, secret_env, by=who.name)
    emit(ctx, result, lambda: (render.say(f"subscription {name} -> {url} ({', '.join(result['entities'])})"),
                               render.hint(result["warning"]) if result.get("warning") else None))


@subscriptions.command("list")
@reporting
@pass_ctx
def subscriptions_list(ctx: Context) -> None:
    """List subscriptions with their pending and dead deliveries.

    \b
    Example:
      triad subscriptions list --json
    """
    from hub import render, subscriptions as subs
    engine, _ = _admin(ctx, "subscriptions list")
    rows = subs.list_subscriptions(engine)
    emit(ctx, {"subscriptions": rows}, lambda: render.table(
        "subscriptions", ["name", "url", "entities", "secret env", "pending", "dead"],
        [(s["name"], s["url"], ", ".join(s["entities"]), s["secret_env"], s["pending"], s["dead"]) for s in rows]))


@subscriptions.command("remove")
@click.argument("name")
@reporting
@pass_ctx
def subscriptions_remove(ctx: Context, name: str) -> None:
    """Remove a subscription; its undelivered events are dropped.

    \b
    Example:
      triad subscriptions remove billing
    """
    from hub import render, subscriptions as subs
    engine, who = _admin(ctx, f"subscription:{name}")
    result = subs.remove(engine, name, by=who.name)
    emit(ctx, result, lambda: render.say(f"subscription {name} removed ({result['dropped']} undelivered events dropped)"))
