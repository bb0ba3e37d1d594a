"""The Yonyou simulator speaks YonBIP's OpenAPI wire format (PROTOCOLS section 4)."""
from __future__ import annotations

import re
import time
from urllib.parse import quote

import phonenumbers
import pytest
import requests
from stdnum.cn import uscc

from connectors.yonyou import signing
from connectors.yonyou.sim_data import generate

MERCHANTS = "/yonbip/digitalModel/merchant/newlist"
INSERT = "/yonbip/digitalModel/merchant/idempotent/newinsert"
BATCH = "/yonbip/digitalModel/batch/merchant/save"
ORDERS = "/yonbip/sd/voucherorder/list"
SAVE = "/yonbip/sd/voucherorder/singleSave"
PUBTS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


# -- gateway and token ----------------------------------------------------------------------

def test_signature_follows_the_documented_string() -> None:
    params = {"appKey": "41832a3d2df94989b500da6a22268747", "timestamp": "1568098531823", "signature": "x"}
    assert signing.sign_string(params) == "appKey41832a3d2df94989b500da6a22268747timestamp1568098531823"
    sig = signing.token_signature(params, "secret")
    assert len(sig) == 44 and sig.endswith("=")      # base64 of a SHA-256 HMAC


def test_discovery_and_token(sim) -> None:
    found = sim.http.get(f"{sim.url}/open-auth/dataCenter/getGatewayAddress", params={"tenantId": "t1"}).json()
    assert found["code"] == "00000"
    assert found["data"] == {"gatewayUrl": sim.url + "/iuap-api-gateway", "tokenUrl": sim.url + "/iuap-api-auth"}
    token = sim.token()
    assert token["code"] == "00000" and token["message"] == "成功！"
    assert set(token["data"]) == {"access_token", "expire"} and token["data"]["expire"] == 7200


def test_token_signature_is_url_encoded_once(sim) -> None:
    ts = str(int(time.time() * 1000))
    sig = signing.token_signature({"appKey": "triad-client", "timestamp": ts}, "triad-secret")
    url = (f"{sim.url}/open-auth/selfAppAuth/getAccessToken?appKey=triad-client&timestamp={ts}"
           f"&signature={quote(sig, safe='')}")       # the older path is still served
    assert requests.get(url, timeout=10).json()["code"] == "00000"
    twice = url.replace(quote(sig, safe=""), quote(quote(sig, safe=""), safe=""))
    assert requests.get(twice, timeout=10).json()["code"] != "00000"


def test_token_refusals(sim) -> None:
    assert sim.token(app_key="nobody")["code"] == "10018"
    assert sim.token(secret="wrong")["code"] not in ("00000", "10018")


@pytest.mark.parametrize("token, code", [("", "310001"), ("0123456789abcdef", "310036")])
def test_bad_tokens_answer_http_200(sim, token, code) -> None:
    resp = sim.api("POST", MERCHANTS, {"pageIndex": 1}, token=token)
    assert resp.status_code == 200 and resp.json()["code"] == code


def test_expired_token(make_sim) -> None:
    sim = make_sim(token_ttl=0.2)
    token = sim.token()["data"]
    assert token["expire"] == 1
    assert sim.api("POST", MERCHANTS, {}, token=token["access_token"]).json()["code"] == "200"
    time.sleep(0.3)
    assert sim.api("POST", MERCHANTS, {}, token=token["access_token"]).json()["code"] == "310036"


def test_unknown_api_is_http_404(sim) -> None:
    resp = sim.api("POST", "/yonbip/skillify/not/exist", {})
    assert resp.status_code == 404
    assert resp.json() == {"code": "310404", "message": "网关上没有注册此API[/yonbip/skillify/not/exist]，请确认后重新调用"}


# -- customers ---------------------------------------------------------------------------------

def test_merchant_list_pages_without_total(make_sim) -> None:
    sim = make_sim(records=23)
    token = sim.token()["data"]["access_token"]
    seen, page = [], 1
    while True:
        body = sim.api("POST", MERCHANTS, {"pageIndex": page, "pageSize": 10}, token=token).json()
        assert body["code"] == "200" and isinstance(body["data"], list)
        seen += [m["id"] for m in body["data"]]
        if len(body["data"]) < 10:
            break
        page += 1
    assert page == 3 and sorted(seen) == sorted(m["id"] for m in sim.state["merchants"])
    too_big = sim.api("POST", MERCHANTS, {"pageIndex": 1, "pageSize": 5001}, token=token).json()
    assert too_big["code"] == "999"


def test_merchant_list_pubts_is_at_or_after(sim) -> None:
    since = sorted(m["pubts"] for m in sim.state["merchants"])[20]
    data = sim.api("POST", MERCHANTS, {"pageIndex": 1, "pageSize": 500, "pubts": since}).json()["data"]
    assert len(data) == 20 and all(m["pubts"] >= since for m in data)
    assert all(PUBTS.match(m["pubts"]) and m["name"]["simplifiedName"] for m in data)


def test_newinsert_is_idempotent_on_resubmit_check_key(sim) -> None:
    item = {"resubmitCheckKey": "k-0001", "code": "IDEM1", "name": {"simplifiedName": "幂等测试有限公司"},
            "createOrgCode": "global00"}
    first = sim.api("POST", INSERT, {"data": item}).json()
    second = sim.api("POST", INSERT, {"data": item}).json()
    assert first["code"] == "200" and first["success"] is True and first == second
    assert [m["code"] for m in sim.state["merchants"]].count("IDEM1") == 1
    other = sim.api("POST", INSERT, {"data": dict(item, resubmitCheckKey="k-0002")}).json()
    assert other["code"] == 0 and other["data"] is None and "已存在" in other["message"]
    empty = sim.api("POST", INSERT, {"data": {"resubmitCheckKey": "k-3", "createOrgCode": "global00"}}).json()
    assert empty == {"message": "客户名称不能为空!", "code": 0, "data": None}
    too_long = sim.api("POST", INSERT, {"data": dict(item, resubmitCheckKey="x" * 33)}).json()
    assert too_long["code"] == "999"


def test_batch_save_counts_with_the_vendor_spelling(sim) -> None:
    first = sim.state["merchants"][0]
    body = sim.api("POST", BATCH, {"data": [
        {"_status": "Update", "id": first["id"], "email": "new@example.cn"},
        {"_status": "Update", "id": 1, "email": "x@example.cn"},
        {"_status": "Insert", "name": {"zh_CN": "批量新增有限公司"}, "createOrgCode": "global00"}]}).json()
    assert body["code"] == "200"
    data = body["data"]
    assert (data["count"], data["sucessCount"], data["failCount"]) == (3, 2, 1)
    assert len(data["messages"]) == 1 and "第2条" in data["messages"][0]
    assert sim.state["merchants"][0]["email"] == "new@example.cn"


# -- sales orders -------------------------------------------------------------------------------

def test_order_list_flattens_lines_and_counts_rows(sim) -> None:
    body = sim.api("POST", ORDERS, {"pageIndex": 1, "pageSize": 10, "isSum": False}).json()
    assert body["code"] == "200"
    data = body["data"]
    lines = sum(len(o["orderDetails"]) for o in sim.state["orders"])
    assert data["recordCount"] == lines and data["pageCount"] == -(-lines // 10) and len(data["recordList"]) == 10
    row = data["recordList"][0]
    assert {"id", "code", "agentId", "agentId_name", "lineno", "productId", "qty", "oriTaxUnitPrice",
            "orderPrices!currency", "pubts"} <= set(row)
    headers = sim.api("POST", ORDERS, {"pageIndex": 1, "pageSize": 500, "isSum": True}).json()["data"]
    assert headers["recordCount"] == len(sim.state["orders"])


def test_order_list_simple_vos_and_query_orders(sim) -> None:
    since = sorted(o["pubts"] for o in sim.state["orders"])[30]
    data = sim.api("POST", ORDERS, {"pageIndex": 1, "pageSize": 500, "isSum": True,
                                    "simpleVOs": [{"field": "pubts", "op": "egt", "value1": since}],
                                    "queryOrders": [{"field": "pubts", "order": "asc"}]}).json()["data"]
    stamps = [r["pubts"] for r in data["recordList"]]
    assert len(stamps) == 10 and stamps == sorted(stamps) and stamps[0] >= since


def test_single_save_with_bang_keys_and_idempotency(sim) -> None:
    cust = sim.state["merchants"][4]
    item = {"resubmitCheckKey": "order-1", "_status": "Insert", "code": "SO-BANG-1", "vouchdate": "2026-11-03 00:00:00",
            "agentId!code": cust["code"], "salesOrgId": "global00", "orderPrices!currency": "CNY",
            "orderDetails": [{"_status": "Insert", "productId!code": "P00002", "qty": 3, "oriTaxUnitPrice": 1450}]}
    first = sim.api("POST", SAVE, {"data": item}).json()
    assert first["code"] == "200", first
    order = first["data"]
    assert order["agentId"] == cust["id"] and order["payMoney"] == 4350.0
    assert order["orderDetails"][0]["orderDetailPrices!natMoney"] == 4350.0
    assert sim.api("POST", SAVE, {"data": item}).json() == first
    assert [o["code"] for o in sim.state["orders"]].count("SO-BANG-1") == 1
    detail = sim.api("GET", "/yonbip/sd/voucherorder/detail", id=order["id"]).json()
    assert detail["data"]["code"] == "SO-BANG-1"
    missing = sim.api("POST", SAVE, {"data": dict(item, resubmitCheckKey="order-2", code="SO-BANG-2",
                                                  **{"agentId!code": "NOPE"})}).json()
    assert missing["code"] == "999" and "NOPE" in missing["message"]


# -- throttling and data ------------------------------------------------------------------------

def test_throttling_and_quota_codes(make_sim) -> None:
    sim = make_sim(rate_limit_rate=1.0)
    assert sim.api("POST", MERCHANTS, {}).json()["code"] == "310046"
    budget = make_sim(request_budget=1)
    token = budget.token()["data"]["access_token"]
    assert budget.api("POST", MERCHANTS, {}, token=token).json()["code"] == "200"
    assert budget.api("POST", MERCHANTS, {}, token=token).json()["code"] == "310047"


def test_token_calls_are_never_failed_by_fault_injection(make_sim) -> None:
    sim = make_sim(fail_rate=1.0)
    assert sim.token()["code"] == "00000"
    assert sim.api("POST", MERCHANTS, {}).status_code == 503


def test_data_is_deterministic_and_realistic() -> None:
    one = generate(5, 50)
    assert one == generate(5, 50) and one != generate(6, 50)
    assert all(uscc.is_valid(m["creditCode"]) for m in one["merchants"])
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(m["contactTel"])) for m in one["merchants"])
    assert all(PUBTS.match(o["pubts"]) and PUBTS.match(o["vouchdate"]) for o in one["orders"])


def test_state_file_keeps_writes(make_sim, tmp_path) -> None:
    state = str(tmp_path / "yy.json")
    first = make_sim(state=state)
    item = {"resubmitCheckKey": "keep-1", "code": "KEEP1", "name": {"simplifiedName": "保存测试有限公司"},
            "createOrgCode": "global00"}
    created = first.api("POST", INSERT, {"data": item}).json()
    first.stop()
    second = make_sim(state=state)
    assert second.api("POST", INSERT, {"data": item}).json() == created, "idempotency keys survive a restart"
    codes = [m["code"] for m in second.api("POST", MERCHANTS, {"pageSize": 5000}).json()["data"]]
    assert codes.count("KEEP1") == 1
