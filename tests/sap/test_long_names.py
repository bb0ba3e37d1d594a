"""Organization names longer than OrganizationBPName1's 40 characters: written over OrganizationBPName1..4,
read back whole (a read of the hub's own write is no edit), more than 160 characters refused per record."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from connectors.sap.names import NAME_FIELDS, NameTooLong, join_org_name, split_org_name
from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub.config import load_config
from hub.models import Customer, FieldHistory, Outbox
from hub.push import push
from hub.store import make_engine, upgrade
from hub.streams import Parts
from hub.sync import run_stream
from hub.connector import WriteChange

from .conftest import BP_ROOT, PASSWORD, USER, mapping, stream_of

LATIN = "Shanghai Pudong International Trading and Logistics Company Limited of the Free Trade Zone"   # 90
CJK = "上海浦东新区张江高科技园区国际贸易物流有限公司第二分公司暨华东区域供应链管理中心（集团）"   # 44
MIXED = "北京 Acme 国际贸易有限公司（Beijing Acme International Trading Co., Ltd.） Branch"


def names_of(app, key: str) -> list[str]:
    rec = app.store.get("A_BusinessPartner", key)
    return [rec[f] for f in NAME_FIELDS]


def read_name(conn, key: str) -> str:
    for batch in conn.read(stream_of("customer"), None):
        for raw in batch.records:
            if raw["BusinessPartner"] == key:
                return mapping("customer").to_canonical(raw).values["name"]
    raise AssertionError(f"{key} not read")


def create(conn, name: str, n: int = 1):
    values = mapping("customer").to_source({"name": name, "customer_type": "company", "country": "CN"})
    (result,) = conn.write(stream_of("customer"), [WriteChange(f"ch-{n}", f"rec-{n}", None, values)])
    return result


@pytest.mark.parametrize("name", [LATIN, CJK, MIXED])
def test_a_long_organization_name_is_spread_over_name1_to_name4_and_read_back_whole(connector, app, name):
    assert len(name) > 40
    result = create(connector, name)
    assert result.ok, result.error
    parts = names_of(app, result.source_id)
    assert all(len(p) <= 40 for p in parts) and parts[1]
    if name == LATIN:     # cut at spaces
        assert parts[:3] == ["Shanghai Pudong International Trading", "and Logistics Company Limited of the",
                             "Free Trade Zone"]
    if name == CJK:       # no spaces: cut by characters
        assert parts[0] == CJK[:40] and parts[1] == CJK[40:]
    assert read_name(connector, result.source_id) == name


def test_a_shorter_name_clears_the_parts_a_longer_one_used(connector, app):
    key = create(connector, LATIN).source_id
    values = mapping("customer").to_source({"name": "Acme GmbH"})
    (result,) = connector.write(stream_of("customer"), [WriteChange("ch-2", "rec-1", key, values)])
    assert result.ok, result.error
    assert names_of(app, key) == ["Acme GmbH", "", "", ""]
    assert read_name(connector, key) == "Acme GmbH"


def test_a_name_over_160_characters_fails_its_row_for_good_with_the_field_and_limit(connector, app):
    count = app.store.count("A_BusinessPartner")
    name = "Internationale Handelsgesellschaft " * 5          # 174 characters
    result = create(connector, name)
    assert not result.ok and not result.retriable
    assert "OrganizationBPName1..4" in result.error and "160" in result.error
    assert app.store.count("A_BusinessPartner") == count
    ok = create(connector, "Acme Trading Co", n=2)          # the other rows go on
    assert ok.ok, ok.error


def test_the_simulator_refuses_41_characters_in_one_name_field(server, app):
    with requests.Session() as s:
        s.auth = (USER, PASSWORD)
        root = server.base_url + BP_ROOT
        token = s.head(root, headers={"x-csrf-token": "Fetch"}).headers["x-csrf-token"]
        key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
                   if r["BusinessPartnerCategory"] == "2")
        resp = s.patch(f"{root}/A_BusinessPartner('{key}')", json={"OrganizationBPName2": "x" * 41},
                       headers={"x-csrf-token": token})
        assert resp.status_code == 400
        assert "OrganizationBPName2" in resp.json()["error"]["message"]["value"]
        fits = s.patch(f"{root}/A_BusinessPartner('{key}')", json={"OrganizationBPName2": "x" * 40},
                       headers={"x-csrf-token": token})
        assert fits.status_code == 204, fits.text


def test_a_name_entered_in_sap_over_three_fields_is_read_whole(connector, app):
    key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
               if r["BusinessPartnerCategory"] == "2")
    app.store.update("A_BusinessPartner", key, {"OrganizationBPName1": "Nordwest Maschinenbau und Anlagenbau",
                                                "OrganizationBPName2": "Gesellschaft mit beschränkter Haftung",
                                                "OrganizationBPName3": "& Co. KG"})
    assert read_name(connector, key) == ("Nordwest Maschinenbau und Anlagenbau "
                                         "Gesellschaft mit beschränkter Haftung & Co. KG")


@pytest.mark.parametrize("name", [
    LATIN, CJK, MIXED, "x" * 160, "Aktiengesellschaft " * 8, "a b " * 40, "A" * 45 + " Holdings",
    "株式会社" * 30, "Société Générale de Banque et d'Investissement à Paris, Lyon, Marseille et Bordeaux"])
def test_every_split_joins_back_to_the_name(name):
    name = " ".join(name.split())
    parts = split_org_name(name)
    assert list(parts) == list(NAME_FIELDS) and all(len(p) <= 40 for p in parts.values())
    assert join_org_name(list(parts.values())) == name


def test_a_name_that_cannot_be_cut_to_read_back_unchanged_is_refused():
    with pytest.raises(NameTooLong, match="OrganizationBPName1..4"):
        split_org_name("x" * 161)
    with pytest.raises(NameTooLong, match="read back unchanged"):
        split_org_name("A" * 40 + " Holdings")      # a space right after a full part would be lost


FILE_MAPPING = """source: customers.csv
key: id
updated_at: updated_at
fields:
  name: name
  tax_id: tax_id
  customer_type: kind
"""


def test_a_long_name_pushed_to_sap_reads_back_as_no_change(tmp_path: Path):
    """A customer of another system is created in SAP; the next read of SAP shows the hub's write,
    not an edit: the golden name stays and nothing is queued for the other system."""
    app = create_app(SimOptions(seed=7, records=5))
    with SimServer(app) as srv:
        (tmp_path / "a").mkdir()
        (tmp_path / "a.yaml").write_text(FILE_MAPPING, encoding="utf-8")
        (tmp_path / "a" / "customers.csv").write_text(
            f'id,name,tax_id,kind,updated_at\na1,"{LATIN}",91310000MA1FL0B12C,company,2026-01-01T08:00:00Z\n', encoding="utf-8")
        (tmp_path / "triad.yaml").write_text(f"""store: {{url: 'sqlite:///{tmp_path / "hub.db"}'}}
connectors:
  a: {{type: file, path: ./a, direction: both, entities: {{customer: {{mapping: a.yaml}}}}}}
  erp:
    type: sap
    base_url: {srv.base_url}
    auth: {{user: {USER}, password: {PASSWORD}}}
    retry: {{attempts: 3, backoff: 0.01, max_wait: 0.05, timeout: 10}}
    entities: {{customer: {{}}}}
survivorship: {{customer: {{default: most_recent, priority: [a, erp]}}}}
""", encoding="utf-8")
        cfg = load_config(str(tmp_path / "triad.yaml"))
        engine = make_engine(cfg.store.url)
        upgrade(engine)
        parts = Parts(cfg)
        for name in ("erp", "a"):            # erp read first: a create waits until the hub has read it
            assert run_stream(engine, parts, name, "customer").status == "ok"
        reports = {r.connector: r for r in push(engine, parts, connectors=["erp"])}
        assert reports["erp"].counts["created"] == 1, reports["erp"].counts
        made = next(r for r in app.store.rows("A_BusinessPartner") if r["OrganizationBPName1"].startswith("Shanghai"))
        assert made["OrganizationBPName3"] == "Free Trade Zone"
        to_a = select(Outbox.id, Outbox.field_values).where(Outbox.connector == "a")
        with engine.connect() as conn:
            before = {row[0] for row in conn.execute(to_a)}
        report = run_stream(engine, parts, "erp", "customer")
        assert report.status == "ok", report.error
        with engine.connect() as conn:
            changed = conn.scalars(select(FieldHistory.field).where(FieldHistory.run_id == report.id)).all()
            names = conn.scalars(select(Customer.name).where(Customer.name.like("Shanghai Pudong%"))).all()
            queued = [row[1] for row in conn.execute(to_a) if row[0] not in before]
        assert names == [LATIN]
        assert "name" not in changed, changed          # SAP only filled in what it assigns (code, status ...)
        assert not any("name" in v for v in queued), queued
        engine.dispose()
