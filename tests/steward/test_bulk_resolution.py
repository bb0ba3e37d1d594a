"""`conflicts resolve` of many conflicts: settled chunk by chunk with set-based statements, with the
same outcome as one by one, naming each conflict it could not resolve while the others go on.

The project: an ERP and a CRM export of the same 20 customers (linked by tax id) that disagree on
email and phone, both decided by a steward (manual): 40 open conflicts, two per record.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, select
from stdnum.cn import uscc

from cli import main
from hub import conflict_resolution, golden
from hub.models import Conflict, FieldHistory, Outbox
from hub.store import make_engine

from .helpers import ok
from .helpers import run as triad

N = 20

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
survivorship:
  customer:
    default: most_recent
    priority: [erp, crm]
    fields: {email: manual, phone: manual}
matching:
  customer: {exact: [tax_id]}
"""


def _tax_id(i: int) -> str:
    base = f"91310000MA{i:07d}"
    return base + uscc.calc_check_digit(base)


def _exports(p: Path) -> None:
    erp = ["customer_no,name,type,tax_id,email,phone,country,province,city,address,postal_code,currency,"
           "credit_limit,payment_terms,status,updated_at"]
    crm = ["AccountId,AccountName,TaxNumber,Email,Phone,Country,City,Street,Tier,Owner,Active,LastModified"]
    for i in range(N):
        erp.append(f"C{i:03d},公司{i},company,{_tax_id(i)},erp{i}@x.cn,+86 138 0013 8{i:03d},中国,上海,上海,路{i}号,"
                   f"200120,CNY,5000.00,NET30,active,2026-11-01 09:00:00")
        crm.append(f"A{i:03d},公司{i},{_tax_id(i)},crm{i}@x.cn,+86 139 0013 9{i:03d},CN,上海,路{i}号,Gold,王丽,true,"
                   f"2026-11-06T02:00:00Z")
    for path in p.glob("exports/*/*.csv"):
        path.unlink()
    (p / "exports" / "erp" / "customers.csv").write_text("\n".join(erp) + "\n", encoding="utf-8")
    (p / "exports" / "crm" / "accounts.csv").write_text("\n".join(crm) + "\n", encoding="utf-8")


@pytest.fixture
def engine(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The project synced once on SQLite or PostgreSQL: 40 open conflicts."""
    for var in ("TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "p")]).exit_code == 0
    p = tmp_path / "p"
    (p / "triad.yaml").write_text(CONFIG, encoding="utf-8")
    _exports(p)
    monkeypatch.chdir(p)
    r = CliRunner().invoke(main, ["sync", "run"])
    assert r.exit_code == 0, r.output
    eng = make_engine(store_url)
    assert len(_open(eng)) == 2 * N
    yield eng
    eng.dispose()


def _open(engine: Engine) -> list[str]:
    ct = Conflict.__table__
    with engine.connect() as conn:
        return list(conn.scalars(select(ct.c.id).where(ct.c.status == "open").order_by(ct.c.created_at, ct.c.id)))


def _statements(args: list[str]) -> tuple[int, dict]:
    """(SQL statements the command executed, its JSON output)."""
    seen = []

    def count(*_: object) -> None:
        seen.append(1)
    event.listen(Engine, "before_cursor_execute", count)
    try:
        data = ok("root", *args)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return len(seen), data


def test_resolving_all_takes_a_bounded_number_of_statements_and_lands_every_decision(engine):
    ids = _open(engine)
    n_few, few = _statements(["conflicts", "resolve", *ids[:4], "--take", "crm"])
    n_many, many = _statements(["conflicts", "resolve", "--all", "--take", "crm", "--yes"])
    assert len(few["resolved"]) == 4 and len(many["resolved"]) == 2 * N - 4
    # one by one this was about 19 statements a conflict (684 for 36): now a set of statements per chunk
    assert n_many < n_few + 30, (n_few, n_many)
    with engine.connect() as conn:
        rows = golden.load(conn, "customer", [r["record_id"] for r in many["resolved"] + few["resolved"]])
        assert len(rows) == N
        for row in rows.values():
            i = int(row.values["code"][1:])
            assert (row.values["email"], row.values["phone"]) == (f"crm{i}@x.cn", f"+8613900139{i:03d}")
            assert row.provenance["email"][0] == row.provenance["phone"][0] == "user:root"
        ht = FieldHistory.__table__
        resolved = list(conn.execute(select(ht.c.record_id, ht.c.field, ht.c.new).where(ht.c.reason == "resolve")))
        assert sorted((r.record_id, r.field) for r in resolved) == sorted(
            (rid, f) for rid in rows for f in ("email", "phone"))
        # every decision goes to the system whose value lost (erp), both fields of a record together or apart
        ot = Outbox.__table__
        sent: dict[str, dict] = {}
        for r in conn.execute(select(ot.c.record_id, ot.c["fields"]).where(ot.c.connector == "erp",
                                                                            ot.c.status == "pending")):
            for f in ("email", "phone"):
                if f in r[1]:
                    sent.setdefault(r.record_id, {})[f] = r[1][f]
        assert {rid: {f: rows[rid].values[f] for f in ("email", "phone")} for rid in rows} == sent
    assert ok("root", "audit", "verify")["ok"] is True
    entries = ok("root", "audit", "list", "--limit", "100")["entries"]
    assert sum(e["action"] == "conflict.resolve" for e in entries) == 2 * N


def test_of_several_conflicts_across_chunks_those_that_cannot_be_resolved_are_named(engine, monkeypatch):
    monkeypatch.setattr(conflict_resolution, "CHUNK", 7)
    ids = _open(engine)
    ok("root", "conflicts", "resolve", ids[3], "--keep")
    given = [*ids[:10], "01NOSUCHCONFLICT0000000000", ids[12], *ids[10:]]
    r = triad("root", "conflicts", "resolve", *given, "--take", "erp")
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    failed = {f["id"]: f["error"] for f in data["failed"]}
    assert set(failed) == {ids[3], "01NOSUCHCONFLICT0000000000", ids[12]}
    assert "was resolved already by root" in failed[ids[3]]
    assert "no conflict 01NOSUCHCONFLICT0000000000" in failed["01NOSUCHCONFLICT0000000000"]
    assert "was resolved already by root" in failed[ids[12]]     # given twice: decided the first time
    assert [d["id"] for d in data["resolved"]] == [i for i in dict.fromkeys(given) if i in ids and i != ids[3]]
    assert _open(engine) == []
    assert ok("root", "audit", "verify")["ok"] is True


def test_resolving_with_no_decision_is_refused_before_anything_is_resolved(engine):
    r = triad("root", "conflicts", "resolve", "--all", "--yes")
    assert r.exit_code == 2, r.output
    assert "give exactly one of --take SYSTEM, --value VALUE, --keep" in r.output
    assert len(_open(engine)) == 2 * N


def test_a_typed_in_value_for_many_records_is_checked_in_one_expectation_run(engine, monkeypatch):
    from hub.validation import Validator
    runs = []
    real = Validator.validate
    monkeypatch.setattr(Validator, "validate", lambda self, rows: runs.append(len(rows)) or real(self, rows))
    data = ok("root", "conflicts", "resolve", "--all", "--field", "email", "--value", "Shared@X.cn", "--yes")
    assert len(data["resolved"]) == N and {d["new"] for d in data["resolved"]} == {"shared@x.cn"}
    assert runs == [N]          # one by one this was N runs of one row
    r = triad("root", "conflicts", "resolve", "--all", "--field", "phone", "--value", "not a phone", "--yes")
    assert r.exit_code == 1, r.output
    failed = json.loads(r.stdout)["failed"]
    assert len(failed) == N and all("phone: 'not a phone' does not match" in f["error"] for f in failed)
    assert len(_open(engine)) == N   # the phone conflicts stay open


def test_a_uniqueness_expectation_judges_each_record_alone(engine, tmp_path, monkeypatch):
    """The same value typed in for many records must not fail a deployment's uniqueness check
    against the other records of the resolution (each record is checked as a lone value is)."""
    suite = Path("suites/customer.yaml")
    suite.parent.mkdir()
    suite.write_text("- {expectation: expect_column_values_to_be_unique, column: email}\n", encoding="utf-8")
    cfg = Path("triad.yaml")
    cfg.write_text(cfg.read_text(encoding="utf-8") + "validation: {customer: suites/customer.yaml}\n", encoding="utf-8")
    data = ok("root", "conflicts", "resolve", "--all", "--field", "email", "--value", "shared@x.cn", "--yes")
    assert len(data["resolved"]) == N
