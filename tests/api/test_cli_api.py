"""`triad tokens` and `triad subscriptions`: admin only, audited, secrets shown once."""
from __future__ import annotations

import json

import click
from click.testing import CliRunner

from cli import TriadGroup
from hub import audit
from hub.cli_api import subscriptions, tokens
from hub.context import Context


@click.group(cls=TriadGroup)
@click.option("--config", "config_path")
@click.option("--user", "user_name")
@click.pass_context
def root(cctx: click.Context, config_path: str, user_name: str) -> None:
    """Stands in for `triad` until cli.py adds these groups."""
    cctx.obj = Context(config_path=config_path, user_name=user_name)
    cctx.call_on_close(cctx.obj.close)


root.add_command(tokens)
root.add_command(subscriptions)


def run(api, *args: str, user: str = "alice", code: int = 0) -> dict:
    r = CliRunner().invoke(root, ["--config", str(api.root / "triad.yaml"), "--user", user, *args])
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if code == 0 and "--json" in args else {"output": r.output}


def test_token_lifecycle_through_the_cli(api):
    made = run(api, "tokens", "create", "--user", "bob", "--name", "erp sync", "--expires", "30d", "--json")
    assert made["token"].startswith("tri_") and made["user"] == "bob" and made["expires_at"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"}).json()
    assert me["user"] == "bob"
    listed = run(api, "tokens", "list", "--user", "bob", "--json")["tokens"]
    assert [t["id"] for t in listed if t["name"] == "erp sync"] == [made["id"]]
    assert made["token"] not in json.dumps(listed)
    run(api, "tokens", "revoke", made["id"], "--json")
    assert api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {made['token']}"}).status_code == 401
    assert made["id"] not in [t["id"] for t in run(api, "tokens", "list", "--json")["tokens"]]
    assert [t["state"] for t in run(api, "tokens", "list", "--all", "--json")["tokens"]
            if t["id"] == made["id"]] == ["revoked"]
    actions = [e["action"] for e in audit.list_entries(api.engine, user="alice")]
    assert "token.create" in actions and "token.revoke" in actions
    human = run(api, "tokens", "create", "--user", "fin")["output"]
    assert "tri_" in human and "shown only now" in human


def test_token_commands_refuse_non_admins_and_bad_input(api):
    out = run(api, "tokens", "create", "--user", "bob", user="bob", code=2)["output"]
    assert "may not admin" in out
    assert "has no roles" in run(api, "tokens", "create", "--user", "nobody", code=2)["output"]
    assert "--expires" in run(api, "tokens", "create", "--user", "bob", "--expires", "soon", code=2)["output"]
    assert "no token" in run(api, "tokens", "revoke", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", code=1)["output"]


def test_subscriptions_add_list_remove(api, monkeypatch):
    monkeypatch.delenv("BILLING_SECRET", raising=False)
    added = run(api, "subscriptions", "add", "billing", "https://billing.example.test/hook", "-e", "customer",
                "-e", "order", "--secret-env", "BILLING_SECRET", "--json")
    assert added["entities"] == ["customer", "order"] and "BILLING_SECRET" in added["warning"]
    listed = run(api, "subscriptions", "list", "--json")["subscriptions"]
    assert [(s["name"], s["secret_env"], s["pending"]) for s in listed] == [("billing", "BILLING_SECRET", 0)]
    assert "exists already" in run(api, "subscriptions", "add", "billing", "https://x.test/", "-e", "order",
                                   "--secret-env", "X", code=2)["output"]
    assert "may not admin" in run(api, "subscriptions", "list", user="bob", code=2)["output"]
    assert run(api, "subscriptions", "remove", "billing", "--json")["dropped"] == 0
    assert run(api, "subscriptions", "list", "--json")["subscriptions"] == []
    assert "no subscription" in run(api, "subscriptions", "remove", "billing", code=1)["output"]
    actions = [e["action"] for e in audit.list_entries(api.engine, user="alice")]
    assert "subscription.add" in actions and "subscription.remove" in actions


def test_every_command_has_help_with_an_example():
    for group in (tokens, subscriptions):
        for name, cmd in group.commands.items():
            r = CliRunner().invoke(root, [group.name, name, "--help"])
            assert r.exit_code == 0 and "Example" in r.output, (group.name, name)
