"""Who may do what: every action x role combination that matters, refusals audited, the chain verified."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from cli import main

from .conftest import synced_project

USERS = """
roles:
  steward_sales: {entities: [customer, order], fields_denied: [credit_limit], can: [read, resolve, merge]}
  finance: {entities: [payment, contract, customer], can: [read, resolve]}
  viewer: {can: [read]}
users:
  alice: [admin]
  bob: [steward_sales]
  carol: [finance]
  dave: [viewer]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with synced_project(tmp_path_factory.mktemp("rbac"), USERS) as root:
        yield root


def run(user: str, *args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--user", user, "--json", *args])


def ok(user: str, *args: str) -> dict:
    r = run(user, *args)
    assert r.exit_code == 0, (user, args, r.output)
    return json.loads(r.stdout) if r.stdout.strip() else {}


def denied(user: str, *args: str, missing: str) -> str:
    r = run(user, *args)
    assert r.exit_code == 2, (user, args, r.output)
    assert f"user '{user}'" in r.output and f"missing permission '{missing}'" in r.output, r.output
    return r.output


def open_conflict(field: str = "email") -> dict:
    return next(c for c in ok("alice", "conflicts", "list", "--status", "open")["conflicts"] if c["field"] == field)


@pytest.mark.parametrize("user", ["alice", "bob", "carol", "dave"])
def test_everyone_with_a_role_reads_customers(project, user):
    assert ok(user, "records", "list", "customer")["records"]


def test_unknown_user_is_refused(project):
    out = denied("mallory", "records", "list", "customer", missing="read")
    assert "no roles are assigned" in out


def test_entity_scope(project):
    denied("bob", "records", "list", "payment", missing="read")
    assert ok("carol", "records", "list", "payment")["records"] == []
    denied("carol", "records", "list", "order", missing="read")


def test_denied_fields_are_hidden(project):
    bob = ok("bob", "records", "list", "customer")["records"]
    carol = ok("carol", "records", "list", "customer")["records"]
    assert all("credit_limit" not in r["fields"] for r in bob)
    assert any(r["fields"].get("credit_limit") for r in carol)
    rid = carol[0]["id"]
    shown = ok("bob", "records", "show", "customer", rid)
    assert "credit_limit" not in shown["fields"]
    assert all("credit_limit" not in s["values"] for src in shown["sources"].values() for s in src.values())
    denied("bob", "records", "history", "customer", rid, "--field", "credit_limit", missing="read")


def test_resolve_needs_the_permission_the_entity_and_the_field(project):
    from sqlalchemy import insert

    from hub.context import Context
    from hub.models import Conflict
    from hub.types import new_id, utcnow
    denied("dave", "conflicts", "resolve", open_conflict()["id"], "--keep", missing="resolve")
    engine = Context().engine()
    record = ok("alice", "records", "list", "customer")["records"][0]["id"]
    cid = new_id()
    with engine.begin() as conn:
        conn.execute(insert(Conflict.__table__), [{
            "id": cid, "entity": "customer", "record_id": record, "field": "credit_limit", "status": "open",
            "rule": "manual", "values": {"erp": "1", "crm": "2"}, "timestamps": {}, "golden": "1",
            "winner": None, "note": None, "run_id": None, "created_at": utcnow(), "resolved_at": None,
            "resolved_by": None}])
    out = denied("bob", "conflicts", "resolve", cid, "--take", "crm", missing="resolve")
    assert "credit_limit" in out
    ok("carol", "conflicts", "resolve", cid, "--take", "crm")
    resolved = ok("bob", "conflicts", "resolve", open_conflict()["id"], "--take", "erp", "--note", "checked")
    assert resolved["resolved"][0]["new"] == "ap@yuntu.com.cn"


@pytest.mark.parametrize("args, missing", [
    (("quarantine", "retry"), "retry"),
    (("sync", "run"), "admin"),
    (("sync", "push"), "admin"),
    (("audit", "list"), "admin"),
    (("users", "add", "zoe"), "admin"),
])
def test_admin_and_retry_actions(project, args, missing):
    denied("bob", *args, missing=missing)


def test_refusals_are_audited_and_the_chain_detects_an_edit(project):
    denied("dave", "sync", "run", missing="admin")
    entries = ok("alice", "audit", "list", "--user", "dave")["entries"]
    assert entries and entries[0]["outcome"] == "denied" and entries[0]["action"] == "denied:admin"
    assert ok("alice", "audit", "verify")["ok"] is True
    from sqlalchemy import update

    from hub.context import Context
    from hub.models import AuditLog
    t = AuditLog.__table__
    with Context().engine().begin() as conn:
        conn.execute(update(t).where(t.c.seq == entries[-1]["seq"]).values(note="edited afterwards"))
    r = run("alice", "audit", "verify")
    assert r.exit_code == 1 and json.loads(r.stdout)["broken_at"] == entries[-1]["seq"]


def test_database_users_and_roles(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "q")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "q")
    # single-user mode: the first user added makes the caller admin, so nobody is locked out
    ok("root2", "users", "add", "bob")
    ok("root2", "users", "role", "auditor", "--entity", "customer", "--can", "read")
    ok("root2", "users", "grant", "bob", "auditor")
    assert {u["name"]: u["roles"] for u in ok("root2", "users", "list")["users"]} == {"bob": ["auditor"],
                                                                                       "root2": ["admin"]}
    ok("bob", "records", "list", "customer")
    denied("bob", "records", "list", "order", missing="read")
    denied("bob", "users", "grant", "bob", "admin", missing="admin")
    denied("bob", "users", "list", missing="admin")     # who holds which roles: an admin's to read, as to change
    ok("root2", "users", "revoke", "bob", "auditor")
    denied("bob", "records", "list", "customer", missing="read")
    actions = [e["action"] for e in ok("root2", "audit", "list")["entries"]]
    assert {"users.add", "users.role", "users.grant", "users.revoke"} <= set(actions)


def test_a_hidden_field_cannot_be_filtered_on(project: Path):
    limit = next(r["fields"]["credit_limit"] for r in ok("alice", "records", "list", "customer")["records"]
                 if r["fields"]["credit_limit"] is not None)
    assert ok("alice", "records", "list", "customer", "--where", f"credit_limit={limit}")["records"]
    denied("bob", "records", "list", "customer", "--where", f"credit_limit={limit}", missing="read")
    assert ok("bob", "records", "list", "customer", "--where", "country=CN")["records"]


def test_queued_writes_hide_the_callers_hidden_fields(project: Path):
    assert "credit_limit" in json.dumps(ok("alice", "outbox", "list"))
    items = ok("bob", "outbox", "list")["items"]
    assert items and "credit_limit" not in json.dumps(items)


def test_an_unknown_entity_is_a_usage_error_not_an_audited_refusal(project: Path):
    for args in (["records", "history", "custmer", "X"], ["conflicts", "list", "--entity", "custmer"]):
        r = run("bob", *args)
        assert r.exit_code == 2 and "unknown entity 'custmer'" in r.output, r.output
    assert "custmer" not in json.dumps(ok("alice", "audit", "list"))
    r = run("alice", "records", "history", "customer", "NOPE")
    assert r.exit_code == 1 and "no customer NOPE" in r.output, r.output


def test_raw_source_records_are_for_admins(project: Path):
    denied("bob", "mappings", "preview", "erp", "customer", missing="admin")
    assert ok("alice", "mappings", "preview", "erp", "customer", "--limit", "1")["records"]
