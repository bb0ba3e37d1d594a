"""KingdeeConnector against the simulator: auth, incremental reads, error handling, idempotent writes."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from hub.incremental import RunDedup
from hub.connector import StreamSpec, WriteChange
from hub.errors import LimitExceeded
from zoneinfo import ZoneInfo

SH = ZoneInfo("Asia/Shanghai")


def customers(batch_size: int = 10, **kw) -> StreamSpec:
    return StreamSpec(entity="customer", source="BD_Customer", key="FCUSTID", updated_at="FModifyDate",
                      timezone="Asia/Shanghai", batch_size=batch_size,
                      run_started_at=kw.pop("run_started_at", datetime.now(timezone.utc)), **kw)


def orders(batch_size: int = 7) -> StreamSpec:
    return StreamSpec(entity="order", source="SAL_SaleOrder", key="FID", updated_at="FModifyDate",
                      timezone="Asia/Shanghai", batch_size=batch_size, run_started_at=datetime.now(timezone.utc),
                      fields=("FID", "FModifyDate", "FBillNo", "FCustId", "FSettleCurrId.FNumber", "FSaleOrderEntry"))


def read(conn, stream, cursor=None):
    batches = list(conn.read(stream, cursor))
    return batches, [r for b in batches for r in b.records]


# -- check ---------------------------------------------------------------------------------

@pytest.mark.parametrize("auth", ["password", "app_secret", "sign", "signature"])
def test_check_ok_with_every_auth_style(sim, make_connector, auth) -> None:
    extra = {} if auth == "password" else {"password": None, "app_id": "triad-client", "app_secret": "triad-secret"}
    result = make_connector(sim, auth=auth, **extra).check()
    assert result.ok, result.detail
    assert result.info["auth"] == auth


@pytest.mark.parametrize("overrides, text", [
    ({"password": "wrong"}, "用户名或密码错误"),
    ({"auth": "signature", "app_id": "triad-client", "app_secret": "wrong"}, "会话信息已丢失"),
    ({"auth": "signature", "app_id": "triad-client", "app_secret": "triad-secret", "acct_id": "nope"},
     "Fail to verify thirty passport"),
])
def test_check_reports_bad_credentials(sim, make_connector, overrides, text) -> None:
    result = make_connector(sim, **overrides).check()
    assert not result.ok and text in result.detail


def test_base_url_without_path_gets_k3cloud(sim, make_connector) -> None:
    conn = make_connector(sim, base_url=sim.server.base_url)
    assert conn.check().ok and conn.client.http.base_url.endswith("/k3cloud")


def test_check_never_raises_for_an_unreachable_server(sim, make_connector) -> None:
    conn = make_connector(sim, base_url="http://127.0.0.1:9/k3cloud", retries=1, timeout=1)
    result = conn.check()
    assert not result.ok and "K3Cloud check failed" in result.detail


# -- reads -----------------------------------------------------------------------------------

def test_full_read_regroups_order_lines_across_pages(sim, make_connector) -> None:
    conn = make_connector(sim)
    batches, records = read(conn, orders(batch_size=5))
    expected = {o["FID"]: o for o in sim.state["forms"]["SAL_SaleOrder"]}
    assert len(records) == len(expected) and len(batches) > 5
    for rec in records:
        bill = expected[rec["FID"]]
        assert [l["FEntryID"] for l in rec["FSaleOrderEntry"]] == [l["FEntryID"] for l in bill["FSaleOrderEntry"]]
        assert rec["FSaleOrderEntry"][0]["FMaterialId"] == {"FNumber": bill["FSaleOrderEntry"][0]["FMaterialId"]["FNumber"]}
        assert rec["FCustId"] == bill["FCustId"]["Id"] and rec["FSettleCurrId"] == {"FNumber": bill["FSettleCurrId"]["FNumber"]}
    cursors = [b.cursor for b in batches]
    assert cursors == sorted(cursors)


def test_cursor_is_utc_iso_of_the_newest_local_timestamp(sim, make_connector) -> None:
    batches, records = read(make_connector(sim), customers())
    newest = max(c["FModifyDate"] for c in sim.state["forms"]["BD_Customer"])
    expected = datetime.fromisoformat(newest).replace(tzinfo=SH).astimezone(timezone.utc)
    assert datetime.fromisoformat(batches[-1].cursor) == expected
    assert batches[-1].cursor.endswith("+00:00")


def test_cursor_never_passes_the_run_start(sim, make_connector) -> None:
    started = datetime(2026, 5, 1, tzinfo=timezone.utc)
    batches, records = read(make_connector(sim), customers(run_started_at=started))
    assert len(records) == 40, "records changed after the start are still read"
    assert all(datetime.fromisoformat(b.cursor) <= started for b in batches)


def test_incremental_read_with_overlap(sim, make_connector) -> None:
    conn = make_connector(sim, overlap_seconds=120)
    first, _ = read(conn, customers())
    cursor = first[-1].cursor
    target = sim.state["forms"]["BD_Customer"][3]
    result = conn.write(customers(), [WriteChange("chg-1", "r1", str(target["FCUSTID"]), {"FName": "增量测试有限公司"})])
    assert result[0].ok, result[0].error
    _, again = read(conn, replace(customers(), run_started_at=datetime.now(timezone.utc) + timedelta(seconds=1)), cursor)
    by_key = {r["FCUSTID"]: r for r in again}
    assert by_key[target["FCUSTID"]]["FName"] == "增量测试有限公司"
    bound = datetime.fromisoformat(cursor) - timedelta(seconds=120)
    # besides the change, only records inside the overlap window come back
    for rec in again:
        local = datetime.fromisoformat(rec["FModifyDate"]).replace(tzinfo=SH)
        assert local >= bound.replace(microsecond=0)
    assert len(again) < 40


def test_a_record_changed_mid_run_is_read_again_and_the_next_run_catches_up(sim, make_connector) -> None:
    conn = make_connector(sim)
    stream = customers(batch_size=10)
    gen = conn.read(stream, None)
    first = next(gen)
    moved = first.records[0]
    conn.write(stream, [WriteChange("mid", "r", str(moved["FCUSTID"]), {"FName": "中途修改有限公司"})])
    rest = [r for b in gen for r in b.records]
    seen = [r["FCUSTID"] for r in first.records + rest]
    assert seen.count(moved["FCUSTID"]) == 2, "the newer version is read again in the same run"
    assert rest[-1]["FName"] == "中途修改有限公司"
    # paging shifted by one: whatever this run skipped, the next run (cursor <= run start) reads
    final = list(conn.read(replace(stream, run_started_at=datetime.now(timezone.utc)), None))
    assert {r["FCUSTID"] for b in final for r in b.records} == {c["FCUSTID"] for c in sim.state["forms"]["BD_Customer"]}


def test_run_dedup_drops_repeats_but_keeps_newer_versions() -> None:
    dedup = RunDedup(SH)
    assert dedup.fresh(1, "2026-03-01T10:00:00.100")
    assert not dedup.fresh(1, "2026-03-01T10:00:00.100")
    assert not dedup.fresh(1, "2026-03-01T09:00:00")
    assert dedup.fresh(1, "2026-03-01T10:00:01")
    assert dedup.fresh(2, "2026-03-01T10:00:00.100")


def test_session_loss_mid_run_is_transparent(sim, make_connector) -> None:
    conn = make_connector(sim)
    gen = conn.read(customers(batch_size=8), None)
    records = list(next(gen).records)
    sim.app.sim.drop_sessions()
    records += [r for b in gen for r in b.records]
    assert len({r["FCUSTID"] for r in records}) == 40
    assert conn.client.logins == 2 and sim.app.sim.stats["session_lost"] == 1


def test_idle_session_expiry_is_transparent(make_sim, make_connector) -> None:
    sim = make_sim(token_ttl=0.15)
    conn = make_connector(sim)
    records = []
    for batch in conn.read(customers(batch_size=10), None):
        records += batch.records
        time.sleep(0.25)
    assert len(records) == 40 and conn.client.logins >= 3


def test_throttling_backs_off_and_resumes(make_sim, make_connector) -> None:
    sim = make_sim(rate_limit_rate=0.4, seed=3)
    conn = make_connector(sim, retries=8)
    waits: list[float] = []
    conn.client.http.sleep = waits.append
    _, records = read(conn, customers(batch_size=5))
    assert len(records) == 40
    assert sim.app.sim.stats["throttled"] > 0 and len(waits) == sim.app.sim.stats["throttled"]
    assert all(w > 0 for w in waits)


def test_a_spent_call_budget_stops_the_stream(make_sim, make_connector) -> None:
    sim = make_sim(request_budget=2)
    conn = make_connector(sim)
    conn.client.http.sleep = lambda s: None
    with pytest.raises(LimitExceeded):
        read(conn, customers(batch_size=5))


def test_positional_body_style(sim, make_connector) -> None:
    conn = make_connector(sim, body_style="parameters")
    _, records = read(conn, orders())
    assert len(records) == 40
    result = conn.write(customers(), [WriteChange("p1", "r", None, {"FNumber": "POS-1", "FName": "位置参数有限公司"})])
    assert result[0].ok, result[0].error


# -- writes ----------------------------------------------------------------------------------

def test_per_record_save_errors_are_reported(sim, make_connector) -> None:
    conn = make_connector(sim)
    results = conn.write(customers(), [
        WriteChange("a", "ra", None, {"FNumber": "W-1", "FName": "甲有限公司"}),
        WriteChange("b", "rb", None, {"FNumber": "W-2"}),                                 # no name
        WriteChange("c", "rc", None, {"FNumber": "W-3", "FName": "丙有限公司", "FTRADINGCURRID.FNumber": "XXX"}),
        WriteChange("d", "rd", "999999", {"FName": "不存在"}),
        WriteChange("e", "re", None, {"FNumber": "W-5", "FName": "戊有限公司"}),
    ])
    assert [r.change_id for r in results] == list("abcde")
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert "FName" in results[1].error and "FTRADINGCURRID" in results[2].error and "999999" in results[3].error
    assert not any(r.retriable for r in results)


def test_update_sends_only_the_changed_fields(sim, make_connector) -> None:
    conn = make_connector(sim)
    target = dict(sim.state["forms"]["BD_Customer"][5])
    (result,) = conn.write(customers(), [WriteChange("u", "r", str(target["FCUSTID"]), {"FTEL": "+86 21 61234567"})])
    assert result.ok and result.source_id == str(target["FCUSTID"])
    after = next(c for c in sim.state["forms"]["BD_Customer"] if c["FCUSTID"] == target["FCUSTID"])
    assert after["FTEL"] == "+86 21 61234567" and after["FName"] == target["FName"]


def test_order_create_sends_customer_by_number(sim, make_connector) -> None:
    conn = make_connector(sim)
    cust = sim.state["forms"]["BD_Customer"][2]
    good = WriteChange("o1", "r1", None, {"FBillNo": "SO-X-1", "FDate": "2026-11-20", "FCustId": str(cust["FCUSTID"]),
                                          "FSaleOrderEntry": [{"FMaterialId.FNumber": "01.02.0003", "FQty": "4",
                                                               "FTaxPrice": "86.5"}]})
    bad = replace(good, change_id="o2", values=dict(good.values, FBillNo="SO-X-2", FCustId="424242"))
    ok, missing = conn.write(orders(), [good, bad])
    assert ok.ok, ok.error
    assert not missing.ok and "424242" in missing.error
    bill = next(o for o in sim.state["forms"]["SAL_SaleOrder"] if o["FBillNo"] == "SO-X-1")
    assert bill["FCustId"]["FNumber"] == cust["FNumber"] and bill["FBillAllAmount"] == 346.0
    assert bill["FSaleOrgId"]["FNumber"] == "100", "the create got the form's required defaults"


def test_a_save_retried_after_a_client_timeout_does_not_duplicate(make_sim, make_connector) -> None:
    sim = make_sim(extra={"write_latency_ms": 700})
    conn = make_connector(sim, timeout=0.3, retries=1)
    change = WriteChange("once", "r", None, {"FNumber": "SLOW-1", "FName": "慢响应有限公司"})
    (first,) = conn.write(customers(), [change])
    assert not first.ok and first.retriable, "a timeout is retriable"
    sim.options.extra["write_latency_ms"] = 0
    time.sleep(0.5)       # the server finished the first save meanwhile
    (second,) = conn.write(customers(), [change])
    assert second.ok, second.error
    saved = [c for c in sim.state["forms"]["BD_Customer"] if c["FNumber"] == "SLOW-1"]
    assert len(saved) == 1 and second.source_id == str(saved[0]["FCUSTID"])


def test_deletes_are_refused_per_record(sim, make_connector) -> None:
    (result,) = make_connector(sim).write(customers(), [WriteChange("x", "r", "100001", {}, delete=True)])
    assert not result.ok and "delete" in result.error
