"""`triad serve` webhooks: authentication before storage, replays, size limit, health and metrics,
and an event's way through the worker to a Salesforce org."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import SECRET, SF_AUTH, Served, customer_row, rows, signed, wait_for, write_project

CONNECTORS = f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
  ops: {{type: file, path: ./exports, direction: in, webhook_token: tok-123, entities: [customer]}}
  bare: {{type: file, path: ./exports, direction: in, entities: [customer]}}
"""
CONFIG = CONNECTORS + "matching: {customer: {exact: [tax_id]}}\n"


@pytest.fixture
def project(tmp_path: Path, store_url: str) -> Path:
    return write_project(tmp_path / "p", CONFIG, store_url)


def inbox_rows(served: Served) -> list:
    return rows(served.engine, "select id, connector, status, headers, error from inbox order by received_at")


def test_unauthentic_deliveries_are_refused_and_nothing_is_stored(tmp_path: Path, sqlite_url: str):
    cfg = write_project(tmp_path / "p", CONFIG, sqlite_url)
    doc = {"entity": "customer", "records": [customer_row(1, "Acme")]}
    with Served(cfg, worker=False) as s:
        body, headers = signed(doc, secret="wrong")
        assert s.post("erp", body, headers).status_code == 401
        assert s.post("erp", body, {"Content-Type": "application/json"}).status_code == 401   # no signature
        good_body, good_headers = signed(doc)
        tampered = good_body.replace(b"Acme", b"Evil")
        assert s.post("erp", tampered, good_headers).status_code == 401
        assert s.post("ops", body, {"X-Triad-Token": "nope"}).status_code == 401
        r = s.post("bare", good_body, good_headers)                  # no secret configured: never open
        assert r.status_code == 401 and "no webhook_secret" in r.json()["error"]
        assert s.post("nosuch", good_body, good_headers).status_code == 404
        assert inbox_rows(s) == []
        text = s.http.get(f"{s.url}/metrics").text
        assert 'triad_webhook_events_rejected_total{connector="erp",reason="unauthorized"} 3' in text
        # the authentic one goes in
        assert s.post("erp", good_body, good_headers).status_code == 202
        assert [r.connector for r in inbox_rows(s)] == ["erp"]


def test_oversized_body_is_refused_with_413(tmp_path: Path, sqlite_url: str):
    cfg = write_project(tmp_path / "p", CONFIG, sqlite_url)
    doc = {"entity": "customer", "records": [customer_row(i, "x" * 2000) for i in range(600)]}
    with Served(cfg, worker=False) as s:
        body, headers = signed(doc)
        assert len(body) > 1024 * 1024
        assert s.post("erp", body, headers).status_code == 413
        assert inbox_rows(s) == []


def test_replay_is_stored_once_and_credentials_are_not_stored(project: Path):
    doc = {"entity": "customer", "records": [customer_row(1, "Acme")], "event_id": "evt-1"}
    with Served(project, worker=False) as s:
        body, headers = signed(doc)
        first = s.post("erp", body, headers)
        again = s.post("erp", body, headers)
        assert first.status_code == again.status_code == 202
        assert first.json()["duplicate"] is False and again.json() == {**first.json(), "duplicate": True}
        r = s.post("ops", json.dumps(doc).encode(), {"X-Triad-Token": "tok-123", "X-Trace": "t1"},
                   params={"token": "tok-123", "source": "crm"})
        assert r.status_code == 202
        stored = inbox_rows(s)
        assert [(x.connector, x.status) for x in stored] == [("erp", "pending"), ("ops", "pending")]
        ops_headers = stored[1].headers if isinstance(stored[1].headers, dict) else json.loads(stored[1].headers)
        assert "tok-123" not in json.dumps(ops_headers)            # neither the header nor the query token
        assert ops_headers["x-trace"] == "t1" and ops_headers[":query"] == {"source": "crm"}


def test_event_reaches_the_golden_store_and_the_org(tmp_path: Path, sqlite_url: str, make_sim):
    org = make_sim("salesforce", records=1)
    cfg = write_project(tmp_path / "p", CONNECTORS + f"""
  crm: {{type: salesforce, direction: out, base_url: '{org.url}', auth: {SF_AUTH}, entities: [customer]}}
matching: {{customer: {{exact: [tax_id]}}}}
serve: {{window_ms: 50}}
""", sqlite_url)
    with Served(cfg) as s:
        body, headers = signed({"entity": "customer", "records": [customer_row(7, "Seven  Seas Ltd")],
                                "event_id": "e7"})
        assert s.post("erp", body, headers).status_code == 202
        account = wait_for(lambda: [a for a in org.sim.records["Account"].values() if a["Name"] == "Seven Seas Ltd"],
                           20, "the account to reach the org")[0]
        golden = rows(s.engine, "select id, name from customer")
        assert [g.name for g in golden] == ["Seven Seas Ltd"]
        assert account["Triad_Id__c"] == golden[0].id
        # the org answers before the push commits the link it learnt: wait for the commit, not for a time
        link = wait_for(lambda: rows(s.engine, "select source_id from xref where system = 'crm'"), 20,
                        "the push to record the org's id")
        assert link[0].source_id == account["Id"]
        assert [x.status for x in inbox_rows(s)] == ["done"]
        health = s.http.get(f"{s.url}/healthz").json()
        assert health["status"] == "ok" and health["worker"] == "running" and health["inbox"]["pending"] == 0
        # the push's counters are updated after the org has the account: wait for them, not for a time
        def counted() -> str | None:
            text = s.http.get(f"{s.url}/metrics").text
            return text if 'triad_outbox_pushed_total{connector="crm",result="written"} 1' in text else None
        text = wait_for(counted, 20, "the push to be counted")
        assert 'triad_inbox_events_processed_total{connector="erp",status="done"} 1' in text
        assert 'triad_outbox_pushed_total{connector="crm",result="written"} 1' in text
        assert 'triad_outbox_depth{status="done"} 1' in text and "triad_inbox_lag_seconds 0" in text
        assert "triad_inbox_processing_seconds_count 1" in text


def test_unreadable_body_is_kept_as_an_error_row(tmp_path: Path, sqlite_url: str):
    cfg = write_project(tmp_path / "p", CONFIG + "serve: {window_ms: 20}\n", sqlite_url)
    with Served(cfg) as s:
        body, headers = signed({"no": "entity"})
        assert s.post("erp", body, headers).status_code == 202
        body2, headers2 = signed({"entity": "order", "records": []})        # erp does not sync orders
        assert s.post("erp", body2, headers2).status_code == 202
        errors = wait_for(lambda: [r for r in inbox_rows(s) if r.status == "error"] if len(
            [r for r in inbox_rows(s) if r.status == "error"]) == 2 else None, 5, "two error rows")
        assert 'must be an object with "entity"' in errors[0].error and "does not sync order" in errors[1].error
        assert rows(s.engine, "select count(*) n from customer")[0].n == 0
        assert "triad_inbox_errors 2" in s.http.get(f"{s.url}/metrics").text
