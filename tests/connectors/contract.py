"""The contract every connector type passes (SPEC section 7, STYLE 12).

A connector's test module subclasses :class:`ConnectorContract` and provides
four fixtures; the base class's tests then run against that connector::

    # tests/connectors/test_<type>_contract.py   (this folder: `contract` is importable by name)
    import pytest
    from contract import ConnectorContract

    class TestSalesforceContract(ConnectorContract):
        @pytest.fixture
        def connector(self):          # against the simulator: with SimServer(create_app(opts)) as srv: ...
            ...                       # yield the connector, close it afterwards
        @pytest.fixture
        def stream(self):             # a StreamSpec for one entity; batch_size small enough for >= 3 batches
            ...
        @pytest.fixture
        def seed_change(self):        # a callable: change one record in the system, stamped "now" as the
            ...                       # system would; return its key (the system's id, as read() gives it)
        @pytest.fixture
        def new_change(self):         # a WriteChange with source_id None and no key value in `values`
            ...

``tests/connectors`` has no ``__init__.py`` on purpose: pytest puts the folder
on ``sys.path``, so ``contract`` (and ``sqlfixtures``) import by name, and a
package named ``connectors`` here would shadow the real one.

Optional fixtures: ``bad_change`` (a change the system refuses; without it the
per-record error test is skipped), ``readback_stream`` (where written records
show up when that is not ``stream``, e.g. the file connector's outbox).
Optional hooks: ``cursor_time(cursor)`` for cursors that are neither an ISO
string nor a dict with an ISO ``ts``; ``update_field`` names the field the
update test changes (default: the first text value of ``new_change``).
Salesforce, SAP, Kingdee and Yonyou connectors plug in the same way, each with
its simulator served by ``connectors.simkit.SimServer`` inside ``connector``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, ClassVar

import pytest

from hub.connector import Batch, Connector, StreamSpec, WriteChange

ERROR_KEY = "__error__"


def read_all(connector: Connector, stream: StreamSpec, cursor: Any = None) -> list[Batch]:
    """Every batch of one read."""
    return list(connector.read(stream, cursor))


def good_records(batches: list[Batch]) -> list[dict[str, Any]]:
    return [r for b in batches for r in b.records if ERROR_KEY not in r]


def final_cursor(batches: list[Batch], start: Any = None) -> Any:
    return batches[-1].cursor if batches else start


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class ConnectorContract:
    """Tests shared by all connector types; subclasses provide the fixtures named above."""

    update_field: ClassVar[str | None] = None

    # ---- optional fixtures and hooks -------------------------------------------------------------

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        pytest.skip("this connector's tests give no bad_change fixture")

    @pytest.fixture
    def readback_stream(self, stream: StreamSpec) -> StreamSpec:
        return stream

    def cursor_time(self, cursor: Any) -> datetime | None:
        """The point in time a cursor stands for (None when it holds none)."""
        value = cursor.get("ts") if isinstance(cursor, dict) else cursor
        if value is None:
            return None
        dt = datetime.fromisoformat(str(value))
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)

    def key_of(self, stream: StreamSpec, record: dict[str, Any]) -> str:
        return str(record[stream.key])

    def field_to_update(self, stream: StreamSpec, change: WriteChange) -> str:
        if self.update_field:
            return self.update_field
        for name, value in change.values.items():
            if name not in (stream.key, stream.updated_at) and isinstance(value, str) and value:
                return name
        raise AssertionError("new_change has no text value to update; set update_field")

    def _read_back(self, connector: Connector, stream: StreamSpec, source_id: str) -> dict[str, Any] | None:
        found = None
        for record in good_records(read_all(connector, stream)):
            if self.key_of(stream, record) == source_id:
                found = record          # the last one wins where a system keeps history (files)
        return found

    # ---- the contract ----------------------------------------------------------------------------

    def test_check_ok(self, connector: Connector) -> None:
        result = connector.check()
        assert result.ok, result.detail
        assert isinstance(result.detail, str) and result.detail

    def test_read_is_lazy(self, connector: Connector, stream: StreamSpec) -> None:
        batches = connector.read(stream, None)
        assert isinstance(batches, Iterator), "read() must yield batches, not return a list"
        first = next(batches)
        assert isinstance(first, Batch)
        close = getattr(batches, "close", None)
        if close:
            close()

    def test_full_read_batches_and_keys(self, connector: Connector, stream: StreamSpec) -> None:
        batches = read_all(connector, stream)
        assert all(len(b.records) <= stream.batch_size for b in batches)
        assert not [r for b in batches for r in b.records if ERROR_KEY in r]
        keys = [self.key_of(stream, r) for r in good_records(batches)]
        assert len(keys) > 2 * stream.batch_size, "the stream fixture must hold at least 3 batches of data"
        assert len(keys) == len(set(keys)), "a full read must give every key exactly once"

    def test_cursor_json_and_never_past_run_start(self, connector: Connector, stream: StreamSpec,
                                                   seed_change: Callable[[], str]) -> None:
        cursor = final_cursor(read_all(connector, replace(stream, run_started_at=now_utc())))
        started = now_utc() - timedelta(hours=1)     # the run "started" before the change below
        key = seed_change()
        batches = read_all(connector, replace(stream, run_started_at=started), cursor)
        assert key in {self.key_of(stream, r) for r in good_records(batches)}, \
            "a change after the run started is still read (only the cursor stops at the start)"
        for batch in batches:
            assert json.loads(json.dumps(batch.cursor)) == batch.cursor
            at = self.cursor_time(batch.cursor)
            assert at is None or at <= started, f"cursor {batch.cursor} is past the run start {started}"

    def test_final_cursor_reads_nothing_new(self, connector: Connector, stream: StreamSpec) -> None:
        first = read_all(connector, replace(stream, run_started_at=now_utc()))
        seen = {self.key_of(stream, r): r for r in good_records(first)}
        again = good_records(read_all(connector, replace(stream, run_started_at=now_utc()), final_cursor(first)))
        assert len(again) < len(seen)
        for record in again:            # only the boundary (closed lower bound), unchanged
            assert record == seen[self.key_of(stream, record)]

    def test_change_after_cursor_is_read(self, connector: Connector, stream: StreamSpec,
                                         seed_change: Callable[[], str]) -> None:
        first = read_all(connector, replace(stream, run_started_at=now_utc()))
        before = {self.key_of(stream, r): r for r in good_records(first)}
        key = seed_change()
        later = good_records(read_all(connector, replace(stream, run_started_at=now_utc() + timedelta(seconds=1)),
                                      final_cursor(first)))
        changed = [r for r in later if self.key_of(stream, r) == key]
        assert changed, f"the changed record {key} was not read incrementally"
        assert changed[-1] != before[key]
        assert len(later) < len(before)

    def test_write_create_then_read(self, connector: Connector, readback_stream: StreamSpec,
                                    new_change: WriteChange) -> None:
        (result,) = connector.write(readback_stream, [new_change])
        assert result.change_id == new_change.change_id
        assert result.ok, result.error
        assert result.source_id
        record = self._read_back(connector, readback_stream, result.source_id)
        assert record is not None, f"created record {result.source_id} not found by read()"
        name = self.field_to_update(readback_stream, new_change)
        assert record[name] == new_change.values[name]

    def test_write_update_changes_record(self, connector: Connector, readback_stream: StreamSpec,
                                         new_change: WriteChange) -> None:
        (created,) = connector.write(readback_stream, [new_change])
        assert created.ok, created.error
        name = self.field_to_update(readback_stream, new_change)
        new_value = f"{new_change.values[name]} (updated)"
        update = replace(new_change, change_id=f"{new_change.change_id}-u", source_id=created.source_id,
                         values={**new_change.values, name: new_value})
        (result,) = connector.write(readback_stream, [update])
        assert result.ok, result.error
        assert result.source_id == created.source_id
        record = self._read_back(connector, readback_stream, created.source_id)
        assert record is not None and record[name] == new_value

    def test_write_errors_reported_per_record(self, connector: Connector, readback_stream: StreamSpec,
                                              new_change: WriteChange, bad_change: WriteChange) -> None:
        good = [replace(new_change, change_id=f"{new_change.change_id}-{i}", record_id=f"{new_change.record_id}{i}")
                for i in (1, 2)]
        results = connector.write(readback_stream, [good[0], bad_change, good[1]])
        assert [r.change_id for r in results] == [good[0].change_id, bad_change.change_id, good[1].change_id]
        assert results[0].ok and results[2].ok, (results[0].error, results[2].error)
        assert not results[1].ok and results[1].error
        for r in (results[0], results[2]):
            assert self._read_back(connector, readback_stream, r.source_id) is not None
