"""The DingTalk simulator speaks the wire format of PROTOCOLS 5.1 (also proven with the official SDK)."""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

import pytest

from connectors.dingtalk.crypto import DingTalkCrypto
from connectors.dingtalk.simulator import DEFAULT_AES_KEY, DEFAULT_TOKEN, create_app
from connectors.simkit import SimOptions

MINUTE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")
CONTRACT = "PROC-TRIAD-CONTRACT"


def start(sim: Any, token: str, **overrides: Any) -> Any:
    user = sim.sim.workflow.data["users"][0]
    body = {"processCode": CONTRACT, "originatorUserId": user["userId"], "deptId": -1,
            "formComponentValues": [{"name": "关联单号", "value": "HT-2026-00001"}, {"name": "金额", "value": "8800.00"},
                                    {"name": "币种", "value": "CNY"}]}
    body.update(overrides)
    return sim.call("POST", "/v1.0/workflow/processInstances", token, json=body)


def test_tokens_new_and_legacy(sim: Any) -> None:
    r = sim.http.post(f"{sim.url}/v1.0/oauth2/accessToken", json={"appKey": "triad-client", "appSecret": "triad-secret"})
    assert r.status_code == 200 and set(r.json()) == {"accessToken", "expireIn"} and r.json()["expireIn"] == 7200
    again = sim.http.post(f"{sim.url}/v1.0/oauth2/accessToken", json={"appKey": "triad-client", "appSecret": "triad-secret"})
    assert again.json()["accessToken"] == r.json()["accessToken"], "a token is handed out again while valid"
    legacy = sim.http.get(f"{sim.url}/gettoken", params={"appkey": "triad-client", "appsecret": "triad-secret"}).json()
    assert legacy["errcode"] == 0 and legacy["errmsg"] == "ok" and legacy["access_token"] and legacy["expires_in"] > 7000
    bad = sim.http.post(f"{sim.url}/v1.0/oauth2/accessToken", json={"appKey": "triad-client", "appSecret": "nope"})
    assert bad.status_code == 400 and set(bad.json()) == {"code", "message", "requestid"}
    bad_legacy = sim.http.get(f"{sim.url}/gettoken", params={"appkey": "triad-client", "appsecret": "x"}).json()
    assert bad_legacy["errcode"] != 0 and bad_legacy["errmsg"]


def test_create_get_list_terminate(sim: Any) -> None:
    token = sim.token()
    before = int(time.time() * 1000) - 1000
    created = start(sim, token)
    assert created.status_code == 200 and list(created.json()) == ["instanceId"]
    iid = created.json()["instanceId"]
    got = sim.call("GET", "/v1.0/workflow/processInstances", token, params={"processInstanceId": iid}).json()
    assert got["success"] is True
    result = got["result"]
    assert result["status"] == "RUNNING" and result["result"] == "" and "finishTime" not in result
    assert MINUTE.match(result["createTime"])
    assert {"name": "金额", "value": "8800.00"}.items() <= next(
        f for f in result["formComponentValues"] if f["name"] == "金额").items()
    (task,) = result["tasks"]
    assert task["status"] == "RUNNING" and task["processInstanceId"] == iid and result["approverUserIds"] == [task["userId"]]
    assert [r["type"] for r in result["operationRecords"]] == ["START_PROCESS_INSTANCE"]

    query = {"processCode": CONTRACT, "startTime": before, "endTime": int(time.time() * 1000) + 1000, "maxResults": 20}
    listed = sim.call("POST", "/v1.0/workflow/processes/instanceIds/query", token, json=query).json()
    assert listed == {"success": True, "result": {"list": [iid]}}
    older = sim.call("POST", "/v1.0/workflow/processes/instanceIds/query", token,
                     json={**query, "startTime": 0, "endTime": before, "maxResults": 4}).json()["result"]
    assert iid not in older["list"] and len(older["list"]) == 4 and older["nextToken"] == "4"
    too_many = sim.call("POST", "/v1.0/workflow/processes/instanceIds/query", token, json={**query, "maxResults": 50})
    assert too_many.status_code == 400 and too_many.json()["code"] == "InvalidParameter"

    done = sim.call("POST", "/v1.0/workflow/processInstances/terminate", token,
                    json={"processInstanceId": iid, "isSystem": True, "remark": "撤销"})
    assert done.json() == {"success": True, "result": True}
    result = sim.call("GET", "/v1.0/workflow/processInstances", token, params={"processInstanceId": iid}).json()["result"]
    assert result["status"] == "TERMINATED" and MINUTE.match(result["finishTime"])
    assert result["operationRecords"][-1]["type"] == "TERMINATE_PROCESS_INSTANCE"
    again = sim.call("POST", "/v1.0/workflow/processInstances/terminate", token, json={"processInstanceId": iid})
    assert again.status_code == 400 and again.json()["code"] == "InvalidProcessInstanceStatus"


def test_errors_in_dingtalk_shape(make_sim: Callable[..., Any]) -> None:
    sim = make_sim(token_ttl=0.3)
    token = sim.token()
    unknown = start(sim, token, processCode="PROC-NOPE")
    assert unknown.status_code == 400 and unknown.json()["code"] == "InvalidProcessCode"
    assert set(unknown.json()) == {"code", "message", "requestid"}
    missing = start(sim, token, formComponentValues=[{"name": "关联单号", "value": "HT-1"}])
    assert missing.status_code == 400 and "金额" in missing.json()["message"]
    strange = start(sim, token, formComponentValues=[{"name": "不存在", "value": "1"}])
    assert strange.status_code == 400 and strange.json()["code"] == "InvalidFormComponent"
    assert sim.call("GET", "/v1.0/workflow/processInstances", None,
                    params={"processInstanceId": "x"}).json()["code"] == "InvalidAuthentication"
    time.sleep(0.35)
    expired = sim.call("GET", "/v1.0/workflow/processInstances", token, params={"processInstanceId": "x"})
    assert expired.status_code == 401 and expired.json()["code"] == "InvalidAuthentication"


def test_throttling_by_budget(make_sim: Callable[..., Any]) -> None:
    sim = make_sim(request_budget=2, extra={"rate_window": 0.5})
    token = sim.token()
    codes = [sim.call("POST", "/v1.0/workflow/processes/instanceIds/query", token,
                      json={"processCode": CONTRACT, "startTime": 0, "maxResults": 1}) for _ in range(3)]
    assert [c.status_code for c in codes] == [200, 200, 403]
    assert codes[2].json()["code"] == "Forbidden.AccessDenied.QpsLimitForApi"
    assert 0 < float(codes[2].headers["Retry-After"]) <= 0.5
    time.sleep(0.55)
    assert sim.call("POST", "/v1.0/workflow/processes/instanceIds/query", token,
                    json={"processCode": CONTRACT, "startTime": 0, "maxResults": 1}).status_code == 200


class Recorder:
    """A bare callback receiver: keeps what arrives, answers what DingTalk expects."""

    def __init__(self) -> None:
        self.crypto = DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, "triad-client")
        self.calls: list[tuple[dict[str, str], dict[str, Any]]] = []

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        from urllib.parse import parse_qs
        query = {k: v[-1] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
        body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        self.calls.append((query, body))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(self.crypto.seal("success")).encode()]


def test_callbacks_are_encrypted_and_signed(make_sim: Callable[..., Any], serve_wsgi: Callable[..., Any]) -> None:
    recorder = Recorder()
    receiver = serve_wsgi(recorder)
    sim = make_sim(extra={"callback_url": receiver.base_url + "/cb"})
    token = sim.token()
    iid = start(sim, token).json()["instanceId"]
    for _ in range(100):                      # the start event goes out in the background
        if recorder.calls:
            break
        time.sleep(0.01)
    delivery = sim.sim.decide(iid, "refuse")
    assert delivery is not None and delivery.status == 200
    events = []
    for query, body in recorder.calls:
        assert set(query) == {"signature", "timestamp", "nonce"} and set(body) == {"encrypt"}
        events.append(json.loads(recorder.crypto.open(query["signature"], query["timestamp"], query["nonce"],
                                                      body["encrypt"])))
    assert [(e["EventType"], e["type"]) for e in events] == [("bpms_instance_change", "start"),
                                                             ("bpms_instance_change", "finish")]
    finish = events[1]
    assert finish["processInstanceId"] == iid and finish["result"] == "refuse" and finish["processCode"] == CONTRACT
    assert isinstance(finish["finishTime"], int) and isinstance(finish["createTime"], int)
    reply = json.loads(delivery.reply)
    assert recorder.crypto.open(reply["msg_signature"], reply["timeStamp"], reply["nonce"],
                                reply["encrypt"]) == "success"
    result = sim.call("GET", "/v1.0/workflow/processInstances", token, params={"processInstanceId": iid}).json()
    assert (result["result"]["status"], result["result"]["result"]) == ("COMPLETED", "refuse")


def test_state_file_keeps_data(tmp_path: Any) -> None:
    path = str(tmp_path / "dingtalk.json")
    first = create_app(SimOptions(records=5, state=path))
    user = first.sim.workflow.data["users"][0]["userId"]
    with first.sim.state.lock:
        inst = first.sim.workflow.create(CONTRACT, user, -1, [{"name": "关联单号", "value": "HT-1"},
                                                              {"name": "金额", "value": "1.00"}])
        first.sim.state.save()
    again = create_app(SimOptions(records=5, state=path, seed=99))
    assert inst["id"] in again.sim.workflow.instances and len(again.sim.workflow.instances) == 6


def test_same_seed_same_data() -> None:
    a, b = create_app(SimOptions(records=8, seed=7)), create_app(SimOptions(records=8, seed=7))
    strip = lambda app: sorted((i["id"], i["status"], i["form"][2]["value"]) for i in app.sim.workflow.instances.values())
    assert strip(a) == strip(b)
    assert strip(a) != strip(create_app(SimOptions(records=8, seed=8)))


def test_official_sdk_drives_the_simulator(sim: Any) -> None:
    """alibabacloud-dingtalk (the vendor's SDK) gets a token, starts, reads, lists and revokes an instance."""
    from alibabacloud_dingtalk.oauth2_1_0 import models as oauth
    from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuthClient
    from alibabacloud_dingtalk.workflow_1_0 import models as wf
    from alibabacloud_dingtalk.workflow_1_0.client import Client as WorkflowClient
    from alibabacloud_tea_openapi import models as api
    from alibabacloud_tea_util import models as util

    config = lambda: api.Config(protocol="http", region_id="central", endpoint=sim.url.split("//", 1)[1])
    token = OAuthClient(config()).get_access_token(
        oauth.GetAccessTokenRequest(app_key="triad-client", app_secret="triad-secret")).body
    assert token.expire_in == 7200
    client, rt = WorkflowClient(config()), util.RuntimeOptions()
    user = sim.sim.workflow.data["users"][1]["userId"]
    started = client.start_process_instance_with_options(
        wf.StartProcessInstanceRequest(originator_user_id=user, process_code=CONTRACT, dept_id=-1,
                                       form_component_values=[
                                           wf.StartProcessInstanceRequestFormComponentValues(name="关联单号", value="HT-9"),
                                           wf.StartProcessInstanceRequestFormComponentValues(name="金额", value="10.00")]),
        wf.StartProcessInstanceHeaders(x_acs_dingtalk_access_token=token.access_token), rt).body
    got = client.get_process_instance_with_options(
        wf.GetProcessInstanceRequest(process_instance_id=started.instance_id),
        wf.GetProcessInstanceHeaders(x_acs_dingtalk_access_token=token.access_token), rt).body.result
    assert got.status == "RUNNING" and got.originator_user_id == user and got.tasks[0].process_instance_id == started.instance_id
    assert {c.name: c.value for c in got.form_component_values}["金额"] == "10.00"
    listed = client.list_process_instance_ids_with_options(
        wf.ListProcessInstanceIdsRequest(process_code=CONTRACT, start_time=0, max_results=20, next_token=0),
        wf.ListProcessInstanceIdsHeaders(x_acs_dingtalk_access_token=token.access_token), rt).body.result
    assert len(listed.list) == 11 and started.instance_id in listed.list
    assert client.terminate_process_instance_with_options(
        wf.TerminateProcessInstanceRequest(process_instance_id=started.instance_id, is_system=True, remark="x"),
        wf.TerminateProcessInstanceHeaders(x_acs_dingtalk_access_token=token.access_token), rt).body.result is True
    with pytest.raises(Exception) as err:
        client.get_process_instance_with_options(wf.GetProcessInstanceRequest(process_instance_id="nope"),
                                                 wf.GetProcessInstanceHeaders(x_acs_dingtalk_access_token="bad"), rt)
    assert getattr(err.value, "code", None) == "InvalidAuthentication"
