"""Every paging style of the rest connector against the generic simulator, over real HTTP."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from rest_helpers import sim_api, variant

from hub.connector import StreamSpec
from hub.errors import FatalError

N = 40

STYLES: dict[str, dict[str, Any]] = {
    "page": {"path": "/page/companies", "records": "data",
             "paging": {"style": "page", "size_param": "per_page", "size": 7}},
    "page_total": {"path": "/page/companies", "records": "$.data",
                   "paging": {"style": "page", "size": 10, "total_pages_path": "meta.total_pages"}},
    "offset": {"path": "/offset/companies", "records": "items",
               "paging": {"style": "offset", "param": "offset", "size_param": "limit", "size": 7,
                          "total_path": "total"}},
    "cursor": {"path": "/cursor/companies", "records": "results",
               "paging": {"style": "cursor", "cursor_path": "next_cursor", "param": "cursor", "size_param": "limit",
                          "size": 7}},
    "next_link": {"path": "/link/companies", "records": "data",
                  "paging": {"style": "next_link", "link_path": "links.next", "size_param": "per_page", "size": 7}},
    "link_header": {"path": "/linkheader/companies", "records": "$[*]",     # the body is a bare list
                    "paging": {"style": "link_header", "size_param": "per_page", "size": 7}},
    "none": {"path": "/all/companies", "records": "records"},
}
PAGES = {"page": 6, "page_total": 4, "offset": 6, "cursor": 6, "next_link": 6, "link_header": 6, "none": 1}


def stream(**kw: Any) -> StreamSpec:
    kw.setdefault("batch_size", 9)
    return StreamSpec(entity="customer", source="companies", key="id", updated_at="updated_at",
                      run_started_at=datetime.now(timezone.utc), **kw)


def list_calls(sim: Any, prefix: str) -> list[str]:
    return [p for m, p in sim.sim.requests if m == "GET" and p.startswith(prefix)]


@pytest.mark.parametrize("style", list(STYLES))
def test_full_read_follows_every_page_once(style: str, sim: Any, make_connector: Callable) -> None:
    request = STYLES[style]
    conn = make_connector(sim, variant(sim_api(), "companies", list=request))
    batches = list(conn.read(stream(), None))
    keys = [r["id"] for b in batches for r in b.records]
    assert sorted(keys) == [f"co-{i:05d}" for i in range(1, N + 1)]
    assert all(len(b.records) <= 9 for b in batches)
    assert len(list_calls(sim, request["path"])) == PAGES[style]


def test_incremental_read_sends_the_lower_bound_and_keeps_newer_records(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim, variant(sim_api(), "companies", list=STYLES["cursor"]))
    rows = sim.sim.state.data["companies"]
    cut = sorted(r["updated_at"] for r in rows)[N - 12]          # the 12 newest changes are at or after it
    batches = list(conn.read(stream(), cut))
    got = {r["id"] for b in batches for r in b.records}
    assert got == {r["id"] for r in rows if r["updated_at"] >= cut} and len(got) == 12
    calls = list_calls(sim, "/cursor/companies")
    assert calls and all("updated_since=" + cut.replace(":", "%3A") in c for c in calls)
    assert batches[-1].cursor == max(r["updated_at"] for r in rows).replace("Z", "+00:00")


def test_records_older_than_the_cursor_are_dropped_when_the_api_cannot_filter(sim: Any,
                                                                              make_connector: Callable) -> None:
    api = sim_api()
    del api["resources"]["companies"]["since"]             # the API gets no lower bound at all
    conn = make_connector(sim, variant(api, "companies", list=STYLES["none"]))
    rows = sim.sim.state.data["companies"]
    cut = sorted(r["updated_at"] for r in rows)[N - 5]
    got = [r["id"] for b in conn.read(stream(), cut) for r in b.records]
    assert sorted(got) == sorted(r["id"] for r in rows if r["updated_at"] >= cut)


def test_a_server_that_ignores_the_page_parameter_is_a_loop(sim: Any, make_connector: Callable) -> None:
    request = {"path": "/page/companies", "records": "data",
               "paging": {"style": "page", "param": "pg", "size_param": "per_page", "size": 5}}
    conn = make_connector(sim, variant(sim_api(), "companies", list=request))
    with pytest.raises(FatalError, match="paging loop: page 2 repeats page 1"):
        list(conn.read(stream(), None))


def test_a_next_link_pointing_back_is_a_loop(sim: Any, make_connector: Callable) -> None:
    request = {"path": "/link/companies", "records": "data",
               "paging": {"style": "next_link", "link_path": "links.self", "size_param": "per_page", "size": 5}}
    conn = make_connector(sim, variant(sim_api(), "companies", list=request))
    with pytest.raises(FatalError, match="paging loop"):
        list(conn.read(stream(), None))


def test_max_pages_and_a_records_path_that_is_no_list(sim: Any, make_connector: Callable) -> None:
    capped = dict(STYLES["offset"], paging={**STYLES["offset"]["paging"], "max_pages": 2})
    conn = make_connector(sim, variant(sim_api(), "companies", list=capped))
    with pytest.raises(FatalError, match=r"more than max_pages \(2\) pages"):
        list(conn.read(stream(), None))
    wrong = dict(STYLES["page"], records="meta")
    conn = make_connector(sim, variant(sim_api(), "companies", list=wrong))
    with pytest.raises(FatalError, match="records path 'meta' gives dict, not a list of records"):
        list(conn.read(stream(), None))


def test_unsorted_reads_move_the_cursor_only_with_the_last_batch(sim: Any, make_connector: Callable) -> None:
    conn = make_connector(sim, variant(sim_api(), "companies", list=STYLES["page"]))
    start = "2025-01-01T00:00:00+00:00"
    batches = list(conn.read(stream(), start))
    assert len(batches) > 2
    assert all(b.cursor == start for b in batches[:-1])      # a crash here re-reads, never skips
    assert batches[-1].cursor > start


def test_sorted_reads_move_the_cursor_with_each_batch(sim: Any, make_connector: Callable) -> None:
    api = sim_api()
    api["resources"]["companies"]["changes"] = {"path": "/page/companies", "params": {"updated_since": "{since}"},
                                                "records": "data", "sorted": True,
                                                "paging": {"style": "page", "size": 7}}
    conn = make_connector(sim, api)
    start = "2025-01-01T00:00:00+00:00"
    batches = list(conn.read(stream(), start))
    cursors = [b.cursor for b in batches]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    for batch in batches:             # each cursor is the newest change of the records handed out so far
        assert max(r["updated_at"] for r in batch.records).replace("Z", "+00:00") <= batch.cursor
