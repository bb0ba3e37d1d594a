"""`push` to SAP holds an update when the partner was changed in SAP since the hub's last read
(the connector fetches it by key first), so a rename made in SAP is never overwritten unseen."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from sqlalchemy import select

from connectors.sap.schema import ENTITY_SETS
from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub.config import load_config
from hub.models import Outbox
from hub.push import push
from hub.store import make_engine, upgrade
from hub.streams import Parts
from hub.sync import run_stream

from .conftest import PASSWORD, USER

FILE_MAPPING = """source: customers.csv
key: id
updated_at: updated_at
fields:
  name: name
  tax_id: tax_id
"""


def project(root: Path, sap_url: str) -> Parts:
    (root / "a").mkdir(parents=True)
    (root / "a.yaml").write_text(FILE_MAPPING, encoding="utf-8")
    (root / "triad.yaml").write_text(f"""store: {{url: 'sqlite:///{root / "hub.db"}'}}
connectors:
  a: {{type: file, path: ./a, direction: both, entities: {{customer: {{mapping: a.yaml}}}}}}
  erp:
    type: sap
    base_url: {sap_url}
    auth: {{user: {USER}, password: {PASSWORD}}}
    retry: {{attempts: 3, backoff: 0.01, max_wait: 0.05, timeout: 10}}
    entities: {{customer: {{}}}}
survivorship: {{customer: {{default: most_recent, priority: [a, erp]}}}}
matching: {{customer: {{exact: [tax_id]}}}}
""", encoding="utf-8")
    cfg = load_config(str(root / "triad.yaml"))
    upgrade(make_engine(cfg.store.url))
    return Parts(cfg)


def export(root: Path, name: str, tax_id: str, stamp: str) -> None:
    (root / "a" / "customers.csv").write_text(f"id,name,tax_id,updated_at\na1,{name},{tax_id},{stamp}\n",
                                              encoding="utf-8")


def sync(engine, parts: Parts, name: str) -> None:
    report = run_stream(engine, parts, name, "customer")
    assert report.status == "ok", report.error


def rename_in_sap(base_url: str, key: str, name: str) -> None:
    with requests.Session() as s:
        s.auth = (USER, PASSWORD)
        root = f"{base_url}/sap/opu/odata/sap/API_BUSINESS_PARTNER"
        token = s.head(root, headers={"x-csrf-token": "Fetch"}).headers["x-csrf-token"]
        resp = s.patch(f"{root}/A_BusinessPartner('{key}')", json={"OrganizationBPName1": name},
                       headers={"x-csrf-token": token})
        assert resp.status_code == 204, resp.text


def test_a_hub_update_of_a_partner_renamed_in_sap_since_the_last_read_is_held(tmp_path: Path):
    app = create_app(SimOptions(seed=7, records=12))
    bp = next(r for r in app.store.rows("A_BusinessPartner") if r["BusinessPartnerCategory"] == "2"
              and app.store.related(ENTITY_SETS["A_BusinessPartner"], r, "to_BusinessPartnerTaxNumber"))
    (tax,) = app.store.related(ENTITY_SETS["A_BusinessPartner"], bp, "to_BusinessPartnerTaxNumber")[:1]
    key, tax_id = bp["BusinessPartner"], tax["BPTaxNumber"].strip().upper()
    with SimServer(app) as srv:
        parts = project(tmp_path, srv.base_url)
        engine = make_engine(parts.cfg.store.url)
        export(tmp_path, bp["BusinessPartnerFullName"], tax_id, "2026-01-01T08:00:00Z")
        sync(engine, parts, "erp")
        sync(engine, parts, "a")              # a1 links to the partner by tax id
        push(engine, parts)

        at = datetime.now(timezone.utc) + timedelta(seconds=5)
        app.store.clock = lambda: at          # a user renames the partner in SAP after the hub's read
        rename_in_sap(srv.base_url, key, "SAP侧改名股份有限公司")
        export(tmp_path, "文件侧改名有限公司", tax_id, "2026-02-01T08:00:00Z")
        sync(engine, parts, "a")              # the golden name changes: an update for SAP is queued
        reports = {r.connector: r for r in push(engine, parts, connectors=["erp"])}

        assert app.store.get("A_BusinessPartner", key)["BusinessPartnerFullName"] == "SAP侧改名股份有限公司"
        assert reports["erp"].counts["deferred"] == 1 and reports["erp"].counts["written"] == 0
        ot = Outbox.__table__
        with engine.connect() as conn:
            (row,) = conn.execute(select(ot.c.status, ot.c.last_error).where(ot.c.connector == "erp",
                                                                            ot.c.status == "pending"))
        assert row.last_error.endswith("waiting for a read") and "name" in row.last_error
        engine.dispose()
