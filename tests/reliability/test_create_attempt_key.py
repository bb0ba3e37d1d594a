"""The key a create goes under, and whether it may have been sent: the first attempt's, also when that
attempt was given up on (dead, dropped) or retried by a steward, so a system's idempotency finds what it
made (YonBIP's resubmitCheckKey answers with that record; K3Cloud looks the record up)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select

from hub import outbox
from hub.models import Outbox, Xref
from hub.push_claim import _create_attempts

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
OT = Outbox.__table__


def row(n: int, status: str, attempts: int = 0, minutes: int = 0, **extra) -> dict:  # noqa: ANN003
    at = T0 + timedelta(minutes=minutes)
    return {"id": f"O{n}", "connector": "yy", "entity": "customer", "record_id": "R1", "operation": "upsert",
            "fields": {"name": f"v{n}"}, "idempotency_key": f"K{n}", "status": status, "attempts": attempts,
            "next_attempt_at": at, "last_error": "timed out" if attempts else None, "run_id": None,
            "claimed_by": None, "claimed_until": None, "created_at": at, "updated_at": at, **extra}


def attempts_for(engine: Engine, claimed: str) -> tuple[str, datetime | None]:
    with engine.connect() as conn:
        group = [dict(r) for r in conn.execute(select(OT).where(OT.c.id == claimed)).mappings()]
        return _create_attempts(conn, "yy", "customer", {"R1": group})["R1"]


def test_a_later_change_goes_under_the_key_of_a_create_given_up_on_after_it_may_have_landed(migrated: Engine):
    with migrated.begin() as conn:
        conn.execute(OT.insert(), [row(1, "dead", attempts=5), row(2, "dropped", attempts=1, minutes=1),
                                   row(3, "pending", minutes=2)])
    assert attempts_for(migrated, "O3") == ("K1", T0)


def test_rows_given_up_on_that_never_went_out_do_not_count(migrated: Engine):
    with migrated.begin() as conn:   # dead without an attempt (a record gone, a delete, a recreate for a steward)
        conn.execute(OT.insert(), [row(1, "dead"), row(2, "dead", minutes=1, operation="delete", attempts=2),
                                   row(3, "pending", minutes=2)])
    assert attempts_for(migrated, "O3") == ("K3", None)


def test_a_steward_s_retry_keeps_that_the_create_may_have_landed(migrated: Engine):
    with migrated.begin() as conn:
        conn.execute(OT.insert(), [row(1, "dead", attempts=5)])
        outbox.retry(conn, "O1")
    with migrated.connect() as conn:
        retried = conn.execute(select(OT.c.status, OT.c.attempts, OT.c.tried).where(OT.c.id == "O1")).one()
    assert tuple(retried) == ("pending", 0, True)
    assert attempts_for(migrated, "O1") == ("K1", T0)


def test_rows_from_before_the_record_was_last_written_or_unlinked_there_do_not_count(migrated: Engine):
    with migrated.begin() as conn:
        conn.execute(OT.insert(), [row(1, "dead", attempts=5), row(2, "done", attempts=1, minutes=1),
                                   row(3, "dead", attempts=2, minutes=2), row(4, "pending", minutes=4)])
        conn.execute(Xref.__table__.insert(), [{
            "id": "X1", "entity": "customer", "system": "yy", "source_id": "Y1", "record_id": "R1",
            "status": "deleted", "created_at": T0, "updated_at": T0 + timedelta(minutes=3)}])
    # O1 came before the write that landed (O2), O3 while the record was linked there (an update)
    assert attempts_for(migrated, "O4") == ("K4", None)
