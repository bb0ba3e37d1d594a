"""Kingdee's own Python SDK (kingdee.cdp.webapi.sdk) drives the simulator unchanged.

The SDK signs every request with the 8.x headers (no login call), keeps the
session cookie the server sets, and returns raw response text.
"""
from __future__ import annotations

import base64
import json

import pytest

from connectors.kingdee import signing

sdk_main = pytest.importorskip("k3cloud_webapi_sdk.main")


def make_sdk(sim, *, acct: str = "triad-acct", app_id: str = "triad-client", app_secret: str = "triad-secret"):
    sdk = sdk_main.K3CloudApiSdk(sim.url + "/", timeout=10)
    sdk.InitConfig(acct, "demo@triad.local", app_id, app_secret, sim.url + "/", 2052)
    return sdk


def test_sdk_query_save_view(sim) -> None:
    sdk = make_sdk(sim)
    rows = json.loads(sdk.ExecuteBillQuery({
        "FormId": "BD_Customer", "FieldKeys": "FNumber,FName,FTAXREGISTERCODE",
        "FilterString": "FNumber like 'CUST0000%'", "OrderString": "FNumber ASC", "StartRow": 0, "Limit": 5}))
    assert [r[0] for r in rows] == [f"CUST{i:05d}" for i in range(1, 6)]
    saved = json.loads(sdk.Save("BD_Customer", {"Model": {
        "FCreateOrgId": {"FNumber": 100}, "FNumber": "SDK-0001", "FName": "SDK 测试客户有限公司"}}))
    assert saved["Result"]["ResponseStatus"]["IsSuccess"], saved
    new_id = saved["Result"]["Id"]
    view = json.loads(sdk.View("BD_Customer", {"Id": str(new_id)}))
    assert view["Result"]["Result"]["Number"] == "SDK-0001"
    batch = json.loads(sdk.BatchSave("BD_Customer", {"Model": [
        {"FCreateOrgId": {"FNumber": 100}, "FNumber": "SDK-0002", "FName": "甲有限公司"},
        {"FCreateOrgId": {"FNumber": 100}, "FNumber": "SDK-0001", "FName": "重复编码"}]}))
    status = batch["Result"]["ResponseStatus"]
    assert [s["DIndex"] for s in status["SuccessEntitys"]] == [0] and status["Errors"][0]["DIndex"] == 1
    assert sim.app.sim.stats["signed_logins"] == 1, "the SDK's session cookie is reused after the first call"
    assert sim.app.sim.stats["logins"] == 0


def test_sdk_recovers_a_dropped_session_silently(sim) -> None:
    sdk = make_sdk(sim)
    query = {"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1}
    assert json.loads(sdk.ExecuteBillQuery(query)) == [["CUST00001"]]
    sim.app.sim.drop_sessions()
    assert json.loads(sdk.ExecuteBillQuery(query)) == [["CUST00001"]]
    assert sim.app.sim.stats["signed_logins"] == 2


def test_sdk_with_an_encoded_secret_app_id(make_sim) -> None:
    client_secret = base64.b64encode(bytes(range(24))).decode()          # 32 base64 chars, as issued
    app_id = "239451_" + signing.encode_app_secret(client_secret)
    sim = make_sim(extra={"app_id": app_id, "app_secret": "0a1b2c3d4e5f"})
    sdk = make_sdk(sim, app_id=app_id, app_secret="0a1b2c3d4e5f")
    assert json.loads(sdk.ExecuteBillQuery({"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1})) == [["CUST00001"]]
    from k3cloud_webapi_sdk.util import encode_util
    assert encode_util.DecodeAppSecret(app_id.split("_")[1]) == signing.decode_app_secret(app_id.split("_")[1])


def test_sdk_headers_equal_ours(sim) -> None:
    sdk = make_sdk(sim)
    url = sim.url + "/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc"
    theirs = sdk.BuildHeader(url)
    ours = signing.signed_headers("/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc",
                                  acct_id="triad-acct", user="demo@triad.local", app_id="triad-client",
                                  app_secret="triad-secret", now=int(theirs["x-api-timestamp"]))
    assert {k: theirs[k] for k in ours} == ours


def test_sdk_sees_refusals(sim) -> None:
    wrong_secret = make_sdk(sim, app_secret="nope")
    body = json.loads(wrong_secret.ExecuteBillQuery({"FormId": "BD_Customer", "FieldKeys": "FNumber"}))
    assert body[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1
    wrong_acct = make_sdk(sim, acct="other-acct")
    with pytest.raises(RuntimeError, match="Fail to verify thirty passport"):
        wrong_acct.ExecuteBillQuery({"FormId": "BD_Customer", "FieldKeys": "FNumber"})
