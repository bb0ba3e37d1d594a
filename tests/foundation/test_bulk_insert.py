"""`hub.bulk.insert_many`: new rows as one COPY on PostgreSQL, an executemany elsewhere; the same values either
way, the same errors as SQLAlchemy raises, and part of the caller's transaction."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from hub.bulk import insert_many
from hub.models import Customer, Outbox, Xref

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
AWKWARD = "tab\there\nnew line \\ back\\slash, \"quotes\" 'single' \\N 上海市测试路1号 ✓"


@pytest.fixture
def engine(migrated: Engine) -> Engine:
    return migrated


def xref(n: int, source_id: str) -> dict:
    return {"id": f"X{n:025d}", "entity": "customer", "system": "erp", "source_id": source_id,
            "record_id": f"R{n:025d}", "status": "active", "created_at": NOW, "updated_at": NOW}


def test_awkward_text_json_numbers_and_times_come_back_as_given(engine: Engine):
    customers = [{"id": f"R{n:025d}", "code": f"C{n}", "name": AWKWARD if n == 1 else f"Company {n}",
                  "credit_limit": Decimal("1234.50") if n == 1 else None, "provenance": {"*": ["erp", AWKWARD]},
                  "updated_at": NOW, "version": 1, "deleted_in": None, "merged_into": None} for n in range(3)]
    outbox = [{"id": "O1", "connector": "crm", "entity": "customer", "record_id": "R1", "operation": "upsert",
               "fields": {"name": AWKWARD, "lines": [{"line_no": 1, "note": None}]}, "idempotency_key": "O1",
               "status": "pending", "attempts": 0, "next_attempt_at": NOW, "last_error": None, "run_id": None,
               "claimed_by": None, "claimed_until": None, "created_at": NOW, "updated_at": NOW}]
    with engine.begin() as conn:
        insert_many(conn, Customer.__table__, customers, "test-customers")
        insert_many(conn, Xref.__table__, [xref(1, AWKWARD)], "test-xref")
        insert_many(conn, Outbox.__table__, outbox, "test-outbox")
    ct, ot, xt = Customer.__table__, Outbox.__table__, Xref.__table__
    with engine.connect() as conn:
        got = conn.execute(select(ct.c.name, ct.c.credit_limit, ct.c.provenance, ct.c.updated_at, ct.c.deleted_in)
                           .where(ct.c.id == customers[1]["id"])).one()
        assert got.name == AWKWARD and got.credit_limit == Decimal("1234.50")
        assert got.provenance == {"*": ["erp", AWKWARD]} and got.updated_at == NOW and got.deleted_in is None
        assert conn.scalar(select(ct.c.credit_limit).where(ct.c.id == customers[0]["id"])) is None
        assert conn.scalar(select(xt.c.source_id)) == AWKWARD
        assert conn.scalar(select(ot.c.fields)) == {"name": AWKWARD, "lines": [{"line_no": 1, "note": None}]}


def test_a_duplicate_key_is_sqlalchemys_integrity_error_and_the_transaction_keeps_nothing(engine: Engine):
    with engine.begin() as conn:
        insert_many(conn, Xref.__table__, [xref(1, "C1")], "test-xref")
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            insert_many(conn, Xref.__table__, [xref(2, "C2")], "test-xref")
            insert_many(conn, Xref.__table__, [xref(3, "C1")], "test-xref")   # (entity, system, source_id) again
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(Xref.__table__.c.source_id))) == ["C1"]


def test_rows_inserted_first_thing_on_a_connection_are_kept_by_its_commit(engine: Engine):
    """The COPY goes to the driver's connection; the rows still belong to the SQLAlchemy transaction it
    begins, so `commit()` keeps them (on a connection that had run nothing yet, it had none to commit)."""
    with engine.connect() as conn:
        insert_many(conn, Xref.__table__, [xref(1, "C1")], "test-xref")
        conn.commit()
    with engine.connect() as conn:
        assert list(conn.scalars(select(Xref.__table__.c.source_id))) == ["C1"]
