"""The change feed on PostgreSQL, where transactions can commit out of sequence order.

A naive ``seq > since`` reader skips a row that commits after a higher one was
served (shown first, so these tests can fail); with the history lock that all
writers take, a concurrent reader sees every committed row exactly once.
"""
from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from hub import changefeed
from hub.models import FieldHistory
from hub.store import make_engine, upgrade
from hub.types import new_id

pytestmark = pytest.mark.postgres
HT = FieldHistory.__table__


@pytest.fixture
def pg(pg_url: str):
    engine = make_engine(pg_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _rows(n: int, tag: str) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    rid = new_id()
    return [{"entity": "customer", "record_id": rid, "field": f"f{i}", "old": None, "new": tag, "system": "t",
             "user": None, "run_id": None, "reason": "informed", "at": now} for i in range(n)]


def _wait_for_a_waiter(engine, timeout: float = 30.0) -> None:
    """Until some backend waits for the history lock (proof that the writer reached it and blocks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                    f"AND objid = {changefeed.HISTORY_LOCK}").scalar():
                return
        time.sleep(0.05)
    raise AssertionError("no writer waited for the history lock")


def _read_all(engine, since: int, limit: int = 50) -> tuple[list[int], int]:
    seqs: list[int] = []
    while True:
        with engine.connect() as conn:
            changes, nxt = changefeed.read(conn, since, limit=limit)
        for c in changes:
            seqs += list(range(c["first_seq"], c["seq"] + 1))
        if nxt == since:
            return seqs, since
        since = nxt


def test_without_the_lock_a_naive_reader_skips_a_late_commit(pg):
    a = pg.connect()
    ta = a.begin()
    a.execute(insert(HT), _rows(1, "A"))             # draws seq 1, commits last
    with pg.begin() as b:
        b.execute(insert(HT), _rows(1, "B"))         # draws seq 2, commits first
    served, cursor = _read_all(pg, 0)
    assert served == [2]
    ta.commit()
    a.close()
    later, _ = _read_all(pg, cursor)
    assert later == []                               # seq 1 is lost to this reader: the hazard is real


def test_with_the_lock_a_later_writer_waits_and_nothing_is_skipped(pg):
    a = pg.connect()
    ta = a.begin()
    changefeed.lock_history(a)
    a.execute(insert(HT), _rows(1, "A"))
    b_done = threading.Event()

    def writer_b() -> None:
        with pg.begin() as b:
            changefeed.lock_history(b)
            b.execute(insert(HT), _rows(1, "B"))
        b_done.set()

    th = threading.Thread(target=writer_b)
    th.start()
    _wait_for_a_waiter(pg)
    assert not b_done.is_set(), "the second writer must wait for the first one's commit"
    served, cursor = _read_all(pg, 0)
    assert served == [] and cursor == 0
    ta.commit()
    a.close()
    th.join(timeout=10)
    assert b_done.is_set()
    served, _ = _read_all(pg, cursor)
    assert served == [1, 2]


def test_concurrent_writers_and_a_polling_reader_see_every_committed_row_once(pg):
    committed: list[int] = []
    lock = threading.Lock()
    writers_done = threading.Event()
    rng = random.Random(7)

    def writer(w: int) -> None:
        for i in range(12):
            n, pause, fail = rng.randint(1, 4), rng.random() * 0.01, rng.random() < 0.15
            with pg.connect() as conn:
                tx = conn.begin()
                changefeed.lock_history(conn)
                seqs = [r.seq for r in conn.execute(insert(HT).returning(HT.c.seq), _rows(n, f"{w}-{i}"))]
                time.sleep(pause)                    # hold the transaction open a little
                if fail:
                    tx.rollback()                    # numbers drawn and never committed: a hole, not a gap
                else:
                    tx.commit()
                    with lock:
                        committed.extend(seqs)

    served: list[int] = []

    def reader() -> None:
        since = 0
        while True:
            finished = writers_done.is_set()
            with pg.connect() as conn:
                changes, since = changefeed.read(conn, since, limit=3)
            for c in changes:
                served.extend(range(c["first_seq"], c["seq"] + 1))
            if finished and not changes:
                return
            time.sleep(0.002)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    rd = threading.Thread(target=reader)
    rd.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writers_done.set()
    rd.join(timeout=30)
    assert len(served) == len(set(served)), "a row was served twice"
    assert served == sorted(served)
    assert sorted(served) == sorted(committed), "a committed row was skipped (or a rolled back one served)"
    assert len(committed) > 50


def test_sync_and_resolve_take_the_history_lock(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                make_api_for: Any):
    """The pipeline's flush and a steward resolution wait for a history writer in flight."""
    from cli import main
    monkeypatch.setenv("TRIAD_DATABASE_URL", pg_url)
    root = tmp_path / "p"
    assert CliRunner().invoke(main, ["init", str(root)]).exit_code == 0
    engine = make_engine(pg_url)
    blocker = engine.connect()
    tx = blocker.begin()
    changefeed.lock_history(blocker)
    result: dict[str, Any] = {}

    def sync() -> None:
        r = CliRunner().invoke(main, ["--config", str(root / "triad.yaml"), "--json", "sync", "run"])
        result["code"], result["out"] = r.exit_code, r.output

    th = threading.Thread(target=sync)
    th.start()
    _wait_for_a_waiter(engine)
    with engine.connect() as conn:
        assert conn.scalar(select(HT.c.seq).limit(1)) is None, "history was written past the lock"
    assert th.is_alive()
    tx.rollback()
    blocker.close()
    th.join(timeout=60)
    assert result["code"] == 0, result["out"]
    assert json.loads(result["out"])["runs"][0]["created"] == 4

    api = make_api_for(root, pg_url)
    try:
        feed = api.get("/changes", params={"limit": 1000}).json()
        start = feed["next"]
        conflict = api.get("/conflicts", params={"status": "open"}).json()["conflicts"][0]
        blocker = engine.connect()
        tx = blocker.begin()
        changefeed.lock_history(blocker)
        answer: dict[str, Any] = {}
        th = threading.Thread(target=lambda: answer.update(
            r=api.post(f"/conflicts/{conflict['id']}/resolve", json={"take": "crm", "note": "api"})))
        th.start()
        _wait_for_a_waiter(engine)
        assert th.is_alive() and not answer, "the resolution wrote history past the lock"
        tx.rollback()
        blocker.close()
        th.join(timeout=30)
        assert answer["r"].status_code == 200, answer["r"].text
        after = api.get("/changes", params={"since": start}).json()["changes"]
        assert [(c["kind"], c["user"], list(c["fields"])) for c in after] == [("update", "alice", ["email"])]
        assert api.get("/xref/crm/customer/001A000002").json()["record"]["fields"]["email"] == "purchasing@yuntu.com.cn"
    finally:
        engine.dispose()
