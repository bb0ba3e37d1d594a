"""simple-salesforce, the public Python client, works against the simulator unchanged:
the wire format (paths, bodies, status codes, headers) is the real one."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (SalesforceAuthenticationFailed, SalesforceMalformedRequest,
                                          SalesforceResourceNotFound)

from salesforce_helpers import LoginHost


@pytest.fixture
def sf(sim) -> Salesforce:
    session = sim.session(token=False)
    return Salesforce(instance_url=sim.base_url, session_id=sim.token(session), session=session, version="60.0")


def test_query_and_query_all_across_pages(make_sim) -> None:
    sim = make_sim(records=450)
    session = sim.session(token=False)
    sf = Salesforce(instance_url=sim.base_url, session_id=sim.token(session), session=session, version="60.0")
    first = sf.query("SELECT Id, Name, Owner.Name FROM Account WHERE Active__c = true ORDER BY Name LIMIT 5")
    assert first["done"] is True and first["totalSize"] == 5
    assert first["records"][0]["Owner"]["Name"]
    everything = sf.query_all("SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp, Id",
                              headers={"Sforce-Query-Options": "batchSize=200"})
    ids = [r["Id"] for r in everything["records"]]
    assert everything["totalSize"] == 450 and len(set(ids)) == 450
    stamps = [r["SystemModstamp"] for r in everything["records"]]
    assert stamps == sorted(stamps)
    assert sf.api_usage["api-usage"].used == 4           # one query + three pages of query_all


def test_query_all_include_deleted(sf, sim) -> None:
    victim = sim.org.ids("Contact")[0]
    sf.Contact.delete(victim)
    live = sf.query_all(f"SELECT Id FROM Contact WHERE Id = '{victim}'")
    assert live["totalSize"] == 0
    with_deleted = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{victim}'", include_deleted=True)
    assert with_deleted["records"][0]["IsDeleted"] is True


def test_sobject_create_update_upsert_get_delete(sf) -> None:
    created = sf.Account.create({"Name": "Müller Maschinenbau GmbH", "BillingCountry": "Germany",
                                 "CreditLimit__c": 250000})
    assert created["success"] is True
    acc_id = created["id"]
    assert sf.Account.update(acc_id, {"Phone": "+49 89 2154 3321"}) == 204
    got = sf.Account.get(acc_id)
    assert got["Phone"] == "+49 89 2154 3321" and got["CreditLimit__c"] == 250000.0
    assert sf.Account.upsert("Triad_Id__c/triad-42", {"Name": "Pacific Components Inc."}) == 201
    assert sf.Account.upsert("Triad_Id__c/triad-42", {"Tier__c": "Gold"}) == 200
    assert sf.Account.get_by_custom_id("Triad_Id__c", "triad-42")["Tier__c"] == "Gold"
    assert sf.Account.delete(acc_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(acc_id)


def test_updated_deleted_and_describe(sf, sim) -> None:
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    a, b = sim.org.ids("Account")[:2]
    sim.org.edit("Account", a, {"Industry": "Energy"})
    sim.org.remove("Account", b)
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert sf.Account.updated(start, end)["ids"] == [a]
    assert [d["id"] for d in sf.Account.deleted(start, end)["deletedRecords"]] == [b]
    desc = sf.Account.describe()
    assert desc["keyPrefix"] == "001"
    assert any(f["name"] == "Triad_Id__c" and f["externalId"] for f in desc["fields"])
    assert {"Account", "Payment__c"} <= {o["name"] for o in sf.describe()["sobjects"]}
    assert sf.limits()["DailyApiRequests"]["Max"] == 15000


def test_composite_collections_through_restful(sf) -> None:
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "LastName": "王", "FirstName": "芳", "Email": "wang.fang@example.cn"},
        {"attributes": {"type": "Contact"}, "FirstName": "NoLastName"}]})
    assert [r["success"] for r in results] == [True, False]
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Contact.get(results[0]["id"])["Name"] == "芳 王"


def test_query_errors_raise_the_client_exception(sf) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id, Nope__c FROM Account")
    assert exc.value.content[0]["errorCode"] == "INVALID_FIELD"


def _login_session(sim) -> requests.Session:
    session = sim.session(token=False)
    session.mount("https://login.salesforce.com", LoginHost(sim.base_url))
    return session


def test_token_login_and_relogin_after_expiry(sim) -> None:
    sf = Salesforce(username="demo@triad.local", password="triad-pass", consumer_key="triad-client",
                    consumer_secret="triad-secret", session=_login_session(sim), version="60.0")
    assert sf.sf_instance == sim.base_url.split("://")[1]
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 40
    sim.org.expire_tokens()
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 40     # logged in again on INVALID_SESSION_ID
    assert sim.org.tokens_issued == 2


def test_soap_login_and_its_fault(sim) -> None:
    sf = Salesforce(username="demo@triad.local", password="triad-pass", security_token="",
                    session=_login_session(sim), version="60.0")
    assert sf.query("SELECT Id FROM Opportunity LIMIT 1")["totalSize"] == 1
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        Salesforce(username="demo@triad.local", password="wrong", security_token="",
                   session=_login_session(sim), version="60.0")
    assert exc.value.code == "INVALID_LOGIN"


def test_bad_oauth_login_raises(sim) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        Salesforce(username="demo@triad.local", password="nope", consumer_key="triad-client",
                   consumer_secret="triad-secret", session=_login_session(sim))
    assert exc.value.code == "invalid_grant"
