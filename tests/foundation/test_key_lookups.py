"""`hub.sqlutil.key_parts` / `among`: a batch's keys looked up in parts (SQLite's bound-parameter limit) or
as one array parameter (PostgreSQL); either way every key is found once, and only those."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, event, select

from hub.models import Conflict, Quarantine, Xref
from hub.open_conflicts import open_fields
from hub.quarantine import QuarantineWriter
from hub.sqlutil import IN_CHUNK, among, key_parts

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
XT = Xref.__table__


def test_every_key_of_a_batch_larger_than_a_chunk_is_found_once(migrated: Engine):
    n = 2 * IN_CHUNK + 7
    with migrated.begin() as conn:
        conn.execute(XT.insert(), [{"id": f"X{i:025d}", "entity": "customer", "system": "erp",
                                    "source_id": f"C{i}", "record_id": f"R{i:025d}", "status": "active",
                                    "created_at": NOW, "updated_at": NOW} for i in range(n + 50)])
    wanted = sorted(f"C{i}" for i in range(n)) + ["nope", "C'; --"]
    with migrated.connect() as conn:
        parts = list(key_parts(conn, wanted))
        found = [r.source_id for part in parts
                 for r in conn.execute(select(XT.c.source_id).where(among(conn, XT.c.source_id, part)))]
        assert sorted(found) == sorted(f"C{i}" for i in range(n))
        assert len(parts) == (1 if conn.dialect.name == "postgresql" else 3)
        assert list(key_parts(conn, [])) == []


def test_a_key_longer_than_the_column_matches_nothing_not_its_first_characters(migrated: Engine):
    stored = "C" + "x" * 254      # as long as xref.source_id holds
    with migrated.begin() as conn:
        conn.execute(XT.insert(), [{"id": "X1", "entity": "customer", "system": "erp", "source_id": stored,
                                    "record_id": "R1", "status": "active", "created_at": NOW, "updated_at": NOW}])
    with migrated.connect() as conn:
        for keys in ([stored + "y"], [stored]):
            found = [r.source_id for part in key_parts(conn, keys)
                     for r in conn.execute(select(XT.c.source_id).where(among(conn, XT.c.source_id, part)))]
            assert found == ([] if keys[0] != stored else [stored])


def _statements(conn) -> list[str]:   # noqa: ANN001
    """The SELECT and UPDATE statements ``conn`` runs from now on (not BEGIN)."""
    seen: list[str] = []
    event.listen(conn, "before_cursor_execute",
                 lambda *a: seen.append(a[2]) if a[2].lstrip().startswith(("SELECT", "UPDATE")) else None)
    return seen


def test_open_conflict_fields_of_a_large_batch_in_one_statement_on_postgresql(migrated: Engine):
    n = 2 * IN_CHUNK + 7
    ct = Conflict.__table__
    with migrated.begin() as conn:
        conn.execute(ct.insert(), [{"id": f"K{i:025d}", "entity": "customer", "record_id": f"R{i:025d}",
                                    "field": "phone", "status": "open" if i % 3 else "resolved", "rule": "manual",
                                    "values": {"erp": "1", "crm": "2"}, "timestamps": {}, "created_at": NOW}
                                   for i in range(n + 20)])
    wanted = [f"R{i:025d}" for i in range(n)] + ["nope"]
    with migrated.connect() as conn:
        seen = _statements(conn)
        found = open_fields(conn, "customer", wanted)
    assert found == {f"R{i:025d}": {"phone"} for i in range(n) if i % 3}
    assert len(seen) == (1 if migrated.dialect.name == "postgresql" else 3)


def test_parked_rows_of_a_large_batch_are_superseded_in_one_statement_on_postgresql(migrated: Engine):
    n = 2 * IN_CHUNK + 7
    qt = Quarantine.__table__
    with migrated.begin() as conn:
        conn.execute(qt.insert(), [{"id": f"Q{i:025d}", "connector": "erp", "entity": "customer",
                                    "source_id": f"C{i}", "raw_hash": f"{i:032d}", "kind": "validation",
                                    "raw": {"id": f"C{i}"}, "reasons": [], "status": "parked", "attempts": 0,
                                    "run_id": "RUN-EARLIER", "created_at": NOW, "updated_at": NOW}
                                   for i in range(n + 20)])
    with migrated.begin() as conn:
        seen = _statements(conn)
        writer = QuarantineWriter(conn, "erp", "customer", "RUN-NOW", NOW)
        writer.supersede([f"C{i}" for i in range(n)] + ["nope"], keep={f"Q{i:025d}" for i in range(n, n + 5)})
    with migrated.connect() as conn:
        parked = {r.source_id for r in conn.execute(select(qt.c.source_id).where(qt.c.status == "parked"))}
    assert parked == {f"C{i}" for i in range(n + 5, n + 20)}
    assert len(seen) == (2 if migrated.dialect.name == "postgresql" else 4)
