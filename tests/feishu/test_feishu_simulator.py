"""The Feishu simulator reproduces the saved bodies (shared/fixtures/feishu) and PROTOCOLS 5.2, proven with lark-oapi."""
from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest

from connectors.feishu import crypto
from connectors.feishu.simulator import DEFAULT_VERIFICATION_TOKEN, EVENT_TYPE, create_app
from connectors.simkit import SimOptions

CONTRACT = "4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F01"


def shape(value: Any) -> Any:
    """Keys and value types, recursively (a list by its first element): what "the same body" means here."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def create(sim: Any, token: str, **overrides: Any) -> Any:
    body = {"approval_code": CONTRACT, "user_id": sim.user(0),
            "form": json.dumps([{"id": "subject_id", "type": "input", "value": "HT-2026-00001"},
                                {"id": "amount", "type": "amount", "value": 8800.5}])}
    body.update(overrides)
    return sim.call("POST", "/instances", token, json=body)


def test_token(sim: Any) -> None:
    url = f"{sim.url}/open-apis/auth/v3/tenant_access_token/internal"
    body = sim.http.post(url, json={"app_id": "triad-client", "app_secret": "triad-secret"}).json()
    assert list(body) == ["code", "msg", "tenant_access_token", "expire"]
    assert body["code"] == 0 and body["msg"] == "ok" and body["tenant_access_token"].startswith("t-") and body["expire"] == 7200
    bad = sim.http.post(url, json={"app_id": "triad-client", "app_secret": "nope"})
    assert bad.status_code == 400 and bad.json()["code"] != 0


def test_bodies_match_the_fixtures(sim: Any, fixture: Callable[[str], Any]) -> None:
    token = sim.token()
    created = create(sim, token)
    assert shape(created.json()) == shape(fixture("create_approval_instance_response.json"))
    assert created.json()["msg"] == "" and created.json()["code"] == 0
    code = created.json()["data"]["instance_code"]
    got = sim.call("GET", f"/instances/{code}", token).json()
    want = fixture("get_approval_instance_response_pending.json")
    assert shape(got) == shape(want)
    assert shape(json.loads(got["data"]["form"])) == shape(json.loads(want["data"]["form"]))
    assert got["data"]["status"] == "PENDING" and got["data"]["end_time"] == "0"
    assert got["data"]["timeline"][0]["type"] == "START" and got["data"]["task_list"][0]["type"] == "AND"
    cancelled = sim.call("POST", "/instances/cancel", token, params={"user_id_type": "user_id"},
                         json={"approval_code": CONTRACT, "instance_code": code, "user_id": sim.user(0)})
    assert cancelled.json() == fixture("cancel_approval_instance_response.json")
    defined = sim.call("POST", "/approvals", token, json={
        "approval_name": "Bytebase 工单", "form": {"form_content": json.dumps(
            [{"id": "widget16681556660", "custom_id": "1", "name": "工单", "type": "input"}])}})
    assert shape(defined.json()) == shape(fixture("create_approval_definition_response.json"))
    assert defined.json()["msg"] == "success"


def test_list_pages_and_time_window(sim: Any) -> None:
    token = sim.token()
    now = int(time.time() * 1000)
    params = {"approval_code": CONTRACT, "start_time": 0, "end_time": now, "page_size": 4}
    codes, pages = [], 0
    while True:
        data = sim.call("GET", "/instances", token, params=params).json()["data"]
        codes += data["instance_code_list"]
        pages += 1
        if not data["has_more"]:
            assert data["page_token"] == ""
            break
        params["page_token"] = data["page_token"]
    assert len(codes) == len(set(codes)) == 10 and pages == 3
    recent = sim.call("GET", "/instances", token, params={**params, "start_time": now - 1000, "page_token": ""})
    assert recent.json()["data"]["instance_code_list"] == []
    for bad in ({"approval_code": CONTRACT}, {**params, "page_size": 500}):
        answer = sim.call("GET", "/instances", token, params=bad)
        assert answer.status_code == 400 and answer.json()["code"] == 1390001
    assert sim.call("GET", "/instances", token, params={**params, "approval_code": "X"}).json()["code"] == 1390002


def test_errors(make_sim: Callable[..., Any]) -> None:
    sim = make_sim(token_ttl=0.3)
    token = sim.token()
    assert sim.call("GET", "/instances/x", None).json()["code"] == 99991661
    unknown = sim.call("GET", "/instances/x", token)
    assert unknown.status_code == 400 and unknown.json() == {"code": 1390003, "msg": "instance code not found"}
    assert create(sim, token, approval_code="NOPE").json()["code"] == 1390002
    assert create(sim, token, form=[{"id": "amount", "value": 1}]).json()["code"] == 1390001, "form is a JSON string"
    missing = create(sim, token, form=json.dumps([{"id": "subject_id", "type": "input", "value": "HT-1"}]))
    assert missing.json()["code"] == 1390001 and "amount" in missing.json()["msg"]
    assert create(sim, token, uuid="U-1").json()["code"] == 0
    assert create(sim, token, uuid="u-1").json()["code"] == 60012, "a uuid creates one instance (case-insensitive)"
    time.sleep(0.35)
    expired = sim.call("GET", "/instances/x", token)
    assert expired.status_code == 400 and expired.json()["code"] == 99991663


def test_rate_limit(make_sim: Callable[..., Any]) -> None:
    sim = make_sim(request_budget=2, extra={"rate_window": 0.5})
    token = sim.token()
    answers = [sim.call("GET", "/instances/x", token) for _ in range(3)]
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert answers[2].json() == {"code": 99991400, "msg": "request trigger frequency limit"}
    assert answers[2].headers["x-ogw-ratelimit-limit"] == "100" and answers[2].headers["x-ogw-ratelimit-reset"] == "1"


def test_state_file_and_seed(tmp_path: Any) -> None:
    path = str(tmp_path / "feishu.json")
    first = create_app(SimOptions(records=5, state=path))
    with first.sim.state.lock:
        inst = first.sim.approvals.create(CONTRACT, first.sim.state.data["users"][0]["user_id"], None,
                                          [{"id": "subject_id", "value": "HT-1"}, {"id": "amount", "value": 1}])
        first.sim.state.save()
    assert inst["instance_code"] in create_app(SimOptions(records=5, state=path, seed=3)).sim.approvals.instances
    strip = lambda app: sorted((i["instance_code"], i["status"]) for i in app.sim.approvals.instances.values())
    assert strip(create_app(SimOptions(records=6, seed=4))) == strip(create_app(SimOptions(records=6, seed=4)))


def _lark_handler(encrypt_key: str, seen: list[Any]) -> Any:
    import lark_oapi as lark
    return (lark.EventDispatcherHandler.builder(encrypt_key, DEFAULT_VERIFICATION_TOKEN, lark.LogLevel.ERROR)
            .register_p2_approval_instance_status_changed_v4(seen.append).build())


class LarkReceiver:
    """Feishu's own SDK (lark-oapi) as the receiving end: it decrypts, checks token and signature."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.statuses: list[int] = []

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        from lark_oapi.core.model import RawRequest
        req = RawRequest()
        req.uri = environ["PATH_INFO"]
        req.body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        req.headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        resp = self.handler.do(req)
        self.statuses.append(resp.status_code)
        start_response(f"{resp.status_code} X", [("Content-Type", "application/json")])
        return [resp.content or b""]


@pytest.mark.parametrize("encrypt_key", ["", "triad-encrypt-key"])
def test_events_accepted_by_lark_oapi(make_sim: Callable[..., Any], serve_wsgi: Callable[..., Any],
                                      encrypt_key: str) -> None:
    seen: list[Any] = []
    receiver = LarkReceiver(_lark_handler(encrypt_key, seen))
    url = serve_wsgi(receiver).base_url + "/events"
    sim = make_sim(extra={"callback_url": url, **({"encrypt_key": encrypt_key} if encrypt_key else {})})
    ok, delivery = sim.sim.verify_url()
    assert ok and delivery.status == 200, delivery.reply
    code = sim.pending()[0]
    delivery = sim.sim.decide(code, "APPROVED")
    assert delivery.status == 200 and receiver.statuses[-1] == 200, delivery.reply
    (event,) = seen
    assert event.header.event_type == EVENT_TYPE and event.header.token == DEFAULT_VERIFICATION_TOKEN
    assert (event.event.instance_code, event.event.status, event.event.approval_code) == (
        code, "APPROVED", sim.sim.approvals.instances[code]["approval_code"])
    if encrypt_key:
        assert set(json.loads(sim.sim.deliveries[-1].reply or "{}")) == {"msg"}
        assert "encrypt" in crypto.decrypt(encrypt_key, crypto.encrypt(encrypt_key, '{"encrypt": 1}'))


def test_lark_oapi_client_drives_the_simulator(sim: Any) -> None:
    """lark-oapi (Feishu's SDK) gets a token, creates, reads, lists and cancels an instance."""
    import lark_oapi as lark
    from lark_oapi.api.approval.v4 import (CancelInstanceRequest, CreateInstanceRequest, GetInstanceRequest,
                                           InstanceCancel, InstanceCreate, ListInstanceRequest)
    client = (lark.Client.builder().app_id("triad-client").app_secret("triad-secret").domain(sim.url)
              .log_level(lark.LogLevel.ERROR).build())
    form = json.dumps([{"id": "subject_id", "type": "input", "value": "HT-7"},
                       {"id": "amount", "type": "amount", "value": 12.5}])
    created = client.approval.v4.instance.create(CreateInstanceRequest.builder().request_body(
        InstanceCreate.builder().approval_code(CONTRACT).user_id(sim.user(1)).form(form).uuid("lark-1").build()).build())
    assert created.success(), created.msg
    code = created.data.instance_code
    got = client.approval.v4.instance.get(GetInstanceRequest.builder().instance_id(code).build())
    assert got.success() and got.data.status == "PENDING" and got.data.user_id == sim.user(1)
    assert json.loads(got.data.form)[1]["value"] == 12.5 and got.data.task_list[0].node_name == "审批"
    listed = client.approval.v4.instance.list(ListInstanceRequest.builder().approval_code(CONTRACT).start_time("0")
                                              .end_time(str(int(time.time() * 1000) + 5000)).page_size(100).build())
    assert listed.success() and code in listed.data.instance_code_list and listed.data.has_more is False
    cancelled = client.approval.v4.instance.cancel(CancelInstanceRequest.builder().user_id_type("user_id").request_body(
        InstanceCancel.builder().approval_code(CONTRACT).instance_code(code).user_id(sim.user(1)).build()).build())
    assert cancelled.success() and sim.sim.approvals.instances[code]["status"] == "CANCELED"
    again = client.approval.v4.instance.create(CreateInstanceRequest.builder().request_body(
        InstanceCreate.builder().approval_code(CONTRACT).user_id(sim.user(1)).form(form).uuid("lark-1").build()).build())
    assert not again.success() and again.code == 60012
