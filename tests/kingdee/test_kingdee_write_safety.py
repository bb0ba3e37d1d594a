"""Kingdee writes that must not duplicate, delete or drop data, and answers that must be read right.

Creates whose answer is lost are sent once and found on the outbox's retry; order updates
keep their line ids; the settlement currency goes into the FSaleOrderFinance sub-head;
cut login answers are retried; every documented Save answer shape is honoured; refused
signed headers name the settings to check.
"""
from __future__ import annotations

import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.kingdee.client import AuthError
from hub.connector import StreamSpec, WriteChange
from hub.mapping import load_mapping

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings" / "kingdee"


def customers(**options) -> StreamSpec:
    return StreamSpec(entity="customer", source="BD_Customer", key="FCUSTID", updated_at="FModifyDate",
                      timezone="Asia/Shanghai", run_started_at=datetime.now(timezone.utc), options=options)


def order_stream(mapping) -> StreamSpec:
    return StreamSpec(entity="order", source=mapping.source, key=mapping.key, updated_at=mapping.updated_at,
                      timezone=str(mapping.timezone), fields=tuple(mapping.source_paths()),
                      run_started_at=datetime.now(timezone.utc))


def named(sim, name: str) -> list[dict]:
    return [c for c in sim.state["forms"]["BD_Customer"] if c["FName"] == name]


def wait_for(check, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the simulator never finished the save"
        time.sleep(0.05)


# -- 1. a create whose answer is lost ------------------------------------------------------------

def test_a_create_answered_after_the_timeout_is_sent_once_and_reported_on_retry(make_sim, make_connector) -> None:
    sim = make_sim(extra={"write_latency_ms": 700})       # saves, then answers after the client gave up
    conn = make_connector(sim, timeout=0.3, retries=4)
    numbered = WriteChange("c-num", "r1", None, {"FNumber": "SLOW-1", "FName": "慢响应一号有限公司"})
    unnumbered = WriteChange("c-auto", "r2", None, {"FName": "无编码慢响应有限公司", "FTEL": "+86 571 8888 0001"})
    first = conn.write(customers(), [numbered, unnumbered])
    assert all(not r.ok and r.retriable for r in first), first
    wait_for(lambda: named(sim, "无编码慢响应有限公司") and named(sim, "慢响应一号有限公司"))
    time.sleep(0.8)                                       # any resent save would have landed by now
    assert len(named(sim, "无编码慢响应有限公司")) == 1, "the create was sent again after the timeout"
    sim.options.extra["write_latency_ms"] = 0
    second = conn.write(customers(), [numbered, unnumbered])      # the outbox's retry
    assert all(r.ok for r in second), second
    (auto,) = named(sim, "无编码慢响应有限公司")
    (slow,) = named(sim, "慢响应一号有限公司")
    assert [r.source_id for r in second] == [str(slow["FCUSTID"]), str(auto["FCUSTID"])]


def test_a_retry_in_another_process_finds_the_create_by_its_change_id_field(make_sim, make_connector) -> None:
    sim = make_sim(extra={"write_latency_ms": 700})
    stream = customers(change_id_field="F_TRIAD_ChangeId")
    change = WriteChange("chg-7f3a", "r", None, {"FName": "变更号查找有限公司"})
    (first,) = make_connector(sim, timeout=0.3, retries=2).write(stream, [change])
    assert not first.ok and first.retriable
    wait_for(lambda: named(sim, "变更号查找有限公司"))
    sim.options.extra["write_latency_ms"] = 0
    (second,) = make_connector(sim).write(stream, [change])      # a new process: nothing remembered
    (saved,) = named(sim, "变更号查找有限公司")
    assert second.ok and second.source_id == str(saved["FCUSTID"])
    assert saved["F_TRIAD_ChangeId"] == "chg-7f3a"


def test_a_cut_answer_to_a_create_is_not_sent_again(sim, make_connector) -> None:
    conn = make_connector(sim, retries=4)
    assert conn.check().ok                                # logged in; now every answer is cut
    sim.options.truncate_rate = 1.0
    (result,) = conn.write(customers(), [WriteChange("cut", "r", None, {"FName": "截断应答有限公司"})])
    assert not result.ok and result.retriable
    assert len(named(sim, "截断应答有限公司")) == 1


# -- 2. order lines keep their ids -------------------------------------------------------------------

def _order_roundtrip(sim, conn):
    mapping = load_mapping(MAPPINGS / "order.yaml", "order")
    stream = order_stream(mapping)
    raw = [r for b in conn.read(stream, None) for r in b.records]
    bill = next(r for r in raw if len(r["FSaleOrderEntry"]) >= 3)
    return mapping, stream, mapping.to_canonical(bill)


def _lines(sim, fid: int) -> list[dict]:
    return next(o for o in sim.state["forms"]["SAL_SaleOrder"] if o["FID"] == fid)["FSaleOrderEntry"]


def test_changing_one_line_quantity_keeps_every_line_id(sim, make_connector) -> None:
    conn = make_connector(sim)
    mapping, stream, order = _order_roundtrip(sim, conn)
    fid = int(order.source_id)
    before = [dict(line) for line in _lines(sim, fid)]
    values = dict(order.values)
    values["lines"] = [dict(line) for line in values["lines"]]
    values["lines"][1]["quantity"] = values["lines"][1]["quantity"] + 5
    (result,) = conn.write(stream, [WriteChange("q", "r", order.source_id, mapping.to_source(values))])
    assert result.ok, result.error
    after = _lines(sim, fid)
    assert [l["FEntryID"] for l in after] == [l["FEntryID"] for l in before]
    assert after[1]["FQty"] == before[1]["FQty"] + 5 and after[0]["FQty"] == before[0]["FQty"]


def test_only_a_removed_line_is_deleted_and_a_new_line_is_added(sim, make_connector) -> None:
    conn = make_connector(sim)
    mapping, stream, order = _order_roundtrip(sim, conn)
    fid = int(order.source_id)
    before = [l["FEntryID"] for l in _lines(sim, fid)]
    values = dict(order.values)
    kept = [dict(line) for i, line in enumerate(values["lines"]) if i != 1]
    added = dict(kept[0], line_no=len(before) + 1, sku="01.02.0002", quantity=Decimal(3))
    values["lines"] = kept + [added]
    (result,) = conn.write(stream, [WriteChange("rm", "r", order.source_id, mapping.to_source(values))])
    assert result.ok, result.error
    after = [l["FEntryID"] for l in _lines(sim, fid)]
    assert after[:-1] == [before[0]] + before[2:], "only the removed line went; the others kept their ids"
    assert after[-1] not in before


# -- 3. settlement currency in the FSaleOrderFinance sub-head ------------------------------------------

def _currency_of(sim, number: str) -> str:
    rows = sim.post("DynamicFormService.ExecuteBillQuery", {"data": {
        "FormId": "SAL_SaleOrder", "FieldKeys": "FBillNo,FSettleCurrId.FNumber",
        "FilterString": f"FBillNo = '{number}'"}}, sim.login()).json()
    return rows[0][1]


def test_order_settlement_currency_is_saved_in_the_finance_sub_head(sim, make_connector) -> None:
    conn = make_connector(sim)
    mapping = load_mapping(MAPPINGS / "order.yaml", "order")
    stream = order_stream(mapping)
    cust = sim.state["forms"]["BD_Customer"][0]
    values = {"order_no": "SO-CUR-1", "customer_id": str(cust["FCUSTID"]), "order_date": date(2026, 11, 20),
              "currency": "USD",
              "lines": [{"line_no": 1, "sku": "01.02.0001", "quantity": Decimal(2), "unit_price": Decimal(10)}]}
    (created,) = conn.write(stream, [WriteChange("cur", "r", None, mapping.to_source(values))])
    assert created.ok, created.error
    assert _currency_of(sim, "SO-CUR-1") == "PRE007"
    (updated,) = conn.write(stream, [WriteChange("cur2", "r", created.source_id,
                                                 mapping.to_source({"currency": "EUR"}))])
    assert updated.ok, updated.error
    assert _currency_of(sim, "SO-CUR-1") == "PRE003"


def test_simulator_takes_the_settlement_currency_from_the_sub_head_only(sim) -> None:
    session = sim.login()
    base = {"FBillNo": "SO-SUB-1", "FDate": "2026-11-20", "FCustId": {"FNumber": "CUST00001"},
            "FSaleOrgId": {"FNumber": "100"},
            "FSaleOrderEntry": [{"FMaterialId": {"FNumber": "01.02.0001"}, "FQty": 1, "FTaxPrice": 5}]}
    flat = sim.post("DynamicFormService.Save", {"formid": "SAL_SaleOrder", "data": {
        "Model": dict(base, FSettleCurrId={"FNumber": "PRE007"})}}, session).json()
    assert flat["Result"]["ResponseStatus"]["IsSuccess"]
    assert _currency_of(sim, "SO-SUB-1") is None, "a header-level FSettleCurrId is not where Save takes it"
    nested = sim.post("DynamicFormService.Save", {"formid": "SAL_SaleOrder", "data": {
        "Model": {"FID": flat["Result"]["Id"], "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": "PRE007"}}},
        "NeedUpDateFields": ["FSaleOrderFinance", "FSettleCurrId"]}}, session).json()
    assert nested["Result"]["ResponseStatus"]["IsSuccess"]
    assert _currency_of(sim, "SO-SUB-1") == "PRE007"
    view = sim.post("DynamicFormService.View", {"formid": "SAL_SaleOrder", "data": {"Number": "SO-SUB-1"}},
                    session).json()["Result"]["Result"]
    assert view["SaleOrderFinance"]["SettleCurrId"]["Number"] == "PRE007"


# -- 4. a cut login answer is retried ---------------------------------------------------------------------

def test_a_cut_login_answer_is_retried_like_a_cut_query(make_sim, make_connector) -> None:
    cut = 0
    for seed in range(1, 7):          # half the answers cut, logins included: some seeds cut the first login
        sim = make_sim(seed=seed, truncate_rate=0.5, records=10)
        conn = make_connector(sim, retries=10)
        records = [r for b in conn.read(customers(), None) for r in b.records]
        assert len(records) == 10 and conn.client.logins == 1
        cut += sim.app.stats["truncated"]
    assert cut > 0


# -- 5. Save answers in their documented shapes -----------------------------------------------------------

def test_the_duplicate_number_answer_without_result_wrapper_keeps_the_message(make_sim, make_connector) -> None:
    sim = make_sim(extra={"terse_answers": True})
    existing = sim.state["forms"]["BD_Customer"][0]
    conn = make_connector(sim)
    # an update giving another customer's number: the unique-number answer, bare ResponseStatus
    (result,) = conn.write(customers(), [WriteChange("dup", "r", str(sim.state["forms"]["BD_Customer"][1]["FCUSTID"]),
                                                     {"FNumber": existing["FNumber"]})])
    assert not result.ok and not result.retriable
    assert "违反字段唯一性要求" in result.error and existing["FNumber"] in result.error


def test_save_ok_without_success_entities_is_reported_saved(make_sim, make_connector) -> None:
    sim = make_sim(extra={"terse_answers": True})
    conn = make_connector(sim)
    (one,) = conn.write(customers(), [WriteChange("ok1", "r", None, {"FNumber": "TERSE-1", "FName": "简短应答甲"})])
    (saved,) = named(sim, "简短应答甲")
    assert one.ok and one.source_id == str(saved["FCUSTID"])
    two = conn.write(customers(), [WriteChange("ok2", "r", None, {"FNumber": "TERSE-2", "FName": "简短应答乙"}),
                                   WriteChange("ok3", "r", None, {"FNumber": "TERSE-3", "FName": "简短应答丙"})])
    ids = [str(named(sim, n)[0]["FCUSTID"]) for n in ("简短应答乙", "简短应答丙")]
    assert all(r.ok for r in two) and [r.source_id for r in two] == ids, "a batch answer without ids: by number"


# -- 6. refused signed headers --------------------------------------------------------------------------

def test_a_wrong_app_secret_with_signed_headers_names_the_settings(sim, make_connector) -> None:
    conn = make_connector(sim, auth="signature", password=None, app_id="triad-client", app_secret="wrong")
    with pytest.raises(AuthError) as caught:
        list(conn.read(customers(), None))
    text = str(caught.value)
    assert all(word in text for word in ("username", "app_id", "app_secret", "lcid")), text
    assert "session lost again" not in text
