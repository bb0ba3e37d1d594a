"""End to end through the CLI for the two Chinese ERPs: customers and sales orders in from the simulator,
a customer made in another system pushed out and linked, and reading it back changing nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from connectors.simkit import SimOptions, SimServer

ERP_OPTIONS = {
    "kingdee": "acct_id: triad-acct, username: demo@triad.local, password: triad-pass",
    "yonyou": "tenant_id: triad-tenant, app_key: triad-client, app_secret: triad-secret",
}
CSV_MAPPING = """
source: customers.csv
key: id
updated_at: ts
fields:
  code: id
  name: name
  tax_id: {from: tax, transform: tax_id_cn}
  phone: {from: phone, transform: phone_e164}
  country: country
"""


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize("kind", ["kingdee", "yonyou"])
def test_sync_in_and_push_back(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from connectors.simkit import load_simulator
    app = load_simulator(kind)(SimOptions(seed=11, records=15))
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "customers.csv").write_text(
        "id,name,tax,phone,country,ts\nN1,南京新世纪贸易有限公司,91310000MA1FL4XQ01,025-8888 1234,CN,2026-11-01T00:00:00Z\n",
        encoding="utf-8")
    (tmp_path / "crm.yaml").write_text(CSV_MAPPING, encoding="utf-8")
    with SimServer(app) as server:
        (tmp_path / "triad.yaml").write_text(f"""
store: {{url: 'sqlite:///hub.db'}}
connectors:
  erp:
    type: {kind}
    base_url: {server.base_url}
    {ERP_OPTIONS[kind].replace(", ", chr(10) + "    ").replace(": ", ": ", 1)}
    entities: [customer, order]
  crm:
    type: file
    path: ./crm
    entities: {{customer: {{mapping: crm.yaml}}}}
""", encoding="utf-8")
        triad("db", "upgrade")
        first = {(r["connector"], r["entity"]): r for r in triad("sync", "run")["runs"]}
        assert all(r["status"] == "ok" for r in first.values()), first
        assert first[("erp", "customer")]["created"] >= 10
        assert first[("erp", "order")]["created"] > 0 and first[("erp", "order")]["quarantined"] == 0
        orders = triad("records", "list", "order", "--limit", "5")["records"]
        assert orders and all(o["fields"]["customer_id"] for o in orders)    # references resolved

        pushed = {(p["connector"], p["entity"]): p for p in triad("sync", "push")["pushes"]}
        assert pushed[("erp", "customer")]["created"] == 1 and pushed[("erp", "customer")]["dead"] == 0
        newcomer = triad("records", "list", "customer", "--where", "tax_id=91310000MA1FL4XQ01")["records"]
        assert len(newcomer) == 1 and set(newcomer[0]["xrefs"]) == {"crm", "erp"}

        again = {(r["connector"], r["entity"]): r for r in triad("sync", "run")["runs"]}
        assert again[("erp", "customer")]["created"] == 0 and again[("erp", "customer")]["conflicts"] == 0, again
        # what we wrote comes back as an echo; only what the ERP filled in itself (defaults) travels on
        pending = triad("outbox", "list", "--status", "pending")["items"]
        assert all(i["connector"] == "crm" for i in pending), pending
        assert not {"name", "tax_id", "phone"} & {f for i in pending for f in i["fields"]}, pending
        assert len(triad("records", "list", "customer", "--where", "tax_id=91310000MA1FL4XQ01")["records"]) == 1
