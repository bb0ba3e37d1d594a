"""Conflicts and quarantine over HTTP: read for readers, resolve for stewards, audited, denied fields refused."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert, select

from hub import audit
from hub.models import Conflict, Outbox
from hub.types import new_id


def test_list_show_and_page_conflicts(api):
    rows = api.get("/conflicts").json()["conflicts"]
    assert {(c["field"], c["status"]) for c in rows} == {("phone", "auto"), ("email", "open")}
    first = api.get("/conflicts", params={"limit": 1}).json()
    second = api.get("/conflicts", params={"limit": 1, "cursor": first["next"]}).json()
    assert [c["id"] for c in first["conflicts"] + second["conflicts"]] == [c["id"] for c in rows]
    assert second.get("next") is None
    assert [c["field"] for c in api.get("/conflicts", params={"status": "open"}).json()["conflicts"]] == ["email"]
    email = next(c for c in rows if c["field"] == "email")
    shown = api.get(f"/conflicts/{email['id']}").json()
    assert shown["values"] == {"crm": "purchasing@yuntu.com.cn", "erp": "ap@yuntu.com.cn"}
    assert shown["current_golden"] == "ap@yuntu.com.cn" and shown["record"]["code"] == "C0002"
    assert api.get("/conflicts/01ZZZZZZZZZZZZZZZZZZZZZZZZ").status_code == 404


def test_a_steward_resolves_it_becomes_golden_audited_and_queued(api):
    email = api.get("/conflicts", params={"status": "open"}).json()["conflicts"][0]
    assert api.post(f"/conflicts/{email['id']}/resolve", "viewer", json={"take": "crm"}).status_code == 403
    assert api.post(f"/conflicts/{email['id']}/resolve", "bob", json={"take": "crm", "keep": True}).status_code == 422
    neither = api.post(f"/conflicts/{email['id']}/resolve", "bob", json={})
    assert neither.status_code == 422 and "--" not in neither.json()["detail"]     # the body's words, not the CLI's
    assert api.post(f"/conflicts/{email['id']}/resolve", "bob", json={"take": "sap"}).status_code == 422
    with api.engine.connect() as conn:
        queued_before = conn.scalar(select(Outbox.__table__.c.id).where(Outbox.__table__.c.record_id == email["record_id"],
                                                                         Outbox.__table__.c.created_at > email["created_at"]))
    r = api.post(f"/conflicts/{email['id']}/resolve", "bob", json={"take": "crm", "note": "confirmed by phone"})
    assert r.status_code == 200, r.text
    assert r.json()["new"] == "purchasing@yuntu.com.cn" and r.json()["queued"] == 1   # erp; crm holds it
    rec = api.get(f"/records/customer/{email['record_id']}").json()
    assert rec["fields"]["email"] == "purchasing@yuntu.com.cn"
    prov = api.get(f"/records/customer/{email['record_id']}/provenance").json()
    assert prov["provenance"]["email"]["system"] == "user:bob"
    entry = next(e for e in audit.list_entries(api.engine, user="bob") if e["action"] == "conflict.resolve")
    assert entry["note"] == "confirmed by phone" and entry["after"] == {"golden": "purchasing@yuntu.com.cn"}
    assert queued_before is None
    again = api.post(f"/conflicts/{email['id']}/resolve", "bob", json={"keep": True})
    assert again.status_code == 422 and "resolved already" in again.json()["detail"]


def test_a_conflict_on_a_denied_field_is_hidden_and_cannot_be_resolved(api):
    rid = api.get("/xref/erp/customer/C0001").json()["record"]["id"]
    cid = new_id()
    with api.engine.begin() as conn:
        conn.execute(insert(Conflict.__table__), [{
            "id": cid, "entity": "customer", "record_id": rid, "field": "credit_limit", "status": "open",
            "rule": "manual", "values": {"erp": "500000", "crm": "900000"}, "timestamps": {}, "golden": "500000",
            "winner": None, "note": None, "run_id": None, "created_at": datetime.now(timezone.utc),
            "resolved_at": None, "resolved_by": None}])
    assert cid in [c["id"] for c in api.get("/conflicts", "alice").json()["conflicts"]]
    assert cid not in [c["id"] for c in api.get("/conflicts", "bob").json()["conflicts"]]
    assert api.get(f"/conflicts/{cid}", "bob").status_code == 403
    refused = api.post(f"/conflicts/{cid}/resolve", "bob", json={"take": "crm"})
    assert refused.status_code == 403 and "credit_limit" in refused.json()["detail"]
    assert api.get(f"/records/customer/{rid}", "alice").json()["fields"]["credit_limit"] == "500000"
    other = api.get("/conflicts", "bob").json()["conflicts"][0]
    assert "credit_limit" not in (api.get(f"/conflicts/{other['id']}", "bob").json()["record"] or {})
    # the hidden conflict is the newest: bob's pages of one are all full, and end where his conflicts end
    seen, cursor = [], None
    while True:
        page = api.get("/conflicts", "bob", params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["conflicts"]) == 1, page
        seen += [c["id"] for c in page["conflicts"]]
        cursor = page.get("next")
        if not cursor:
            break
    assert cid not in seen and len(seen) == len(api.get("/conflicts", "bob").json()["conflicts"])


def test_quarantine_read_with_reasons_and_raw_payload(api):
    items = api.get("/quarantine").json()["items"]
    assert {(i["connector"], i["source_id"], i["kind"]) for i in items} == {
        ("erp", "C0006", "validation"), ("erp", "C0005", "mapping"), ("crm", "001A000004", "mapping"),
        ("crm", "CRM-5002", "unresolved_ref")}
    assert all("raw" not in i for i in items)
    c6 = next(i for i in items if i["source_id"] == "C0006")
    shown = api.get(f"/quarantine/{c6['id']}").json()
    assert shown["raw"]["customer_no"] == "C0006" and shown["reasons"][0]["column"] == "credit_limit"
    paged = api.get("/quarantine", params={"limit": 3}).json()
    assert len(paged["items"]) == 3 and paged["next"]
    rest = api.get("/quarantine", params={"limit": 3, "cursor": paged["next"]}).json()
    assert [i["id"] for i in paged["items"] + rest["items"]] == [i["id"] for i in items]
    assert [i["entity"] for i in api.get("/quarantine", params={"entity": "order"}).json()["items"]] == ["order"]
    assert api.get("/quarantine", params={"status": "dropped"}).json()["items"] == []

    # bob may not see credit_limit: the payload field mapped to it and the value the reason quotes are left out
    mine = api.get(f"/quarantine/{c6['id']}", "bob")
    assert mine.json()["raw"]["customer_no"] == "C0006" and "credit_limit" not in mine.json()["raw"]
    assert "-100" not in mine.text
    assert "-100" not in api.get("/quarantine", "bob").text
    assert api.get("/quarantine", "bob", params={"entity": "payment"}).status_code == 403
    assert api.get("/quarantine/01ZZZZZZZZZZZZZZZZZZZZZZZZ").status_code == 404
    assert {i["entity"] for i in api.get("/quarantine", "fin").json()["items"]} == {"customer"}
