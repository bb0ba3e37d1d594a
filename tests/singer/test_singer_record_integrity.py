"""No record of a tap is lost: stream names either way round, and RECORDs that are not objects.

The hub's own sync (hub.sync.run_sync, the code behind `triad sync run`) drives the scripted tap
(a real subprocess) into a real SQLite store.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from singer_helpers import CUSTOMER_MAPPING, FAKE_TAP, query, sync_here, write_customers


MAPPING = CUSTOMER_MAPPING
TAP_STREAM_ID = "crm-public-customers"       # what `connectors check` lists; RECORDs say "customers"


def sync(root: Path, tap: dict[str, Any], **legacy: Any) -> Any:
    (root / "legacy_customer.yaml").write_text(MAPPING, encoding="utf-8")
    (root / "triad.yaml").write_text(json.dumps({
        "store": {"url": "sqlite:///hub.db"},
        "connectors": {"legacy": {"type": "singer", "direction": "in", "batch_size": 7,
                                  "command": [sys.executable, str(FAKE_TAP)], "config": tap,
                                  "entities": {"customer": {"mapping": "legacy_customer.yaml"}}, **legacy}}}),
        encoding="utf-8")
    return sync_here(root)


def saved_cursor(root: Path) -> Any:
    rows = query(root, "select cursor from stream_state where connector='legacy'")
    cursor = rows[0][0] if rows else None
    return json.loads(cursor) if isinstance(cursor, str) else cursor


def codes(root: Path) -> list[str]:
    return [r[0] for r in query(root, "select code from customer order by code")]


def starts(data: Path) -> list[dict]:
    return [json.loads(line) for line in Path(f"{data}.runs").read_text(encoding="utf-8").splitlines()]


def test_a_stream_named_by_its_tap_stream_id_reads_the_records_labelled_by_its_stream_name(
        tmp_path: Path) -> None:
    data = write_customers(tmp_path / "customers.jsonl", 30)
    tap = {"streams": {TAP_STREAM_ID: str(data)}, "stream_names": {TAP_STREAM_ID: "customers"}}
    report = sync(tmp_path, tap, streams={TAP_STREAM_ID: "customer"})
    assert report.status == "ok", report.error
    assert report.counts["read"] == 30 and report.counts["created"] == 30
    assert codes(tmp_path) == [f"C{i:05d}" for i in range(1, 31)]
    assert saved_cursor(tmp_path) == {"bookmarks": {TAP_STREAM_ID: {"line": 30}}}


def test_records_only_under_other_names_fail_the_stream_and_the_state_is_not_saved(tmp_path: Path) -> None:
    # without a catalog nothing tells Triad that the tap labels crm-public-customers' records "customers"
    data = write_customers(tmp_path / "customers.jsonl", 30)
    tap = {"streams": {TAP_STREAM_ID: str(data)}, "stream_names": {TAP_STREAM_ID: "customers"}}
    wrong = sync(tmp_path, tap, catalog="none", streams={TAP_STREAM_ID: "customer"})
    assert wrong.status == "error"
    assert "30 record(s) under stream name(s) 'customers'" in wrong.error
    assert f"none under '{TAP_STREAM_ID}'" in wrong.error and "not saved" in wrong.error
    assert saved_cursor(tmp_path) is None and codes(tmp_path) == []

    fixed = sync(tmp_path, tap, catalog="none", streams={"customers": "customer"})
    assert fixed.status == "ok", fixed.error
    assert starts(data) == [{}, {}]                  # the corrected run starts from the beginning
    assert fixed.counts["read"] == 30 and len(codes(tmp_path)) == 30


def test_a_record_that_is_not_an_object_is_quarantined_with_its_line(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    data = write_customers(tmp_path / "customers.jsonl", 10)
    lines = data.read_text(encoding="utf-8").splitlines()
    lines[3] = json.dumps([json.loads(lines[3])])                  # C00004 inside a list
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        report = sync(tmp_path, {"streams": {"customers": str(data)}, "state_every": 5},
                      streams={"customers": "customer"})
    assert report.status == "ok", report.error
    assert report.counts["read"] == 10 and report.counts["quarantined"] == 1
    assert codes(tmp_path) == [f"C{i:05d}" for i in (1, 2, 3, 5, 6, 7, 8, 9, 10)]
    ((kind, raw, reasons),) = query(tmp_path, "select kind, raw, reasons from quarantine")
    raw, reasons = json.loads(raw), json.loads(reasons)
    assert kind == "read" and raw["__line__"] == 5      # the SCHEMA is line 1 of the tap's output
    assert json.loads(raw["__raw__"])["record"][0]["id"] == "C00004"
    assert "record is a list, not an object" in reasons[0]["message"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("line 5" in w and "not an object" in w for w in warnings)
    assert saved_cursor(tmp_path) == {"bookmarks": {"customers": {"line": 10}}}
