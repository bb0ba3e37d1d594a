"""YonyouConnector against the simulator: token handling, incremental reads, errors, idempotent writes."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from connectors.yonyou.connector import resubmit_key
from hub.connector import StreamSpec, WriteChange
from hub.errors import LimitExceeded

SH = ZoneInfo("Asia/Shanghai")


def customers(batch_size: int = 10, **kw) -> StreamSpec:
    return StreamSpec(entity="customer", source="merchant", key="id", updated_at="pubts", timezone="Asia/Shanghai",
                      batch_size=batch_size, run_started_at=kw.pop("run_started_at", datetime.now(timezone.utc)), **kw)


def orders(batch_size: int = 7) -> StreamSpec:
    return StreamSpec(entity="order", source="voucherorder", key="id", updated_at="pubts", timezone="Asia/Shanghai",
                      batch_size=batch_size, run_started_at=datetime.now(timezone.utc))


def read(conn, stream, cursor=None):
    batches = list(conn.read(stream, cursor))
    return batches, [r for b in batches for r in b.records]


# -- check ---------------------------------------------------------------------------------------

def test_check_ok_discovers_the_gateway(sim, make_connector) -> None:
    result = make_connector(sim).check()
    assert result.ok, result.detail
    assert result.info["gateway_url"] == sim.url + "/iuap-api-gateway"


@pytest.mark.parametrize("overrides, text", [({"app_secret": "wrong"}, "10019"), ({"app_key": "nobody"}, "10018")])
def test_check_reports_bad_credentials(sim, make_connector, overrides, text) -> None:
    result = make_connector(sim, **overrides).check()
    assert not result.ok and text in result.detail


# -- reads -----------------------------------------------------------------------------------------

def test_full_customer_read_and_per_window_cursor(sim, make_connector) -> None:
    stream = customers(batch_size=10)
    batches, records = read(make_connector(sim), stream)
    assert len(records) == 40 and len({r["id"] for r in records}) == 40
    # the list is not ordered by pubts: read in pubts windows, the cursor moves once a window is read
    cursors = [datetime.fromisoformat(b.cursor) for b in batches if b.cursor is not None]
    assert len(cursors) > 1 and cursors == sorted(cursors)
    newest = datetime.fromisoformat(max(m["pubts"] for m in sim.state["merchants"])).replace(tzinfo=SH)
    assert newest <= cursors[-1] <= stream.run_started_at


def test_order_rows_are_regrouped_across_pages(sim, make_connector) -> None:
    batches, records = read(make_connector(sim), orders(batch_size=5))
    expected = {o["id"]: o for o in sim.state["orders"]}
    assert len(records) == len(expected) == len({r["id"] for r in records})
    for rec in records:
        assert [l["id"] for l in rec["orderDetails"]] == [l["id"] for l in expected[rec["id"]]["orderDetails"]]
        assert "lineno" not in rec and "orderDetailId" not in rec["orderDetails"][0]
    assert [b.cursor for b in batches] == sorted(b.cursor for b in batches)


def test_incremental_read_with_overlap_and_run_start(sim, make_connector) -> None:
    conn = make_connector(sim, overlap_seconds=120)
    first, _ = read(conn, customers())
    target = sim.state["merchants"][7]
    (done,) = conn.write(customers(), [WriteChange("c1", "r", str(target["id"]), {"email": "inc@example.cn"})])
    assert done.ok, done.error
    started = datetime.now(timezone.utc) - timedelta(minutes=5)
    batches, again = read(conn, customers(run_started_at=started), first[-1].cursor)
    assert target["id"] in {r["id"] for r in again} and len(again) < 40
    assert all(datetime.fromisoformat(b.cursor) <= max(started, datetime.fromisoformat(first[-1].cursor))
               for b in batches)


def test_token_expiry_mid_run_is_transparent(sim, make_connector) -> None:
    conn = make_connector(sim)
    gen = conn.read(orders(batch_size=6), None)
    records = list(next(gen).records)
    sim.app.sim.expire_tokens()
    records += [r for b in gen for r in b.records]
    assert len({r["id"] for r in records}) == 40
    assert conn.client.tokens_fetched == 2 and sim.app.sim.stats["rejected_tokens"] == 1


def test_short_token_ttl_is_renewed(make_sim, make_connector) -> None:
    sim = make_sim(token_ttl=0.2)
    conn = make_connector(sim)
    records = []
    for batch in conn.read(customers(batch_size=10), None):
        records += batch.records
        time.sleep(0.25)
    assert len(records) == 40 and conn.client.tokens_fetched >= 3


def test_throttling_backs_off_and_resumes(make_sim, make_connector) -> None:
    sim = make_sim(rate_limit_rate=0.4, seed=11)
    conn = make_connector(sim, retries=8)
    waits: list[float] = []
    conn.client.http.sleep = waits.append
    _, records = read(conn, orders(batch_size=5))
    assert len(records) == 40
    assert sim.app.sim.stats["throttled"] == len(waits) > 0


def test_spent_quota_stops_the_stream(make_sim, make_connector) -> None:
    sim = make_sim(request_budget=2)
    conn = make_connector(sim)
    with pytest.raises(LimitExceeded):
        read(conn, customers(batch_size=5))


def test_payments_read_and_refuse_writes(sim, make_connector) -> None:
    conn = make_connector(sim)
    stream = StreamSpec(entity="payment", source="collection", key="id", updated_at="pubts", batch_size=50)
    _, records = read(conn, stream)
    assert len(records) == len(sim.state["receipts"])
    (result,) = conn.write(stream, [WriteChange("p", "r", None, {"code": "X"})])
    assert not result.ok and "read-only" in result.error


# -- writes ----------------------------------------------------------------------------------------

def test_resubmit_key_fits_32_chars() -> None:
    assert resubmit_key("01JF3ZK4W5N7Q8R9S0T1V2W3X4") == "01JF3ZK4W5N7Q8R9S0T1V2W3X4"
    long = resubmit_key("change/" + "x" * 40)
    assert len(long) == 32 and long == resubmit_key("change/" + "x" * 40)


def test_a_create_retried_after_a_client_timeout_does_not_duplicate(sim, make_connector) -> None:
    conn = make_connector(sim, timeout=0.3, retries=1)
    assert conn.check().ok
    change = WriteChange("slow-create", "r", None, {"code": "SLOW1", "name.simplifiedName": "超时重试有限公司"})
    sim.options.latency_ms = 600
    (first,) = conn.write(customers(), [change])
    assert not first.ok and first.retriable
    sim.options.latency_ms = 0
    time.sleep(0.6)       # the first request is still processed by the server after the client gave up
    (second,) = conn.write(customers(), [change])
    assert second.ok, second.error
    created = [m for m in sim.state["merchants"] if m["code"] == "SLOW1"]
    assert len(created) == 1 and second.source_id == str(created[0]["id"])


def test_an_order_retried_after_a_client_timeout_does_not_duplicate(sim, make_connector) -> None:
    conn = make_connector(sim, timeout=0.3, retries=1)
    assert conn.check().ok
    cust = sim.state["merchants"][1]
    change = WriteChange("slow-order", "r", None, {
        "code": "SO-SLOW", "vouchdate": "2026-11-05T00:00:00+08:00", "agentId": str(cust["id"]),
        "orderDetails": [{"productId!code": "P00001", "qty": "2", "oriTaxUnitPrice": "3280"}]})
    sim.options.latency_ms = 600
    (first,) = conn.write(orders(), [change])
    assert not first.ok and first.retriable
    sim.options.latency_ms = 0
    time.sleep(0.6)
    (second,) = conn.write(orders(), [change])
    assert second.ok, second.error
    saved = [o for o in sim.state["orders"] if o["code"] == "SO-SLOW"]
    assert len(saved) == 1 and saved[0]["vouchdate"] == "2026-11-05 00:00:00"


def test_per_record_errors_are_reported(sim, make_connector) -> None:
    conn = make_connector(sim)
    existing = sim.state["merchants"][2]
    results = conn.write(customers(), [
        WriteChange("a", "r", None, {"name.simplifiedName": "甲有限公司"}),
        WriteChange("b", "r", None, {"code": "NONAME"}),
        WriteChange("c", "r", str(existing["id"]), {"email": "c@example.cn"}),
        WriteChange("d", "r", "42", {"email": "d@example.cn"}),
        WriteChange("e", "r", str(existing["id"]), {"name.simplifiedName": ""}),
    ])
    assert [r.ok for r in results] == [True, False, True, False, False]
    assert "名称" in results[1].error and "42" in results[3].error and "名称" in results[4].error
    assert existing["email"] == "c@example.cn"


def test_order_update_diffs_lines_by_lineno(sim, make_connector) -> None:
    conn = make_connector(sim)
    order = next(o for o in sim.state["orders"] if len(o["orderDetails"]) >= 2)
    kept = order["orderDetails"][0]
    values = {"orderDetails": [{"lineno": kept["lineno"], "productId!code": kept["productId!code"], "qty": "99",
                                "oriTaxUnitPrice": kept["oriTaxUnitPrice"]},
                               {"productId!code": "P00003", "qty": "1", "oriTaxUnitPrice": "86.5"}]}
    (result,) = conn.write(orders(), [WriteChange("upd", "r", str(order["id"]), values)])
    assert result.ok, result.error
    after = next(o for o in sim.state["orders"] if o["id"] == order["id"])
    assert [l["qty"] for l in after["orderDetails"]] == [99.0, 1.0]
    assert after["orderDetails"][0]["id"] == kept["id"], "the matched line is updated in place"
    assert after["payMoney"] == round(99 * kept["oriTaxUnitPrice"] + 86.5, 2)


def test_stopstatus_is_written_as_a_boolean(sim, make_connector) -> None:
    conn = make_connector(sim)
    target = sim.state["merchants"][0]
    (result,) = conn.write(customers(), [WriteChange("s", "r", str(target["id"]), {"stopstatus": "true"})])
    assert result.ok and target["stopstatus"] is True


def test_reads_need_no_tenant_when_urls_are_given(sim, make_connector) -> None:
    conn = make_connector(sim, tenant_id=None, gateway_url=sim.url + "/iuap-api-gateway",
                          token_url=sim.url + "/iuap-api-auth")
    _, records = read(conn, replace(customers(), batch_size=100))
    assert len(records) == 40
