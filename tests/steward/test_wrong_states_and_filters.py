"""Exit codes for an item in the wrong state (SPEC section 6: bad input is exit 2), a retry whose row
still fails (exit 1, audited as not ok), and `records list --where` values that are not of the
field's type (one clear line, exit 2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from hub.models import AuditLog, Outbox, Quarantine

from .conftest import synced_project
from .helpers import ok, run

USERS = """
roles:
  steward: {entities: [customer, order], fields_denied: [credit_limit], can: [read, resolve, merge, retry]}
users: {alice: [admin], bob: [steward]}
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with synced_project(tmp_path_factory.mktemp("states"), USERS) as root:
        return root





def parked(engine, source_id: str) -> dict:  # noqa: ANN001
    qt = Quarantine.__table__
    with engine.connect() as conn:
        return dict(conn.execute(select(qt).where(qt.c.source_id == source_id)).mappings().one())


def last_audit(engine, action: str) -> dict:  # noqa: ANN001
    at = AuditLog.__table__
    with engine.connect() as conn:
        return dict(conn.execute(select(at).where(at.c.action == action).order_by(at.c.seq.desc()).limit(1))
                    .mappings().one())


def went_through(project: Path, engine) -> str:  # noqa: ANN001
    """The crm row with a bad e-mail, retried after the mapping stops reading e-mails: resolved."""
    mapping = project / "mappings" / "crm_customer.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("  email: {from: Email, transform: email}\n", ""),
                       encoding="utf-8")
    item = parked(engine, "001A000004")["id"]
    assert ok("alice", "quarantine", "retry", item)["still_parked_items"] == []
    assert parked(engine, "001A000004")["status"] == "resolved"
    return item


# --- quarantine and outbox items in the wrong state: exit 2, naming the state ----------------------

@pytest.mark.parametrize("command", ["retry", "drop"])
def test_a_resolved_quarantine_item_is_neither_retried_nor_dropped(project, engine, command):
    item = went_through(project, engine)
    r = run("alice", "quarantine", command, item)
    assert r.exit_code == 2, r.output
    assert f"quarantine item {item} is resolved" in r.output and "only parked items" in r.output


@pytest.mark.parametrize("command", ["retry", "drop"])
def test_a_dropped_quarantine_item_is_neither_retried_nor_dropped(engine, command):
    item = parked(engine, "C0005")["id"]
    ok("alice", "quarantine", "drop", item)
    r = run("alice", "quarantine", command, item)
    assert r.exit_code == 2 and f"quarantine item {item} is dropped" in r.output, r.output
    assert parked(engine, "C0005")["status"] == "dropped"


def test_an_unknown_quarantine_item_is_not_found(project):
    for command in ("retry", "drop"):
        r = run("alice", "quarantine", command, "01NOSUCHITEM")
        assert r.exit_code == 1 and "no quarantine item 01NOSUCHITEM" in r.output, r.output


@pytest.mark.parametrize("command", ["retry", "drop"])
def test_a_dropped_outbox_item_is_neither_retried_nor_dropped(engine, command):
    ot = Outbox.__table__
    with engine.connect() as conn:
        item = conn.scalar(select(ot.c.id).where(ot.c.status == "pending").order_by(ot.c.id).limit(1))
    ok("alice", "outbox", "drop", item)
    r = run("alice", "outbox", command, item)
    assert r.exit_code == 2 and f"outbox item {item} is dropped" in r.output, r.output


# --- a retried row that still fails: exit 1 with its reason, audited as not ok ---------------------

def test_a_retry_that_leaves_the_row_parked_exits_1_with_the_reason(engine):
    item = parked(engine, "C0006")["id"]             # a negative credit limit: the suite refuses it again
    r = CliRunner().invoke(main, ["--user", "alice", "quarantine", "retry", item])
    assert r.exit_code == 1, r.output
    assert f"quarantine item {item} (erp customer C0006) is still parked" in r.stderr
    assert "credit_limit" in r.stderr and "-100" in r.stderr
    assert last_audit(engine, "quarantine.retry")["outcome"] == "failed"
    bob = run("bob", "quarantine", "retry", item)    # the reason quotes a field bob may not see
    assert bob.exit_code == 1 and "-100" not in bob.output and "hidden" in bob.stderr
    (still,) = json.loads(bob.stdout)["still_parked_items"]
    assert still["id"] == item and "credit_limit" not in still["raw"]


def test_a_retry_whose_run_fails_says_why_on_a_terminal(project, engine):
    """The store refusing the retried row (a trigger here): the run's error is printed, not only in --json."""
    from sqlalchemy import text
    with engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON customer BEGIN "
                          "SELECT RAISE(ABORT, 'the store refuses new customers'); END"))
    mapping = project / "mappings" / "crm_customer.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("  email: {from: Email, transform: email}\n", ""),
                       encoding="utf-8")
    r = run("alice", "quarantine", "retry", parked(engine, "001A000004")["id"])
    assert r.exit_code == 1, r.output
    assert "crm/customer: IntegrityError (IntegrityError): the store refuses new customers" in r.stderr


def test_a_retry_that_goes_through_exits_0_and_is_audited_ok(project, engine):
    went_through(project, engine)
    assert last_audit(engine, "quarantine.retry")["outcome"] == "ok"


# --- records list --where: a value that is not of the field's type ---------------------------------

@pytest.mark.parametrize("entity, where, message", [
    ("customer", "credit_limit=abc", "--where credit_limit=abc: 'abc' is not a decimal number"),
    ("customer", "credit_limit=NaN", "--where credit_limit=NaN: 'NaN' is not a decimal number"),
    ("customer", "credit_limit=1,5", "--where credit_limit=1,5: '1,5' is not a decimal number"),
    ("order", "satisfaction_score=high", "--where satisfaction_score=high: 'high' is not a whole number"),
    ("order", "satisfaction_score=1.5", "--where satisfaction_score=1.5: '1.5' is not a whole number"),
    ("order", "order_date=2026-02-30", "--where order_date=2026-02-30: '2026-02-30' is not a date (YYYY-MM-DD)"),
    ("customer", "created_at=yesterday", "--where created_at=yesterday: 'yesterday' is not a date and time"),
])
def test_a_where_value_of_the_wrong_type_is_one_clear_line(project, entity, where, message):
    r = run("alice", "records", "list", entity, "--where", where)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "class" not in r.stderr and "Traceback" not in r.output
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("entity, where", [("customer", "credit_limit=1e999999999"), ("customer", "credit_limit=0.001"),
                                           ("order", "satisfaction_score=99999999999999999999")])
def test_a_where_value_no_column_can_hold_matches_nothing(project, entity, where):
    assert ok("alice", "records", "list", entity, "--where", where)["records"] == []   # the store never sees it


def test_where_values_of_the_right_type_still_filter(project):
    limits = {r["fields"]["credit_limit"] for r in ok("alice", "records", "list", "customer")["records"]}
    assert "1200000" in limits
    for text in ("1200000", "1200000.00", "1.2e6"):
        (hit,) = ok("alice", "records", "list", "customer", "--where", f"credit_limit={text}")["records"]
        assert hit["fields"]["credit_limit"] == "1200000"
    assert ok("alice", "records", "list", "order", "--where", "order_date=2026-11-10")["records"]


@pytest.mark.parametrize("args, message", [
    (["conflicts", "list", "--field", "emial"], "--field emial: not a field of any entity; did you mean 'email'?"),
    (["conflicts", "list", "--entity", "customer", "--field", "total"], "--field total: not a field of customer"),
    (["conflicts", "list", "--system", "crmm"], "--system crmm: no connector of that name; did you mean 'crm'?"),
    (["conflicts", "resolve", "--all", "--field", "emial", "--take", "erp", "--yes"], "did you mean 'email'?"),
])
def test_a_misspelt_conflict_filter_is_bad_usage_not_an_empty_list(project, args, message):
    r = run("alice", *args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr
    assert ok("alice", "conflicts", "list", "--field", "email", "--system", "crm")["conflicts"]
