"""The Kingdee simulator speaks K3Cloud's wire format (PROTOCOLS section 3, shared fixtures)."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import phonenumbers
import pytest
import requests
from stdnum.cn import uscc

from connectors.kingdee import signing
from connectors.kingdee.sim_forms import generate

FIXTURES = Path("/work/shared/fixtures/kingdee_k3cloud")
QUERY = "DynamicFormService.ExecuteBillQuery"
KD_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$")


def fixture(name: str) -> object:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def key_order(obj: object) -> object:
    """The nested key order of a JSON value (dict order is what the server sent)."""
    if isinstance(obj, dict):
        return [(k, key_order(v)) for k, v in obj.items()]
    if isinstance(obj, list):
        return [key_order(v) for v in obj]
    return None


# -- sessions and the fixture bodies ------------------------------------------------------

def test_session_lost_body_matches_the_fixture(sim) -> None:
    resp = sim.post("DynamicFormService.Save", {"formid": "BD_Customer", "data": {"Model": {"FName": "x"}}})
    assert resp.status_code == 200
    expected = fixture("session_lost_response_MsgCode1.json")
    assert resp.json() == expected
    assert key_order(resp.json()) == key_order(expected)


def test_session_lost_on_execute_bill_query_is_wrapped_like_the_fixture(sim) -> None:
    resp = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}})
    expected = fixture("executebillquery_session_lost_response.json")
    assert resp.status_code == 200
    assert resp.json() == expected
    assert key_order(resp.json()) == key_order(expected)


@pytest.mark.parametrize("body", [
    {"acctid": "triad-acct", "username": "demo@triad.local", "password": "triad-pass", "lcid": 2052},
    {"parameters": ["triad-acct", "demo@triad.local", "triad-pass", 2052]},
])
def test_validate_user_sets_both_session_cookies(sim, body) -> None:
    resp = sim.post("AuthService.ValidateUser", body)
    result = resp.json()
    assert result["LoginResultType"] == 1 and result["IsSuccessByAPI"] is True
    sid = resp.cookies.get("kdservice-sessionid")
    assert sid and resp.cookies.get("ASP.NET_SessionId") == sid
    assert result["KDSVCSessionId"] == sid == result["Context"]["SessionId"]
    # the session works by cookie (kept by the session object) and by the kdservice-sessionid header
    by_header = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 2}},
                         requests.Session(), headers={"kdservice-sessionid": sid})
    assert by_header.json() == [["CUST00001"], ["CUST00002"]]


def test_refused_logins(sim) -> None:
    bad_pw = sim.post("AuthService.ValidateUser", {"parameters": ["triad-acct", "demo@triad.local", "nope", 2052]})
    assert bad_pw.json()["LoginResultType"] != 1 and "kdservice-sessionid" not in bad_pw.cookies
    bad_acct = sim.post("AuthService.ValidateUser", {"acctid": "other", "username": "demo@triad.local",
                                                     "password": "triad-pass", "lcid": 2052})
    assert bad_acct.json()["LoginResultType"] != 1


def test_app_secret_and_signed_logins(sim) -> None:
    ok = sim.post("AuthService.LoginByAppSecret", {"acctid": "triad-acct", "username": "demo@triad.local",
                                                   "appid": "triad-client", "appsecret": "triad-secret", "lcid": 2052})
    assert ok.json()["LoginResultType"] == 1
    ts = int(time.time())
    sign = signing.login_sign("triad-acct", "demo@triad.local", "triad-client", "triad-secret", ts)
    signed = sim.post("AuthService.LoginBySign",
                      {"parameters": ["triad-acct", "demo@triad.local", "triad-client", ts, sign, 2052]})
    assert signed.json()["LoginResultType"] == 1
    forged = sim.post("AuthService.LoginBySign",
                      {"parameters": ["triad-acct", "demo@triad.local", "triad-client", ts, "0" * 64, 2052]})
    assert forged.json()["LoginResultType"] != 1


def test_sdk_signed_headers_open_a_session_silently(sim) -> None:
    path = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
    headers = signing.signed_headers(path, acct_id="triad-acct", user="demo@triad.local", app_id="triad-client",
                                     app_secret="triad-secret")
    resp = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1}},
                    headers=headers)
    assert resp.json() == [["CUST00001"]]
    assert resp.cookies.get("kdservice-sessionid")
    wrong = signing.signed_headers(path, acct_id="triad-acct", user="demo@triad.local", app_id="triad-client",
                                   app_secret="guess")
    # a live session is not re-checked (PROTOCOLS 3.2): only a client without one is refused
    assert sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1}},
                    headers=wrong).json() == [["CUST00001"]]
    assert sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}}, requests.Session(),
                    headers=wrong).json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1
    other_acct = signing.signed_headers(path, acct_id="nope", user="demo@triad.local", app_id="triad-client",
                                        app_secret="triad-secret")
    resp = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}}, requests.Session(),
                    headers=other_acct)
    assert resp.status_code != 200 and "Fail to verify thirty passport" in resp.text


def test_dropped_and_idle_sessions_are_lost(make_sim) -> None:
    sim = make_sim(token_ttl=0.2)
    session = sim.login()
    query = {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1}}
    assert sim.post(QUERY, query, session).json() == [["CUST00001"]]
    time.sleep(0.35)
    assert sim.post(QUERY, query, session).json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1
    session = sim.login()
    sim.app.sim.drop_sessions()
    assert sim.post(QUERY, query, session).json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 1


# -- ExecuteBillQuery -------------------------------------------------------------------------

def test_both_body_styles_give_the_same_rows(sim) -> None:
    session = sim.login()
    data = {"FormId": "BD_Customer", "FieldKeys": "FCUSTID,FNumber,FName,FTRADINGCURRID.FNumber,FModifyDate",
            "FilterString": "FModifyDate >= '2026-06-01 00:00:00'", "OrderString": "FModifyDate ASC", "Limit": 50}
    named = sim.post(QUERY, {"data": data}, session).json()
    named_string = sim.post(QUERY, {"data": json.dumps(data)}, session).json()
    positional = sim.post(QUERY, {"parameters": [json.dumps(data)]}, session).json()
    assert named and named == named_string == positional
    assert all(len(row) == 5 and isinstance(row[0], int) and row[1].startswith("CUST") for row in named)
    stamps = [row[4] for row in named]
    assert stamps == sorted(stamps) and all(s >= "2026-06-01" and KD_TIME.match(s) for s in stamps)


@pytest.mark.parametrize("filter_string, check", [
    ("FForbidStatus = 'B'", lambda c: c["FForbidStatus"] == "B"),
    ("FForbidStatus <> 'B' and FDocumentStatus = 'C'", lambda c: c["FForbidStatus"] != "B" and c["FDocumentStatus"] == "C"),
    ("FName like '%科技%' or FCreditAmount > 200000", lambda c: "科技" in c["FName"] or c["FCreditAmount"] > 200000),
    ("(FCreditAmount >= 100000 AND FCreditAmount <= 500000)", lambda c: 100000 <= c["FCreditAmount"] <= 500000),
    ("FCreditAmount < 100000", lambda c: c["FCreditAmount"] < 100000),
    ("FNumber in ('CUST00003', 'CUST00007')", lambda c: c["FNumber"] in ("CUST00003", "CUST00007")),
    ("FTRADINGCURRID.FNumber = 'PRE001' and fmodifydate < '2026-05-01'",
     lambda c: c["FTRADINGCURRID"]["FNumber"] == "PRE001" and c["FModifyDate"] < "2026-05-01"),
])
def test_filter_operators(sim, filter_string, check) -> None:
    rows = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": filter_string}},
                    sim.login()).json()
    expected = sorted(c["FNumber"] for c in sim.state["forms"]["BD_Customer"] if check(c))
    assert expected, "the filter must select something to prove anything"
    assert sorted(r[0] for r in rows) == expected


def test_paging_by_start_row_and_limit(make_sim) -> None:
    sim = make_sim(records=45)
    session = sim.login()
    seen, start = [], 0
    while True:
        rows = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "OrderString": "FNumber ASC",
                                         "StartRow": start, "Limit": 10}}, session).json()
        seen += [r[0] for r in rows]
        if len(rows) < 10:
            break
        start += 10
    assert seen == sorted(c["FNumber"] for c in sim.state["forms"]["BD_Customer"])
    top = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "TopRowCount": 7,
                                    "StartRow": 5, "Limit": 10}}, session).json()
    assert len(top) == 2


def test_limit_is_capped_at_2000(make_sim) -> None:
    sim = make_sim(records=700)     # ~1750 order lines plus receipts: more than 2000 rows across forms
    rows = sim.post(QUERY, {"data": {"FormId": "SAL_SaleOrder", "FieldKeys": "FID,FQty", "Limit": 5000}},
                    sim.login()).json()
    lines = sum(len(o["FSaleOrderEntry"]) for o in sim.state["forms"]["SAL_SaleOrder"])
    assert len(rows) == min(2000, lines) and lines > 1500


def test_entry_fields_give_one_row_per_line(sim) -> None:
    rows = sim.post(QUERY, {"data": {"FormId": "SAL_SaleOrder", "OrderString": "FID ASC",
                                     "FieldKeys": "FID,FBillNo,FCustId.FNumber,FSaleOrderEntry_FEntryID,"
                                                  "FMaterialId.FNumber,FQty,FAllAmount"}}, sim.login()).json()
    orders = sim.state["forms"]["SAL_SaleOrder"]
    assert len(rows) == sum(len(o["FSaleOrderEntry"]) for o in orders)
    first = orders[0]
    mine = [r for r in rows if r[0] == first["FID"]]
    assert [r[3] for r in mine] == [l["FEntryID"] for l in first["FSaleOrderEntry"]]
    assert all(r[1] == first["FBillNo"] and r[2] == first["FCustId"]["FNumber"] for r in mine)


@pytest.mark.parametrize("data, code, text", [
    ({"FormId": "NO_SUCH_FORM", "FieldKeys": "FNumber"}, 4, "业务对象不存在"),
    ({"FormId": "BD_Customer", "FieldKeys": "FNumber,FNoSuchField"}, 9, "FNoSuchField 的字段不存在"),
    ({"FormId": "BD_Customer", "FieldKeys": ""}, 8, "FieldKeys 的值不能为空"),
    ({"FormId": "BD_Customer", "FieldKeys": "FNumber", "FilterString": "FNumber = = 'x'"}, 4, "GetRealExpress"),
])
def test_query_errors_are_wrapped_in_http_200(sim, data, code, text) -> None:
    resp = sim.post(QUERY, {"data": data}, sim.login())
    assert resp.status_code == 200
    status = resp.json()[0][0]["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False and status["MsgCode"] == code and text in status["Errors"][0]["Message"]


# -- Save / BatchSave / View -----------------------------------------------------------------

def test_save_both_styles_and_per_record_batch_errors(sim) -> None:
    session = sim.login()
    model = {"FCreateOrgId": {"FNumber": "100"}, "FNumber": "T-0001", "FName": "上海测试贸易有限公司",
             "FTRADINGCURRID": {"FNumber": "PRE001"}}
    saved = sim.post("DynamicFormService.Save", {"formid": "BD_Customer", "data": {"Model": model}}, session).json()
    status = saved["Result"]["ResponseStatus"]
    assert status["IsSuccess"] and status["SuccessEntitys"][0]["Number"] == "T-0001"
    positional = sim.post("DynamicFormService.Save", {"parameters": ["BD_Customer", json.dumps(
        {"Model": dict(model, FNumber="T-0002")})]}, session).json()
    assert positional["Result"]["ResponseStatus"]["IsSuccess"]
    batch = sim.post("DynamicFormService.BatchSave", {"formid": "BD_Customer", "data": json.dumps({"Model": [
        dict(model, FNumber="T-0003"), dict(model, FNumber="T-0001"), {"FNumber": "T-0004", "FCreateOrgId": {"FNumber": "100"}},
        dict(model, FNumber="T-0005", FTRADINGCURRID={"FNumber": "XXX"})]})}, session).json()
    status = batch["Result"]["ResponseStatus"]
    assert status["IsSuccess"] is False and status["MsgCode"] == 11 and status["ErrorCode"] == 500
    assert [s["DIndex"] for s in status["SuccessEntitys"]] == [0]
    by_index = {e["DIndex"]: e for e in status["Errors"]}
    assert set(by_index) == {1, 2, 3}
    assert "唯一性" in by_index[1]["Message"] and by_index[1]["FieldName"] == "FNumber"
    assert by_index[2]["FieldName"] == "FName" and by_index[3]["FieldName"] == "FTRADINGCURRID"
    numbers = [c["FNumber"] for c in sim.state["forms"]["BD_Customer"]]
    assert numbers.count("T-0001") == 1 and "T-0003" in numbers and "T-0004" not in numbers


def test_update_touches_only_need_update_fields(sim) -> None:
    session = sim.login()
    before = dict(sim.state["forms"]["BD_Customer"][0])
    body = {"formid": "BD_Customer", "data": {"NeedUpDateFields": ["FName"], "Model": {
        "FCUSTID": before["FCUSTID"], "FName": "新名称有限公司", "FTEL": "+86 21 00000000"}}}
    result = sim.post("DynamicFormService.Save", body, session).json()["Result"]
    assert result["ResponseStatus"]["IsSuccess"] and result["Id"] == before["FCUSTID"]
    after = sim.state["forms"]["BD_Customer"][0]
    assert after["FName"] == "新名称有限公司" and after["FTEL"] == before["FTEL"]
    assert after["FModifyDate"] > before["FModifyDate"] and KD_TIME.match(after["FModifyDate"])


def test_order_save_computes_amounts_and_view_returns_lines(sim) -> None:
    session = sim.login()
    model = {"FBillNo": "SO-T-1", "FDate": "2026-11-02", "FCustId": {"FNumber": "CUST00002"},
             "FSaleOrgId": {"FNumber": "100"}, "FSaleOrderEntry": [
                 {"FMaterialId": {"FNumber": "01.02.0001"}, "FQty": 2, "FTaxPrice": 113},
                 {"FMaterialId": {"FNumber": "01.02.0002"}, "FQty": "3", "FTaxPrice": "10.5"}]}
    saved = sim.post("DynamicFormService.Save", {"formid": "SAL_SaleOrder",
                                                 "data": {"Model": model, "IsAutoSubmitAndAudit": True}}, session).json()
    assert saved["Result"]["ResponseStatus"]["IsSuccess"], saved
    view = sim.post("DynamicFormService.View", {"formid": "SAL_SaleOrder", "data": {"Number": "SO-T-1"}}, session).json()
    bill = view["Result"]["Result"]
    assert bill["BillNo"] == "SO-T-1" and bill["DocumentStatus"] == "C" and bill["BillAllAmount"] == 257.5
    assert [l["Qty"] for l in bill["SaleOrderEntry"]] == [2.0, 3.0]
    assert bill["SaleOrderEntry"][0]["Price"] == 100.0 and bill["CustId"]["Number"] == "CUST00002"


def test_audit_twice_reports_already_audited(sim) -> None:
    session = sim.login()
    number = next(o["FBillNo"] for o in sim.state["forms"]["SAL_SaleOrder"] if o["FDocumentStatus"] == "A")
    first = sim.post("DynamicFormService.Audit", {"formid": "SAL_SaleOrder", "data": {"Numbers": [number]}}, session)
    assert first.json()["Result"]["ResponseStatus"]["IsSuccess"]
    again = sim.post("DynamicFormService.Audit", {"formid": "SAL_SaleOrder", "data": {"Numbers": [number]}}, session)
    status = again.json()["Result"]["ResponseStatus"]
    assert status["MsgCode"] == 11 and "已经审核" in status["Errors"][0]["Message"]


# -- throttling, faults, data ----------------------------------------------------------------

def test_throttling_is_msgcode_14_in_http_200(make_sim) -> None:
    sim = make_sim(rate_limit_rate=1.0)
    resp = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}}, sim.login())
    assert resp.status_code == 200 and resp.json()[0][0]["Result"]["ResponseStatus"]["MsgCode"] == 14
    budget = make_sim(request_budget=2)
    session = budget.login()
    codes = [budget.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1}}, session).json()
             for _ in range(3)]
    assert codes[0] == codes[1] == [["CUST00001"]]
    assert codes[2][0][0]["Result"]["ResponseStatus"]["MsgCode"] == 14


def test_fault_injection_spares_login(make_sim) -> None:
    sim = make_sim(fail_rate=1.0)
    assert sim.login()
    resp = sim.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FNumber"}})
    assert resp.status_code == 503


def test_data_is_deterministic_and_realistic() -> None:
    one, two = generate(7, 60), generate(7, 60)
    assert one == two and one != generate(8, 60)
    customers = one["forms"]["BD_Customer"]
    assert all(uscc.is_valid(c["FTAXREGISTERCODE"]) for c in customers)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(c["FTEL"])) for c in customers)
    assert all(c["FTEL"].startswith("+86 ") for c in customers)
    assert all(re.search(r"[\u4e00-\u9fff]", c["FName"]) and c["FName"].endswith("公司") for c in customers)
    stamps = [c["FModifyDate"] for c in customers] + [o["FModifyDate"] for o in one["forms"]["SAL_SaleOrder"]]
    assert all(KD_TIME.match(s) for s in stamps)


def test_state_file_keeps_writes_across_restarts(make_sim, tmp_path) -> None:
    state = str(tmp_path / "kd.json")
    first = make_sim(state=state)
    saved = first.post("DynamicFormService.Save", {"formid": "BD_Customer", "data": {"Model": {
        "FCreateOrgId": {"FNumber": "100"}, "FNumber": "KEEP-1", "FName": "持久化测试有限公司"}}}, first.login()).json()
    assert saved["Result"]["ResponseStatus"]["IsSuccess"]
    first.stop()
    second = make_sim(state=state, seed=99)
    rows = second.post(QUERY, {"data": {"FormId": "BD_Customer", "FieldKeys": "FName",
                                        "FilterString": "FNumber = 'KEEP-1'"}}, second.login()).json()
    assert rows == [["持久化测试有限公司"]]
