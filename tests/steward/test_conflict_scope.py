"""Which conflicts a steward may resolve and see: a merged-away record's conflicts are refused (their
writes would re-create the record everywhere), `show` hides the record's denied fields, and
`resolve --all` selects only what the caller may see and resolve.

The project: erp, crm and shop file exports of overlapping customers; email, tier and credit_limit
are decided by a steward (manual); bob's role is denied credit_limit, carol only reads.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from cli import main
from hub import golden
from hub.models import AuditLog, Conflict, Outbox

from .helpers import ok
from .helpers import run as triad

CONFIG = """store:
  url: sqlite:///triad.db
connectors:
  erp:
    type: file
    path: ./exports/erp
    direction: both
    entities: {customer: {mapping: mappings/erp_customer.yaml}}
  crm:
    type: file
    path: ./exports/crm
    direction: both
    entities: {customer: {mapping: mappings/crm_customer.yaml}}
  shop:
    type: file
    path: ./exports/shop
    direction: both
    entities: {customer: {mapping: mappings/shop_customer.yaml}}
survivorship:
  customer:
    default: most_recent
    priority: [erp, crm, shop]
    fields: {credit_limit: manual, email: manual, tier: manual}
matching:
  customer:
    exact: [tax_id]
    fuzzy: {fields: {name: 0.6, city: 0.2, phone: 0.2}, link_at: 0.999, review_at: 0.5}
roles:
  steward: {entities: [customer, order], fields_denied: [credit_limit], can: [read, resolve, merge, retry]}
  viewer: {entities: [customer, order], can: [read]}
users: {alice: [admin], bob: [steward], carol: [viewer]}
"""

SHOP_MAPPING = """source: customers.csv
key: id
updated_at: modified
timezone: Asia/Shanghai
fields:
  name: {from: company, transform: collapse_spaces}
  tax_id: {from: uscc, transform: tax_id_cn}
  email: {from: mail, transform: email}
  phone: {from: tel, transform: "phone_e164:CN"}
  city: city
  tier: level
  credit_limit: {from: credit, type: decimal}
"""

ERP = """customer_no,name,type,tax_id,email,phone,country,province,city,address,postal_code,currency,credit_limit,payment_terms,status,updated_at
E001,上海星海贸易有限公司,company,91310000MA1FL4XQ01,finance@xinghai.cn,021-5555 0101,中国,上海,上海,浦东新区世纪大道100号,200120,CNY,500000.00,NET30,active,2026-11-01 09:00:00
E003,杭州西湖茶业有限公司,company,,tea@xihu-tea.cn,0571-8777 4040,中国,浙江,杭州,西湖区龙井路8号,310000,CNY,80000,NET30,active,2026-11-03 11:00:00
"""

CRM = """AccountId,AccountName,TaxNumber,Email,Phone,Country,City,Street,Tier,Owner,Active,LastModified
A1,上海星海贸易有限公司,91310000ma1fl4xq01,finance2@xinghai.cn,+86 21 5555 0199,CN,上海,浦东新区世纪大道100号,Gold,王丽,true,2026-11-06T02:00:00Z
A3,杭州西湖茶叶有限公司,,tea@xihu-tea.cn,0571-8777 4040,CN,杭州,西湖区龙井路8号,Bronze,王丽,true,2026-11-06T04:00:00Z
"""

SHOP = """id,company,uscc,mail,tel,city,level,credit,modified
S1,上海星海贸易 有限公司,91310000MA1FL4XQ01,finance@xinghai.cn,02155550101,上海,VIP,600000,2026-11-07 09:00:00
S2,杭州西湖茶业有限公司,,sales@xihu-tea.cn,+86 571 8777 4040,杭州,,90000,2026-11-07 10:00:00
"""



@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three-system project after one `sync run`, copied afresh for every test."""
    root = tmp_path_factory.mktemp("scope")
    mp = pytest.MonkeyPatch()
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        mp.delenv(var, raising=False)
    try:
        assert CliRunner().invoke(main, ["init", str(root / "p")]).exit_code == 0
        p = root / "p"
        (p / "triad.yaml").write_text(CONFIG, encoding="utf-8")
        (p / "mappings" / "shop_customer.yaml").write_text(SHOP_MAPPING, encoding="utf-8")
        (p / "exports" / "shop").mkdir()
        for path, text in (("erp/customers.csv", ERP), ("crm/accounts.csv", CRM), ("shop/customers.csv", SHOP)):
            (p / "exports" / path).write_text(text, encoding="utf-8")
        for stale in ("erp/orders.csv", "crm/orders.csv"):
            (p / "exports" / stale).unlink()
        mp.chdir(p)
        r = CliRunner().invoke(main, ["--user", "alice", "sync", "run"])
        assert r.exit_code == 0, r.output
    finally:
        mp.undo()
    return p




def customer_of(user: str, source: str) -> str:
    """The golden id of the customer a source id (E001, A3 ...) belongs to."""
    records = ok(user, "records", "list", "customer")["records"]
    return next(r["id"] for r in records if any(source in ids for ids in r["xrefs"].values()))


def open_conflict(engine, record_id: str, field: str) -> str:  # noqa: ANN001
    ct = Conflict.__table__
    with engine.connect() as conn:
        return conn.scalar(select(ct.c.id).where(ct.c.record_id == record_id, ct.c.field == field,
                                                 ct.c.status == "open"))


def merged_away(engine, field: str) -> tuple[str, str, str]:  # noqa: ANN001
    """(conflict id, loser, winner): the erp/shop tea company (with its open ``field`` conflict)
    merged into crm's A3 record, its conflict left on the tombstone as older merges left it."""
    loser, winner = customer_of("alice", "E003"), customer_of("alice", "A3")
    conflict = open_conflict(engine, loser, field)
    assert conflict is not None
    ok("alice", "matches", "merge", winner, loser)
    ct = Conflict.__table__
    with engine.begin() as conn:   # a merge that moves conflicts would have moved it: put it back
        conn.execute(update(ct).where(ct.c.id == conflict).values(record_id=loser, status="open"))
    return conflict, loser, winner


def outbox_rows(engine, record_id: str) -> list:  # noqa: ANN001
    ot = Outbox.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(ot.c.id).where(ot.c.record_id == record_id)))


# --- 1. a merged-away record's conflict ------------------------------------------------------------

def test_resolving_a_conflict_of_a_merged_away_record_is_refused(engine):
    conflict, loser, winner = merged_away(engine, "email")
    r = triad("alice", "conflicts", "resolve", conflict, "--take", "shop")
    assert r.exit_code == 2, r.output
    assert f"merged into customer {winner}; its conflicts are there" in r.output
    assert outbox_rows(engine, loser) == []                               # nothing re-creates the record
    ct = Conflict.__table__
    with engine.connect() as conn:
        assert conn.scalar(select(ct.c.status).where(ct.c.id == conflict)) == "open"
        assert golden.load(conn, "customer", [loser])[loser].values["email"] == "tea@xihu-tea.cn"


def test_resolve_all_leaves_out_a_merged_away_record_and_is_refused_when_nothing_else_matches(engine):
    conflict, loser, winner = merged_away(engine, "email")
    only = triad("alice", "conflicts", "resolve", "--all", "--field", "email", "--system", "shop", "--take", "shop",
                 "--yes")
    assert only.exit_code == 2 and f"merged into customer {winner}; its conflicts are there" in only.output
    both = ok("alice", "conflicts", "resolve", "--all", "--field", "email", "--take", "erp", "--yes")
    assert [d["record_id"] for d in both["resolved"]] == [customer_of("alice", "E001")]
    assert both["left_out"] == [{"id": conflict, "entity": "customer", "record_id": loser, "field": "email",
                                 "merged_into": winner}]
    assert outbox_rows(engine, loser) == []


def test_conflicts_list_leaves_merged_away_records_out_unless_asked(engine):
    conflict, loser, winner = merged_away(engine, "email")
    for args in ((), ("--status", "open")):
        listed = ok("alice", "conflicts", "list", *args)["conflicts"]
        assert conflict not in {c["id"] for c in listed} and all(c["merged_into"] is None for c in listed)
    shown = {c["id"]: c for c in ok("alice", "conflicts", "list", "--include-merged")["conflicts"]}
    assert shown[conflict]["merged_into"] == winner and shown[conflict]["status"] == "open"
    assert all(c["merged_into"] == (winner if c["record_id"] == loser else None) for c in shown.values())
    assert ok("alice", "conflicts", "show", conflict)["merged_into"] == winner
    human = CliRunner().invoke(main, ["--user", "alice", "conflicts", "list", "--include-merged"])
    assert human.exit_code == 0 and "merged into" in human.stdout
    open_listed = len(ok("alice", "conflicts", "list", "--status", "open")["conflicts"])
    assert ok("alice", "status")["conflicts"]["open"] == open_listed      # status counts the same work


# --- 2. a denied field's values stay hidden in `conflicts show` ------------------------------------

def test_conflict_show_hides_the_record_fields_denied_to_the_caller(engine):
    tier = open_conflict(engine, customer_of("alice", "E001"), "tier")
    bob = ok("bob", "conflicts", "show", tier)
    assert "credit_limit" not in bob["record"] and bob["record"]["tier"] == "Gold"
    assert ok("alice", "conflicts", "show", tier)["record"]["credit_limit"] == "500000"


# --- 3. resolve --all selects what the caller may see ----------------------------------------------

def test_resolve_all_counts_and_resolves_only_what_the_caller_may_see(engine):
    shop_open = [c for c in ok("alice", "conflicts", "list", "--status", "open", "--system", "shop")["conflicts"]]
    assert sorted(c["field"] for c in shop_open) == ["credit_limit", "credit_limit", "email", "tier"]
    asked = triad("bob", "conflicts", "resolve", "--all", "--system", "shop", "--take", "shop")
    assert asked.exit_code == 2 and "2 conflicts match" in asked.output, asked.output
    done = ok("bob", "conflicts", "resolve", "--all", "--system", "shop", "--take", "shop", "--yes")
    assert sorted(d["field"] for d in done["resolved"]) == ["email", "tier"]
    left = ok("alice", "conflicts", "list", "--status", "open", "--system", "shop")["conflicts"]
    assert [c["field"] for c in left] == ["credit_limit", "credit_limit"]   # alice's to decide
    at = AuditLog.__table__
    with engine.connect() as conn:
        assert not list(conn.execute(select(at.c.seq).where(at.c.user == "bob", at.c.outcome == "denied")))


def test_resolve_all_on_a_denied_field_or_without_the_permission_is_refused(engine):
    denied = triad("bob", "conflicts", "resolve", "--all", "--field", "credit_limit", "--take", "shop", "--yes")
    assert denied.exit_code == 2 and "permission denied" in denied.output
    reader = triad("carol", "conflicts", "resolve", "--all", "--take", "shop", "--yes")
    assert reader.exit_code == 2 and "'resolve'" in reader.output
    assert len(ok("alice", "conflicts", "list", "--status", "open")["conflicts"]) == 5


def test_a_typed_in_amount_beyond_any_column_is_refused_in_words(engine):
    credit = open_conflict(engine, customer_of("alice", "E001"), "credit_limit")
    r = triad("alice", "conflicts", "resolve", credit, "--value", "1e999999999")
    assert r.exit_code == 2 and "'1e999999999' has more than 16 digits before the decimal point" in r.output, r.output
    assert open_conflict(engine, customer_of("alice", "E001"), "credit_limit") == credit
