"""Paged reads lose nothing: servers that cap the page size, and records that move while a read pages.

A small API is served over real HTTP on 127.0.0.1: 120 records sorted by their change time, pages of at
most 25 (or always 20), and a hook that changes a record between two page requests.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

import pytest

from connectors.rest.connector import RestConnector
from connectors.simkit import SimServer
from hub.connector import StreamSpec

N = 120
CAP = 25
FIXED = 20
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)


def stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    """WSGI app. ``/page`` and ``/offset`` cap pages at 25 and tell the totals; ``/fixed`` serves 20 a page with
    ``has_more``; ``/bare`` and ``/bare_fixed`` tell nothing but the records. ``on_list(n)`` runs before the
    n-th list request is answered (to change records mid-read)."""

    def __init__(self) -> None:
        self.rows = [{"id": f"r{i:04d}", "name": f"Record {i}", "updated_at": stamp(EPOCH + timedelta(minutes=i))}
                     for i in range(1, N + 1)]
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self.on_list: Callable[[int], None] = lambda n: None

    def touch(self, record_id: str) -> None:
        """A change in the system: the record gets a new change time (now) and so moves to the end."""
        with self.lock:
            row = next(r for r in self.rows if r["id"] == record_id)
            row["updated_at"] = stamp(datetime.now(timezone.utc))

    def selected(self, query: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            rows = [dict(r) for r in self.rows]
        since = query.get("updated_since")
        if since:
            low = datetime.fromisoformat(since.replace("Z", "+00:00"))
            rows = [r for r in rows if datetime.fromisoformat(r["updated_at"].replace("Z", "+00:00")) >= low]
        return sorted(rows, key=lambda r: (r["updated_at"], r["id"]))

    def answer(self, route: str, query: dict[str, str]) -> Any:
        rows = self.selected(query)
        if route in ("page", "bare"):
            per = min(int(query.get("per_page", 10)), CAP)
            page = int(query.get("page", 1))
            chunk = rows[(page - 1) * per:page * per]
            if route == "bare":
                return {"data": chunk}
            return {"data": chunk, "meta": {"page": page, "total_pages": max(1, -(-len(rows) // per))}}
        if route == "offset":
            offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 10)), CAP)
            return {"items": rows[offset:offset + limit], "total": len(rows)}
        page = int(query.get("page", 1))                      # fixed and bare_fixed: the server picks the size
        chunk = rows[(page - 1) * FIXED:page * FIXED]
        if route == "bare_fixed":
            return {"data": chunk}
        return {"data": chunk, "has_more": page * FIXED < len(rows)}

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterator[bytes]:
        route = environ["PATH_INFO"].strip("/")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        with self.lock:
            self.calls.append(route)
            n = len(self.calls)
        self.on_list(n)
        body = json.dumps(self.answer(route, query)).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    app = Api()
    server = SimServer(app)
    server.thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                     daemon=True)
    server.thread.start()
    yield app, server.base_url
    server.stop()


def connector(base_url: str, request: dict[str, Any]) -> RestConnector:
    description = {"name": "paged", "auth": {"type": "none"},
                   "resources": {"items": {"key": "id", "updated_at": "updated_at", "list": request,
                                           "since": {"param": "updated_since"}}}}
    return RestConnector("api", {"api": description, "base_url": base_url, "backoff": 0.01})


def stream() -> StreamSpec:
    return StreamSpec(entity="customer", source="items", key="id", updated_at="updated_at", batch_size=50,
                      run_started_at=datetime.now(timezone.utc))


def read_ids(conn: RestConnector, cursor: Any = None) -> tuple[list[str], Any]:
    batches = list(conn.read(stream(), cursor))
    return [r["id"] for b in batches for r in b.records], batches[-1].cursor


ALL = [f"r{i:04d}" for i in range(1, N + 1)]

CAPPED = {   # the description asks 100 a page; the server answers 25 (20 for `fixed`) and says there is more
    "page_total_pages": ({"path": "/page", "records": "data",
                          "paging": {"style": "page", "size": 100, "total_pages_path": "meta.total_pages"}}, 5),
    "offset_total": ({"path": "/offset", "records": "items",
                      "paging": {"style": "offset", "size": 100, "total_path": "total"}}, 5),
    "page_has_more": ({"path": "/fixed", "records": "data",
                       "paging": {"style": "page", "size_param": None, "has_more_path": "has_more"}}, 6),
    # nothing tells the end: a page shorter than an earlier one ends the read, else an empty page
    "page_no_signal_capped": ({"path": "/bare", "records": "data", "paging": {"style": "page", "size": 100}}, 5),
    "page_no_signal_server_size": ({"path": "/bare_fixed", "records": "data",
                                    "paging": {"style": "page", "size_param": None}}, 7),
}


@pytest.mark.parametrize("case", list(CAPPED))
def test_a_server_that_caps_the_page_size_is_read_to_the_end(case: str, api: tuple[Api, str]) -> None:
    app, url = api
    request, pages = CAPPED[case]
    conn = connector(url, request)
    try:
        ids, _ = read_ids(conn)
    finally:
        conn.close()
    assert sorted(ids) == ALL
    assert len(app.calls) == pages


def test_a_full_first_page_still_ends_at_the_first_short_page(api: tuple[Api, str]) -> None:
    app, url = api
    conn = connector(url, {"path": "/bare", "records": "data", "paging": {"style": "page", "size": 25}})
    try:
        ids, _ = read_ids(conn)
    finally:
        conn.close()
    assert sorted(ids) == ALL and len(app.calls) == 5        # 25 x 4 + 20: no extra empty page


MOVING = {
    "offset": {"path": "/offset", "records": "items", "paging": {"style": "offset", "size": 25, "total_path": "total"}},
    "page": {"path": "/page", "records": "data",
             "paging": {"style": "page", "size": 25, "total_pages_path": "meta.total_pages"}},
}
START = "2024-12-31T00:00:00+00:00"


@pytest.mark.parametrize("style", list(MOVING))
def test_a_record_changed_between_two_pages_costs_no_other_record(style: str, api: tuple[Api, str]) -> None:
    app, url = api
    # while page 2 is asked for, r0005 changes and moves to the end: r0026 slides onto the page already read
    app.on_list = lambda n: app.touch("r0005") if n == 2 else None
    conn = connector(url, MOVING[style])
    try:
        first, cursor = read_ids(conn, START)
        app.on_list = lambda n: None
        second, _ = read_ids(conn, cursor)
    finally:
        conn.close()
    assert "r0026" in first                        # read again in the same run
    assert sorted(set(first) | set(second)) == ALL
    assert first.count("r0005") == 2               # its old and its new version, as before


def test_a_read_disturbed_twice_holds_the_cursor_so_the_next_run_reads_again(api: tuple[Api, str]) -> None:
    app, url = api
    app.on_list = lambda n: app.touch({2: "r0005", 7: "r0010"}.get(n, "")) if n in (2, 7) else None
    conn = connector(url, MOVING["offset"])
    try:
        batches = list(conn.read(stream(), START))
        app.on_list = lambda n: None
        again, _ = read_ids(conn, batches[-1].cursor)
    finally:
        conn.close()
    assert batches[-1].cursor == START
    assert sorted(set(again)) == ALL


def test_an_undisturbed_read_asks_each_page_once_and_moves_the_cursor(api: tuple[Api, str]) -> None:
    app, url = api
    conn = connector(url, MOVING["offset"])
    try:
        ids, cursor = read_ids(conn, START)
    finally:
        conn.close()
    assert sorted(ids) == ALL and len(app.calls) == 5
    assert cursor == app.rows[-1]["updated_at"].replace("Z", "+00:00")
