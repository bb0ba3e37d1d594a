"""The singer connector with a scripted tap (a real subprocess): state, catalogs, failures, kills."""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from singer_helpers import FAKE_TAP, write_customers

from connectors.singer.connector import SingerConnector
from hub.connector import StreamSpec, WriteChange
from hub.errors import ConfigError, FatalError
from hub.secrets import Secret


def stream(source: str = "customers", size: int = 4, **options: Any) -> StreamSpec:
    return StreamSpec(entity="customer", source=source, key="id", updated_at="updated_at", batch_size=size,
                      options=options)


def ids(batches: list) -> list[str]:
    return [r["id"] for b in batches for r in b.records]


def runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(f"{path}.runs").read_text(encoding="utf-8").splitlines()]


def test_read_resumes_from_the_state_it_was_given(tmp_path: Path, make_fake: Callable) -> None:
    data = write_customers(tmp_path / "customers.jsonl", 23)
    conn = make_fake(tmp_path, {"streams": {"customers": str(data)}, "state_every": 5})
    first = list(conn.read(stream(), None))
    assert ids(first) == [f"C{i:05d}" for i in range(1, 24)]
    assert first[-1].cursor == {"bookmarks": {"customers": {"line": 23}}}
    assert all(len(b.records) <= 4 for b in first)
    write_customers(tmp_path / "more.jsonl", 4, start=24)
    with data.open("a", encoding="utf-8") as fh:
        fh.write((tmp_path / "more.jsonl").read_text(encoding="utf-8"))
    later = list(conn.read(stream(), first[-1].cursor))
    assert ids(later) == ["C00024", "C00025", "C00026", "C00027"]
    assert runs(data)[-1] == {"bookmarks": {"customers": {"line": 23}}}     # --state was the committed cursor
    assert conn.last_reading.states == 2 and conn.process.returncode == 0


def test_only_the_entitys_streams_are_selected(tmp_path: Path, make_fake: Callable) -> None:
    customers = write_customers(tmp_path / "customers.jsonl", 6)
    orders = write_customers(tmp_path / "orders.jsonl", 9, start=100)
    conn = make_fake(tmp_path, {"streams": {"customers": str(customers), "orders": str(orders)}},
                     streams={"customers": "customer", "orders": "order"})
    assert ids(list(conn.read(stream("anything"), None))) == [f"C{i:05d}" for i in range(1, 7)]
    assert conn.last_reading.other_records == 0               # the catalog deselected orders
    assert conn.check().detail == "fake_tap.py discovered 2 stream(s): customers, orders"
    assert conn.check().ok
    with pytest.raises(ConfigError, match="the tap offers no stream 'contacts'; it offers: customers, orders"):
        list(make_fake(tmp_path, {"streams": {"customers": str(customers), "orders": str(orders)}}).read(
            stream("contacts"), None))


def test_without_a_catalog_other_streams_are_read_and_dropped(tmp_path: Path, make_fake: Callable) -> None:
    customers = write_customers(tmp_path / "customers.jsonl", 3)
    orders = write_customers(tmp_path / "orders.jsonl", 2, start=100)
    conn = make_fake(tmp_path, {"streams": {"customers": str(customers), "orders": str(orders)}}, catalog="none")
    assert ids(list(conn.read(stream(), None))) == ["C00001", "C00002", "C00003"]
    assert conn.last_reading.other_records == 2
    assert "catalog: none" in conn.check().detail


def test_a_failing_tap_stops_the_stream_with_its_stderr_and_no_secret(tmp_path: Path, make_fake: Callable) -> None:
    data = write_customers(tmp_path / "customers.jsonl", 30)
    conn = make_fake(tmp_path, {"streams": {"customers": str(data)}, "state_every": 5, "fail_after": 12,
                                "fail_message": "psql: connection refused", "password": Secret("hunter2-pw")})
    got: list = []
    with pytest.raises(FatalError) as err:
        for batch in conn.read(stream(), None):
            got.append(batch)
    message = str(err.value)
    assert "fake_tap.py exited with code 3" in message and "psql: connection refused" in message
    assert "hunter2-pw" not in message and "fake tap starting with secret ***" in message
    # records before the failure are still handed out, the last ones with the state that precedes them
    assert ids(got) == [f"C{i:05d}" for i in range(1, 13)]
    assert got[-1].cursor == {"bookmarks": {"customers": {"line": 10}}}


def test_a_killed_tap_is_reported_and_a_consumer_that_stops_ends_the_tap(tmp_path: Path,
                                                                         make_fake: Callable) -> None:
    data = write_customers(tmp_path / "customers.jsonl", 40)
    conn = make_fake(tmp_path, {"streams": {"customers": str(data)}, "state_every": 4, "pause": 0.2})
    reader = conn.read(stream(), None)
    first = next(reader)
    conn.process.send_signal(signal.SIGKILL)
    with pytest.raises(FatalError, match="was killed by signal 9"):
        list(reader)
    assert ids([first]) == ["C00001", "C00002", "C00003", "C00004"]
    reader = conn.read(stream(), None)
    next(reader)
    reader.close()                                         # the sync stopped early: the tap must not linger
    assert conn.process.poll() is not None


def test_tap_and_config_options(tmp_path: Path, make_fake: Callable) -> None:
    data = write_customers(tmp_path / "customers.jsonl", 2)
    (tmp_path / "tap.json").write_text(json.dumps({"streams": {"customers": "customers.jsonl"}}), encoding="utf-8")
    conn = SingerConnector("legacy", {"command": f"{sys.executable} {FAKE_TAP}",
                                      "config_file": "tap.json"}, base_dir=str(tmp_path))
    assert ids(list(conn.read(stream(), None))) == ["C00001", "C00002"]    # relative paths: triad.yaml's folder
    assert data.exists()
    with pytest.raises(ConfigError, match="tap executable 'tap-nowhere' not found"):
        SingerConnector("legacy", {"tap": "tap-nowhere"})
    with pytest.raises(ConfigError, match="give `tap: <executable>`"):
        SingerConnector("legacy", {})
    with pytest.raises(ConfigError, match="streams.customers: expected an entity"):
        SingerConnector("legacy", {"tap": sys.executable, "streams": {"customers": "client"}})


def test_a_tap_that_cannot_discover_fails_the_check(tmp_path: Path, make_fake: Callable) -> None:
    conn = make_fake(tmp_path, {"no_streams_key": True})
    result = conn.check()
    assert not result.ok and "exited with code 1" in result.detail and "KeyError" in result.detail


def test_writes_are_refused(tmp_path: Path, make_fake: Callable) -> None:
    conn = make_fake(tmp_path, {"streams": {}})
    (result,) = conn.write(stream(), [WriteChange("c1", "r1", None, {"name": "x"})])
    assert not result.ok and "only reads" in result.error and conn.directions == ("in",)
