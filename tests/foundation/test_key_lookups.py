"""`hub.sqlutil.key_parts` / `among`: a batch's keys looked up in parts (SQLite's bound-parameter limit) or
as one array parameter (PostgreSQL); either way every key is found once, and only those."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, select

from hub.models import Xref
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
