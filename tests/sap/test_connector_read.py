"""SapConnector reads against the simulator: full, incremental, paging, coarse stamps, faults, check()."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from connectors.sap.connector import SapConnector
from connectors.sap.schema import ENTITY_SETS
from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub.connector import StreamSpec, WriteChange
from hub.errors import ConfigError

from .conftest import FAST_RETRY, PASSWORD, USER, mapping, stream_of

UTC = timezone.utc


def read(conn: SapConnector, stream: StreamSpec, cursor=None):
    batches = list(conn.read(stream, cursor))
    return batches, [r for b in batches for r in b.records], (batches[-1].cursor if batches else cursor)


def bp_keys(records) -> list[str]:
    return [r["BusinessPartner"] for r in records]


def test_full_read_gives_every_partner_once_with_expanded_children(connector, app):
    batches, records, cursor = read(connector, stream_of("customer"))
    assert sorted(bp_keys(records)) == sorted(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner"))
    assert len(records) == len(set(bp_keys(records))) == 40
    assert all(len(b.records) <= 10 for b in batches)
    newest = max(app.store.changed_at(ENTITY_SETS["A_BusinessPartner"], r) for r in app.store.rows("A_BusinessPartner"))
    assert cursor == newest.replace(tzinfo=None).isoformat()
    rec = next(r for r in records if r["_address"] and r["_email"])
    assert rec["_address"] is rec["to_BusinessPartnerAddress"]["results"][0]
    assert "@" in rec["_email"]["EmailAddress"] and rec["_phone"]["InternationalPhoneNumber"].startswith("+")
    assert "AcademicTitle" not in rec, "$select asks only for the fields the mapping reads"
    assert "to_BusinessPartnerRole" not in rec and "__deferred" not in str(rec)
    values = [mapping("customer").to_canonical(r) for r in records]
    assert {v.values["country"] for v in values} == {"CN", "DE", "US"}
    assert all(v.source_ts is not None for v in values)


def test_incremental_read_returns_changes_and_moves_the_cursor(connector, app):
    _, _, cursor = read(connector, stream_of("customer"))
    app.store.update("A_BusinessPartner", "17100011", {"OrganizationBPName2": "Niederlassung Süd"})
    app.store.update("A_BusinessPartnerAddress", ("17100020", "25019"), {"CityName": "苏州"})  # a child change
    started = datetime.now(UTC) + timedelta(seconds=1)
    _, records, new_cursor = read(connector, stream_of("customer", started), cursor)
    assert {"17100011", "17100020"} <= set(bp_keys(records)) and len(records) < 10
    changed = next(r for r in records if r["BusinessPartner"] == "17100020")
    assert changed["_address"]["CityName"] == "苏州"
    assert new_cursor > cursor and datetime.fromisoformat(new_cursor) <= started.replace(tzinfo=None)
    _, again, _ = read(connector, stream_of("customer", started), new_cursor)
    assert set(bp_keys(again)) <= {"17100011", "17100020"}, "only the boundary is read again"


def test_server_paging_is_continued_by_key_set(make_connector):
    conn = make_connector(page_size=10)
    stream = StreamSpec(entity="customer", source="A_Customer", key="Customer", updated_at=None)
    batches, records, cursor = read(conn, stream)
    # $top=10, the server pages at 7 and sends __next: the next page starts after the last key
    assert [len(b.records) for b in batches] == [7] * 5 + [5]
    assert len({r["Customer"] for r in records}) == 40 and cursor is None


def test_changes_during_a_read_do_not_shift_records_out(connector, app):
    stream = stream_of("customer", datetime.now(UTC))
    everyone = {r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")}
    seen: list[str] = []
    app.store.clock = lambda: datetime(2030, 1, 1, tzinfo=UTC)
    for i, batch in enumerate(connector.read(stream, None)):
        seen += bp_keys(batch.records)
        if i == 0:   # records already read move to the end of the order; nothing may be skipped
            for key in bp_keys(batch.records)[:5]:
                app.store.update("A_BusinessPartner", key, {"SearchTerm2": "MOVED"}, save=False)
    assert set(seen) == everyone


def test_same_second_changes_are_never_lost(make_connector, app):
    conn = make_connector(page_size=4, overlap_seconds=0)
    _, _, cursor = read(conn, stream_of("customer"))
    second = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)
    app.store.clock = lambda: second
    first_wave = ["17100003", "17100004", "17100005", "17100006", "17100007"]
    for key in first_wave:
        app.store.update("A_BusinessPartner", key, {"SearchTerm2": "WAVE1"})
    _, records, cursor = read(conn, stream_of("customer", second + timedelta(milliseconds=400)), cursor)
    assert set(first_wave) <= set(bp_keys(records))
    assert cursor == "2026-03-01T09:30:15"
    app.store.clock = lambda: second + timedelta(milliseconds=700)      # same second, after the read
    for key in ("17100008", "17100009"):
        app.store.update("A_BusinessPartner", key, {"SearchTerm2": "WAVE2"})
    app.store.clock = lambda: second + timedelta(seconds=5)
    app.store.update("A_BusinessPartner", "17100010", {"SearchTerm2": "LATER"})
    _, records, cursor = read(conn, stream_of("customer", second + timedelta(seconds=10)), cursor)
    assert {"17100008", "17100009", "17100010"} <= set(bp_keys(records))
    assert cursor == "2026-03-01T09:30:20"


def test_more_partners_in_one_second_than_a_page(make_connector, app):
    conn = make_connector(page_size=4)
    same = datetime(2026, 4, 2, 8, 0, 0, tzinfo=UTC)
    app.store.clock = lambda: same
    for rec in list(app.store.rows("A_BusinessPartner"))[:25]:
        app.store.update("A_BusinessPartner", rec["BusinessPartner"], {"SearchTerm2": "MASS"}, save=False)
    _, records, cursor = read(conn, stream_of("customer", same + timedelta(seconds=1)),
                              (same - timedelta(seconds=1)).replace(tzinfo=None).isoformat())
    assert len(records) == len(set(bp_keys(records))) == 25
    assert cursor == "2026-04-02T08:00:00"


def test_cursor_never_passes_the_run_start(connector, app):
    _, _, cursor = read(connector, stream_of("customer"))
    started = datetime(2027, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)
    app.store.clock = lambda: datetime(2027, 1, 1, 12, 0, 5, tzinfo=UTC)   # stamped after the run began
    app.store.update("A_BusinessPartner", "17100012", {"SearchTerm2": "LATE"})
    batches, records, final = read(connector, stream_of("customer", started), cursor)
    assert "17100012" in bp_keys(records)
    assert all(b.cursor is None or b.cursor <= "2027-01-01T12:00:00" for b in batches)
    assert final == "2027-01-01T12:00:00"


def test_partner_created_and_never_changed_is_read_incrementally(connector, app):
    _, _, cursor = read(connector, stream_of("customer"))
    app.store.clock = lambda: datetime(2028, 2, 3, 4, 5, 6, tzinfo=UTC)
    result = connector.write(stream_of("customer"), [_new_partner()])[0]
    assert result.ok, result.error
    assert app.store.get("A_BusinessPartner", result.source_id)["LastChangeDate"] is None
    _, records, new_cursor = read(connector, stream_of("customer", datetime(2029, 1, 1, tzinfo=UTC)), cursor)
    created = next(r for r in records if r["BusinessPartner"] == result.source_id)
    assert created["_changed_at"] == "2028-02-03T04:05:06" == new_cursor


def _new_partner() -> WriteChange:
    return WriteChange("c-new", "rec-new", None, {"BusinessPartnerCategory": "2",
                                                   "OrganizationBPName1": "Harbin Polar Tech",
                                                   "_address": {"Country": "CN", "CityName": "哈尔滨"}})


def test_sales_orders_by_last_change_datetime(make_connector, app):
    conn = make_connector(page_size=5)
    stream = stream_of("order")
    batches, records, cursor = read(conn, stream)
    assert len({r["SalesOrder"] for r in records}) == len(records) == 40
    assert cursor.endswith("Z") and all(r["to_Item"]["results"] for r in records)
    instant = datetime(2026, 6, 1, 10, 0, 0, 123000, tzinfo=UTC)
    app.store.clock = lambda: instant
    for so in [r["SalesOrder"] for r in records][:12]:     # twelve orders in the same millisecond
        app.store.update("A_SalesOrder", so, {"ShippingType": "01"}, save=False)
    _, later, cursor = read(conn, stream_of("order", instant + timedelta(seconds=1)), cursor)
    assert len(later) == len({r["SalesOrder"] for r in later}) >= 12
    assert cursor == "2026-06-01T10:00:00.123Z"
    order = mapping("order").to_canonical(later[0])
    assert order.values["lines"] and order.source_ts.tzinfo is not None


def test_entity_without_stamp_is_read_in_full_every_time(connector):
    stream = StreamSpec(entity="customer", source="A_Customer", key="Customer", updated_at=None)
    assert len(read(connector, stream, None)[1]) == 40
    assert len(read(connector, stream, "ignored")[1]) == 40


@pytest.mark.parametrize("fault, counter", [("fail_rate", "failed"), ("rate_limit_rate", "throttled"),
                                            ("truncate_rate", "truncated")])
def test_transient_failures_are_retried(fault, counter):
    """503s, 429s with Retry-After and bodies cut in half (also of $metadata) are all retried."""
    app = create_app(SimOptions(seed=5, records=25, extra={"page_size": 6}, **{fault: 0.4}))
    with SimServer(app) as srv:
        conn = SapConnector("erp", {"base_url": srv.base_url, "auth": {"user": USER, "password": PASSWORD},
                                    "retry": {**FAST_RETRY, "attempts": 10}, "page_size": 4})
        _, records, _ = read(conn, stream_of("customer"))
        conn.close()
    assert len(records) == len(set(bp_keys(records))) == 25
    assert app.stats[counter] > 0


def test_check_ok_bad_credentials_and_unreachable(make_connector, server):
    ok = make_connector().check()
    assert ok.ok and "API_SALES_ORDER_SRV" in ok.info["services"]
    bad = make_connector(auth={"user": USER, "password": "nope"}).check()
    assert not bad.ok and "401" in bad.detail
    gone = SapConnector("erp", {"base_url": "http://127.0.0.1:9", "auth": {"token": "t"},
                                "retry": {"attempts": 1}, "timeout": 2}).check()
    assert not gone.ok and gone.detail


def test_configuration_errors(make_connector, server):
    with pytest.raises(ConfigError, match="base_url"):
        SapConnector("erp", {"auth": {"user": "u", "password": "p"}})
    with pytest.raises(ConfigError, match="auth"):
        SapConnector("erp", {"base_url": server.base_url})
    conn = make_connector()
    unknown = StreamSpec(entity="customer", source="A_Nope", key="X", updated_at=None)
    with pytest.raises(ConfigError, match="options.service"):
        list(conn.read(unknown, None))
    wrong_stamp = replace(stream_of("customer"), source="A_Customer", key="Customer", updated_at="CreationDate",
                          fields=())
    with pytest.raises(ConfigError, match="DateTimeOffset"):
        list(conn.read(wrong_stamp, None))
