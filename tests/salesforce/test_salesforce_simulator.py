"""The Salesforce simulator over real HTTPS: login, limits, paging, errors, writes, collections."""
from __future__ import annotations

import base64
import re
import time

from connectors.salesforce.simulator import create_app
from connectors.simkit import SimOptions

TOKEN_KEYS = {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}


def test_password_grant_returns_token_for_this_instance(sim) -> None:
    s = sim.session(token=False)
    resp = s.post(f"{sim.base_url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": "triad-client", "client_secret": "triad-secret",
        "username": "demo@triad.local", "password": "triad-pass"})
    body = resp.json()
    assert resp.status_code == 200 and TOKEN_KEYS <= set(body)
    assert body["instance_url"] == sim.base_url and body["instance_url"].startswith("https://")
    assert body["token_type"] == "Bearer" and "!" in body["access_token"]


def test_client_credentials_and_refresh_token_grants(sim) -> None:
    s = sim.session(token=False)
    basic = base64.b64encode(b"triad-client:triad-secret").decode()
    resp = s.post(f"{sim.base_url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                  headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200 and resp.json()["access_token"]
    resp = s.post(f"{sim.base_url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": "triad-client", "refresh_token": "5Aep861TriadSimRefreshToken"})
    assert resp.status_code == 200
    resp = s.post(f"{sim.base_url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": "triad-client", "refresh_token": "stale"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_bad_credentials_give_the_documented_400_bodies(sim) -> None:
    s = sim.session(token=False)
    url = f"{sim.base_url}/services/oauth2/token"
    good = {"grant_type": "password", "client_id": "triad-client", "client_secret": "triad-secret",
            "username": "demo@triad.local", "password": "triad-pass"}
    resp = s.post(url, data={**good, "client_id": "nobody"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"}
    resp = s.post(url, data={**good, "password": "wrong"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "authentication failure"}
    resp = s.post(url, data={**good, "grant_type": "authorization_code"})
    assert resp.json()["error"] == "unsupported_grant_type"


def test_api_calls_need_a_valid_token(make_sim) -> None:
    sim = make_sim(token_ttl=0.3)
    anonymous = sim.session(token=False)
    resp = anonymous.get(sim.data("limits"))
    assert resp.status_code == 401
    assert resp.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    s = sim.session()
    assert s.get(sim.data("limits")).status_code == 200
    time.sleep(0.35)
    resp = s.get(sim.data("limits"))
    assert resp.status_code == 401 and resp.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_limit_header_on_every_call_and_budget_gives_403(make_sim) -> None:
    sim = make_sim(request_budget=3)
    s = sim.session()
    for used in (1, 2, 3):
        resp = s.get(sim.data("limits"))
        assert resp.status_code == 200
        assert resp.headers["Sforce-Limit-Info"] == f"api-usage={used}/3"
    assert resp.json()["DailyApiRequests"] == {"Max": 3, "Remaining": 0}
    resp = s.get(sim.data("query"), params={"q": "SELECT Id FROM Account"})
    assert resp.status_code == 403
    assert resp.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_versions_from_50_only(sim) -> None:
    s = sim.session()
    assert s.get(f"{sim.base_url}/services/data/v50.0/limits").status_code == 200
    assert s.get(f"{sim.base_url}/services/data/v62.0/limits").status_code == 200
    resp = s.get(f"{sim.base_url}/services/data/v49.0/limits")
    assert resp.status_code == 404 and resp.json()[0]["errorCode"] == "NOT_FOUND"


def test_query_pages_follow_relative_next_records_url(make_sim) -> None:
    sim = make_sim(records=450)
    s = sim.session()
    q = "SELECT Id, Name FROM Account ORDER BY SystemModstamp, Id"
    page = s.get(sim.data("query"), params={"q": q}, headers={"Sforce-Query-Options": "batchSize=200"}).json()
    assert page["totalSize"] == 450 and page["done"] is False and len(page["records"]) == 200
    assert re.fullmatch(r"/services/data/v60\.0/query/01g[0-9A-Za-z]{15}-200", page["nextRecordsUrl"])
    ids = [r["Id"] for r in page["records"]]
    while not page["done"]:
        page = s.get(sim.base_url + page["nextRecordsUrl"]).json()
        ids += [r["Id"] for r in page["records"]]
    assert "nextRecordsUrl" not in page and len(page["records"]) == 50
    assert sorted(ids) == sorted(sim.org.ids("Account"))
    assert len(set(ids)) == 450
    default = s.get(sim.data("query"), params={"q": q}).json()
    assert default["done"] is True and len(default["records"]) == 450      # default batch 2000
    bad = s.get(sim.data("query/01gXXXXXXXXXXXXXXX-200"))
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_records_carry_attributes_and_nested_relationships(sim) -> None:
    s = sim.session()
    body = s.get(sim.data("query"), params={"q": "SELECT Id, Owner.Name, Owner.Email FROM Account LIMIT 1"}).json()
    rec = body["records"][0]
    assert rec["attributes"] == {"type": "Account", "url": f"/services/data/v60.0/sobjects/Account/{rec['Id']}"}
    assert set(rec["Owner"]) == {"attributes", "Name", "Email"} and rec["Owner"]["attributes"]["type"] == "User"
    order = s.get(sim.data("query"), params={"q": "SELECT Id, (SELECT Id, Quantity, Product2.ProductCode FROM "
                                                   "OrderItems) FROM Order LIMIT 1"}).json()["records"][0]
    items = order["OrderItems"]
    assert items["done"] is True and items["totalSize"] == len(items["records"]) >= 1
    assert items["records"][0]["Product2"]["ProductCode"].startswith("SKU-")


def test_query_all_includes_deleted_rows(sim) -> None:
    s = sim.session()
    victim = sim.org.ids("Account")[0]
    assert s.delete(sim.data(f"sobjects/Account/{victim}")).status_code == 204
    q = {"q": f"SELECT Id, IsDeleted FROM Account WHERE Id = '{victim}'"}
    assert s.get(sim.data("query"), params=q).json()["totalSize"] == 0
    rows = s.get(sim.data("queryAll"), params=q).json()["records"]
    assert rows[0]["IsDeleted"] is True
    resp = s.get(sim.data(f"sobjects/Account/{victim}"))
    assert resp.status_code == 404 and resp.json()[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_query_errors_look_like_salesforce(sim) -> None:
    s = sim.session()

    def error(q: str) -> dict:
        resp = s.get(sim.data("query"), params={"q": q})
        assert resp.status_code == 400
        return resp.json()[0]
    e = error("SELECT Id, Foo FROM Account")
    assert e["errorCode"] == "INVALID_FIELD"
    assert e["message"] == ("\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' "
                            "on entity 'Account'. If you are attempting to use a custom field, be sure to append the "
                            "'__c' after the custom field name. Please reference your WSDL or the describe call for "
                            "the appropriate names.")
    assert error("SELECT Id FROM Acount")["errorCode"] == "INVALID_TYPE"
    assert error("SELECT Id FORM Account")["errorCode"] == "MALFORMED_QUERY"
    assert error("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'")["errorCode"] == "MALFORMED_QUERY"
    quoted = error("SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01T00:00:00Z'")
    assert quoted["errorCode"] == "INVALID_FIELD" and "must be of type dateTime" in quoted["message"]
    assert error("SELECT Id, Id FROM Account")["message"].endswith("duplicate field selected: Id")


def test_create_update_delete_and_stamps(sim) -> None:
    s = sim.session()
    resp = s.post(sim.data("sobjects/Account"), json={"Name": "Schneider Logistik GmbH", "BillingCountry": "Germany"})
    assert resp.status_code == 201
    new_id = resp.json()["id"]
    assert resp.json() == {"id": new_id, "success": True, "errors": []}
    assert new_id.startswith("001") and len(new_id) == 18
    before = sim.org.get("Account", new_id)
    time.sleep(0.01)
    assert s.patch(sim.data(f"sobjects/Account/{new_id}"), json={"Phone": "+49 40 3012 4455"}).status_code == 204
    after = sim.org.get("Account", new_id)
    assert after["Phone"] == "+49 40 3012 4455"
    assert after["SystemModstamp"] > before["SystemModstamp"] and after["LastModifiedDate"] == after["SystemModstamp"]
    got = s.get(sim.data(f"sobjects/Account/{new_id}"), params={"fields": "Name,Phone"}).json()
    assert set(got) == {"attributes", "Name", "Phone"}
    missing = s.post(sim.data("sobjects/Account"), json={"Phone": "1"})
    assert missing.status_code == 400
    assert missing.json() == [{"message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING",
                               "fields": ["Name"]}]
    readonly = s.patch(sim.data(f"sobjects/Account/{new_id}"), json={"CreatedDate": "2020-01-01T00:00:00Z"})
    assert readonly.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert s.delete(sim.data(f"sobjects/Account/{new_id}")).status_code == 204


def test_upsert_by_external_id(sim) -> None:
    s = sim.session()
    url = sim.data("sobjects/Account/Triad_Id__c/T-100")
    created = s.patch(url, json={"Name": "深圳前海云图电子有限公司"})
    assert created.status_code == 201 and created.json()["created"] is True
    updated = s.patch(url, json={"Phone": "+86 755 2661 2345"})
    assert updated.status_code == 200
    assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": False}
    dup = s.post(sim.data("sobjects/Account"), json={"Name": "Dup", "Triad_Id__c": "t-100"})
    assert dup.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    a, b = sim.org.ids("Account")[:2]
    sim.org.edit_many("Account", [a, b], {"ERP_Id__c": "E-1"})        # a non-unique external id
    ambiguous = s.patch(sim.data("sobjects/Account/ERP_Id__c/E-1"), json={"Phone": "1"})
    assert ambiguous.status_code == 300
    assert sorted(ambiguous.json()) == sorted(f"/services/data/v60.0/sobjects/Account/{i}" for i in (a, b))
    assert s.patch(sim.data("sobjects/Account/Nope__c/1"), json={}).status_code == 404
    only = s.patch(sim.data("sobjects/Account/Triad_Id__c/T-404"), params={"updateOnly": "true"}, json={"Name": "x"})
    assert only.status_code == 404


def test_collections_report_per_record_and_honor_all_or_none(sim) -> None:
    s = sim.session()
    url = sim.data("composite/sobjects")
    records = [{"attributes": {"type": "Account"}, "Name": "Acme Industrial Inc."},
               {"attributes": {"type": "Account"}, "Name": "Bad", "Email__c": "not-an-email"},
               {"attributes": {"type": "Account"}, "Name": "Liberty Supply Inc."}]
    before = len(sim.org.ids("Account"))
    results = s.post(url, json={"allOrNone": False, "records": records}).json()
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert len(sim.org.ids("Account")) == before + 2
    rolled = s.post(url, json={"allOrNone": True, "records": records}).json()
    assert [r["success"] for r in rolled] == [False, False, False]
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert len(sim.org.ids("Account")) == before + 2                 # nothing kept
    update = s.patch(url, json={"records": [{"attributes": {"type": "Account"}, "id": results[0]["id"],
                                             "Phone": "+1 415 962 3012"}]}).json()
    assert update == [{"id": results[0]["id"], "success": True, "errors": []}]
    upsert = s.patch(sim.data("composite/sobjects/Account/Triad_Id__c"), json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Triad_Id__c": "U-1", "Name": "Keystone Robotics Inc."}]}).json()
    assert upsert[0]["created"] is True and upsert[0]["success"] is True
    deleted = s.delete(url, params={"ids": f"{results[0]['id']},{results[2]['id']}", "allOrNone": "false"}).json()
    assert [r["success"] for r in deleted] == [True, True]
    too_many = s.post(url, json={"records": [{"attributes": {"type": "Account"}, "Name": str(i)} for i in range(201)]})
    assert too_many.status_code == 400 and too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    undecodable = s.post(url, json={"records": [{"attributes": {"type": "Account"}, "Name": "x", "CreditLimit__c": "abc"}]})
    assert undecodable.status_code == 400 and undecodable.json()[0]["errorCode"] == "JSON_PARSER_ERROR"


def test_updated_and_deleted_windows(sim) -> None:
    s = sim.session()
    start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
    end = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 60))
    a, b = sim.org.ids("Account")[:2]
    sim.org.edit("Account", a, {"Tier__c": "Gold"})
    sim.org.remove("Account", b)
    upd = s.get(sim.data("sobjects/Account/updated/"), params={"start": start, "end": end}).json()
    assert upd["ids"] == [a] and upd["latestDateCovered"].endswith(":00.000+0000")
    dele = s.get(sim.data("sobjects/Account/deleted/"), params={"start": start, "end": end}).json()
    assert [d["id"] for d in dele["deletedRecords"]] == [b] and "earliestDateAvailable" in dele
    bad = s.get(sim.data("sobjects/Account/updated/"), params={"start": end, "end": start})
    assert bad.status_code == 400


def test_order_item_change_rolls_up_to_its_order(sim) -> None:
    order_id = sim.org.ids("Order")[0]
    order = sim.org.get("Order", order_id)
    item_id = next(i for i in sim.org.ids("OrderItem") if sim.org.get("OrderItem", i)["OrderId"] == order_id)
    item = sim.org.get("OrderItem", item_id)
    sim.org.edit("OrderItem", item_id, {"Quantity": item["Quantity"] + 1})
    after = sim.org.get("Order", order_id)
    assert after["TotalAmount"] == round(order["TotalAmount"] + item["UnitPrice"], 2)
    assert after["SystemModstamp"] > order["SystemModstamp"]


def test_describe_global_and_object(sim) -> None:
    s = sim.session()
    names = {o["name"] for o in s.get(sim.data("sobjects")).json()["sobjects"]}
    assert {"Account", "Contact", "Opportunity", "Order", "OrderItem", "Contract", "Payment__c"} <= names
    desc = s.get(sim.data("sobjects/Order/describe")).json()
    assert desc["keyPrefix"] == "801"
    assert {"OrderItems"} <= {c["relationshipName"] for c in desc["childRelationships"]}
    fields = {f["name"]: f for f in s.get(sim.data("sobjects/Account/describe")).json()["fields"]}
    assert fields["Triad_Id__c"]["externalId"] and fields["Triad_Id__c"]["unique"]
    assert fields["OwnerId"]["relationshipName"] == "Owner" and fields["OwnerId"]["referenceTo"] == ["User"]


def test_faults_spare_the_token_endpoint(make_sim) -> None:
    sim = make_sim(fail_rate=1.0)
    s = sim.session()                       # the token call is never failed
    assert s.get(sim.data("limits")).status_code == 503


def test_state_file_keeps_data_across_restarts(tmp_path) -> None:
    path = str(tmp_path / "sf.json")
    first = create_app(SimOptions(records=10, state=path))
    new_id = first.sim.create("Account", {"Name": "天津滨海物流有限公司"})
    again = create_app(SimOptions(records=10, state=path))
    assert again.sim.get("Account", new_id)["Name"] == "天津滨海物流有限公司"
    fresh = create_app(SimOptions(records=10))
    assert fresh.sim.get("Account", new_id) is None
