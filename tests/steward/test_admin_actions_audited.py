"""Admin commands land in the audit log (SPEC section 8): a sync run, a push, a flows run and a migration
each leave one entry saying what they did; `db upgrade` is an admin action like them."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from cli import main

from .conftest import synced_project
from .helpers import ok
from .helpers import run as triad

USERS = """
roles:
  steward_sales: {entities: [customer, order], can: [read, resolve, merge]}
users:
  alice: [admin]
  bob: [steward_sales]
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    with synced_project(tmp_path, USERS) as root:
        yield root


def entries(action: str) -> list[dict]:
    return [e for e in ok("alice", "audit", "list", "--limit", "1000")["entries"] if e["action"] == action]


def test_sync_run_push_and_flows_run_are_audited_with_what_they_did(project):
    (synced,) = entries("sync.run")          # the fixture's `sync run`, as alice
    assert synced["user"] == "alice"
    assert {(r["connector"], r["entity"], r["status"]) for r in synced["after"]["runs"]} == {
        ("erp", "customer", "ok"), ("erp", "order", "ok"), ("crm", "customer", "ok"), ("crm", "order", "ok")}
    ok("alice", "sync", "run", "--dry-run")   # writes nothing, also no entry
    assert len(entries("sync.run")) == 1
    pushed = ok("alice", "sync", "push", "--connector", "erp")["pushes"]
    (push,) = entries("sync.push")
    assert push["target"] == "erp" and push["user"] == "alice"
    assert sum(p["written"] for p in push["after"]["pushes"]) == sum(p["written"] for p in pushed) > 0
    ok("alice", "flows", "run")
    assert [e["after"]["failed"] for e in entries("flows.run")] == [0]
    assert ok("alice", "audit", "verify")["ok"] is True


def test_db_upgrade_is_an_admin_action_and_is_audited_when_it_migrates(project, tmp_path, monkeypatch):
    r = triad("bob", "db", "upgrade")
    assert r.exit_code == 2 and "may not admin" in r.output, r.output
    assert entries("db.upgrade") == []              # at head already: nothing migrated, nothing to say
    fresh = tmp_path / "fresh.db"
    monkeypatch.setenv("TRIAD_DATABASE_URL", f"sqlite:///{fresh}")
    r = CliRunner().invoke(main, ["--user", "alice", "--json", "db", "upgrade"])
    assert r.exit_code == 0, r.output
    (upgraded,) = entries("db.upgrade")
    assert upgraded["after"]["from"] is None and upgraded["after"]["to"] and upgraded["user"] == "alice"
