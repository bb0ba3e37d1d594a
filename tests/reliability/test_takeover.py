"""Leases and outbox claims name their holder ``host:pid``: one held by a process of this host that no
longer exists is taken over at once, one held by a live process (or another host) only when it runs out;
a worker whose lease was taken over commits nothing more; a record's outbox rows go to one worker at a
time, also when two claims race."""
from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from typing import Iterator

import pytest
from sqlalchemy import Engine, insert, select, update

from hub.errors import RetriableError
from hub.liveness import dead_here, this_host, worker_id
from hub.models import Outbox, StreamState
from hub.push import CLAIM, _claim, _claim_ids
from hub.sync import _renew_lease, _take_lease
from hub.types import new_id, utcnow


@pytest.fixture
def pids() -> Iterator[tuple[int, int]]:
    """(a pid that has exited, the pid of a live process), both children of this test."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield gone.pid, alive.pid
    finally:
        alive.kill()
        alive.wait()


def holder(pid: int, role: str | None = None) -> str:
    return f"{this_host()}:{pid}" + (f":{role}" if role else "")


def test_holder_names(pids: tuple[int, int]):
    gone, alive = pids
    assert dead_here(holder(gone)) and dead_here(holder(gone, "sweep"))
    assert not dead_here(holder(alive)) and not dead_here(worker_id())
    # another host (or another pid namespace under the same name), or no pid at all: only expiry frees it
    assert not dead_here(f"elsewhere:{gone}") and not dead_here(f"{this_host()}x:{gone}")
    assert not dead_here("push") and not dead_here(f"{this_host()}:")
    assert not dead_here(f"{this_host()}:99999999999999999999")


def outbox_rows(engine: Engine, claims: dict[str, str | None], records: dict[str, str] | None = None
                ) -> dict[str, str]:
    """One pending, due row per label, claimed for the next five minutes by the given holder; label -> id.

    Each row is a change of its own record unless ``records`` (label -> record id) says otherwise."""
    now = utcnow()
    ids = {label: new_id() for label in claims}
    records = {label: (records or {}).get(label) or new_id() for label in claims}
    with engine.begin() as conn:
        conn.execute(insert(Outbox.__table__), [{
            "id": ids[label], "connector": "crm", "entity": "customer", "record_id": records[label],
            "operation": "upsert", "fields": {"name": label}, "idempotency_key": ids[label], "status": "pending", "attempts": 0,
            "next_attempt_at": now - timedelta(seconds=1), "last_error": None, "run_id": None, "claimed_by": by,
            "claimed_until": None if by is None else now + CLAIM, "created_at": now, "updated_at": now}
            for label, by in claims.items()])
    return ids


def test_a_claim_by_a_dead_process_is_taken_over_at_once(migrated: Engine, pids: tuple[int, int]):
    gone, alive = pids
    ids = outbox_rows(migrated, {"free": None, "dead": holder(gone), "dead_sweep": holder(gone, "sweep"),
                                 "live": holder(alive), "other_host": f"elsewhere:{gone}", "legacy": "push"})
    got = {r["id"] for r in _claim(migrated, "crm", "customer", worker_id(), 100)}
    assert got == {ids["free"], ids["dead"], ids["dead_sweep"]}
    ot = Outbox.__table__
    with migrated.connect() as conn:
        by = dict(conn.execute(select(ot.c.id, ot.c.claimed_by)).all())
    assert {by[ids[k]] for k in ("free", "dead", "dead_sweep")} == {worker_id()}
    assert by[ids["live"]] == holder(alive) and by[ids["legacy"]] == "push"
    # nothing more to take: the live claims stand until they run out
    assert _claim(migrated, "crm", "customer", worker_id(), 100) == []
    with migrated.begin() as conn:
        conn.execute(update(ot).where(ot.c.id == ids["live"]).values(claimed_until=utcnow() - timedelta(seconds=1)))
    assert [r["id"] for r in _claim(migrated, "crm", "customer", worker_id(), 100)] == [ids["live"]]


def test_the_real_time_path_takes_over_dead_claims_too(migrated: Engine, pids: tuple[int, int]):
    gone, alive = pids
    ids = outbox_rows(migrated, {"dead": holder(gone, "inbox"), "live": holder(alive, "inbox")})
    got = _claim_ids(migrated, list(ids.values()), worker_id("inbox"))
    assert [r["id"] for r in got] == [ids["dead"]]


def test_a_record_goes_to_one_worker_at_a_time(migrated: Engine, pids: tuple[int, int]):
    """Two workers each holding a change of a record the system does not know yet would both create it."""
    gone, alive = pids
    r1, r2 = new_id(), new_id()
    ids = outbox_rows(migrated, {"held": holder(alive), "same_record": None, "dead": holder(gone),
                                 "after_dead": None}, records={"held": r1, "same_record": r1, "dead": r2,
                                                               "after_dead": r2})
    got = {r["id"] for r in _claim(migrated, "crm", "customer", worker_id(), 100)}
    assert got == {ids["dead"], ids["after_dead"]}
    assert _claim_ids(migrated, [ids["same_record"]], worker_id()) == []


@pytest.mark.postgres
def test_a_claim_waits_for_the_claim_in_progress_on_the_same_stream(pg_url: str):
    """The second of two concurrent claims sees the rows the first took (SKIP LOCKED alone would not)."""
    from hub.push import _serialize_claims
    from hub.store import make_engine, upgrade
    engine = make_engine(pg_url)
    try:
        upgrade(engine)
        record = new_id()
        ids = outbox_rows(engine, {"first": None, "second": None}, records={"first": record, "second": record})
        ot = Outbox.__table__
        got: list = []
        with engine.connect() as conn:
            tx = conn.begin()                      # another worker's claim, not committed yet
            _serialize_claims(conn, [("crm", "customer")])
            conn.execute(update(ot).where(ot.c.id == ids["first"]).values(claimed_by="elsewhere:1",
                                                                          claimed_until=utcnow() + CLAIM))
            racer = threading.Thread(target=lambda: got.append(_claim(engine, "crm", "customer", worker_id(), 10)))
            racer.start()
            racer.join(0.5)
            assert racer.is_alive(), "the claim did not wait for the one in progress"
            tx.commit()
        racer.join(10)
        assert got == [[]], "a change of a record another worker is delivering was claimed"
    finally:
        engine.dispose()


def lease_owner(engine: Engine) -> str | None:
    st = StreamState.__table__
    with engine.connect() as conn:
        return conn.scalar(select(st.c.lease_owner).where(st.c.connector == "crm", st.c.entity == "customer"))


def test_a_lease_of_a_dead_process_is_taken_over_and_its_holder_commits_nothing_more(
        migrated: Engine, pids: tuple[int, int]):
    gone, alive = pids
    assert _take_lease(migrated, "crm", "customer", holder(alive), utcnow())
    assert not _take_lease(migrated, "crm", "customer", worker_id(), utcnow()), "a live holder's lease was taken"
    st = StreamState.__table__
    with migrated.begin() as conn:
        conn.execute(update(st).values(lease_owner=holder(gone)))
    assert _take_lease(migrated, "crm", "customer", worker_id(), utcnow())
    assert lease_owner(migrated) == worker_id()
    # the old holder (alive after all, say, after a long pause) renews with its next batch: the batch
    # fails (run_stream rolls it back) instead of committing beside the new holder's
    with pytest.raises(RetriableError, match="another worker took the stream over"):
        with migrated.begin() as conn:
            _renew_lease(conn, "crm", "customer", holder(gone))
    with migrated.begin() as conn:
        _renew_lease(conn, "crm", "customer", worker_id())      # the holder renews
    assert lease_owner(migrated) == worker_id()


def test_a_taken_over_run_is_closed_and_a_live_one_is_left(migrated: Engine, pids: tuple[int, int]):
    from hub.models import SyncRun
    gone, alive = pids
    sr = SyncRun.__table__
    started = utcnow() - timedelta(minutes=1)
    with migrated.begin() as conn:
        conn.execute(insert(sr), [{"id": rid, "connector": c, "entity": "customer", "kind": "sync",
                                   "status": "running", "dry_run": False, "stats": {}, "cursor": None, "error": None,
                                   "user": None, "started_at": started, "finished_at": None}
                                  for rid, c in (("R-DEAD", "crm"), ("R-LIVE", "erp"))])
    assert _take_lease(migrated, "crm", "customer", holder(gone), started)
    assert _take_lease(migrated, "erp", "customer", holder(alive), started)
    assert _take_lease(migrated, "crm", "customer", worker_id(), utcnow())       # the dead holder's: taken
    assert not _take_lease(migrated, "erp", "customer", worker_id(), utcnow())   # the live holder's: not
    with migrated.connect() as conn:
        runs = {r.id: r for r in conn.execute(select(sr))}
    assert runs["R-DEAD"].status == "error" and runs["R-DEAD"].finished_at is not None
    assert str(gone) in runs["R-DEAD"].error
    assert runs["R-LIVE"].status == "running" and runs["R-LIVE"].finished_at is None


def test_two_holders_racing_for_one_lease_get_it_once(migrated: Engine):
    took: list[bool] = []
    barrier = threading.Barrier(2)

    def take() -> None:
        barrier.wait()
        took.append(_take_lease(migrated, "crm", "customer", worker_id(f"t{threading.get_ident()}"), utcnow()))
    threads = [threading.Thread(target=take) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(took) == [False, True]
