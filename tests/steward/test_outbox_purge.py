"""`triad outbox purge`: old done and dropped writes go, pending and dead ones and each record's newest
write to a system stay; counted by --dry-run, refused without --yes off a terminal and to non-admins."""
from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from cli import main
from hub.models import AuditLog, Outbox
from hub.outbox import blocking_writes
from hub.outbox_purge import purge
from hub.types import utcnow

USERS = """
roles:
  viewer: {entities: [customer], can: [read, retry]}
users: {alice: [admin], bob: [viewer]}
"""


@pytest.fixture
def store(migrated, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A migrated store (SQLite, then PostgreSQL) and a triad.yaml with an admin and a viewer, as the current folder."""
    for var in ("TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    (tmp_path / "triad.yaml").write_text(USERS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return migrated


NOW = utcnow()
_SEQ = itertools.count(1)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def add(engine, record_id: str, status: str, days: float, connector: str = "crm",  # noqa: ANN001
        changed: float | None = None) -> str:
    """One outbox row created ``days`` ago and last changed ``changed`` days ago (default: then too)."""
    rid = f"01T{next(_SEQ):023d}"     # in the order added: a purge walks the table by id
    with engine.begin() as conn:
        conn.execute(insert(Outbox.__table__).values(
            id=rid, connector=connector, entity="customer", record_id=record_id, operation="upsert",
            fields={"name": "x"}, idempotency_key=rid, status=status, attempts=1, next_attempt_at=ago(days),
            last_error=None, run_id=None, claimed_by=None, claimed_until=None, created_at=ago(days),
            updated_at=ago(days if changed is None else changed)))
    return rid


def ids(engine) -> set[str]:  # noqa: ANN001
    with engine.connect() as conn:
        return set(conn.scalars(select(Outbox.__table__.c.id)))


def cli(*args: str, user: str = "alice"):  # noqa: ANN201
    return CliRunner().invoke(main, ["--user", user, "--json", "outbox", "purge", *args])


def purged(*args: str) -> dict:
    r = cli(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_old_done_and_dropped_go_pending_and_dead_stay(store):
    old_done = add(store, "R1", "done", 60)
    old_dropped = add(store, "R1", "dropped", 55)
    pending = add(store, "R1", "pending", 50)
    dead = add(store, "R1", "dead", 45)
    newest = add(store, "R1", "done", 40)
    young = add(store, "R2", "done", 10)                  # not the newest of R2, but too young
    add(store, "R2", "done", 5)
    changed_lately = add(store, "R2", "dropped", 60, changed=1)   # dropped lately: its last change counts
    add(store, "R2", "done", 2)
    data = purged("--older-than", "30d", "--yes")
    assert data["purged"] == 2 and data["dry_run"] is False
    assert abs(datetime.fromisoformat(data["cutoff"]) - (utcnow() - timedelta(days=30))) < timedelta(minutes=5)
    left = ids(store)
    assert old_done not in left and old_dropped not in left
    assert {pending, dead, newest, young, changed_lately} <= left and len(left) == 7


def test_the_newest_write_of_a_record_to_a_system_stays(store):
    dead = add(store, "R1", "dead", 90)
    newest = add(store, "R1", "done", 60)   # were it purged, the dead write would look latest: R1 blocked
    on_erp = add(store, "R1", "done", 80, connector="erp")   # the newest on erp, though older than crm's
    with store.connect() as conn:
        assert blocking_writes(conn, "crm", [("customer", "R1")]) == {}
    assert purged("--older-than", "30d", "--yes")["purged"] == 0
    assert {dead, newest, on_erp} == ids(store)
    with store.connect() as conn:
        assert blocking_writes(conn, "crm", [("customer", "R1")]) == {}


def test_of_writes_created_at_the_same_time_the_highest_id_is_newest(store):
    a, b = add(store, "R1", "done", 40), add(store, "R1", "done", 40)
    with store.begin() as conn:
        conn.execute(Outbox.__table__.update().values(created_at=ago(40), updated_at=ago(40)))
    assert purged("--older-than", "30d", "--yes")["purged"] == 1
    assert ids(store) == {max(a, b)}


def test_dry_run_counts_and_deletes_nothing(store):
    rows = {add(store, "R1", "done", 60), add(store, "R1", "dropped", 50), add(store, "R1", "pending", 48),
            add(store, "R1", "dead", 45), add(store, "R1", "done", 40)}
    data = purged("--older-than", "30d", "--dry-run")     # no --yes needed
    assert data["purged"] == 2 and data["dry_run"] is True
    assert ids(store) == rows
    with store.connect() as conn:
        assert not list(conn.execute(select(AuditLog.__table__).where(AuditLog.__table__.c.action == "outbox.purge")))


def test_connector_limits_the_purge(store):
    erp_old = add(store, "R1", "done", 60, connector="erp")
    add(store, "R1", "done", 50, connector="erp")
    crm_old = add(store, "R1", "done", 60)
    add(store, "R1", "done", 50)
    assert purged("--older-than", "30d", "--connector", "crm", "--yes")["purged"] == 1
    left = ids(store)
    assert crm_old not in left and erp_old in left and len(left) == 3


def test_without_yes_it_is_refused_off_a_terminal(store):
    rows = {add(store, "R1", "done", 60), add(store, "R1", "done", 40)}
    r = cli("--older-than", "30d")
    assert r.exit_code == 2 and "add --yes" in r.output, r.output
    assert json.loads(r.stdout)["ok"] is False
    plain = CliRunner().invoke(main, ["--user", "alice", "outbox", "purge", "--older-than", "30d"])   # stdin no tty
    assert plain.exit_code == 2 and "add --yes" in plain.output, plain.output
    assert ids(store) == rows


def test_a_user_without_admin_is_refused(store):
    rows = {add(store, "R1", "done", 60), add(store, "R1", "done", 40)}
    r = cli("--older-than", "30d", "--yes", user="bob")
    assert r.exit_code == 2 and "missing permission 'admin'" in r.output, r.output
    assert ids(store) == rows


def test_one_audit_entry_holds_the_count_and_the_cutoff(store):
    for d in (70, 60, 50, 40):
        add(store, "R1", "done", d)
    data = purged("--older-than", "30d", "--yes")
    with store.connect() as conn:
        entries = list(conn.execute(select(AuditLog.__table__).where(AuditLog.__table__.c.action == "outbox.purge"))
                       .mappings())
    assert len(entries) == 1
    assert entries[0]["user"] == "alice" and entries[0]["after"] == {"purged": 3}
    assert entries[0]["before"]["cutoff"] == data["cutoff"]


def test_a_purge_larger_than_a_chunk_deletes_every_chunk(store):
    keep = {add(store, f"R{i}", "done", 40) for i in range(4)}       # each record's newest
    gone = {add(store, f"R{i}", s, 60 + j) for i in range(4) for j, s in enumerate(("done", "dropped", "done"))}
    keep.add(add(store, "R0", "dead", 100))
    seen: list[int] = []
    assert purge(store, ago(30), user="alice", chunk=5, progress=seen.append) == len(gone) == 12
    assert ids(store) == keep
    assert seen == [1, 6, 11, 12]     # 17 rows, 5 looked at per transaction: 4 kept ones come first


def test_a_purge_stopped_half_way_is_audited_with_what_it_deleted(store):
    for d in (70, 60, 50, 40):
        add(store, "R1", "done", d)

    def stop(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        purge(store, ago(30), user="alice", chunk=2, progress=stop)
    assert len(ids(store)) == 2     # the first chunk is committed
    with store.connect() as conn:
        entry = conn.execute(select(AuditLog.__table__).where(AuditLog.__table__.c.action == "outbox.purge")
                             ).mappings().one()
    assert entry["outcome"] == "failed" and entry["after"] == {"purged": 2}
