"""A batch's source_state rows: a row already stored under the same record is updated in place (keys and
record id left alone), a re-pointed or new one is upserted, and one removed meanwhile is written again."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from sqlalchemy import Engine, bindparam, select, update

from hub.bulk import execute_many
from hub.models import SourceState
from hub.pipeline_writes import _Writes

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
ST = SourceState.__table__


def state(source_id: str, record_id: str, name: str) -> dict:
    return {"entity": "customer", "system": "erp", "source_id": source_id, "record_id": record_id,
            "values": {"name": name}, "row_hash": f"h-{name}", "raw_hash": None, "source_ts": None,
            "seen_at": NOW, "run_id": None, "written": None}


def item(source_id: str, stored_record: str | None) -> SimpleNamespace:
    return SimpleNamespace(source_id=source_id, state_record_id=stored_record)


def stored(engine: Engine) -> dict[str, tuple[str, dict]]:
    with engine.connect() as conn:
        return {r.source_id: (r.record_id, r.values)
                for r in conn.execute(select(ST.c.source_id, ST.c.record_id, ST.c["values"]))}


def test_in_place_repointed_new_and_vanished_rows_all_end_as_the_batch_left_them(migrated: Engine):
    with migrated.begin() as conn:
        conn.execute(ST.insert(), [state("S1", "R1", "old 1"), state("S2", "R2", "old 2")])
    w = _Writes()
    w.keep_state(item("S1", "R1"), state("S1", "R1", "new 1"))        # same record: in place
    w.keep_state(item("S2", "R2"), state("S2", "R9", "new 2"))        # linked elsewhere now: upserted
    w.keep_state(item("S3", "R3"), state("S3", "R3", "new 3"))        # read as stored, but gone since
    w.keep_state(item("S4", None), state("S4", "R4", "new 4"))        # first time seen
    assert w.states_in_place == {"S1", "S3"}
    with migrated.begin() as conn:
        w._write_states(conn)
    assert stored(migrated) == {"S1": ("R1", {"name": "new 1"}), "S2": ("R9", {"name": "new 2"}),
                                "S3": ("R3", {"name": "new 3"}), "S4": ("R4", {"name": "new 4"})}


def test_a_state_kept_twice_is_in_place_only_as_its_last_version_says(migrated: Engine):
    w = _Writes()
    w.keep_state(item("S1", "R1"), state("S1", "R1", "first"))
    w.keep_state(item("S1", None), state("S1", "R1", "second"))
    assert w.states_in_place == set()


def test_execute_many_returns_the_rows_matched_in_all(migrated: Engine):
    with migrated.begin() as conn:
        conn.execute(ST.insert(), [state("S1", "R1", "a"), state("S2", "R2", "b")])
    stmt = update(ST).where(ST.c.source_id == bindparam("_sid")).values(row_hash=bindparam("row_hash"))
    with migrated.begin() as conn:
        n = execute_many(conn, stmt, [{"_sid": s, "row_hash": "x"} for s in ("S1", "S2", "S3")], "test-rowcount")
    assert n == 2
