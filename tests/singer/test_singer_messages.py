"""Singer messages into batches: the cursor of a batch is always a STATE that covers all of it."""
from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.singer.messages import Reading, batches
from hub.errors import FatalError


def rec(n: int, stream: str = "customers") -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": {"id": f"C{n}"}})


def state(n: int) -> str:
    return json.dumps({"type": "STATE", "value": {"line": n}})


def run(lines: list[str], start: Any = None, size: int = 3, streams: tuple[str, ...] = ("customers",),
        reading: Reading | None = None) -> list[tuple[list[str], Any]]:
    return [([r["id"] for r in b.records], b.cursor)
            for b in batches(lines, set(streams), start, size, "legacy", reading)]


def test_a_state_closes_the_batch_it_covers() -> None:
    lines = [rec(1), rec(2), state(2), rec(3), state(3)]
    assert run(lines) == [(["C1", "C2"], {"line": 2}), (["C3"], {"line": 3})]


def test_a_full_batch_before_the_next_state_carries_the_previous_state() -> None:
    lines = [rec(1), state(1), rec(2), rec(3), rec(4), rec(5), state(5)]
    assert run(lines, start={"line": 0}) == [(["C1"], {"line": 1}), (["C2", "C3", "C4"], {"line": 1}),
                                             (["C5"], {"line": 5})]


def test_records_after_the_last_state_keep_the_previous_cursor() -> None:
    assert run([rec(1), rec(2), state(2), rec(3)]) == [(["C1", "C2"], {"line": 2}), (["C3"], {"line": 2})]
    assert run([rec(1)], start={"line": 0}) == [(["C1"], {"line": 0})]


def test_states_without_records_are_committed_once_at_the_end() -> None:
    assert run([state(1), state(2)], start={"line": 0}) == [([], {"line": 2})]
    assert run([], start={"line": 0}) == []
    assert run([rec(1), rec(2), rec(3), state(3)]) == [(["C1", "C2", "C3"], None), ([], {"line": 3})]


def test_other_streams_schemas_and_noise() -> None:
    reading = Reading()
    lines = [json.dumps({"type": "SCHEMA", "stream": "customers", "schema": {}, "key_properties": ["id"]}),
             rec(1), rec(9, "orders"), "INFO a log line on stdout", "", json.dumps({"type": "ACTIVATE_VERSION"}),
             json.dumps({"type": "RECORD", "stream": "customers", "record": "not a map"}), state(1), '{"type": "RE']
    (batch,) = batches(lines, {"customers"}, None, 3, "legacy", reading)
    assert batch.records[0] == {"id": "C1"} and batch.cursor == {"line": 1}
    # a record that is not an object is handed on as an unreadable row, for the quarantine
    assert batch.records[1] == {"__error__": "line 7 of the tap's output: a RECORD of stream 'customers' whose "
                                             "record is a string, not an object", "__line__": 7, "__raw__": lines[6]}
    assert (reading.records, reading.unreadable, reading.other_records, reading.states, reading.bad_lines) == \
        (2, 1, 1, 1, 2)
    assert reading.schemas["customers"].key_properties == ["id"]


def test_several_streams_can_feed_one_entity() -> None:
    lines = [rec(1, "a"), rec(2, "b"), rec(3, "c"), state(3)]
    assert run(lines, streams=("a", "b")) == [(["C1", "C2"], {"line": 3})]


def test_batch_messages_are_refused() -> None:
    with pytest.raises(FatalError, match="BATCH messages"):
        run([json.dumps({"type": "BATCH", "stream": "customers", "encoding": {}, "manifest": []})])


def test_records_only_under_names_not_wanted_withhold_the_state() -> None:
    schema = json.dumps({"type": "SCHEMA", "stream": "crm-public-customers", "schema": {}})
    lines = [schema, rec(1), rec(2), state(2)]
    with pytest.raises(FatalError, match="2 record.s. under stream name.s. 'customers' and none under "
                                         "'crm-public-customers'; its STATE was not saved"):
        list(batches(lines, {"crm-public-customers"}, None, 3, "legacy", selected=True))
    # without a catalog the tap sends all its streams: a declared stream with nothing new is no mistake
    assert run(lines, streams=("crm-public-customers",)) == [([], {"line": 2})]
    with pytest.raises(FatalError, match="none under 'contacts'"):
        run(lines, streams=("contacts",))
