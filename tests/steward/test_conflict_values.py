"""A steward's --value goes through what a source value goes through (parse, normalize, the suite's
checks of that field) or is refused with nothing written; `conflicts list` shows the golden value now."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import event, func, insert, select, update

from cli import main
from hub import golden
from hub.conflicts import list_conflicts, resolve, show_conflict
from hub.errors import UsageError
from hub.models import Conflict, FieldHistory, Outbox
from hub.store import make_engine
from hub.types import new_id

from .conftest import synced_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with synced_project(tmp_path_factory.mktemp("values")) as root:
        yield root


@pytest.fixture(scope="module")
def engine(project: Path):
    eng = make_engine(f"sqlite:///{project / 'triad.db'}")
    yield eng
    eng.dispose()


def triad(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--json", *args])


def customer_id(engine, code: str) -> str:
    t = golden.table_of("customer")
    with engine.connect() as conn:
        return conn.scalar(select(t.c.id).where(t.c.code == code))


def open_conflict(engine, record_id: str, field: str, values: dict, entity: str = "customer") -> str:
    """An open manual conflict on one field, as the merge opens it."""
    with engine.connect() as conn:
        at_open = golden.load(conn, entity, [record_id])[record_id].values.get(field)
    cid = new_id()
    with engine.begin() as conn:
        conn.execute(insert(Conflict.__table__), [{
            "id": cid, "entity": entity, "record_id": record_id, "field": field, "status": "open",
            "rule": "manual", "values": values, "timestamps": {}, "golden": at_open, "winner": None, "note": None,
            "run_id": None, "created_at": datetime.now(timezone.utc), "resolved_at": None, "resolved_by": None}])
    return cid


def golden_value(engine, record_id: str, field: str):  # noqa: ANN201
    with engine.connect() as conn:
        return golden.load(conn, "customer", [record_id])[record_id].values.get(field)


def footprint(engine, cid: str) -> tuple:
    """What a resolution writes: the conflict's status, history rows, outbox rows."""
    with engine.connect() as conn:
        status = conn.scalar(select(Conflict.__table__.c.status).where(Conflict.__table__.c.id == cid))
        history = conn.scalar(select(func.count()).select_from(FieldHistory.__table__))
        outbox = conn.scalar(select(func.count()).select_from(Outbox.__table__))
    return status, history, outbox


def refused(engine, cid: str, value: str, record_id: str, field: str) -> str:
    """Resolve with --value; assert exit 2, one line, and nothing written; return the message."""
    before, golden_before = footprint(engine, cid), golden_value(engine, record_id, field)
    r = triad("conflicts", "resolve", cid, "--value", value)
    assert r.exit_code == 2, r.output
    assert footprint(engine, cid) == before and before[0] == "open"
    assert golden_value(engine, record_id, field) == golden_before
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    # under --json, stdout carries the failure as one document too
    assert json.loads(r.stdout) == {"ok": False, "error": lines[0].removeprefix("error: "), "exit_code": 2}
    return lines[0]


# --- defect 1: the value is checked ----------------------------------------------------------------

def test_a_phone_that_is_no_phone_number_is_refused(project, engine):
    rid = customer_id(engine, "C0001")
    cid = open_conflict(engine, rid, "phone", {"erp": "+862155550199", "crm": "+862155550101"})
    msg = refused(engine, cid, "call me maybe", rid, "phone")
    assert r"phone: 'call me maybe' does not match ^\+[1-9]\d{6,14}$ (expect_column_values_to_match_regex)" in msg


def test_an_email_that_is_no_address_is_refused(project, engine):
    rid = customer_id(engine, "C0003")
    cid = open_conflict(engine, rid, "email", {"erp": "billing@qhlogistics.cn", "crm": "ap@qhlogistics.cn"})
    msg = refused(engine, cid, "not an email", rid, "email")
    assert (r"email: 'not an email' does not match ^[^@\s]+@[^@\s]+\.[^@\s]+$"
            " (expect_column_values_to_match_regex)") in msg


def test_a_bad_decimal_names_the_field_and_the_value(project, engine):
    rid = customer_id(engine, "C0003")
    cid = open_conflict(engine, rid, "credit_limit", {"erp": "300000", "crm": "350000"})
    assert "credit_limit: 'abc' is not a decimal number" in refused(engine, cid, "abc", rid, "credit_limit")
    assert "ConversionSyntax" not in refused(engine, cid, "NaN", rid, "credit_limit")
    below = refused(engine, cid, "-5", rid, "credit_limit")
    assert "credit_limit: '-5' is below 0 (expect_column_values_to_be_between)" in below
    assert "more than 2 decimal places" in refused(engine, cid, "1.239", rid, "credit_limit")
    # SQLite keeps an amount as an 8-byte float: 16 significant digits would come back changed
    assert ("credit_limit: '99999999999999.99' has 16 significant digits; this SQLite store keeps 15 exactly"
            in refused(engine, cid, "99999999999999.99", rid, "credit_limit"))
    # a number as a system would send it is read like one
    done = json.loads(triad("conflicts", "resolve", cid, "--value", "1,234.50").stdout)["resolved"][0]
    assert done["new"] == "1234.5" and golden_value(engine, rid, "credit_limit") == "1234.5"


def test_a_required_field_cannot_be_emptied(project, engine):
    rid = customer_id(engine, "C0003")
    cid = open_conflict(engine, rid, "code", {"erp": "C0003", "crm": "C-0003"})
    msg = refused(engine, cid, "", rid, "code")
    assert "code: '' is empty, but the field is required (expect_column_values_to_not_be_null)" in msg


def test_a_value_the_suite_allows_but_the_canonical_form_refuses(project, engine):
    rid = customer_id(engine, "C0003")
    cid = open_conflict(engine, rid, "currency", {"erp": "CNY", "crm": "USD"})
    msg = refused(engine, cid, "XYZ", rid, "currency")   # three capitals, but no ISO 4217 code
    assert msg.startswith("error: currency: unknown currency 'XYZ'") and "(currency)" in msg


def test_a_phone_is_normalized_to_e164_in_the_records_country(project, engine):
    cn = customer_id(engine, "C0001")
    cid = open_conflict(engine, cn, "phone", {"erp": "+862155550199", "crm": "+862155550101"})
    done = json.loads(triad("conflicts", "resolve", cid, "--value", "021-5555-0123").stdout)["resolved"][0]
    assert done["new"] == "+862155550123" and golden_value(engine, cn, "phone") == "+862155550123"
    with engine.connect() as conn:
        ot = Outbox.__table__
        sent = [r.fields for r in conn.execute(select(ot).where(ot.c.record_id == cn))]
    assert {"phone": "+862155550123"} in sent   # the systems get the canonical form too
    de = customer_id(engine, "C0004")
    cid = open_conflict(engine, de, "phone", {"erp": "+49891234567", "crm": "+49891234568"})
    done = json.loads(triad("conflicts", "resolve", cid, "--value", "089 1234569").stdout)["resolved"][0]
    assert done["new"] == "+49891234569"


def test_an_email_is_lower_cased(project, engine):
    rid = customer_id(engine, "C0004")
    cid = open_conflict(engine, rid, "email", {"erp": "einkauf@mueller-mb.de", "crm": "info@mueller-mb.de"})
    done = json.loads(triad("conflicts", "resolve", cid, "--value", " Verkauf@Mueller-MB.de ").stdout)["resolved"][0]
    assert done["new"] == "verkauf@mueller-mb.de"


def test_only_the_fields_own_expectations_judge_it(project, engine):
    """A record that already breaks another expectation still takes a good value."""
    rid = customer_id(engine, "C0002")
    t = golden.table_of("customer")
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == rid).values(tier="Silver", status="not-a-status"))
    cid = open_conflict(engine, rid, "tier", {"erp": "Silver", "crm": "Gold"})
    r = triad("conflicts", "resolve", cid, "--value", "Gold")
    assert r.exit_code == 0, r.output
    assert golden_value(engine, rid, "tier") == "Gold"


def test_a_deployment_suite_is_applied(project, engine, tmp_path):
    suite = tmp_path / "customer.yaml"
    suite.write_text("- {expectation: expect_column_values_to_be_in_set, column: tier, value_set: [Gold, Silver]}\n",
                     encoding="utf-8")
    rid = customer_id(engine, "C0003")
    cid = open_conflict(engine, rid, "tier", {"erp": "Gold", "crm": "Silver"})
    with pytest.raises(UsageError) as exc, engine.begin() as conn:
        resolve(conn, cid, user="ann", out_systems=("erp", "crm"), value="Platinum", suite_override=str(suite))
    assert str(exc.value) == "tier: 'Platinum' is not one of Gold, Silver (expect_column_values_to_be_in_set)"
    assert footprint(engine, cid)[0] == "open"
    with engine.begin() as conn:
        done = resolve(conn, cid, user="ann", out_systems=(), value="Silver", suite_override=str(suite))
    assert done["new"] == "Silver"


def test_a_value_too_long_for_the_store_is_refused(project, engine):
    rid = customer_id(engine, "C0003")
    cid = open_conflict(engine, rid, "name", {"erp": "A", "crm": "B"})
    assert "at most 255 fit" in refused(engine, cid, "x" * 300, rid, "name")


# --- defect 2: list shows the golden value now -----------------------------------------------------

def test_list_shows_the_current_golden_value(project, engine):
    auto = next(c for c in json.loads(triad("conflicts", "list").stdout)["conflicts"]
                if c["field"] == "phone" and c["status"] == "auto")
    # most_recent let crm's later value win after the conflict opened on erp's value
    now = golden_value(engine, auto["record_id"], "phone")
    assert auto["golden"] == now and auto["golden_at_open"] != now
    assert show_conflict(engine, auto["id"])["golden"] == show_conflict(engine, auto["id"])["current_golden"] == now

    rid = customer_id(engine, "C0001")
    cid = open_conflict(engine, rid, "owner", {"erp": "Li Lei", "crm": "Han Meimei"})
    assert triad("conflicts", "resolve", cid, "--value", "Wang Fang").exit_code == 0
    listed = next(c for c in json.loads(triad("conflicts", "list", "--status", "resolved").stdout)["conflicts"]
                  if c["id"] == cid)
    assert listed["golden"] == "Wang Fang" and listed["golden_at_open"] != "Wang Fang"
    shown = json.loads(triad("conflicts", "show", cid).stdout)
    assert shown["golden"] == shown["current_golden"] == "Wang Fang"


def test_list_loads_golden_values_once_per_entity(project, engine):
    codes = ("C0001", "C0002", "C0003", "C0004")
    for n, code in enumerate(codes):
        open_conflict(engine, customer_id(engine, code), "tier" if n % 2 else "city", {"erp": "a", "crm": "b"})
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        statements.append(statement)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        rows = list_conflicts(engine, status="open", entity="customer")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(rows) >= len(codes)
    golden_loads = [s for s in statements if 'FROM customer' in s and 'FROM "conflict"' not in s]
    assert len(golden_loads) == 1, statements   # (the conflict query itself leaves merged-away records out)
    by_record = {r["record_id"]: r for r in rows if r["field"] in ("tier", "city")}
    for rid, r in by_record.items():
        assert r["golden"] == golden_value(engine, rid, r["field"])


def test_all_digits_of_an_amount_fit_where_decimals_are_exact():
    from decimal import Decimal
    from hub.steward_values import column_problem
    amount = Decimal("99999999999999.99")
    assert column_problem("customer", "credit_limit", amount) is None          # PostgreSQL: exact numeric
    assert "16 significant digits" in column_problem("customer", "credit_limit", amount, exact_digits=15)
    assert column_problem("customer", "credit_limit", Decimal("1000000000000000"), exact_digits=15) is None


def test_resolve_all_taking_a_system_leaves_the_conflicts_it_has_no_value_in(project, engine):
    both = [open_conflict(engine, customer_id(engine, code), "address", {"erp": f"{code} Road 1", "crm": "x"})
            for code in ("C0001", "C0002")]
    crm_only = open_conflict(engine, customer_id(engine, "C0003"), "address", {"crm": "C0003 Road 9"})
    r = triad("conflicts", "resolve", "--all", "--field", "address", "--take", "erp", "--yes")
    assert r.exit_code == 0, r.output
    assert sorted(d["id"] for d in json.loads(r.stdout)["resolved"]) == sorted(both)
    assert footprint(engine, crm_only)[0] == "open"


def test_of_several_conflicts_one_that_fails_is_named_and_the_others_go_on(project, engine):
    good = open_conflict(engine, customer_id(engine, "C0001"), "postal_code", {"erp": "200001", "crm": "200002"})
    lacking = open_conflict(engine, customer_id(engine, "C0002"), "postal_code", {"crm": "200003"})
    r = triad("conflicts", "resolve", lacking, good, "--take", "erp")
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    assert [d["id"] for d in out["resolved"]] == [good]
    assert out["failed"] == [{"id": lacking, "error": f"conflict {lacking} has no value from 'erp'; it has: crm"}]
    assert footprint(engine, good)[0] == "resolved" and footprint(engine, lacking)[0] == "open"


def test_show_offers_resolve_only_while_open_and_then_says_who_settled_it_and_why(project, engine):
    cid = open_conflict(engine, customer_id(engine, "C0003"), "tier", {"erp": "gold", "crm": "silver"})
    before = CliRunner().invoke(main, ["--user", "root", "conflicts", "show", cid])
    assert before.exit_code == 0 and f"triad conflicts resolve {cid} --take" in before.output
    assert "settled by" not in before.output
    assert triad("--user", "root", "conflicts", "resolve", cid, "--take", "crm", "--note", "per the contract").exit_code == 0
    after = CliRunner().invoke(main, ["--user", "root", "conflicts", "show", cid])
    assert after.exit_code == 0 and "conflicts resolve" not in after.output
    assert "per the contract" in after.output and "root" in after.output
    assert "triad records history customer" in after.output and "--field tier" in after.output
    auto = next(c for c in json.loads(triad("conflicts", "list", "--status", "auto").stdout)["conflicts"])
    shown = CliRunner().invoke(main, ["conflicts", "show", auto["id"]])
    assert f"the rule ({auto['rule']})" in shown.output and "conflicts resolve" not in shown.output
