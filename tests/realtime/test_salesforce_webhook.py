"""Salesforce outbound messages: the SOAP envelope, the token in the URL or a header, the Ack the org
expects, redeliveries stored once, and records fetched by Id (or taken from the message)."""
from __future__ import annotations

from pathlib import Path

import pytest

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.webhook import envelope, event_key, parse, parse_message, without_session_id
from hub.connector import WebhookRejected

from .helpers import SF_AUTH, Served, rows, wait_for, write_project

ORG = "00D000000000042EAA"
AUTH = {"client_id": "c", "client_secret": "s"}


def test_envelope_round_trip_and_parse():
    body = envelope(ORG, "Account", [{"Id": "001000000000001AAA", "Name": "Acme & Söhne", "Active__c": True,
                                      "Fax": None, "Owner": {"Name": "x"}}], notification_ids=["04l000000000001AAA"])
    msg = parse_message(body)
    assert (msg.organization_id, msg.action_id) == (ORG, "04k000000000001AAA")
    assert msg.notifications == [("04l000000000001AAA", "Account",
                                  {"Id": "001000000000001AAA", "Name": "Acme & Söhne", "Active__c": "true",
                                   "Fax": None})]
    events = parse({}, body)
    assert [(e.entity, e.fetch_ids, e.records) for e in events] == [("customer", ["001000000000001AAA"], [])]
    events = parse({"webhook_records": "message"}, body)
    assert events[0].records[0]["Name"] == "Acme & Söhne" and events[0].fetch_ids == []
    assert event_key(body) == "04l000000000001AAA"
    with pytest.raises(ValueError, match="no entity for sObject Lead"):
        parse({}, envelope(ORG, "Lead", [{"Id": "00Q000000000001AAA"}]))
    with pytest.raises(ValueError, match="DTD"):
        parse_message(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    with pytest.raises(ValueError, match="not a Salesforce outbound message"):
        parse_message(b"<a/>")


def test_a_session_id_in_a_message_is_not_kept():
    sent = envelope(ORG, "Account", [{"Id": "001000000000001AAA", "Name": "Acme"}]).replace(
        b'<SessionId xsi:nil="true"/>', b"<SessionId>00D000000000042!AQ4AQFakeSessionToken.x_y</SessionId>")
    kept = without_session_id(sent)
    assert b"FakeSessionToken" not in kept and b"<SessionId></SessionId>" in kept
    assert parse_message(kept).notifications == parse_message(sent).notifications
    assert event_key(kept) == event_key(sent)
    conn = SalesforceConnector("crm", {"base_url": "https://x.my.salesforce.com", "auth": AUTH, "webhook_token": "t"})
    assert conn.redact_webhook({}, sent) == kept
    plain = envelope(ORG, "Account", [{"Id": "001000000000001AAA"}])
    assert without_session_id(plain) == plain          # nil: nothing to take out


def test_verification_by_token_and_organization():
    body = envelope(ORG, "Account", [{"Id": "001000000000001AAA"}])
    c = SalesforceConnector("crm", {"base_url": "http://127.0.0.1:9", "auth": AUTH, "webhook_token": "s3",
                                    "organization_id": ORG[:15]})
    assert c.verify_webhook({}, body, {"token": "s3"}) is None
    assert c.verify_webhook({"X-Triad-Token": "s3"}, body) is None
    for headers, query in (({}, None), ({}, {"token": "s4"}), ({"X-Triad-Token": "no"}, None)):
        with pytest.raises(WebhookRejected):
            c.verify_webhook(headers, body, query)
    with pytest.raises(WebhookRejected, match="organization"):
        c.verify_webhook({}, envelope("00D000000000099EAA", "Account", [{"Id": "001000000000001AAA"}]),
                         {"token": "s3"})
    with pytest.raises(WebhookRejected, match="no webhook_token"):
        SalesforceConnector("crm", {"base_url": "http://127.0.0.1:9", "auth": AUTH}).verify_webhook({}, body, {"token": ""})
    status, ack, media = c.webhook_ack({}, body)
    assert status == 200 and media.startswith("text/xml")
    assert b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>' in ack


def test_outbound_messages_through_serve(tmp_path: Path, sqlite_url: str, make_sim):
    org = make_sim("salesforce", records=4)
    cfg = write_project(tmp_path / "p", f"""
connectors:
  crm: {{type: salesforce, direction: in, base_url: '{org.url}', auth: {SF_AUTH}, webhook_token: om-1,
         organization_id: '{org.sim.org_id}', entities: [customer]}}
  mkt: {{type: salesforce, direction: in, base_url: '{org.url}', auth: {SF_AUTH}, webhook_token: om-2,
         webhook_records: message, entities: [customer]}}
serve: {{window_ms: 20}}
""", sqlite_url)
    ids = org.sim.ids("Account")[:3]
    with Served(cfg) as s:
        body = envelope(org.sim.org_id, "Account", [org.sim.get("Account", i) for i in ids[:2]])
        assert s.post("crm", body, {"Content-Type": "text/xml"}).status_code == 401            # no token
        r = s.post("crm", body, {"Content-Type": "text/xml"}, params={"token": "om-1"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml") and b"<Ack>true" in r.content
        again = s.post("crm", body, {"Content-Type": "text/xml"}, params={"token": "om-1"})   # the org resends
        assert again.status_code == 200
        wait_for(lambda: rows(s.engine, "select count(*) n from customer")[0].n == 2, 5, "two customers")
        assert len(rows(s.engine, "select id from inbox")) == 1
        # fetched through REST: the relationship field the message cannot carry is there
        owners = {r.owner for r in rows(s.engine, "select owner from customer")}
        assert None not in owners
        # a message carrying the fields itself
        rec = org.sim.get("Account", ids[2])
        body = envelope(org.sim.org_id, "Account", [rec])
        assert s.post("mkt", body, {"X-Triad-Token": "om-2"}).status_code == 200
        wait_for(lambda: rows(s.engine, "select source_id from xref where system = 'mkt'"), 20, "the message's record")
        assert [x.source_id for x in rows(s.engine, "select source_id from xref where system = 'mkt'")] == [ids[2]]
        assert rows(s.engine, "select status from inbox where connector = 'mkt'")[0].status == "done"


