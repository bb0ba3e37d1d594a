"""SalesforceConnector against the simulator: incremental reads with a tie-safe cursor,
deletions, re-login, the request budget, transient faults, and collection writes."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from salesforce_helpers import SlowFirst

from connectors.salesforce.connector import SalesforceConnector
from hub.connector import StreamSpec, WriteChange
from hub.errors import ConfigError, LimitExceeded
from hub.mapping import load_mapping, shipped_mappings_dir

ACCOUNTS = StreamSpec(entity="customer", source="Account", key="Id", updated_at="SystemModstamp", batch_size=200,
                      fields=("Id", "SystemModstamp", "Name", "TaxId__c", "Owner.Name"))


def now() -> datetime:
    return datetime.now(timezone.utc)


def read(conn: SalesforceConnector, stream: StreamSpec = ACCOUNTS, cursor=None):
    return list(conn.read(replace(stream, run_started_at=now() + timedelta(seconds=1)), cursor))


def ids_of(batches) -> list[str]:
    return [r["Id"] for b in batches for r in b.records]


def test_full_read_selects_the_mapping_fields(make_sim, make_connector) -> None:
    sim = make_sim(records=450)
    batches = read(make_connector(sim))
    assert [len(b.records) for b in batches] == [200, 200, 50]
    ids = ids_of(batches)
    assert sorted(ids) == sorted(sim.org.ids("Account"))
    rec = batches[0].records[0]
    assert set(rec) == {"Id", "SystemModstamp", "IsDeleted", "Name", "TaxId__c", "Owner"}
    assert set(rec["Owner"]) == {"Name"}                          # transport attributes are dropped
    last = batches[-1].records[-1]
    assert batches[-1].cursor == {"ts": last["SystemModstamp"].replace("+0000", "Z"), "id": last["Id"]}


def test_incremental_read_gives_only_changes(make_sim, make_connector) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    cursor = read(conn)[-1].cursor
    assert read(conn, cursor=cursor) == []                       # nothing new: nothing (not even the boundary row)
    changed = sim.org.ids("Account")[3:6]
    for i, rid in enumerate(changed):
        sim.org.edit("Account", rid, {"Name": f"上海星海贸易有限公司 分部{i}"})
    later = read(conn, cursor=cursor)
    assert ids_of(later) == changed
    assert later[-1].records[-1]["Name"] == "上海星海贸易有限公司 分部2"


def test_rows_sharing_a_stamp_across_page_boundaries(make_sim, make_connector) -> None:
    sim = make_sim(records=450)
    conn = make_connector(sim)
    cursor = read(conn)[-1].cursor
    accounts = sim.org.ids("Account")
    sim.org.edit_many("Account", accounts[:50], {"Tier__c": "Gold"})
    stamp = sim.org.edit_many("Account", accounts[50:350], {"Tier__c": "Silver"})   # 300 rows, one stamp
    batches = read(conn, cursor=cursor)
    assert [len(b.records) for b in batches] == [200, 150]        # the page boundary falls inside the tie
    assert sorted(ids_of(batches)) == sorted(accounts[:350])
    # a run that stopped after the first batch resumes mid-tie: nothing lost, nothing twice
    mid = batches[0].cursor
    assert mid["ts"] == stamp.replace("+0000", "Z")
    resumed = read(conn, cursor=mid)
    assert ids_of(resumed) == ids_of(batches)[200:]
    assert not set(ids_of(resumed)) & set(ids_of(batches)[:200])


def test_cursor_stops_at_the_run_start(make_sim, make_connector) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    cursor = read(conn)[-1].cursor
    started = now() - timedelta(minutes=5)
    rid = sim.org.ids("Account")[0]
    sim.org.edit("Account", rid, {"Phone": "+86 21 6888 1234"})
    batches = list(conn.read(replace(ACCOUNTS, run_started_at=started), cursor))
    assert ids_of(batches) == [rid]                              # delivered now ...
    assert datetime.fromisoformat(batches[-1].cursor["ts"]) <= started
    assert ids_of(read(conn, cursor=batches[-1].cursor)) == [rid]   # ... and read again next run


def test_deletions_since_the_cursor(make_sim, make_connector) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    cursor = read(conn)[-1].cursor
    gone, edited = sim.org.ids("Account")[:2]
    sim.org.remove("Account", gone)
    sim.org.edit("Account", edited, {"Tier__c": "Bronze"})
    batches = read(conn, cursor=cursor)
    assert [d for b in batches for d in b.deleted] == [gone]
    assert ids_of(batches) == [edited]
    assert gone not in ids_of(read(conn))                         # a full read never lists deleted rows


def test_order_lines_come_from_the_child_subquery(make_sim, make_connector) -> None:
    sim = make_sim()
    mapping = load_mapping(shipped_mappings_dir() / "salesforce" / "order.yaml", "order")
    stream = StreamSpec(entity="order", source=mapping.source, key=mapping.key, updated_at=mapping.updated_at,
                        fields=tuple(mapping.source_paths()), options=mapping.options, batch_size=500)
    (batch,) = read(make_connector(sim), stream)
    raw = batch.records[0]
    items = [i for i in sim.org.ids("OrderItem") if sim.org.get("OrderItem", i)["OrderId"] == raw["Id"]]
    assert [line["Id"] for line in raw["OrderItems"]["records"]] == items
    mapped = mapping.to_canonical(raw)
    assert len(mapped.values["lines"]) == len(items)
    assert mapped.values["lines"][0]["sku"].startswith("SKU-")
    assert mapped.refs == {"customer_id": "customer", **({"contract_id": "contract"} if raw["ContractId"] else {})}


def test_token_expiry_mid_run_logs_in_again(make_sim, make_connector) -> None:
    sim = make_sim(records=450)
    conn = make_connector(sim)
    stream = replace(ACCOUNTS, run_started_at=now())
    got = []
    for batch in conn.read(stream, None):
        got += [r["Id"] for r in batch.records]
        sim.org.expire_tokens()                                   # the session dies between pages
    assert sorted(got) == sorted(sim.org.ids("Account"))
    assert conn.client.auth.fetched == 3                          # first login + one per page after an expiry


def test_short_token_lifetime_is_transparent(make_sim, make_connector) -> None:
    # the read outlives several tokens (pages of 120 ms against 250 ms of life): re-logins, never a failure
    sim = make_sim(records=450, token_ttl=0.25, latency_ms=120)
    batches = read(make_connector(sim))
    assert len(ids_of(batches)) == 450


def test_request_budget_stops_the_stream_after_the_batches_before(make_sim, make_connector) -> None:
    sim = make_sim(records=450, request_budget=3)                # describe + two pages
    conn = make_connector(sim)
    got = []
    with pytest.raises(LimitExceeded):
        for batch in conn.read(replace(ACCOUNTS, run_started_at=now()), None):
            got.append(batch)
    assert [len(b.records) for b in got] == [200, 200]
    sim.options.request_budget = None                             # a new day
    rest = read(conn, cursor=got[-1].cursor)
    assert sorted(ids_of(got) + ids_of(rest)) == sorted(sim.org.ids("Account"))


@pytest.mark.parametrize("fault", [{"fail_rate": 0.4}, {"rate_limit_rate": 0.4}, {"truncate_rate": 0.4}])
def test_transient_faults_are_retried(make_sim, make_connector, fault) -> None:
    sim = make_sim(records=1000, **fault)
    conn = make_connector(sim, retry={"attempts": 12, "backoff": 0.001, "max_wait": 0.01, "timeout": 5})
    assert sorted(ids_of(read(conn))) == sorted(sim.org.ids("Account"))
    stats = sim.app.stats
    assert stats["failed"] + stats["throttled"] + stats["truncated"] > 0, "no fault was injected"


def test_slow_responses_time_out_and_are_retried(make_sim, make_connector) -> None:
    slow = {}

    def wrap(app):
        slow["mw"] = SlowFirst(app, count=2, delay=0.6)
        return slow["mw"]
    sim = make_sim(records=450, wrap=wrap)
    conn = make_connector(sim, retry={"attempts": 5, "backoff": 0.001, "max_wait": 0.01, "timeout": 0.3})
    assert len(ids_of(read(conn))) == 450
    assert slow["mw"].slowed == 2


def _change(i: int, **values) -> WriteChange:
    return WriteChange(f"c{i}", f"triad-{i}", None, values)


def test_write_reports_one_bad_record_and_writes_the_others(make_sim, make_connector) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    results = conn.write(ACCOUNTS, [_change(1, Name="杭州西子智能制造有限公司"),
                                    _change(2, Name="Bad Mail Ltd", Email__c="not-an-email"),
                                    _change(3, Name="Oxford Systems Ltd")])
    assert [r.ok for r in results] == [True, False, True]
    assert "INVALID_EMAIL_ADDRESS" in results[1].error and "Email__c" in results[1].error
    assert results[1].retriable is False
    assert sim.org.get("Account", results[0].source_id)["Triad_Id__c"] == "triad-1"   # creates are upserts
    assert sim.org.get("Account", results[2].source_id)["Name"] == "Oxford Systems Ltd"


def test_write_is_idempotent_and_updates_deletes_by_id(make_sim, make_connector) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    (first,) = conn.write(ACCOUNTS, [_change(1, Name="Redwood Foods Inc.")])
    (again,) = conn.write(ACCOUNTS, [_change(1, Name="Redwood Foods Inc.")])  # a retried create
    assert again.ok and again.source_id == first.source_id
    (upd,) = conn.write(ACCOUNTS, [WriteChange("u1", "triad-1", first.source_id, {"CreditLimit__c": Decimal("12345.67")})])
    assert upd.ok and sim.org.get("Account", first.source_id)["CreditLimit__c"] == 12345.67
    (gone,) = conn.write(ACCOUNTS, [WriteChange("d1", "triad-1", first.source_id, {}, delete=True)])
    (twice,) = conn.write(ACCOUNTS, [WriteChange("d1", "triad-1", first.source_id, {}, delete=True)])
    assert gone.ok and twice.ok and sim.org.get("Account", first.source_id)["IsDeleted"] is True


def test_write_many_in_chunks_and_isolate_undecodable_values(make_sim, make_connector) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    before = sim.org.api_calls
    results = conn.write(ACCOUNTS, [_change(i, Name=f"Summit Supply {i} Inc.") for i in range(450)])
    assert all(r.ok for r in results) and len({r.source_id for r in results}) == 450
    assert sim.org.api_calls - before == 1 + 3                     # describe + three collection calls
    mixed = conn.write(ACCOUNTS, [_change(500, Name="Fine"), _change(501, Name="Broken", CreditLimit__c="abc"),
                                  _change(502, Name="Also fine")])
    assert [r.ok for r in mixed] == [True, False, True]
    assert mixed[1].error.startswith("JSON_PARSER_ERROR")


def test_locked_rows_are_retriable(make_sim, make_connector) -> None:
    sim = make_sim()
    conn = make_connector(sim)
    rid = sim.org.ids("Account")[0]
    sim.org.lock_record(rid)
    (res,) = conn.write(ACCOUNTS, [WriteChange("l1", "triad-9", rid, {"Phone": "+86 10 6255 1234"})])
    assert not res.ok and res.retriable and "UNABLE_TO_LOCK_ROW" in res.error


def test_check_ok_and_with_bad_credentials(sim, make_connector) -> None:
    ok = make_connector(sim).check()
    assert ok.ok and ok.info["instance_url"] == sim.base_url and ok.info["daily_api_requests"]["Max"] == 15000
    bad = make_connector(sim, auth={"client_id": "triad-client", "client_secret": "triad-secret",
                                    "username": "demo@triad.local", "password": "wrong"}).check()
    assert not bad.ok and "invalid_grant" in bad.detail
    cc = make_connector(sim, auth={"grant": "client_credentials", "client_id": "triad-client",
                                   "client_secret": "triad-secret"}).check()
    assert cc.ok, cc.detail
    gone = make_connector(sim, base_url="https://127.0.0.1:9", retry={"attempts": 1}).check()
    assert not gone.ok


def test_config_errors(sim, make_connector) -> None:
    with pytest.raises(ConfigError):
        SalesforceConnector("crm", {"auth": {}})
    with pytest.raises(ConfigError):
        make_connector(sim, auth={"grant": "jwt", "client_id": "x"})
    with pytest.raises(ConfigError, match="Nope__c"):
        read(make_connector(sim), replace(ACCOUNTS, fields=("Id", "Nope__c")))
    with pytest.raises(ConfigError, match="no object"):
        read(make_connector(sim), replace(ACCOUNTS, source="Nothing__c"))


def test_plain_http_works_too(make_sim, make_connector) -> None:
    sim = make_sim(tls=False)
    assert len(ids_of(read(make_connector(sim)))) == 40


def test_a_cut_token_response_is_retried(make_sim, make_connector) -> None:
    sim = make_sim(seed=5, truncate_rate=0.4)         # with this seed the very first body (the token) is cut
    result = make_connector(sim).check()
    assert result.ok, result.detail
    assert sim.app.stats["truncated"] == 1


def test_child_paths_choose_the_subquery_fields(make_sim, make_connector) -> None:
    sim = make_sim()
    stream = StreamSpec(entity="order", source="Order", key="Id", updated_at="SystemModstamp", batch_size=500,
                        fields=("Id", "OrderItems.records.id", "OrderItems.records.Quantity"))
    (batch,) = read(make_connector(sim), stream)
    line = batch.records[0]["OrderItems"]["records"][0]
    assert set(line) == {"Id", "Quantity"}


def test_delete_of_a_record_never_written_is_a_no_op(sim, make_connector) -> None:
    before = sim.org.api_calls
    (res,) = make_connector(sim).write(ACCOUNTS, [WriteChange("d0", "triad-0", None, {}, delete=True)])
    assert res.ok and res.source_id is None
    assert sim.org.api_calls - before <= 1                        # at most the describe
