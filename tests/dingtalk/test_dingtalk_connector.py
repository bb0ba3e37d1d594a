"""DingTalkConnector against the simulator: incremental reads, token expiry, throttling, writes, callbacks."""
from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable

import pytest

from connectors.dingtalk.crypto import DingTalkCrypto
from connectors.dingtalk.simulator import DEFAULT_AES_KEY, DEFAULT_TOKEN
from hub.connector import StreamSpec, WebhookRejected, WriteChange
from hub.mapping import load_mapping, shipped_mappings_dir

MAPPING = load_mapping(shipped_mappings_dir() / "dingtalk" / "approval.yaml", "approval")


def read_all(conn: Any, stream: StreamSpec, cursor: Any = None) -> tuple[list[dict[str, Any]], Any]:
    batches = list(conn.read(replace(stream, run_started_at=datetime.now(timezone.utc)), cursor))
    return [r for b in batches for r in b.records], (batches[-1].cursor if batches else cursor)


def new_approval(sim: Any, change_id: str, **values: Any) -> WriteChange:
    canonical = {"kind": "contract", "subject_entity": "contract", "subject_id": "HT-2026-00042", "status": "pending",
                 "applicant": sim.sim.workflow.data["users"][2]["userId"], "amount": Decimal("12800.00"),
                 "currency": "CNY", **values}
    return WriteChange(change_id, f"rec-{change_id}", None, MAPPING.to_source(canonical))


def test_check(sim: Any, make_connector: Callable[..., Any]) -> None:
    result = make_connector(sim, process_codes=["PROC-TRIAD-CONTRACT"]).check()
    assert result.ok and "PROC-TRIAD-CONTRACT" in result.detail
    bad = make_connector(sim, app_secret="wrong").check()
    assert not bad.ok and "refused the app credentials" in bad.detail


def test_full_read_maps_every_instance(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    records, cursor = read_all(make_connector(sim), stream)
    assert len(records) == 30 and len({r["processInstanceId"] for r in records}) == 30
    canon = [MAPPING.to_canonical(r) for r in records]
    assert {c.values["kind"] for c in canon} == {"contract", "payment", "credit"}
    statuses = {c.values["status"] for c in canon}
    assert statuses == {"pending", "approved", "rejected", "cancelled"}
    running = [r for r in records if r["status"] == "RUNNING"]
    assert set(cursor["open"]) == {r["processInstanceId"] for r in running}
    decided = next(c for c in canon if c.values["status"] == "approved")
    assert decided.values["decided_at"] and decided.source_ts == decided.values["decided_at"]
    assert decided.values["approver"] and decided.values["amount"] > 0


def test_incremental_read_sees_decisions_on_old_instances(sim: Any, make_connector: Callable[..., Any],
                                                         stream: StreamSpec) -> None:
    conn = make_connector(sim)
    _, cursor = read_all(conn, stream)
    old = sim.open_ids()[0]                      # started weeks ago: outside any recent start-time window
    sim.sim.decide(old, "agree")
    (fresh,) = conn.write(stream, [new_approval(sim, "c-new")])
    records, after = read_all(conn, stream, cursor)
    assert sorted(r["processInstanceId"] for r in records) == sorted([old, fresh.source_id])
    assert next(r for r in records if r["processInstanceId"] == old)["_status"] == "COMPLETED/agree"
    assert old not in after["open"] and fresh.source_id in after["open"]
    again, _ = read_all(conn, stream, after)      # the overlap window re-reads the recent one, unchanged
    assert again == [next(r for r in records if r["processInstanceId"] == fresh.source_id)]
    no_overlap = make_connector(sim, overlap_seconds=0)
    assert read_all(no_overlap, stream, after)[0] == [], "nothing changed since: nothing is read"


def test_cursor_only_advances_with_the_last_batch(sim: Any, make_connector: Callable[..., Any],
                                                  stream: StreamSpec) -> None:
    conn = make_connector(sim)
    _, cursor = read_all(conn, stream)
    decided = sim.open_ids()[:4]
    for iid in decided:
        sim.sim.decide(iid, "refuse")
    batches = list(conn.read(replace(stream, batch_size=2), cursor))
    assert sorted(r["processInstanceId"] for b in batches for r in b.records) == sorted(decided)
    assert len(batches) >= 2 and all(len(b.records) <= 2 for b in batches)
    still_open = set(cursor["open"]) - set(decided)
    yielded: set[str] = set()
    for batch in batches[:-1]:
        assert batch.cursor["ts"] == cursor["ts"], "an interrupted read restarts from the previous point"
        yielded |= {r["processInstanceId"] for r in batch.records}
        assert still_open <= set(batch.cursor["open"]) and not yielded & set(batch.cursor["open"])
    assert batches[-1].cursor["ts"] > cursor["ts"] and set(batches[-1].cursor["open"]) == still_open


def test_token_expiry_mid_run_is_transparent(sim: Any, make_connector: Callable[..., Any],
                                             stream: StreamSpec) -> None:
    conn = make_connector(sim)
    reader = conn.read(stream, None)
    first = next(reader)
    sim.sim.expire_tokens()
    rest = [r for b in reader for r in b.records]
    assert len(first.records) + len(rest) == 30
    assert conn.client.token_fetches == 2 and sim.sim.tokens.issued == 2


def test_legacy_token_endpoint(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    conn = make_connector(sim, token_api="legacy")
    assert len(read_all(conn, stream)[0]) == 30 and conn.client.token_fetches == 1


@pytest.mark.parametrize("throttle", [{"request_budget": 6, "extra": {"rate_window": 0.2}},
                                      {"rate_limit_rate": 0.25, "extra": {"ratelimit_reset": 0.05}}])
def test_throttling_backs_off_and_resumes(make_sim: Callable[..., Any], make_connector: Callable[..., Any],
                                          stream: StreamSpec, throttle: dict[str, Any]) -> None:
    sim = make_sim(**throttle)
    conn = make_connector(sim, retries=12, fetch_concurrency=1)
    waits: list[float] = []
    conn.client.http.sleep = lambda s: (waits.append(s), time.sleep(s))
    records, _ = read_all(conn, stream)
    assert len(records) == 30 and sim.sim.throttle.throttled > 0
    assert len(waits) >= sim.sim.throttle.throttled and all(w <= 0.3 for w in waits)


def test_create_is_idempotent(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    change = new_approval(sim, "chg-77")
    (first,) = make_connector(sim).write(stream, [change])
    assert first.ok and first.source_id
    (again,) = make_connector(sim).write(stream, [change])     # a new process: only DingTalk knows
    assert again.ok and again.source_id == first.source_id
    holders = [i for i in sim.sim.workflow.instances.values()
               if any(f["name"] == "Triad变更号" and f["value"] == "chg-77" for f in i["form"])]
    assert [i["id"] for i in holders] == [first.source_id]
    other = new_approval(sim, "chg-78")
    (second,) = make_connector(sim).write(stream, [other])
    assert second.ok and second.source_id != first.source_id


def test_cancel_and_edits(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    conn = make_connector(sim)
    (created,) = conn.write(stream, [new_approval(sim, "c1")])
    iid = created.source_id
    (edit,) = conn.write(stream, [WriteChange("c2", "rec-c1", iid, MAPPING.to_source({"amount": Decimal("99.00")}))])
    assert not edit.ok and not edit.retriable and "cannot edit" in edit.error and "金额" in edit.error
    (same,) = conn.write(stream, [WriteChange("c3", "rec-c1", iid, MAPPING.to_source(
        {"amount": Decimal("12800.0"), "status": "pending"}))])
    assert same.ok, same.error
    cancel = WriteChange("c4", "rec-c1", iid, MAPPING.to_source({"status": "cancelled"}))
    assert cancel.values == {"_status": "TERMINATED"}
    assert conn.write(stream, [cancel])[0].ok
    assert sim.sim.workflow.instances[iid]["status"] == "TERMINATED"
    assert conn.write(stream, [replace(cancel, change_id="c5")])[0].ok, "a retried cancel succeeds"
    decided = sim.open_ids()[0]
    sim.sim.decide(decided, "agree")
    (late,) = conn.write(stream, [WriteChange("c6", "rec-x", decided, {"_status": "TERMINATED"})])
    assert not late.ok and "already decided" in late.error


def test_refused_creates_are_per_record(sim: Any, make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    conn = make_connector(sim)
    no_amount = new_approval(sim, "b1", amount=None)
    unknown = WriteChange("b2", "rec-b2", None, {**new_approval(sim, "b2").values, "processCode": "PROC-NOPE"})
    decided = new_approval(sim, "b3", status="approved")
    good = new_approval(sim, "b4")
    results = conn.write(stream, [no_amount, unknown, decided, good])
    assert [r.ok for r in results] == [False, False, False, True]
    assert "金额" in results[0].error and "InvalidProcessCode" in results[1].error and "pending" in results[2].error


def test_callback_round_trip(make_sim: Callable[..., Any], make_connector: Callable[..., Any],
                            make_receiver: Callable[..., Any], stream: StreamSpec) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    receiver = make_receiver(conn)
    sim.sim.callback_url = receiver.url
    delivery = sim.sim.check_url()
    reply = json.loads(delivery.reply)
    crypto = DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, "triad-client")
    assert delivery.status == 200 and crypto.open(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]) == "success"
    (created,) = conn.write(stream, [new_approval(sim, "cb1")])
    delivery = sim.sim.decide(created.source_id, "agree")
    assert delivery.status == 200 and not receiver.rejected
    # the start event goes out in the background: it may arrive before or after the finish
    (last,) = [r for r in receiver.received if r["key"] and ":finish:" in r["key"]]
    events = conn.parse_webhook(last["headers"], last["body"], last["query"])
    assert [(e.entity, e.fetch_ids) for e in events] == [("approval", [created.source_id])]
    assert events[0].event_key == last["key"]
    reply = json.loads(delivery.reply)      # what DingTalk got back: the encrypted success
    assert crypto.open(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]) == "success"
    (record,) = conn.fetch(stream, events[0].fetch_ids)
    assert MAPPING.to_canonical(record).values["status"] == "approved"
    (again,) = make_connector(sim).fetch(stream, [created.source_id])    # no cache: the template is looked up
    assert again["processCode"] == "PROC-TRIAD-CONTRACT" and again == record


def test_forged_deliveries_are_rejected(sim: Any, make_connector: Callable[..., Any]) -> None:
    conn = make_connector(sim)
    crypto = DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, "triad-client")
    sealed = crypto.seal(json.dumps({"EventType": "bpms_instance_change", "processInstanceId": "x1", "type": "start"}))
    query = {"signature": sealed["msg_signature"], "timestamp": sealed["timeStamp"], "nonce": sealed["nonce"]}
    body = json.dumps({"encrypt": sealed["encrypt"]}).encode()
    assert conn.verify_webhook({}, body, query) is None
    older = {"msg_signature": sealed["msg_signature"], "timeStamp": sealed["timeStamp"], "nonce": sealed["nonce"]}
    assert conn.verify_webhook({}, body, older) is None
    forged = {**query, "signature": "0" * 40}
    # another first character (a random ciphertext starts with "A" one time in 64: that is no tampering)
    first = "B" if sealed["encrypt"][0] == "A" else "A"
    tampered = json.dumps({"encrypt": first + sealed["encrypt"][1:]}).encode()
    other_app = DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, "another-app").seal('{"EventType": "x"}')
    other_query = {"signature": other_app["msg_signature"], "timestamp": other_app["timeStamp"],
                   "nonce": other_app["nonce"]}
    for q, b in [(forged, body), (query, tampered), (None, body), ({**query, "nonce": "x"}, body),
                 (other_query, json.dumps({"encrypt": other_app["encrypt"]}).encode())]:
        with pytest.raises(WebhookRejected):
            conn.verify_webhook({}, b, q)
    assert conn.webhook_event_key({}, body, forged) is None, "the event key never raises"
    unconfigured = make_connector(sim, callback_token=None, callback_aes_key=None)
    with pytest.raises(WebhookRejected, match="callback_token"):
        unconfigured.verify_webhook({}, body, query)


def test_parse_documented_finish_callback(sim: Any, make_connector: Callable[..., Any]) -> None:
    """The decrypted finish payload of PROTOCOLS 5.1 (a DingTalk doc sample), encrypted for this app."""
    sample = {"EventType": "bpms_instance_change", "processInstanceId": "ad253df6-e175caf-xxxxxxxxxxxx",
              "finishTime": 1495592305000, "corpId": "corpidxxxxxxxxxxxxx", "title": "自测-1016", "type": "finish",
              "url": "https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?corpid=ding2c015874d8175651&dd_share=",
              "result": "refuse", "createTime": 1495592272000, "staffId": "manager75", "processCode": "xxx"}
    sealed = DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, "triad-client").seal(json.dumps(sample, ensure_ascii=False))
    query = {"msg_signature": sealed["msg_signature"], "timestamp": sealed["timeStamp"], "nonce": sealed["nonce"]}
    conn = make_connector(sim)
    body = json.dumps({"encrypt": sealed["encrypt"]}).encode()
    (event,) = conn.parse_webhook({}, body, query)
    assert event.event_key == conn.webhook_event_key({}, body, query)
    assert event.entity == "approval" and event.fetch_ids == ["ad253df6-e175caf-xxxxxxxxxxxx"] and not event.records
    assert "finish" in event.event_key and "1495592305000" in event.event_key
    assert conn._codes.get("ad253df6-e175caf-xxxxxxxxxxxx") == "xxx", "the callback's processCode is kept for fetch"
    check = DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, "triad-client").seal('{"EventType":"check_url"}')
    ch_query = {"signature": check["msg_signature"], "timestamp": check["timeStamp"], "nonce": check["nonce"]}
    ch_body = json.dumps({"encrypt": check["encrypt"]}).encode()
    assert conn.parse_webhook({}, ch_body, ch_query) == []
    assert set(conn.verify_webhook({}, ch_body, ch_query)) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    status, content, media = conn.webhook_ack({}, body, query)
    reply = json.loads(content)
    assert status == 200 and media == "application/json"
    assert DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, "triad-client").open(
        reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]) == "success"


def test_injected_faults_are_retried(make_sim: Callable[..., Any], make_connector: Callable[..., Any],
                                     stream: StreamSpec) -> None:
    sim = make_sim(fail_rate=0.15, truncate_rate=0.15, seed=5)
    conn = make_connector(sim, retries=8)
    records, _ = read_all(conn, stream)
    assert len(records) == 30 and sim.app.stats["failed"] > 0 and sim.app.stats["truncated"] > 0
    (created,) = conn.write(stream, [new_approval(sim, "f1")])
    assert created.ok or created.retriable


def _answer(status: int, body: Any, **headers: str) -> Any:
    import requests
    resp = requests.Response()
    resp.status_code = status
    resp._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp.headers.update(headers)
    return resp


def test_error_table(sim: Any, make_connector: Callable[..., Any]) -> None:
    from connectors.dingtalk.client import AuthError, TokenExpired
    from hub.errors import FatalError, LimitExceeded, RetriableError
    client = make_connector(sim).client
    client.token()
    for status, body, raised in [
            (403, {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "限流"}, RetriableError),
            (200, {"errcode": 90018, "errmsg": "接口调用超过限制"}, RetriableError),
            (200, {"status": 1111, "wait": 5, "source": "x5", "punish": "deny", "uuid": "x"}, LimitExceeded),
            (403, {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied", "message": "没有权限"}, FatalError),
            (401, {"code": "InvalidAuthentication", "message": "不合法的access_token"}, AuthError),
            (400, {"code": "InvalidParameter", "message": "x"}, FatalError),
            (200, b'{"success": tr', RetriableError)]:
        with pytest.raises(raised):
            client.classify(_answer(status, body))
    assert client.classify(_answer(400, {"code": "InvalidParameter", "message": "x"}), write=True) is None
    assert client.classify(_answer(400, {"code": "InvalidProcessInstanceId", "message": "x"})) is None
    with pytest.raises(TokenExpired):
        client.classify(_answer(200, {"errcode": 42001, "errmsg": "access_token超时"}))
    assert client._token is None, "an expired token is dropped, the next call fetches another"
    with pytest.raises(RetriableError) as wait:
        client.classify(_answer(403, {"code": "Forbidden.AccessDenied.QpsLimitForApi"}, **{"Retry-After": "0.7"}))
    assert wait.value.retry_after == 0.7
