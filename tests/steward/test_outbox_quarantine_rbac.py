"""Outbox and quarantine under RBAC: writes checked per item entity, listings cut to what a role may
see, outbox list ordered for an admin and honest about its limit, refused state changes, retry counts."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select, update

from cli import main
from hub.errors import ConfigError
from hub.models import Outbox, Quarantine
from hub.quarantine_admin import HIDDEN, Redactor
from hub.rbac import Principal
from hub.config import RoleConfig
from hub.types import new_id, utcnow

from .conftest import synced_project
from .helpers import ok, run

USERS = """
roles:
  steward_sales: {entities: [customer, order], fields_denied: [credit_limit], can: [read, resolve, merge]}
  finance: {entities: [payment, contract, customer], can: [read, resolve]}
  cust_retry: {entities: [customer], can: [read, retry]}
users: {alice: [admin], bob: [steward_sales], carol: [finance], dave: [cust_retry]}
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo project after one `sync run`, copied afresh for every test (tests change its state)."""
    with synced_project(tmp_path_factory.mktemp("oqrbac"), USERS) as root:
        return root





def item_of(engine, table, entity: str, **where) -> dict:  # noqa: ANN001
    t = table.__table__
    q = select(t).where(t.c.entity == entity, *(t.c[k] == v for k, v in where.items())).order_by(t.c.id)
    with engine.connect() as conn:
        return dict(conn.execute(q).mappings().first())


# --- 1. writes check the item's entity ------------------------------------------------------------

@pytest.mark.parametrize("table, command", [(Outbox, ("outbox", "drop")), (Outbox, ("outbox", "retry")),
                                            (Quarantine, ("quarantine", "drop")),
                                            (Quarantine, ("quarantine", "retry"))])
def test_writes_are_refused_outside_the_callers_entities(engine, table, command):
    order = item_of(engine, table, "order", status="pending" if table is Outbox else "parked")
    r = run("dave", *command, order["id"])
    assert r.exit_code == 2, r.output
    assert "user 'dave'" in r.output and "missing permission 'retry' on order" in r.output
    assert item_of(engine, table, "order", id=order["id"])["status"] == order["status"]   # untouched
    denials = [e for e in ok("alice", "audit", "list", "--user", "dave")["entries"] if e["outcome"] == "denied"]
    assert denials and denials[0]["action"] == "denied:retry" and order["id"] in denials[0]["target"]


def test_the_same_writes_pass_on_the_callers_own_entity(engine):
    customer = item_of(engine, Outbox, "customer", status="pending")
    ok("dave", "outbox", "drop", customer["id"])
    parked = item_of(engine, Quarantine, "customer", status="parked")
    ok("dave", "quarantine", "drop", parked["id"])


def test_retry_of_everything_covers_only_the_callers_entities(engine):
    runs = ok("dave", "quarantine", "retry")["runs"]
    assert runs and {r["entity"] for r in runs} == {"customer"}


# --- 2. listings show only what the role may see --------------------------------------------------

def test_outbox_list_leaves_out_entities_the_caller_may_not_read(project):
    assert "order" in {i["entity"] for i in ok("alice", "outbox", "list")["items"]}
    carol = ok("carol", "outbox", "list")
    assert carol["items"] and {i["entity"] for i in carol["items"]} == {"customer"}
    assert carol["total"] == len(carol["items"])


def _c0006(items: list[dict]) -> dict:
    return next(i for i in items if i["connector"] == "erp" and i["source_id"] == "C0006")


def test_quarantine_hides_the_payload_keys_and_reason_values_of_denied_fields(project):
    alice = _c0006(ok("alice", "quarantine", "list")["items"])
    assert alice["raw"]["credit_limit"] == "-100"
    listed = ok("bob", "quarantine", "list")
    bob = _c0006(listed["items"])
    assert {"id", "connector", "entity", "source_id", "reasons", "status"} <= set(bob)
    assert "credit_limit" not in bob["raw"] and bob["raw"]["email"] == alice["raw"]["email"]
    assert "-100" not in json.dumps(listed)
    (reason,) = bob["reasons"]
    assert reason["column"] == "credit_limit" and "value" not in reason and "hidden" in reason["message"]
    shown = run("bob", "quarantine", "show", bob["id"])
    assert shown.exit_code == 0 and "-100" not in shown.stdout and '"credit_limit": "' not in shown.stdout
    human = CliRunner().invoke(main, ["--user", "bob", "quarantine", "show", bob["id"]])
    assert human.exit_code == 0 and "-100" not in human.stdout and "hidden" in human.stdout


def _mapping(*fields: tuple[str, tuple[str, ...]]) -> SimpleNamespace:
    return SimpleNamespace(plan=SimpleNamespace(fields=[SimpleNamespace(name=n, source=s) for n, s in fields]))


def _bob() -> Principal:
    return Principal("bob", {"s": RoleConfig(entities=["customer"], fields_denied=["credit_limit"], can=["read"])})


def _parked(raw: dict, reasons: list | None = None, connector: str = "crm") -> dict:
    return {"id": "q1", "connector": connector, "entity": "customer", "source_id": "1", "kind": "mapping",
            "reasons": reasons or [], "status": "parked", "raw": raw}


def test_redaction_follows_the_mapping_vendor_names_and_dotted_paths():
    mappings = {("crm", "customer"): _mapping(("credit_limit", ("Finance", "CreditLimit__c")),
                                              ("name", ("Name",))),
                ("kd", "customer"): _mapping(("credit_limit", ("FCreditAmount",)))}
    redact = Redactor(_bob(), lambda c, e: mappings[(c, e)])
    raw = {"Name": "Acme", "Finance": {"CreditLimit__c": 5000, "Currency": "EUR"}, "Finance.CreditLimit__c": 5000}
    out = redact(_parked(raw, [{"reason": "mapping", "field": "credit_limit",
                                "message": "credit_limit: invalid decimal 'x5000' (from Finance.CreditLimit__c)"}]))
    assert out["raw"] == {"Name": "Acme", "Finance": {"Currency": "EUR"}}
    assert raw["Finance"]["CreditLimit__c"] == 5000                      # the stored item is not changed
    assert "x5000" not in out["reasons"][0]["message"] and out["hidden_fields"] == ["credit_limit"]
    kd = redact(_parked({"FCreditAmount": "-1", "FName": "Acme"}, connector="kd"))
    assert kd["raw"] == {"FName": "Acme"}
    unread = redact(_parked({"__error__": "bad quote", "__raw__": "Acme,5000"}))
    assert unread["raw"]["__raw__"] == HIDDEN and unread["raw"]["__error__"] == "bad quote"


def test_a_payload_whose_mapping_cannot_be_loaded_is_hidden_whole():
    def broken(connector: str, entity: str):  # noqa: ANN202
        raise ConfigError(f"connector '{connector}' is not configured")
    out = Redactor(_bob(), broken)(_parked({"CreditLimit__c": 5000}))
    assert out["raw"] == {}
    admin = Principal("alice", {"admin": RoleConfig(entities=["customer"], can=["admin"])})
    assert Redactor(admin, broken)(_parked({"CreditLimit__c": 5000}))["raw"] == {"CreditLimit__c": 5000}


# --- 3. outbox list: what an admin needs first, and a cut list says so ----------------------------

def _add_done_rows(engine, n: int) -> None:  # noqa: ANN001
    old = utcnow() - timedelta(days=3)
    rows = []
    for k in range(n):
        rid = new_id()
        rows.append({"id": rid, "connector": "crm", "entity": "customer", "record_id": new_id(),
                     "operation": "upsert", "fields": {"name": f"n{k}"}, "idempotency_key": rid, "status": "done",
                     "attempts": 1, "next_attempt_at": old, "last_error": None, "run_id": None,
                     "claimed_by": None, "claimed_until": None, "created_at": old + timedelta(seconds=k),
                     "updated_at": old})
    with engine.begin() as conn:
        conn.execute(insert(Outbox.__table__), rows)


def _count(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Outbox.__table__))


def test_outbox_list_shows_dead_and_pending_before_old_deliveries_and_says_when_cut(engine):
    _add_done_rows(engine, 150)
    dead = item_of(engine, Outbox, "order", status="pending")
    ot = Outbox.__table__
    with engine.begin() as conn:
        conn.execute(update(ot).where(ot.c.id == dead["id"]).values(status="dead", attempts=8))
    queued = _count(engine) - 150          # the sync's own writes: one now dead, the rest pending
    listed = ok("alice", "outbox", "list", "--limit", "20")
    items = listed["items"]
    assert len(items) == 20 and listed["more"] is True and listed["total"] == 150 + queued
    assert items[0]["id"] == dead["id"] and all(i["status"] == "pending" for i in items[1:queued])
    assert items[queued]["status"] == "done"
    assert {"id", "connector", "entity", "record_id", "fields", "status", "attempts"} <= set(items[0])
    done = [i["created_at"] for i in items if i["status"] == "done"]
    assert done == sorted(done, reverse=True)                            # newest deliveries first
    whole = ok("alice", "outbox", "list", "--limit", "500")
    assert whole["more"] is False and whole["total"] == len(whole["items"]) == 150 + queued
    human = CliRunner().invoke(main, ["--user", "alice", "outbox", "list", "--limit", "20"])
    assert human.exit_code == 0 and f"showing 20 of {150 + queued}" in human.stdout


# --- 4. state changes the item's status does not allow --------------------------------------------

def test_delivered_and_dropped_items_are_neither_retried_nor_dropped(engine):
    assert CliRunner().invoke(main, ["--user", "alice", "sync", "push"]).exit_code == 0
    done = item_of(engine, Outbox, "customer", status="done")
    for command in ("retry", "drop"):
        r = run("alice", "outbox", command, done["id"])
        assert r.exit_code == 2 and "is done" in r.output and "only dead or pending" in r.output, r.output
    assert item_of(engine, Outbox, "customer", id=done["id"])["status"] == "done"


def test_dropping_twice_is_refused_and_a_dead_item_can_be_retried(engine):
    pending = item_of(engine, Outbox, "customer", status="pending")
    ok("alice", "outbox", "drop", pending["id"])
    again = run("alice", "outbox", "drop", pending["id"])
    assert again.exit_code == 2 and "is dropped" in again.output
    dead = item_of(engine, Outbox, "order", status="pending")
    ot = Outbox.__table__
    with engine.begin() as conn:
        conn.execute(update(ot).where(ot.c.id == dead["id"]).values(status="dead", attempts=8))
    ok("alice", "outbox", "retry", dead["id"])
    back = item_of(engine, Outbox, "order", id=dead["id"])
    assert back["status"] == "pending" and back["attempts"] == 0


# --- 5. a retry says how many rows are still parked -----------------------------------------------

def test_quarantine_retry_counts_the_rows_still_parked(project):
    parked = len(ok("alice", "quarantine", "list")["items"])
    assert parked == 4
    report = ok("alice", "quarantine", "retry")
    assert report["still_parked"] == parked == sum(r["still_parked"] for r in report["runs"])
    assert all(r["quarantined"] == 0 for r in report["runs"])           # nothing newly parked, yet 4 remain
    one = ok("alice", "quarantine", "list")["items"][0]["id"]
    one_left = run("alice", "quarantine", "retry", one)      # the row fails again: exit 1, counted
    assert one_left.exit_code == 1 and json.loads(one_left.stdout)["still_parked"] == 1
    human = CliRunner().invoke(main, ["--user", "alice", "quarantine", "retry"])
    assert human.exit_code == 0 and "still parked" in human.stdout and "4 row(s) still parked" in human.stdout
