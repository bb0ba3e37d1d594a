"""Outbound webhooks: golden changes queue events for subscribers; delivery signs, retries, dead-letters."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from connectors.simkit import SimServer
from hub import subscriptions
from hub.models import Outbox
from hub.streams import Parts

SECRET = "s3cret-for-tests"
OT = Outbox.__table__


class Receiver:
    """A subscriber's endpoint: records every request, answers with the next queued status."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.calls.append({"headers": {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
                                           if k.startswith("HTTP_")}, "body": body, "path": environ["PATH_INFO"]})
            status = self.statuses.pop(0) if self.statuses else 204
        start_response(f"{status} X", [("Content-Type", "text/plain")])
        return [b"no thanks" if status >= 400 else b""]


def _rows(api, name: str, status: str | None = None) -> list[dict[str, Any]]:
    q = select(OT).where(OT.c.connector == f"sub:{name}").order_by(OT.c.created_at, OT.c.id)
    if status:
        q = q.where(OT.c.status == status)
    with api.engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def _sync(api) -> dict:
    from cli import main
    r = CliRunner().invoke(main, ["--config", str(api.root / "triad.yaml"), "--user", "alice", "--json", "sync", "run"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _edit_crm_phone(api, new_phone: str) -> None:
    """The CRM changes Acme's phone (a later LastModified each time)."""
    accounts = api.root / "exports" / "crm" / "accounts.csv"
    lines = accounts.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if line.startswith("001A000003,"):
            cols = line.split(",")
            day = int(cols[-1][8:10]) + 1
            cols[4], cols[-1] = new_phone, f"{cols[-1][:8]}{day:02d}{cols[-1][10:]}"
            lines[n] = ",".join(cols)
    accounts.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _due_now(api) -> None:
    with api.engine.begin() as conn:
        conn.execute(update(OT).values(next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1)))


def test_golden_changes_queue_one_event_per_record_for_each_subscriber(api):
    subscriptions.add(api.engine, "billing", "http://127.0.0.1:9/hook", ["customer"], "BILLING_SECRET", by="alice")
    subscriptions.add(api.engine, "orders-only", "http://127.0.0.1:9/o", ["order"], "ORDERS_SECRET", by="alice")
    _edit_crm_phone(api, "+1 415 555 9999")
    _sync(api)
    rows = _rows(api, "billing")
    acme = api.get("/xref/crm/customer/001A000003").json()["record"]
    assert [(r["record_id"], r["fields"], r["status"]) for r in rows] == [(acme["id"], {"phone": "+14155559999"},
                                                                           "pending")]
    assert _rows(api, "orders-only") == []

    email = api.get("/conflicts", params={"status": "open"}).json()["conflicts"][0]
    assert api.post(f"/conflicts/{email['id']}/resolve", json={"take": "crm"}).status_code == 200
    resolved = [r for r in _rows(api, "billing") if r["record_id"] == email["record_id"]]
    assert [r["fields"] for r in resolved] == [{"email": "purchasing@yuntu.com.cn"}]

    listed = {s["name"]: s for s in subscriptions.list_subscriptions(api.engine)}
    assert listed["billing"]["pending"] == 2 and listed["orders-only"]["pending"] == 0
    removed = subscriptions.remove(api.engine, "billing", by="alice")
    assert removed["dropped"] == 2 and _rows(api, "billing", "pending") == []


def test_delivery_signs_the_body_and_hides_denied_fields(api, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    recv = Receiver()
    with SimServer(recv) as srv:
        subscriptions.add(api.engine, "crm-mirror", f"{srv.base_url}/hooks/triad", ["customer"], "HOOK_SECRET",
                          by="bob")    # bob may not see credit_limit: neither does his subscriber
        _edit_crm_phone(api, "+1 415 555 1234")
        _sync(api)
        reports = subscriptions.deliver(api.engine, Parts(api.ctx.config()))
    assert [(r.connector, r.entity, r.counts["written"], r.status) for r in reports] == [
        ("sub:crm-mirror", "customer", 1, "ok")]
    [call] = recv.calls
    assert call["path"] == "/hooks/triad"
    expected = "sha256=" + hmac.new(SECRET.encode(), call["body"], hashlib.sha256).hexdigest()
    assert call["headers"]["x-triad-signature"] == expected
    event = json.loads(call["body"])
    [row] = _rows(api, "crm-mirror")
    assert call["headers"]["x-triad-event-id"] == event["id"] == row["id"] and row["status"] == "done"
    assert event["changed"] == {"phone": "+14155551234"} and event["entity"] == "customer"
    assert event["record"]["fields"]["name"] == "Acme Trading Inc" and event["record"]["version"] >= 2
    assert "credit_limit" not in event["record"]["fields"] and event["record"]["fields"]["phone"] == "+14155551234"


def test_failures_back_off_and_end_dead_like_connector_writes(api, monkeypatch: pytest.MonkeyPatch):
    cfg = api.root / "triad.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "outbox: {max_attempts: 3, backoff_seconds: 30}\n",
                   encoding="utf-8")
    from hub.context import Context
    parts = Parts(Context(config_path=str(cfg)).config())
    recv = Receiver()
    with SimServer(recv) as srv:
        subscriptions.add(api.engine, "flaky", srv.base_url, ["customer"], "FLAKY_SECRET", by="alice")
        _edit_crm_phone(api, "+1 415 555 4321")
        _sync(api)

        # no secret in the environment: nothing is sent unsigned, the row waits
        subscriptions.deliver(api.engine, parts)
        [row] = _rows(api, "flaky")
        assert recv.calls == [] and row["status"] == "pending" and "FLAKY_SECRET" in row["last_error"]
        monkeypatch.setenv("FLAKY_SECRET", SECRET)

        _due_now(api)
        recv.statuses = [503]
        [rep] = subscriptions.deliver(api.engine, parts)
        [row] = _rows(api, "flaky")
        assert (rep.status, row["status"], row["attempts"]) == ("error", "pending", 2)
        assert "503" in row["last_error"]
        assert row["next_attempt_at"] > datetime.now(timezone.utc) + timedelta(seconds=10)   # backed off
        subscriptions.deliver(api.engine, parts)
        assert len(recv.calls) == 1, "a row backing off is not sent again before it is due"

        _due_now(api)
        recv.statuses = [503]
        subscriptions.deliver(api.engine, parts)
        [row] = _rows(api, "flaky")
        assert (row["status"], row["attempts"]) == ("dead", 3)       # max_attempts reached: dead letter
        ids = {c["headers"]["x-triad-event-id"] for c in recv.calls}
        assert ids == {row["id"]}                                    # the same event id on every retry

    # an endpoint that refuses the event (4xx) kills it at once; an unreachable one backs off
    with SimServer(Receiver()) as srv2:
        recv2 = srv2.httpd.get_app()
        subscriptions.add(api.engine, "strict", srv2.base_url, ["customer"], "FLAKY_SECRET", by="alice")
        _edit_crm_phone(api, "+1 415 555 7777")
        _sync(api)
        recv2.statuses = [400]
        subscriptions.deliver(api.engine, parts, ["strict"])
        [row] = _rows(api, "strict")
        assert (row["status"], row["attempts"]) == ("dead", 1) and "HTTP 400: no thanks" in row["last_error"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    subscriptions.add(api.engine, "gone", f"http://127.0.0.1:{closed_port}/", ["customer"], "FLAKY_SECRET", by="alice")
    _edit_crm_phone(api, "+1 415 555 8888")
    _sync(api)
    [rep] = subscriptions.deliver(api.engine, parts, ["gone"])
    [row] = _rows(api, "gone")
    assert rep.status == "error" and row["status"] == "pending" and row["attempts"] == 1
    assert "ConnectionError" in row["last_error"]


def test_a_record_s_events_reach_the_subscriber_in_the_order_of_its_changes(api, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    parts = Parts(api.ctx.config())
    recv = Receiver()
    with SimServer(recv) as srv:
        subscriptions.add(api.engine, "mirror", srv.base_url, ["customer"], "HOOK_SECRET", by="alice")
        _edit_crm_phone(api, "+1 415 555 0002")
        _sync(api)
        recv.statuses = [503]
        subscriptions.deliver(api.engine, parts)           # the first change backs off
        _edit_crm_phone(api, "+1 415 555 0003")
        _sync(api)
        [rep] = subscriptions.deliver(api.engine, parts)   # the second is due, the first is not
        assert len(recv.calls) == 1 and rep.counts["deferred"] == 1
        _due_now(api)
        recv.statuses = [503, 204, 204]                    # a batch: the first fails again, the second waits
        subscriptions.deliver(api.engine, parts)
        assert len(recv.calls) == 2
        _due_now(api)
        subscriptions.deliver(api.engine, parts)
    phones = [json.loads(c["body"])["changed"]["phone"] for c in recv.calls]
    assert phones == ["+14155550002", "+14155550002", "+14155550002", "+14155550003"]
    # delivered at last: the earlier failures' errors do not stay on the done rows
    assert [(r["status"], r["last_error"]) for r in _rows(api, "mirror")] == [("done", None), ("done", None)]
    assert [r["status"] for r in _rows(api, "mirror")] == ["done", "done"]


def test_add_validates_its_input(api):
    from hub.errors import UsageError
    for args in (("bad name", "http://x/", ["customer"], "S"), ("ok", "ftp://x/", ["customer"], "S"),
                 ("ok", "http://x/", ["widget"], "S"), ("ok", "http://x/", [], "S"), ("ok", "http://x/", ["order"], "1X")):
        with pytest.raises(UsageError):
            subscriptions.add(api.engine, *args, by="alice")
    subscriptions.add(api.engine, "ok", "http://x/", ["order"], "S", by="alice")
    with pytest.raises(UsageError, match="exists already"):
        subscriptions.add(api.engine, "ok", "http://y/", ["order"], "S", by="alice")


def test_queue_changes_groups_rows_per_entity_and_record(api):
    subscriptions.add(api.engine, "all", "http://127.0.0.1:9/", ["customer", "order"], "S", by="alice")
    now = datetime.now(timezone.utc)
    history = [{"entity": "customer", "record_id": "C1", "field": "*", "old": None, "new": {"name": "A", "city": "X"}},
               {"entity": "customer", "record_id": "C1", "field": "city", "old": "X", "new": "Y"},
               {"entity": "order", "record_id": "O1", "field": "customer_id", "old": "C0", "new": "C1"}]
    with api.engine.begin() as conn:
        assert subscriptions.queue_changes(conn, "customer", history, None, now) == 2
    rows = {(r["entity"], r["record_id"]): r["fields"] for r in _rows(api, "all")}
    assert rows == {("customer", "C1"): {"name": "A", "city": "Y"}, ("order", "O1"): {"customer_id": "C1"}}


def test_the_real_time_path_delivers_subscriber_events_too(api, monkeypatch: pytest.MonkeyPatch):
    # the inbox worker pushes the rows a webhook batch queued by id: a subscriber's are delivered, not dead
    from hub.push import push_ids
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    recv = Receiver()
    with SimServer(recv) as srv:
        subscriptions.add(api.engine, "billing", f"{srv.base_url}/hook", ["customer"], "HOOK_SECRET", by="alice")
        _edit_crm_phone(api, "+1 415 555 7777")
        _sync(api)
        [row] = _rows(api, "billing")
        reports = push_ids(api.engine, Parts(api.ctx.config()), [row["id"]])
    assert [(r.connector, r.counts["written"], r.counts["dead"]) for r in reports] == [("sub:billing", 1, 0)]
    assert len(recv.calls) == 1 and _rows(api, "billing")[0]["status"] == "done"
