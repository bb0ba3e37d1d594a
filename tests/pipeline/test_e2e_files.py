"""End to end through the CLI: an ERP export and a CRM export of overlapping customers and orders,
with bad rows, an order whose customer arrives later and a concurrent edit; on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    monkeypatch.delenv("TRIAD_USER", raising=False)
    r = CliRunner().invoke(main, ["init", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else {}


def runs(result: dict) -> dict[tuple[str, str], dict]:
    return {(r["connector"], r["entity"]): r for r in result["runs"]}


def test_two_exports_sync_link_conflict_quarantine_outbox(project: Path):
    first = runs(triad("sync", "run"))
    erp_c, crm_c = first[("erp", "customer")], first[("crm", "customer")]
    assert (erp_c["read"], erp_c["created"], erp_c["quarantined"]) == (6, 4, 2)   # bad tax id, negative credit
    assert (crm_c["read"], crm_c["linked"], crm_c["created"], crm_c["quarantined"]) == (4, 2, 1, 1)  # bad email
    assert crm_c["conflicts"] == 2                     # phone (most_recent, auto) and email (manual, open)
    assert first[("erp", "order")]["created"] == 3
    assert first[("crm", "order")]["created"] == 1 and first[("crm", "order")]["quarantined"] == 1

    customers = triad("records", "list", "customer", "--limit", "50")["records"]
    assert len(customers) == 5
    xinghai = next(c for c in customers if c["fields"]["tax_id"] == "91310000MA1FL4XQ01")
    assert xinghai["xrefs"] == {"crm": ["001A000001"], "erp": ["C0001"]}
    assert xinghai["fields"]["phone"] == "+862155550199"      # the CRM edit is newer: most_recent
    assert xinghai["fields"]["tier"] == "Gold" and xinghai["fields"]["code"] == "C0001"

    conflicts = triad("conflicts", "list")["conflicts"]
    by_field = {c["field"]: c for c in conflicts}
    assert by_field["phone"]["status"] == "auto" and by_field["phone"]["rule"] == "most_recent"
    email = by_field["email"]
    assert email["status"] == "open" and email["values"] == {"crm": "purchasing@yuntu.com.cn", "erp": "ap@yuntu.com.cn"}

    items = triad("quarantine", "list")["items"]
    kinds = sorted((i["connector"], i["source_id"], i["kind"]) for i in items)
    assert kinds == [("crm", "001A000004", "mapping"), ("crm", "CRM-5002", "unresolved_ref"),
                     ("erp", "C0005", "mapping"), ("erp", "C0006", "validation")]
    c6 = next(i for i in items if i["source_id"] == "C0006")
    assert c6["reasons"][0]["column"] == "credit_limit" and c6["reasons"][0]["value"] == "-100"

    pending = triad("outbox", "list", "--status", "pending")["items"]
    targets = {(i["connector"], i["entity"]) for i in pending}
    assert ("crm", "customer") in targets and ("erp", "customer") in targets and ("crm", "order") in targets

    # the same exports again change nothing
    again = runs(triad("sync", "run"))
    for r in again.values():
        assert r["created"] == r["updated"] == r["linked"] == r["conflicts"] == r["queued"] == 0, r
    assert len(triad("outbox", "list", "--status", "pending")["items"]) == len(pending)

    # the steward settles the email conflict; the decision becomes golden, history and outbox
    triad("conflicts", "resolve", email["id"], "--take", "crm", "--note", "confirmed by phone")
    shown = triad("records", "show", "customer", email["record_id"])
    assert shown["fields"]["email"] == "purchasing@yuntu.com.cn"
    assert shown["provenance"]["email"]["system"].startswith("user:")
    assert any(h["field"] == "email" and h["reason"] == "resolve" for h in shown["history"])
    assert triad("conflicts", "list", "--status", "open")["conflicts"] == []
    assert triad("audit", "verify")["ok"] is True

    # push: the file connectors write what they were sent into their outbox folders
    pushed = triad("sync", "push")["pushes"]
    assert sum(p["written"] for p in pushed) > 0 and all(p["dead"] == 0 for p in pushed)
    assert list((project / "exports" / "crm" / "outbox").glob("*"))
    assert triad("outbox", "list", "--status", "pending")["items"] == []


def test_order_parked_for_its_customer_goes_through_when_the_customer_arrives(project: Path):
    triad("sync", "run")
    accounts = project / "exports" / "crm" / "accounts.csv"
    with accounts.open("a", encoding="utf-8") as fh:
        fh.write("001A000009,Late Comer GmbH,,info@late-comer.de,+49 30 1234567,DE,Berlin,Unter den Linden 1,"
                 "Bronze,Jane Doe,true,2026-11-07T00:00:00Z\n")
    second = runs(triad("sync", "run"))
    assert second[("crm", "customer")]["created"] == 1
    assert second[("crm", "order")]["created"] == 1
    assert [i["source_id"] for i in triad("quarantine", "list")["items"] if i["kind"] == "unresolved_ref"] == []
    order = triad("records", "list", "order", "--where", "order_no=CRM-5002")["records"][0]
    late = triad("records", "list", "customer", "--where", "name=Late Comer GmbH")["records"][0]
    assert order["fields"]["customer_id"] == late["id"]


def test_dry_run_writes_nothing(project: Path):
    report = runs(triad("sync", "run", "--dry-run"))
    assert report[("erp", "customer")]["created"] == 4
    assert triad("records", "list", "customer")["records"] == []
    assert triad("status")["outbox"]["pending"] == 0


def test_quarantine_retry_after_a_mapping_fix(project: Path):
    triad("sync", "run")
    mapping = project / "mappings" / "crm_customer.yaml"
    text = mapping.read_text(encoding="utf-8")
    # strip keeps "not-an-email", which the customer suite refuses: parked again, now by validation
    mapping.write_text(text.replace("email: {from: Email, transform: email}", "email: {from: Email, transform: strip}"),
                       encoding="utf-8")
    triad("quarantine", "retry")
    item = next(i for i in triad("quarantine", "list")["items"] if i["source_id"] == "001A000004")
    assert item["kind"] == "validation" and item["reasons"][0]["column"] == "email"
    # the CRM's email column is not trusted any more: the row goes through on retry
    mapping.write_text(text.replace("  email: {from: Email, transform: email}\n", ""), encoding="utf-8")
    triad("quarantine", "retry", item["id"])
    assert all(i["source_id"] != "001A000004" for i in triad("quarantine", "list")["items"])
    broken = triad("records", "list", "customer", "--where", "name=Broken Email Ltd")["records"]
    assert len(broken) == 1 and broken[0]["xrefs"] == {"crm": ["001A000004"]}


def test_sync_error_exits_1(project: Path):
    (project / "exports" / "crm" / "accounts.csv").write_text("Foo,Bar\n1,2\n", encoding="utf-8")  # no key column
    r = CliRunner().invoke(main, ["sync", "run"])
    assert r.exit_code == 1
    assert "crm/customer" in r.output and "AccountId" in r.output
    assert len(triad("records", "list", "customer")["records"]) == 4    # the other streams still ran
