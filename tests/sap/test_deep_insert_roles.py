"""Business partner roles (PROTOCOLS.md 2.2, 2.3): the simulator takes them in a deep insert and shows them
expanded, its data set's partners carry the customer roles, and the connector's customer creates send them."""
from __future__ import annotations

import io
import json
from typing import Any, Callable, Iterable, Iterator

import pyodata
import pytest
import requests
from pyodata.v2.model import EndRole

from connectors.sap.metadata import TypeInfo
from connectors.sap.schema import ENTITY_SETS
from connectors.sap.writes import with_roles
from connectors.simkit import SimServer
from hub.connector import WriteChange

from .conftest import BP_ROOT, PASSWORD, USER, mapping, stream_of

CUSTOMER = {"name": "Rollen Handel GmbH", "customer_type": "company", "country": "DE", "city": "Köln",
            "address": "Domstraße", "postal_code": "50667", "tier": "silver", "status": "active"}


class Recorder:
    """WSGI middleware keeping (method, path, JSON body) of each request."""

    def __init__(self, app: Callable) -> None:
        self.app, self.calls = app, []

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        self.calls.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], json.loads(body) if body else None))
        return self.app(environ, start_response)


@pytest.fixture
def recorder(app) -> Recorder:
    return Recorder(app)


@pytest.fixture
def server(recorder) -> Iterator[SimServer]:
    with SimServer(recorder) as srv:
        yield srv


def session(root: str) -> requests.Session:
    s = requests.Session()
    s.auth = (USER, PASSWORD)
    token = s.head(root, headers={"x-csrf-token": "Fetch"}).headers["x-csrf-token"]
    s.headers["x-csrf-token"] = token
    return s


def roles_of(app, key: str) -> list[dict]:
    partner = app.store.get("A_BusinessPartner", key)
    return app.store.related(ENTITY_SETS["A_BusinessPartner"], partner, "to_BusinessPartnerRole")


def test_the_audited_deep_insert_with_a_role_is_created(server, app):
    root = server.base_url + BP_ROOT
    resp = session(root).post(root + "/A_BusinessPartner", json={
        "BusinessPartnerCategory": "2", "OrganizationBPName1": "Audit GmbH",
        "to_BusinessPartnerRole": {"results": [{"BusinessPartnerRole": "FLCU01"}]}})
    assert resp.status_code == 201, resp.text
    d = resp.json()["d"]
    (role,) = d["to_BusinessPartnerRole"]["results"]
    assert role["__metadata"]["type"] == "API_BUSINESS_PARTNER.A_BusinessPartnerRoleType"
    assert (role["BusinessPartner"], role["BusinessPartnerRole"]) == (d["BusinessPartner"], "FLCU01")
    assert role["ValidFrom"].endswith("+0000)/") and role["ValidTo"] == "/Date(253402300799000+0000)/"
    assert [r["BusinessPartnerRole"] for r in roles_of(app, d["BusinessPartner"])] == ["FLCU01"]


def test_expanded_roles_read_in_verbose_json_and_seeded_partners_are_customers(server, app):
    root = server.base_url + BP_ROOT
    for partner in app.store.rows("A_BusinessPartner"):
        assert sorted(r["BusinessPartnerRole"] for r in roles_of(app, partner["BusinessPartner"])) == \
            ["FLCU00", "FLCU01"]
    resp = session(root).get(root + "/A_BusinessPartner('17100001')",
                             params={"$expand": "to_BusinessPartnerRole", "$format": "json"})
    assert resp.status_code == 200, resp.text
    roles = resp.json()["d"]["to_BusinessPartnerRole"]["results"]
    assert [r["BusinessPartnerRole"] for r in roles] == ["FLCU00", "FLCU01"]
    assert roles[0]["__metadata"]["uri"].endswith(
        "/A_BusinessPartnerRole(BusinessPartner='17100001',BusinessPartnerRole='FLCU00')")
    unexpanded = session(root).get(root + "/A_BusinessPartner('17100001')", params={"$format": "json"}).json()
    assert unexpanded["d"]["to_BusinessPartnerRole"]["__deferred"]["uri"].endswith(
        "/A_BusinessPartner('17100001')/to_BusinessPartnerRole")


def test_unknown_roles_and_properties_are_still_refused(server):
    root = server.base_url + BP_ROOT
    s = session(root)
    bad_role = s.post(root + "/A_BusinessPartner", json={
        "BusinessPartnerCategory": "2", "OrganizationBPName1": "X",
        "to_BusinessPartnerRole": [{"BusinessPartnerRole": "FLCX01"}]})
    assert bad_role.status_code == 400 and "FLCX01" in bad_role.json()["error"]["message"]["value"]
    typo = s.post(root + "/A_BusinessPartner", json={
        "BusinessPartnerCategory": "2", "OrganizationBPName1": "X",
        "to_BusinessPartnerRoles": [{"BusinessPartnerRole": "FLCU01"}]})
    assert typo.status_code == 400
    assert "'to_BusinessPartnerRoles' does not exist" in typo.json()["error"]["message"]["value"]


def test_pyodata_loads_the_role_navigation_and_deep_inserts_roles(server, app):
    root = server.base_url + BP_ROOT
    client = pyodata.Client(root, session(root))
    etype = client.schema.entity_set("A_BusinessPartner").entity_type
    assert etype.nav_proprty("to_BusinessPartnerRole").to_role.multiplicity == EndRole.MULTIPLICITY_ZERO_OR_MORE
    role_type = client.schema.entity_set("A_BusinessPartnerRole").entity_type
    assert [p.name for p in role_type.key_proprties] == ["BusinessPartner", "BusinessPartnerRole"]
    assert role_type.proprty("ValidTo").typ.name == "Edm.DateTimeOffset"
    created = client.entity_sets.A_BusinessPartner.create_entity().set(**{
        "BusinessPartnerCategory": "2", "OrganizationBPName1": "Pyodata Rollen AG",
        "to_BusinessPartnerRole": [{"BusinessPartnerRole": "FLCU00"}, {"BusinessPartnerRole": "FLCU01"}],
        "to_Customer": {"CustomerClassification": "B"},
    }).execute()
    read = client.entity_sets.A_BusinessPartner.get_entity(created.BusinessPartner) \
        .expand("to_BusinessPartnerRole").execute()
    assert [r.BusinessPartnerRole for r in read.to_BusinessPartnerRole] == ["FLCU00", "FLCU01"]
    assert read.to_BusinessPartnerRole[0].ValidTo.year == 9999


def change(n: int, source_id: str | None, values: dict[str, Any]) -> WriteChange:
    return WriteChange(f"ch-{n}", f"rec-{n}", source_id, values)


def test_connector_create_sends_the_customer_roles(connector, app, recorder):
    (result,) = connector.write(stream_of("customer"), [change(1, None, mapping("customer").to_source(CUSTOMER))])
    assert result.ok, result.error
    (post,) = [body for method, path, body in recorder.calls
               if method == "POST" and path.endswith("/A_BusinessPartner")]
    assert post["to_BusinessPartnerRole"] == {"results": [{"BusinessPartnerRole": "FLCU00"},
                                                          {"BusinessPartnerRole": "FLCU01"}]}
    assert "to_Customer" in post
    assert sorted(r["BusinessPartnerRole"] for r in roles_of(app, result.source_id)) == ["FLCU00", "FLCU01"]


def test_connector_update_does_not_send_roles_again(connector, app, recorder):
    key = "17100004"
    before = [dict(r) for r in roles_of(app, key)]
    values = mapping("customer").to_source({"name": "Umbenannt GmbH", "city": "Leipzig", "tier": "bronze"})
    (result,) = connector.write(stream_of("customer"), [change(2, key, values)])
    assert result.ok, result.error
    writes = [(path, body) for method, path, body in recorder.calls if method in ("POST", "PATCH", "MERGE", "PUT")]
    assert writes, "the update was sent"
    assert not any("BusinessPartnerRole" in path or "to_BusinessPartnerRole" in (body or {})
                   for path, body in writes)
    assert [dict(r) for r in roles_of(app, key)] == before


def test_roles_given_are_kept_and_the_customer_roles_added_once():
    info = TypeInfo("API_BUSINESS_PARTNER.A_BusinessPartnerType",
                    navs={"to_BusinessPartnerRole": ("API_BUSINESS_PARTNER.A_BusinessPartnerRoleType", True)})
    values = {"OrganizationBPName1": "X", "to_BusinessPartnerRole": [{"BusinessPartnerRole": "FLCU01"},
                                                                      {"BusinessPartnerRole": "BUP002"}]}
    out = with_roles(info, "A_BusinessPartner", values)
    assert [r["BusinessPartnerRole"] for r in out["to_BusinessPartnerRole"]["results"]] == \
        ["FLCU01", "BUP002", "FLCU00"]
    assert with_roles(info, "A_SalesOrder", {"SoldToParty": "1"}) == {"SoldToParty": "1"}
    assert with_roles(TypeInfo("old.A_BusinessPartnerType"), "A_BusinessPartner", {"A": 1}) == {"A": 1}
