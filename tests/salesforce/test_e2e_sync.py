"""`triad sync run` from the Salesforce simulator into the store, an ERP export linked to the same
accounts by tax id, `triad sync push` back, and the echo of our own write changing nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from connectors.salesforce.simulator import create_app
from connectors.simkit import SimOptions, SimServer

CONFIG = """
store: {{url: 'sqlite:///hub.db'}}
connectors:
  erp:
    type: file
    path: ./erp
    direction: both
    entities: {{customer: {{mapping: erp_customer.yaml}}}}
  crm:
    type: salesforce
    base_url: {url}
    auth: {{grant: password, client_id: triad-client, client_secret: triad-secret,
           username: demo@triad.local, password: triad-pass}}
    retry: {{attempts: 4, backoff: 0.01, max_wait: 0.05, timeout: 10}}
    entities: {{customer: {{}}, order: {{}}}}
survivorship:
  customer:
    default: priority
    priority: [erp, crm]
    fields: {{credit_limit: {{owner: erp}}}}
matching:
  customer: {{exact: [tax_id]}}
"""

ERP_MAPPING = """
source: customers.csv
key: num
updated_at: changed
fields:
  code: num
  name: name
  tax_id: {from: tax, transform: [strip, upper]}
  phone: {from: phone, transform: phone_e164}
  credit_limit: {from: limit, type: decimal}
"""


@pytest.fixture
def org():
    app = create_app(SimOptions(seed=7, records=25))
    with SimServer(app) as server:
        yield app.sim, server.base_url


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_sync_accounts_link_erp_push_back_and_echo(org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sim, url = org
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    accounts = [a for a in sim.records["Account"].values() if a.get("TaxId__c") and not a.get("IsDeleted")]
    picked = sorted(accounts, key=lambda a: a["Id"])[:3]
    (tmp_path / "erp").mkdir()
    rows = ["num,name,tax,phone,limit,changed"]
    for n, a in enumerate(picked):
        rows.append(f"E{n},{a['Name']},{a['TaxId__c'].lower()},+86 10 6000 000{n},{(n + 1) * 1000}.00,2026-11-20T00:00:00Z")
    (tmp_path / "erp" / "customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "erp_customer.yaml").write_text(ERP_MAPPING, encoding="utf-8")
    (tmp_path / "triad.yaml").write_text(CONFIG.format(url=url), encoding="utf-8")
    triad("db", "upgrade")

    first = {(r["connector"], r["entity"]): r for r in triad("sync", "run")["runs"]}
    live = [a for a in sim.records["Account"].values() if not a.get("IsDeleted")]
    assert first[("erp", "customer")]["created"] == 3
    crm = first[("crm", "customer")]
    assert crm["linked"] == 3 and crm["created"] == len(live) - 3 and crm["status"] == "ok"
    orders = first[("crm", "order")]
    live_orders = [o for o in sim.records["Order"].values() if not o.get("IsDeleted")]
    # contracts are not synced here: their references are left out instead of parking the orders forever
    assert orders["status"] == "ok" and orders["created"] == len(live_orders) and orders["quarantined"] == 0

    listed = triad("records", "list", "customer", "--limit", "200")["records"]
    assert len(listed) == len(live)
    golden = {r["xrefs"]["crm"][0]: r for r in listed if "crm" in r["xrefs"]}
    for n, a in enumerate(picked):
        g = golden[a["Id"]]
        assert g["xrefs"]["erp"] == [f"E{n}"]
        assert g["fields"]["phone"] == "+8610" + f"6000000{n}"          # erp has priority
        assert g["fields"]["credit_limit"] == str((n + 1) * 1000)      # erp owns credit limits

    pushed = {(p["connector"], p["entity"]): p for p in triad("sync", "push")["pushes"]}
    assert pushed[("crm", "customer")]["written"] >= 3 and pushed[("crm", "customer")]["dead"] == 0
    for n, a in enumerate(picked):
        account = sim.get("Account", a["Id"])
        assert account["Phone"] == "+8610" + f"6000000{n}"
        assert float(account["CreditLimit__c"]) == (n + 1) * 1000
        assert account["Triad_Id__c"] == golden[a["Id"]]["id"]

    # reading back what we wrote is an echo: no golden change, no history, no new outbox rows
    before = triad("status")["outbox"]
    again = {(r["connector"], r["entity"]): r for r in triad("sync", "run")["runs"]}
    assert again[("crm", "customer")]["read"] >= 3
    assert again[("crm", "customer")]["updated"] == 0 and again[("crm", "customer")]["queued"] == 0
    assert again[("crm", "customer")]["conflicts"] == 0
    assert triad("status")["outbox"]["pending"] == before["pending"] == 0
