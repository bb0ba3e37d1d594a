"""FeishuConnector against the simulator and the saved bodies: reads, token expiry, throttling, writes, events."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from connectors.feishu import crypto
from connectors.feishu.connector import request_uuid
from connectors.feishu.simulator import DEFAULT_VERIFICATION_TOKEN
from hub.connector import StreamSpec, WebhookRejected, WriteChange
from hub.mapping import load_mapping, shipped_mappings_dir

MAPPING = load_mapping(shipped_mappings_dir() / "feishu" / "approval.yaml", "approval")


def read_all(conn: Any, stream: StreamSpec, cursor: Any = None) -> tuple[list[dict[str, Any]], Any]:
    batches = list(conn.read(replace(stream, run_started_at=datetime.now(timezone.utc)), cursor))
    return [r for b in batches for r in b.records], (batches[-1].cursor if batches else cursor)


def new_approval(sim: Any, change_id: str, **values: Any) -> WriteChange:
    canonical = {"kind": "payment", "subject_entity": "payment", "subject_id": "FK-2026-00042", "status": "pending",
                 "applicant": sim.user(2), "amount": Decimal("3200.50"), "currency": "CNY", **values}
    return WriteChange(change_id, f"rec-{change_id}", None, MAPPING.to_source(canonical))


def test_check(sim: Any, make_connector: Callable[..., Any]) -> None:
    assert make_connector(sim, approval_codes=["4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F01"]).check().ok
    bad = make_connector(sim, app_secret="wrong").check()
    assert not bad.ok and "refused the app credentials" in bad.detail


def test_full_and_incremental_reads(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    conn = make_connector(sim)
    records, cursor = read_all(conn, stream)
    assert len(records) == 30 and len({r["instance_code"] for r in records}) == 30
    canon = [MAPPING.to_canonical(r) for r in records]
    assert {c.values["status"] for c in canon} == {"pending", "approved", "rejected", "cancelled"}
    assert all(c.values["decided_at"] is None for c in canon if c.values["status"] == "pending")
    assert set(cursor["open"]) == {r["instance_code"] for r in records if r["status"] == "PENDING"}
    old = sim.pending()[0]
    sim.sim.decide(old, "REJECTED")
    (fresh,) = conn.write(stream, [new_approval(sim, "n1")])
    time.sleep(0.2)                     # its task starts 150 ms after the instance (as in the fixture)
    later, after = read_all(conn, stream, cursor)
    assert sorted(r["instance_code"] for r in later) == sorted([old, fresh.source_id])
    assert MAPPING.to_canonical(next(r for r in later if r["instance_code"] == old)).values["status"] == "rejected"
    assert old not in after["open"] and fresh.source_id in after["open"]
    assert read_all(make_connector(sim, overlap_seconds=0), stream, after)[0] == []


def test_token_expiry_mid_run(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    conn = make_connector(sim)
    reader = conn.read(stream, None)
    first = next(reader)
    sim.sim.expire_tokens()
    assert len(first.records) + sum(len(b.records) for b in reader) == 30
    assert conn.client.token_fetches == 2 and sim.sim.tokens.issued == 2


@pytest.mark.parametrize("throttle,expected_wait", [
    ({"request_budget": 12, "extra": {"rate_window": 1.0}}, 1.0),
    ({"rate_limit_rate": 0.2, "extra": {"ratelimit_reset": 0}}, 0.0)])
def test_rate_limit_backs_off_and_resumes(make_sim: Callable[..., Any], make_connector: Callable[..., Any],
                                          stream: StreamSpec, throttle: dict[str, Any], expected_wait: float) -> None:
    sim = make_sim(**throttle)
    conn = make_connector(sim, retries=10, fetch_concurrency=1)
    waits: list[float] = []
    conn.client.http.sleep = lambda s: (waits.append(s), time.sleep(s))
    records, _ = read_all(conn, stream)
    assert len(records) == 30 and sim.sim.throttle.throttled > 0
    assert len(waits) == sim.sim.throttle.throttled and set(waits) == {expected_wait}, "x-ogw-ratelimit-reset is honoured"


def test_create_is_idempotent(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    change = new_approval(sim, "chg-9")
    (first,) = make_connector(sim).write(stream, [change])
    (again,) = make_connector(sim).write(stream, [change])
    assert first.ok and again.ok and again.source_id == first.source_id
    holders = [i["instance_code"] for i in sim.sim.approvals.instances.values() if i["uuid"] == request_uuid("chg-9")]
    assert holders == [first.source_id]
    (other,) = make_connector(sim).write(stream, [new_approval(sim, "chg-10")])
    assert other.ok and other.source_id != first.source_id


def test_cancel_and_edits(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    conn = make_connector(sim)
    (created,) = conn.write(stream, [new_approval(sim, "e1")])
    code = created.source_id
    edit, same, cancel = (WriteChange(f"e{n}", "rec-e1", code, MAPPING.to_source(v)) for n, v in (
        (2, {"amount": Decimal("1.00")}), (3, {"amount": Decimal("3200.5"), "currency": "CNY"}),
        (4, {"status": "cancelled"})))
    refused, unchanged, cancelled = conn.write(stream, [edit, same, cancel])
    assert not refused.ok and "cannot edit" in refused.error and "_form.amount" in refused.error
    assert unchanged.ok and cancelled.ok and sim.sim.approvals.instances[code]["status"] == "CANCELED"
    assert conn.write(stream, [replace(cancel, change_id="e5")])[0].ok
    decided = sim.pending()[0]
    sim.sim.decide(decided, "APPROVED")
    (late,) = conn.write(stream, [WriteChange("e6", "r", decided, {"status": "CANCELED"})])
    assert not late.ok and "APPROVED" in late.error


def test_refused_creates_are_per_record(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    results = make_connector(sim).write(stream, [
        new_approval(sim, "r1", amount=None), new_approval(sim, "r2", applicant=None),
        new_approval(sim, "r3", status="rejected"), new_approval(sim, "r4")])
    assert [r.ok for r in results] == [False, False, False, True]
    assert "amount" in results[0].error and "user_id" in results[1].error and "pending" in results[2].error


@pytest.mark.parametrize("encrypt_key", [None, "triad-encrypt-key"])
def test_event_round_trip(make_sim: Callable[..., Any], make_connector: Callable[..., Any],
                          make_receiver: Callable[..., Any], stream: StreamSpec, encrypt_key: str | None) -> None:
    sim = make_sim(extra={"encrypt_key": encrypt_key} if encrypt_key else {})
    conn = make_connector(sim, encrypt_key=encrypt_key)
    receiver = make_receiver(conn)
    sim.sim.callback_url = receiver.url
    ok, _ = sim.sim.verify_url()
    assert ok, "the challenge is echoed"
    code = sim.pending()[0]
    delivery = sim.sim.decide(code, "APPROVED")
    assert delivery.status == 200 and not receiver.rejected
    last = receiver.received[-1]
    (event,) = conn.parse_webhook(last["headers"], last["body"])
    assert event.entity == "approval" and event.fetch_ids == [code] and event.event_key == last["key"]
    assert delivery.reply == '{"msg":"success"}' 
    (record,) = conn.fetch(stream, event.fetch_ids)
    assert MAPPING.to_canonical(record).values["status"] == "approved"


def test_forged_events_are_rejected(sim: Any, make_connector: Callable[..., Any]) -> None:
    event = {"schema": "2.0", "header": {"event_id": "e1", "token": DEFAULT_VERIFICATION_TOKEN,
                                         "event_type": "approval.instance.status_changed_v4"},
             "event": {"instance_code": "I-1", "status": "APPROVED"}}
    plain = make_connector(sim)
    assert plain.verify_webhook({}, json.dumps(event).encode()) is None
    forged = {**event, "header": {**event["header"], "token": "guess"}}
    with pytest.raises(WebhookRejected, match="Verification Token"):
        plain.verify_webhook({}, json.dumps(forged).encode())
    with pytest.raises(WebhookRejected, match="verification_token"):
        make_connector(sim, verification_token=None).verify_webhook({}, json.dumps(event).encode())
    keyed = make_connector(sim, encrypt_key="k1")
    body = json.dumps({"encrypt": crypto.encrypt("k1", json.dumps(event))}).encode()
    signed = {"X-Lark-Request-Timestamp": "1700000000", "X-Lark-Request-Nonce": "n1",
              "X-Lark-Signature": crypto.signature("1700000000", "n1", "k1", body)}
    assert keyed.verify_webhook(signed, body) is None
    with pytest.raises(WebhookRejected, match="Signature"):
        keyed.verify_webhook({**signed, "X-Lark-Signature": "0" * 64}, body)
    with pytest.raises(WebhookRejected, match="Encrypt Key"):
        make_connector(sim, encrypt_key="k2").verify_webhook(signed, body)
    with pytest.raises(WebhookRejected, match="no encrypt_key"):
        plain.verify_webhook(signed, body)
    challenge = {"challenge": "abc", "token": DEFAULT_VERIFICATION_TOKEN, "type": "url_verification"}
    assert plain.verify_webhook({}, json.dumps(challenge).encode()) == {"challenge": "abc"}
    assert plain.parse_webhook({}, json.dumps(challenge).encode()) == []
    with pytest.raises(WebhookRejected):
        plain.verify_webhook({}, json.dumps({**challenge, "token": "x"}).encode())


def test_parse_documented_v1_event(sim: Any, make_connector: Callable[..., Any]) -> None:
    """The instance status event of PROTOCOLS 5.2 (Feishu doc, v1 envelope), excerpt completed with its app's token."""
    doc = {"ts": "1502199207.7171419", "uuid": "bc447199585340d1f3728d26b1c0297a", "token": DEFAULT_VERIFICATION_TOKEN,
           "type": "event_callback",
           "event": {"app_id": "cli_xxx", "tenant_key": "xxx", "type": "approval_instance",
                     "approval_code": "7C468A54-8745-2245-9675-08B7C63E7A85",
                     "instance_code": "81D31358-93AF-92D6-7425-01A5D67C4E71", "status": "PENDING",
                     "operate_time": 1666079207003, "instance_operate_time": "1666079207003"}}
    conn = make_connector(sim)
    body = json.dumps(doc).encode()
    assert conn.verify_webhook({}, body) is None
    (event,) = conn.parse_webhook({}, body)
    assert event.fetch_ids == ["81D31358-93AF-92D6-7425-01A5D67C4E71"]
    assert event.event_key == "bc447199585340d1f3728d26b1c0297a" == conn.webhook_event_key({}, body)
    assert conn.webhook_event_key({}, b"not json") is None


class FixtureServer:
    """Answers with the saved bytebase bodies, whatever the instance (a Feishu that only knows the fixtures)."""

    def __init__(self, load: Callable[[str], Any]) -> None:
        self.load = load
        self.calls: list[tuple[str, str]] = []

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        self.calls.append((method, path))
        if path.endswith("/tenant_access_token/internal"):
            body: Any = {"code": 0, "msg": "ok", "tenant_access_token": "t-fixture", "expire": 7200}
        elif path == "/open-apis/approval/v4/instances/cancel":
            body = self.load("cancel_approval_instance_response.json")
        elif path == "/open-apis/approval/v4/instances" and method == "POST":
            body = self.load("create_approval_instance_response.json")
        else:
            body = self.load("get_approval_instance_response_pending.json")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body, ensure_ascii=False).encode()]


def test_reads_and_writes_the_fixture_bodies(fixture: Callable[[str], Any], serve_wsgi: Callable[..., Any],
                                            make_connector: Callable[..., Any], stream: StreamSpec,
                                            tmp_path: Path) -> None:
    server = FixtureServer(fixture)
    conn = make_connector(SimpleNamespace(url=serve_wsgi(server).base_url))
    (record,) = conn.fetch(stream, ["AEE54764-3873-4605-BFDF-F33BE3F0D6F7"])
    assert record["instance_code"] == "AEE54764-3873-4605-BFDF-F33BE3F0D6F7"
    assert record["_form"] == {"1": "isue12333"} and record["_approver"] == "66geca66"
    assert record["_decided_at"] is None and record["_changed_at"] == "2022-11-11T08:38:45.310000+00:00"
    text = (shipped_mappings_dir() / "feishu" / "approval.yaml").read_text(encoding="utf-8")
    text = text.replace("4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F03: credit", "6CDB63F9-7BFC-49BA-B13B-C120D8E37B4F: credit")
    text = text.replace("_form.subject_id", "_form.1")
    (tmp_path / "approval.yaml").write_text(text, encoding="utf-8")
    canon = load_mapping(tmp_path / "approval.yaml", "approval").to_canonical(record)
    assert canon.values["status"] == "pending" and canon.values["applicant"] == "36f3bcba"
    assert canon.values["subject_id"] == "isue12333" and canon.values["kind"] == "credit"
    assert canon.values["submitted_at"] == datetime(2022, 11, 11, 8, 38, 45, 149000, tzinfo=timezone.utc)
    (created,) = conn.write(stream, [WriteChange("f1", "r1", None, {"approval_code": "6CDB63F9-7BFC-49BA-B13B-C120D8E37B4F",
                                                                  "user_id": "36f3bcba", "_form": {"1": "isue12333"}})])
    assert created.ok and created.source_id == "AEE54764-3873-4605-BFDF-F33BE3F0D6F7"
    (cancelled,) = conn.write(stream, [WriteChange("f2", "r1", created.source_id, {"status": "CANCELED"})])
    assert cancelled.ok and ("POST", "/open-apis/approval/v4/instances/cancel") in server.calls


def test_injected_faults_are_retried(make_sim: Callable[..., Any], make_connector: Callable[..., Any],
                                     stream: StreamSpec) -> None:
    sim = make_sim(fail_rate=0.15, truncate_rate=0.15, seed=5)
    conn = make_connector(sim, retries=8)
    records, _ = read_all(conn, stream)
    assert len(records) == 30 and sim.app.stats["failed"] > 0 and sim.app.stats["truncated"] > 0


def _answer(status: int, body: Any, **headers: str) -> Any:
    import requests
    resp = requests.Response()
    resp.status_code = status
    resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp.headers.update(headers)
    return resp


def test_error_table(sim: Any, make_connector: Callable[..., Any]) -> None:
    from connectors.feishu.client import TokenExpired
    from hub.errors import FatalError, RetriableError
    client = make_connector(sim).client
    client.token()
    with pytest.raises(RetriableError) as throttled:      # some legacy APIs throttle with HTTP 400
        client.classify(_answer(400, {"code": 99991400, "msg": "request trigger frequency limit"},
                                **{"x-ogw-ratelimit-reset": "52"}))
    assert throttled.value.retry_after == 52.0
    for code in (99991661, 99991663):
        with pytest.raises(TokenExpired):
            client.classify(_answer(400, {"code": code, "msg": "token"}))
        assert client._token is None
    with pytest.raises(FatalError):
        client.classify(_answer(400, {"code": 1390001, "msg": "param is invalid"}))
    with pytest.raises(RetriableError):
        client.classify(_answer(200, b'{"code": 0, "da'))
    assert client.classify(_answer(400, {"code": 1390001, "msg": "x"}), write=True) is None
    assert client.classify(_answer(400, {"code": 1390003, "msg": "instance code not found"})) is None
