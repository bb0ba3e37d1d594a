"""SAP's OData API lists no deleted sales orders: with `deleted_when_missing: true`, a complete read of
A_SalesOrder finds an order deleted in SAP (HTTP DELETE) and flags it; an incremental read does not."""
from __future__ import annotations

from pathlib import Path

import requests
from sqlalchemy import select

from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub.config import load_config
from hub.models import Xref
from hub.store import make_engine, upgrade
from hub.streams import Parts
from hub.sync import run_stream

from .conftest import PASSWORD, SO_ROOT, USER


def project(root: Path, sap_url: str) -> Parts:
    root.mkdir(parents=True, exist_ok=True)
    (root / "triad.yaml").write_text(f"""store: {{url: 'sqlite:///{root / "hub.db"}'}}
connectors:
  erp:
    type: sap
    base_url: {sap_url}
    auth: {{user: {USER}, password: {PASSWORD}}}
    retry: {{attempts: 3, backoff: 0.01, max_wait: 0.05, timeout: 10}}
    entities: {{customer: {{}}, order: {{deleted_when_missing: true}}}}
""", encoding="utf-8")
    cfg = load_config(str(root / "triad.yaml"))
    upgrade(make_engine(cfg.store.url))
    return Parts(cfg)


def delete_in_sap(base_url: str, order: str) -> None:
    with requests.Session() as s:
        s.auth = (USER, PASSWORD)
        root = f"{base_url}{SO_ROOT}"
        token = s.head(root, headers={"x-csrf-token": "Fetch"}).headers["x-csrf-token"]
        resp = s.delete(f"{root}/A_SalesOrder('{order}')", headers={"x-csrf-token": token})
        assert resp.status_code == 204, resp.text


def test_an_order_deleted_in_sap_is_flagged_by_a_complete_read(tmp_path: Path):
    app = create_app(SimOptions(seed=7, records=12))
    with SimServer(app) as srv:
        parts = project(tmp_path / "p", srv.base_url)
        engine = make_engine(parts.cfg.store.url)
        for entity in ("customer", "order"):
            report = run_stream(engine, parts, "erp", entity)
            assert report.status == "ok", report.error
        xt = Xref.__table__
        with engine.connect() as conn:
            linked = sorted(conn.scalars(select(xt.c.source_id).where(xt.c.entity == "order", xt.c.status == "active")))
        assert len(linked) >= 3
        gone = linked[1]
        delete_in_sap(srv.base_url, gone)

        incremental = run_stream(engine, parts, "erp", "order")
        assert (incremental.status, incremental.counts["deleted"]) == ("ok", 0)

        full = run_stream(engine, parts, "erp", "order", full=True)
        assert (full.status, full.error, full.counts["deleted"]) == ("ok", None, 1)
        with engine.connect() as conn:
            status = dict(conn.execute(select(xt.c.source_id, xt.c.status).where(xt.c.entity == "order")).all())
        assert status == {sid: ("deleted" if sid == gone else "active") for sid in linked}
        engine.dispose()


def test_a_filtered_read_cannot_find_deletions(tmp_path: Path):
    """A filtered read does not return the orders outside the filter: all of them would be flagged."""
    from click.testing import CliRunner

    from cli import main
    cfg = tmp_path / "triad.yaml"
    cfg.write_text(f"""store: {{url: 'sqlite:///{tmp_path / "hub.db"}'}}
connectors:
  erp:
    type: sap
    base_url: http://127.0.0.1:9
    auth: {{user: {USER}, password: {PASSWORD}}}
    entities: {{customer: {{}}, order: {{deleted_when_missing: true, filter: "SalesOrderType eq 'OR'"}}}}
""", encoding="utf-8")
    r = CliRunner().invoke(main, ["--config", str(cfg), "config", "validate"])
    assert r.exit_code == 2, r.output
    assert ("connectors.erp.entities.order.deleted_when_missing: a read narrowed by filter does not return the "
            "records outside it") in r.output
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(", filter: \"SalesOrderType eq 'OR'\"", ""),
                   encoding="utf-8")
    r = CliRunner().invoke(main, ["--config", str(cfg), "config", "validate"])
    assert r.exit_code == 0, r.output
