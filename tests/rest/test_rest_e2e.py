"""Through the CLI: the shipped HubSpot description and mapping against the simulator, both directions."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
from click.testing import CliRunner
from rest_helpers import plugin_dir

from cli import main

CONFIG = """
store: {{url: 'sqlite:///hub.db'}}
connectors:
  crm:
    type: rest
    api: hubspot                     # the shipped description, and mappings/rest/customer.yaml by default
    base_url: {url}
    auth:
      token: ${{HUBSPOT_TOKEN}}       # from the environment, never written down
    backoff: 0.01
    batch_size: 15
    entities: {{customer: {{}}}}
  erp:
    type: file
    path: ./exports
    direction: in
    entities: {{customer: {{mapping: erp_customer.yaml}}}}
matching:
  customer: {{exact: [code]}}
"""
ERP_MAPPING = """
source: customers.csv
key: customer_no
updated_at: updated_at
fields:
  code: customer_no
  name: name
  city: city
  country: country
"""


@pytest.fixture
def project(tmp_path: Path, sim: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    plugins = plugin_dir(tmp_path / "plugins")
    if plugins:
        monkeypatch.syspath_prepend(plugins)
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HUBSPOT_TOKEN", "triad-secret")
    root = tmp_path / "p"
    (root / "exports").mkdir(parents=True)
    (root / "triad.yaml").write_text(CONFIG.format(url=sim.url), encoding="utf-8")
    (root / "erp_customer.yaml").write_text(ERP_MAPPING, encoding="utf-8")
    (root / "exports" / "customers.csv").write_text(
        "customer_no,name,city,country,updated_at\nE-1,Erzgebirge Werkzeug GmbH,Chemnitz,DE,2026-01-05 09:00:00\n",
        encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else {}


def test_sync_hubspot_companies_then_push_a_new_customer_back(project: Path, sim: Any) -> None:
    triad("db", "upgrade")
    checked = triad("connectors", "check", "crm")
    assert "HubSpot CRM v3 reachable" in json.dumps(checked)
    runs = {(r["connector"], r["entity"]): r for r in triad("sync", "run")["runs"]}
    crm = runs[("crm", "customer")]
    assert crm["status"] == "ok" and crm["read"] == 40 and crm["created"] == 40 and crm["quarantined"] == 0
    assert runs[("erp", "customer")]["created"] == 1

    # someone edits a company in HubSpot; the next run asks the search endpoint for changes only
    target = sim.sim.state.data["hubspot"]["companies"][5]
    requests.patch(f"{sim.url}/crm/v3/objects/companies/{target['id']}", json={"properties": {"city": "Dresden"}},
                   headers={"Authorization": "Bearer triad-secret"}, timeout=10).raise_for_status()
    again = {(r["connector"], r["entity"]): r for r in triad("sync", "run", "--connector", "crm")["runs"]}
    assert again[("crm", "customer")]["updated"] == 1 and again[("crm", "customer")]["read"] < 5
    found = triad("records", "list", "customer", "--where", "city=Dresden")["records"]
    assert [r["xrefs"]["crm"] for r in found] == [[target["id"]]]

    # the ERP customer is new to HubSpot: pushed as a create, its new id linked in xref
    pushed = triad("sync", "push", "--connector", "crm")["pushes"]
    assert sum(p["written"] for p in pushed) == 1 and all(p["dead"] == 0 for p in pushed)
    created = [c for c in sim.sim.state.data["hubspot"]["companies"]
               if c["properties"].get("name") == "Erzgebirge Werkzeug GmbH"]
    assert len(created) == 1 and created[0]["properties"]["city"] == "Chemnitz"
    erp = triad("records", "list", "customer", "--where", "code=E-1")["records"][0]
    assert erp["xrefs"]["crm"] == [created[0]["id"]]
    # reading the echo of our own write changes nothing
    echo = {(r["connector"], r["entity"]): r for r in triad("sync", "run", "--connector", "crm")["runs"]}
    assert echo[("crm", "customer")]["created"] == 0 and echo[("crm", "customer")]["queued"] == 0


def test_a_bad_description_is_a_config_error_with_file_line_and_key(project: Path, tmp_path: Path,
                                                                    make_sim: Callable) -> None:
    (project / "api.yaml").write_text("resources:\n  companies:\n    list: {path: /x, recrods: data}\n",
                                      encoding="utf-8")
    config = (project / "triad.yaml").read_text(encoding="utf-8").replace("api: hubspot", "api: api.yaml")
    (project / "triad.yaml").write_text(config, encoding="utf-8")
    triad("db", "upgrade")
    r = CliRunner().invoke(main, ["--json", "sync", "run", "--connector", "crm"], catch_exceptions=False)
    assert r.exit_code == 2, r.output       # refused before any stream runs: no run row, no cursor
    assert "api.yaml:3: resources.companies.list.recrods: unknown key 'recrods'" in r.stderr
    assert triad("runs", "list")["runs"] == []
