"""The rest connector's reads and writes: error bodies, retries, rate limits, idempotent creates, HubSpot."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from rest_helpers import sim_api, variant

from hub.connector import StreamSpec, WriteChange
from hub.errors import FatalError, LimitExceeded
from hub.secrets import Secret

PAGE = {"path": "/page/companies", "records": "data", "paging": {"style": "page", "size": 10}}


def stream(source: str = "companies", **kw: Any) -> StreamSpec:
    kw.setdefault("batch_size", 20)
    kw.setdefault("updated_at", "updated_at")
    return StreamSpec(entity="customer", source=source, key="id", run_started_at=datetime.now(timezone.utc), **kw)


def rows(sim: Any, collection: str = "companies") -> list[dict[str, Any]]:
    return sim.sim.state.data[collection]


# --- errors in HTTP 200 bodies --------------------------------------------------------------------

def test_an_error_body_with_http_200_stops_the_read_with_the_apis_code_and_message(sim: Any,
                                                                                  make_connector: Callable) -> None:
    conn = make_connector(sim, variant(sim_api(), "companies", list={"path": "/errors/companies",
                                                                     "params": {"code": "QUOTA_TOO_LOW"}}))
    with pytest.raises(FatalError, match="the API reports an error QUOTA_TOO_LOW: simulated error QUOTA_TOO_LOW"):
        list(conn.read(stream(), None))
    assert not conn.check().ok


@pytest.mark.parametrize("action, error", [("limit", LimitExceeded), ("fatal", FatalError)])
def test_rule_actions(action: str, error: type, sim: Any, make_connector: Callable) -> None:
    api = variant(sim_api(), "companies", list={"path": "/errors/companies", "params": {"code": "DAILY_LIMIT"}},
                  errors=[{"when": {"path": "code", "equals": "DAILY_LIMIT"}, "action": action, "message": "message"}])
    conn = make_connector(sim, api)
    with pytest.raises(error, match="simulated error DAILY_LIMIT"):
        list(conn.read(stream(), None))


def test_a_retry_rule_retries_an_error_body_until_the_api_answers(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim, variant(sim_api(), "companies", list=dict(PAGE, path="/flaky/companies")))
    keys = [r["id"] for b in conn.read(stream(), None) for r in b.records]
    assert len(keys) == len(set(keys)) == 40
    assert sim.sim.flaky_calls == 10            # each of the 5 pages refused once (code BUSY), then served


def test_without_a_retry_rule_the_busy_body_is_fatal(sim: Any, make_connector: Callable) -> None:
    api = variant(sim_api(), "companies", list=dict(PAGE, path="/flaky/companies"))
    api["errors"] = [rule for rule in api["errors"] if rule["action"] != "retry"]
    conn = make_connector(sim, api)
    with pytest.raises(FatalError, match="BUSY: the server is busy"):
        list(conn.read(stream(), None))


def test_a_truncated_body_is_retried(make_sim: Callable, make_connector: Callable) -> None:
    sim = make_sim(truncate_rate=0.3, seed=7)
    conn = make_connector(sim, variant(sim_api(), "companies", list=PAGE))
    keys = [r["id"] for b in conn.read(stream(), None) for r in b.records]
    assert len(keys) == len(set(keys)) == 40
    assert sim.app.stats["truncated"] > 0


# --- rate limits ----------------------------------------------------------------------------------

def test_rate_limit_headers_pace_the_calls_so_no_429_comes_back(make_sim: Callable, make_connector: Callable) -> None:
    sim = make_sim(extra={"rate_limit": 3, "rate_window": 1.0})
    conn = make_connector(sim, variant(sim_api(), "companies", list=dict(PAGE, paging={"style": "page", "size": 8})))
    started = time.monotonic()
    keys = [r["id"] for b in conn.read(stream(), None) for r in b.records]
    assert len(keys) == 40
    assert sim.sim.rate.refused == 0 and conn.pacer.waited > 0
    assert time.monotonic() - started >= 1.0    # 5 calls at 3 per second


def test_without_rate_limit_headers_429s_are_retried_after_retry_after(make_sim: Callable,
                                                                        make_connector: Callable) -> None:
    sim = make_sim(extra={"rate_limit": 3, "rate_window": 1.0})
    api = variant(sim_api(), "companies", list=dict(PAGE, paging={"style": "page", "size": 8}))
    del api["rate_limit"]
    conn = make_connector(sim, api)
    conn.http.sleep = time.sleep                # honor Retry-After for real
    keys = [r["id"] for b in conn.read(stream(), None) for r in b.records]
    assert len(keys) == 40 and sim.sim.rate.refused >= 1


def test_a_wait_longer_than_max_wait_stops_the_stream(make_sim: Callable, make_connector: Callable) -> None:
    sim = make_sim(extra={"rate_limit": 1, "rate_window": 30.0})
    api = variant(sim_api(), "companies", list=PAGE)
    api["rate_limit"]["max_wait_seconds"] = 2
    conn = make_connector(sim, api)
    with pytest.raises(LimitExceeded, match="rate limit spent; the API resets in"):
        list(conn.read(stream(), None))
    assert sim.sim.rate.refused == 0            # stopped before asking again


# --- writes ---------------------------------------------------------------------------------------

def test_a_retried_create_with_the_same_change_id_makes_one_record(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim)
    change = WriteChange("chg-7", "rec-7", None, {"name": "Once Only GmbH", "email": "ap@once.example"})
    (first,) = conn.write(stream(), [change])
    (again,) = conn.write(stream(), [change])
    assert first.ok and again.ok and first.source_id == again.source_id
    assert [r["name"] for r in rows(sim)].count("Once Only GmbH") == 1


def test_creates_use_upsert_by_business_code_when_described(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim)
    existing = rows(sim)[4]
    results = conn.write(stream("companies_by_code"), [
        WriteChange("u1", "r1", None, {"code": existing["code"], "name": "Renamed by Upsert"}),
        WriteChange("u2", "r2", None, {"code": "NEW-1", "name": "Brand New Ltd"}),
        WriteChange("u3", "r3", None, {"code": "NEW-1", "name": "Brand New Ltd (again)"}),
    ])
    assert [r.ok for r in results] == [True, True, True]
    assert results[0].source_id == existing["id"] and existing["name"] == "Renamed by Upsert"
    assert results[1].source_id == results[2].source_id
    assert len(rows(sim)) == 41


def test_each_change_gets_its_own_result(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim)
    target = rows(sim)[0]
    results = conn.write(stream(), [
        WriteChange("w1", "r1", None, {"name": "Good One"}),
        WriteChange("w2", "r2", None, {"name": "Bad Mail", "email": "not-an-email"}),
        WriteChange("w3", "r3", "co-99999", {"name": "Gone"}),
        WriteChange("w4", "r4", target["id"], {"credit_limit": "1.00"}),
        WriteChange("w5", "r5", target["id"], {}, delete=True),
    ])
    assert [r.change_id for r in results] == ["w1", "w2", "w3", "w4", "w5"]
    assert [r.ok for r in results] == [True, False, False, True, True]
    assert "HTTP 422: email is missing or invalid" in results[1].error and not results[1].retriable
    assert "HTTP 404" in results[2].error
    assert target["id"] not in {r["id"] for r in rows(sim)}


def test_a_resource_without_the_write_request_refuses_it(sim: Any, make_connector: Callable) -> None:
    (result,) = make_connector(sim).write(stream("contacts"), [WriteChange("d1", "r1", "ct-00001", {}, delete=True)])
    assert not result.ok and "describes no delete request for 'contacts'" in result.error


def test_server_errors_on_writes_are_retriable(make_sim: Callable, make_connector: Callable) -> None:
    sim = make_sim(fail_rate=1.0)
    conn = make_connector(sim, retries=2)
    (result,) = conn.write(stream(), [WriteChange("e1", "r1", None, {"name": "Never Ltd"})])
    assert not result.ok and result.retriable and "HTTP 503" in result.error


# --- the shipped HubSpot description ---------------------------------------------------------------

def hubspot_stream(**kw: Any) -> StreamSpec:
    return stream(updated_at="updatedAt", fields=("properties.name", "properties.city", "createdAt"), **kw)


def test_hubspot_full_read_then_incremental_search(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim, "hubspot", auth={"token": Secret("triad-secret")})
    assert conn.check().ok
    first = list(conn.read(hubspot_stream(), None))
    records = [r for b in first for r in b.records]
    assert len(records) == 40 and set(records[0]["properties"]) == {"name", "city"}
    listed = [p for m, p in sim.sim.requests if m == "GET" and p.startswith("/crm/v3/objects/companies?")]
    assert listed and "properties=name%2Ccity" in listed[-1] and "archived=false" in listed[-1]

    target = sim.sim.state.data["hubspot"]["companies"][3]
    (result,) = conn.write(hubspot_stream(), [WriteChange("h1", "r1", target["id"],
                                                          {"properties": {"city": "Leipzig"}})])
    assert result.ok, result.error
    later = [r for b in conn.read(hubspot_stream(), first[-1].cursor) for r in b.records]
    assert [r["id"] for r in later if r["properties"]["city"] == "Leipzig"] == [target["id"]]
    assert len(later) < 5
    assert ("POST", "/crm/v3/objects/companies/search") in sim.sim.requests


def test_hubspot_search_pages_with_the_token_in_the_body_and_moves_the_cursor_per_batch(
        make_sim: Callable, make_connector: Callable) -> None:
    sim = make_sim(records=450)
    conn = make_connector(sim, "hubspot", auth={"token": Secret("triad-secret")})
    batches = list(conn.read(hubspot_stream(batch_size=100), "2025-01-01T00:00:00Z"))
    keys = [r["id"] for b in batches for r in b.records]
    assert len(keys) == len(set(keys)) == 450
    searches = [p for m, p in sim.sim.requests if p.endswith("/search")]
    assert len(searches) == 3                   # 200 per page, the `after` token sent in the body
    cursors = [b.cursor for b in batches]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)


def test_hubspot_create_and_a_refused_property(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim, "hubspot", auth={"token": Secret("triad-secret")})
    results = conn.write(hubspot_stream(), [
        WriteChange("c1", "r1", None, {"properties": {"name": "Hub New GmbH", "city": "Bonn"}}),
        WriteChange("c2", "r2", None, {"properties": {"name": "X", "favourite_color": "red"}}),
    ])
    assert results[0].ok and results[0].source_id
    assert not results[1].ok and "HTTP 400" in results[1].error and "favourite_color" in results[1].error
    created = next(r for r in sim.sim.state.data["hubspot"]["companies"] if r["id"] == results[0].source_id)
    assert created["properties"]["city"] == "Bonn"
