"""The SAP simulator over raw HTTP: auth, CSRF, verbose JSON, query options, writes, errors, state."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import requests

from connectors.sap import wire
from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer

from .conftest import BP_ROOT, PASSWORD, SO_ROOT, USER

UTC = timezone.utc


@pytest.fixture
def http(server) -> requests.Session:
    s = requests.Session()
    s.auth = (USER, PASSWORD)
    s.base = server.base_url  # type: ignore[attr-defined]
    return s


def get(http: requests.Session, path: str, **params) -> requests.Response:
    return http.get(http.base + path, params=params)  # type: ignore[attr-defined]


def fetch_token(http: requests.Session, root: str = BP_ROOT) -> str:
    resp = http.head(http.base + root, headers={"x-csrf-token": "Fetch"})  # type: ignore[attr-defined]
    assert resp.status_code == 200 and "SAP_SESSIONID_TRD_100" in http.cookies
    return resp.headers["x-csrf-token"]


def keys(resp: requests.Response, key: str = "BusinessPartner", session: requests.Session | None = None) -> list[str]:
    """The keys of a collection response, following ``__next`` when a session is given."""
    assert resp.status_code == 200, resp.text
    d = resp.json()["d"]
    out = [r[key] for r in d["results"]]
    while session is not None and "__next" in d:
        d = session.get(d["__next"]).json()["d"]
        out += [r[key] for r in d["results"]]
    return out


def test_basic_and_bearer_auth(server):
    url = server.base_url + BP_ROOT + "/A_BusinessPartner"
    denied = requests.get(url)
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert requests.get(url, auth=(USER, "wrong")).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer triad-secret"}, params={"$top": 1}).status_code == 200


def test_csrf_token_protocol(server, app, http):
    url = server.base_url + BP_ROOT + "/A_BusinessPartner('17100001')"
    body = {"SearchTerm2": "CSRF"}
    refused = http.patch(url, json=body)
    assert refused.status_code == 403 and refused.headers["x-csrf-token"] == "Required"
    token = fetch_token(http)
    stranger = requests.patch(url, json=body, auth=(USER, PASSWORD), headers={"x-csrf-token": token})
    assert stranger.status_code == 403, "a token is bound to the session cookie it was issued with"
    assert http.patch(url, json=body, headers={"x-csrf-token": token}).status_code == 204
    assert fetch_token(http) == token, "the session keeps its token"
    app.csrf.invalidate_all()
    again = http.patch(url, json=body, headers={"x-csrf-token": token})
    assert again.status_code == 403 and again.headers["x-csrf-token"] == "Required"
    assert http.patch(url, json=body, headers={"x-csrf-token": fetch_token(http)}).status_code == 204


def test_csrf_token_ttl():
    app = create_app(SimOptions(records=3, token_ttl=0.2))
    with SimServer(app) as srv:
        s = requests.Session()
        s.auth = (USER, PASSWORD)
        s.base = srv.base_url  # type: ignore[attr-defined]
        token = fetch_token(s)
        url = srv.base_url + BP_ROOT + "/A_BusinessPartner('17100001')"
        assert s.patch(url, json={"SearchTerm2": "A"}, headers={"x-csrf-token": token}).status_code == 204
        time.sleep(0.3)
        late = s.patch(url, json={"SearchTerm2": "B"}, headers={"x-csrf-token": token})
        assert late.status_code == 403 and late.headers["x-csrf-token"] == "Required"


def test_verbose_json_wire_format(http, app):
    resp = get(http, BP_ROOT + "/A_BusinessPartner", **{"$top": "2", "$inlinecount": "allpages"})
    d = resp.json()["d"]
    assert d["__count"] == "40" and len(d["results"]) == 2 and "__next" not in d
    bp = d["results"][0]
    meta = bp["__metadata"]
    assert meta["type"] == "API_BUSINESS_PARTNER.A_BusinessPartnerType"
    assert meta["uri"].endswith("/A_BusinessPartner('17100001')") and meta["id"] == meta["uri"]
    assert re.fullmatch(r"W/\"datetime'\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d'\"", meta["etag"])
    assert re.fullmatch(r"/Date\(\d+\)/", bp["CreationDate"])
    assert re.fullmatch(r"PT\d\dH\d\dM\d\dS", bp["CreationTime"])
    assert bp["to_Customer"] == {"__deferred": {"uri": meta["uri"] + "/to_Customer"}}
    order = get(http, SO_ROOT + "/A_SalesOrder('10000001')", **{"$expand": "to_Item"})
    assert order.headers["ETag"].startswith('W/"datetimeoffset\'')
    o = order.json()["d"]
    assert re.fullmatch(r"/Date\(\d+\+0000\)/", o["LastChangeDateTime"])
    assert isinstance(o["TotalNetAmount"], str) and Decimal(o["TotalNetAmount"]) > 0
    assert all(isinstance(i["RequestedQuantity"], str) for i in o["to_Item"]["results"])
    assert get(http, BP_ROOT + "/A_BusinessPartner/$count").text == "40"
    single = get(http, BP_ROOT + "/A_BusinessPartner('17100002')/to_Customer").json()["d"]
    assert single["Customer"] == "17100002"


def test_service_document_and_metadata(http):
    assert "A_BusinessPartner" in get(http, BP_ROOT + "/").json()["d"]["EntitySets"]
    meta = get(http, SO_ROOT + "/$metadata")
    assert meta.headers["Content-Type"] == "application/xml"
    assert 'edmx:Edmx Version="1.0"' in meta.text and 'm:DataServiceVersion="2.0"' in meta.text
    assert 'sap:creatable="false"' in meta.text and 'sap:label="Sales Order"' in meta.text


def expected(app, name, predicate, key="BusinessPartner"):
    """The keys the simulator must return, computed from its data; never empty (a vacuous check proves nothing)."""
    found = sorted(r[key] for r in app.store.rows(name) if predicate(r))
    assert found and len(found) < app.store.count(name), "the filter must select some records, not all"
    return found


def test_filter_operators_grouping_and_literals(http, app):
    f = ("(BusinessPartnerCategory eq '1' or BusinessPartnerCategory eq '2') and "
         "not (SearchTerm1 eq 'HUADONG') and BusinessPartnerIsBlocked eq false")
    assert keys(get(http, BP_ROOT + "/A_BusinessPartner", **{"$filter": f}), session=http) == expected(
        app, "A_BusinessPartner", lambda r: r["SearchTerm1"] != "HUADONG" and not r["BusinessPartnerIsBlocked"])
    since = datetime(2025, 3, 1, tzinfo=UTC)
    f = "LastChangeDate ge datetime'2025-03-01T00:00:00' and LastChangeTime lt time'PT12H00M00S'"
    assert keys(get(http, BP_ROOT + "/A_BusinessPartner", **{"$filter": f}), session=http) == expected(
        app, "A_BusinessPartner", lambda r: r["LastChangeDate"] and wire.date_ms(r["LastChangeDate"]) >=
        wire.ms_of(since) and wire.time_seconds(r["LastChangeTime"]) < 12 * 3600)
    f = "LastChangeDateTime gt datetimeoffset'2025-03-01T00:00:00Z' and TotalNetAmount ge 1000"
    assert keys(get(http, SO_ROOT + "/A_SalesOrder", **{"$filter": f}), "SalesOrder", http) == expected(
        app, "A_SalesOrder", lambda r: wire.date_ms(r["LastChangeDateTime"]) > wire.ms_of(since)
        and Decimal(r["TotalNetAmount"]) >= 1000, "SalesOrder")
    f = "substringof('有限公司', BusinessPartnerFullName) and LastChangeDate eq null"
    assert keys(get(http, BP_ROOT + "/A_BusinessPartner", **{"$filter": f}), session=http) == expected(
        app, "A_BusinessPartner", lambda r: "有限公司" in r["BusinessPartnerFullName"] and not r["LastChangeDate"])
    a_customers = expected(app, "A_Customer", lambda r: r["CustomerClassification"] == "A", "Customer")
    f = "to_Customer/CustomerClassification eq 'A'"
    assert keys(get(http, BP_ROOT + "/A_BusinessPartner", **{"$filter": f}), session=http) == a_customers


@pytest.mark.parametrize("bad, message", [
    ("LastChangeDateTime ge datetime'2025-01-01T00:00:00'", "Invalid parametertype"),
    ("LastChangeDateTime ge datetimeoffset'2025-01-01T00:00:00'", "needs Z or an offset"),
    ("SoldToParty eq 17100001", "Invalid parametertype"),
    ("NoSuchField eq 'x'", "Property NoSuchField not found"),
    ("SalesOrder eq '1' and", "expected an operand"),
])
def test_bad_filters_get_sap_error_bodies(http, bad, message):
    resp = get(http, SO_ROOT + "/A_SalesOrder", **{"$filter": bad})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"].startswith("/IWBEP/") and error["message"]["lang"] == "en"
    assert message in error["message"]["value"]
    assert "transactionid" in error["innererror"]


def test_select_expand_orderby_and_paging(http, app):
    resp = get(http, BP_ROOT + "/A_BusinessPartner", **{
        "$select": "BusinessPartner,to_BusinessPartnerAddress/CityName,to_Customer",
        "$expand": "to_BusinessPartnerAddress,to_Customer", "$top": "3"})
    first = resp.json()["d"]["results"][0]
    assert set(first) == {"__metadata", "BusinessPartner", "to_BusinessPartnerAddress", "to_Customer"}
    assert set(first["to_BusinessPartnerAddress"]["results"][0]) == {"__metadata", "CityName"}
    assert "CustomerClassification" in first["to_Customer"]
    resp = get(http, BP_ROOT + "/A_BusinessPartner", **{"$orderby": "BusinessPartnerCategory desc,SearchTerm1 asc"})
    rows = sorted(app.store.rows("A_BusinessPartner"), key=lambda r: (r["BusinessPartner"]))
    rows.sort(key=lambda r: r["SearchTerm1"])
    rows.sort(key=lambda r: r["BusinessPartnerCategory"], reverse=True)
    d = resp.json()["d"]
    got = [r["BusinessPartner"] for r in d["results"]]
    while "__next" in d:     # server paging keeps the order across pages
        d = http.get(d["__next"]).json()["d"]
        got += [r["BusinessPartner"] for r in d["results"]]
    assert got == [r["BusinessPartner"] for r in rows]
    window = keys(get(http, BP_ROOT + "/A_BusinessPartner", **{"$skip": "5", "$top": "10"}))
    assert len(window) == 7, "the server page size caps one response"


def test_writes_etags_and_if_match(server, http, app):
    token = fetch_token(http)
    url = server.base_url + BP_ROOT + "/A_BusinessPartner('17100003')"
    etag = get(http, BP_ROOT + "/A_BusinessPartner('17100003')").headers["ETag"]
    app.store.clock = lambda: datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    headers = {"x-csrf-token": token, "If-Match": etag}
    assert http.patch(url, json={"SearchTerm2": "ONE"}, headers=headers).status_code == 204
    stale = http.patch(url, json={"SearchTerm2": "TWO"}, headers=headers)
    assert stale.status_code == 412 and stale.json()["error"]["message"]["value"]
    fresh = get(http, BP_ROOT + "/A_BusinessPartner('17100003')")
    assert fresh.headers["ETag"] == "W/\"datetime'2031-05-06T07%3A08%3A09'\"" != etag
    rec = fresh.json()["d"]
    day = wire.ms_of(datetime(2031, 5, 6, tzinfo=UTC))
    assert (rec["LastChangeDate"], rec["LastChangeTime"]) == (f"/Date({day})/", "PT07H08M09S")
    merge = http.post(url, json={"SearchTerm2": "THREE"}, headers={"x-csrf-token": token, "X-HTTP-Method": "MERGE"})
    assert merge.status_code == 204 and app.store.get("A_BusinessPartner", "17100003")["SearchTerm2"] == "THREE"


def test_deep_insert_and_business_errors(server, http, app):
    token = fetch_token(http, SO_ROOT)
    url = server.base_url + SO_ROOT + "/A_SalesOrder"
    customer = next(c["Customer"] for c in app.store.rows("A_Customer") if not c["OrderIsBlockedForCustomer"])
    ok = http.post(url, headers={"x-csrf-token": token}, json={"d": {
        "SoldToParty": customer, "to_Item": {"results": [{"Material": "FG126", "RequestedQuantity": "2"}]}}})
    assert ok.status_code == 201, ok.text
    created = ok.json()["d"]
    assert ok.headers["Location"] == created["__metadata"]["uri"]
    assert created["to_Item"]["results"][0]["SalesOrderItem"] == "10"
    assert created["OverallSDProcessStatus"] == "A"
    blocked = next(c["Customer"] for c in app.store.rows("A_Customer") if c["OrderIsBlockedForCustomer"]) \
        if any(c["OrderIsBlockedForCustomer"] for c in app.store.rows("A_Customer")) else None
    if blocked is None:
        blocked = customer
        app.store.update("A_Customer", blocked, {"OrderIsBlockedForCustomer": "01"})
    refused = http.post(url, headers={"x-csrf-token": token}, json={
        "SoldToParty": blocked, "to_Item": [{"Material": "TG11", "RequestedQuantity": "1"}]})
    assert refused.status_code == 400
    details = refused.json()["error"]["innererror"]["errordetails"]
    assert details and "blocked" in details[0]["message"]
    unknown = http.post(url, headers={"x-csrf-token": token}, json={"SoldToParty": customer, "Colour": "red"})
    assert unknown.status_code == 400 and "Colour" in unknown.json()["error"]["message"]["value"]
    count = app.store.count("A_SalesOrder")
    bad_item = http.post(url, headers={"x-csrf-token": token}, json={
        "SoldToParty": customer, "to_Item": [{"Material": "TG11", "RequestedQuantity": "1"}, {"Material": "TG12"}]})
    assert bad_item.status_code == 400 and app.store.count("A_SalesOrder") == count, "all or nothing"
    bp_url = server.base_url + BP_ROOT
    assert http.post(bp_url + "/A_Customer", headers={"x-csrf-token": token}, json={}).status_code == 405
    assert http.delete(bp_url + "/A_BusinessPartner('17100001')", headers={"x-csrf-token": token}).status_code == 405
    assert http.delete(url + f"('{created['SalesOrder']}')", headers={"x-csrf-token": token}).status_code == 204
    assert app.store.get("A_SalesOrder", created["SalesOrder"]) is None


def test_require_if_match_answers_428():
    app = create_app(SimOptions(records=3, extra={"require_if_match": True}))
    with SimServer(app) as srv:
        s = requests.Session()
        s.auth = (USER, PASSWORD)
        s.base = srv.base_url  # type: ignore[attr-defined]
        token = fetch_token(s)
        url = srv.base_url + BP_ROOT + "/A_BusinessPartner('17100001')"
        assert s.patch(url, json={"SearchTerm2": "X"}, headers={"x-csrf-token": token}).status_code == 428
        assert s.patch(url, json={"SearchTerm2": "X"}, headers={"x-csrf-token": token, "If-Match": "*"}) \
            .status_code == 204


def test_data_is_deterministic_and_state_persists(tmp_path):
    one, two = create_app(SimOptions(seed=3, records=20)), create_app(SimOptions(seed=3, records=20))
    assert one.store.state.data == two.store.state.data
    assert create_app(SimOptions(seed=4, records=20)).store.state.data != one.store.state.data
    names = {r["BusinessPartnerFullName"] for r in one.store.rows("A_BusinessPartner")}
    assert any(re.search(r"[\u4e00-\u9fff]", n) for n in names) and any(n.isascii() for n in names)
    countries = {a["Country"] for a in one.store.rows("A_BusinessPartnerAddress")}
    assert countries == {"CN", "DE", "US"}
    state = str(tmp_path / "sap.json")
    app = create_app(SimOptions(seed=3, records=20, state=state))
    app.store.update("A_BusinessPartner", "17100005", {"OrganizationBPName2": "persisted"})
    again = create_app(SimOptions(seed=99, records=5, state=state))
    assert again.store.get("A_BusinessPartner", "17100005")["OrganizationBPName2"] == "persisted"
    assert again.store.count("A_BusinessPartner") == 20


def test_faults_and_formats(http):
    app = create_app(SimOptions(records=3, fail_rate=1.0))
    with SimServer(app) as srv:
        assert requests.get(srv.base_url + BP_ROOT + "/A_BusinessPartner", auth=(USER, PASSWORD)).status_code == 503
    atom = get(http, BP_ROOT + "/A_BusinessPartner", **{"$format": "xml"})
    assert atom.status_code == 400
    missing = get(http, BP_ROOT + "/A_BusinessPartner('nope')")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/020"
    assert get(http, "/sap/opu/odata/sap/API_NOPE/A_X").status_code == 404
