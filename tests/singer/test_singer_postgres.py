"""meltanolabs-tap-postgres (a real tap, offline against the local PostgreSQL) through the singer connector:
the shared contract, and `triad sync run` killed mid-stream then resumed from the committed STATE."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from rest_helpers import plugin_dir, subprocess_env
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))   # the contract lives there
from contract import ConnectorContract  # noqa: E402

from connectors.singer.connector import SingerConnector  # noqa: E402
from hub.connector import StreamSpec, WriteChange  # noqa: E402
from singer_helpers import CUSTOMER_MAPPING, sync_here  # noqa: E402

pytestmark = pytest.mark.postgres

TABLE = """create table customers (id text primary key, name text not null, email text, city text,
           credit_limit numeric(18, 2), updated_at timestamptz not null)"""
ROWS = """insert into customers select 'C' || lpad(g::text, 5, '0'), 'Kunde ' || g, 'c' || g || '@example.de',
          (array['Berlin', 'Hamburg', 'Köln'])[1 + g %% 3], g * 100.50,
          timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
          from generate_series(%(first)s::int, %(last)s::int) g"""


@pytest.fixture(scope="module")
def source_db(pg_server: str) -> Iterator[dict[str, Any]]:
    """A throwaway database with a customers table; yields the tap's connection settings."""
    name = f"triad_tap_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = pg_server.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        yield {"engine": engine, "config": {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "",
                                            "database": name, "filter_schemas": ["public"]}}
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


def reset(db: dict[str, Any], n: int) -> None:
    with db["engine"].connect() as conn:
        conn.exec_driver_sql("drop table if exists customers")
        conn.exec_driver_sql(TABLE)
        conn.exec_driver_sql(ROWS, {"first": 1, "last": n})


def singer_options(tap: str, db: dict[str, Any]) -> dict[str, Any]:
    return {"command": [tap], "config": db["config"],
            "streams": {"public-customers": {"entity": "customer", "replication_key": "updated_at"}}}


class TestTapPostgresContract(ConnectorContract):
    update_field = "name"

    @pytest.fixture(scope="class")
    def connector(self, tap_postgres: str, source_db: dict[str, Any]) -> Iterator[SingerConnector]:
        reset(source_db, 35)
        conn = SingerConnector("legacy", singer_options(tap_postgres, source_db))   # discovers once per class
        yield conn
        conn.close()

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="public-customers", key="id", updated_at="updated_at",
                          batch_size=10, fields=("id", "name", "email", "updated_at"))

    @pytest.fixture
    def seed_change(self, source_db: dict[str, Any]) -> Callable[[], str]:
        def change() -> str:
            with source_db["engine"].connect() as conn:
                conn.exec_driver_sql("update customers set name = name || ' (changed)', updated_at = now() "
                                     "where id = 'C00007'")
            return "C00007"
        return change

    @pytest.fixture
    def new_change(self) -> WriteChange:
        return WriteChange("new-1", "triad-1", None, {"name": "Never Written GmbH"})

    # a tap only reads: the write tests of the contract become "every change is refused"
    def test_write_create_then_read(self, connector: SingerConnector, readback_stream: StreamSpec,
                                    new_change: WriteChange) -> None:
        (result,) = connector.write(readback_stream, [new_change])
        assert not result.ok and result.change_id == new_change.change_id and "only reads" in result.error

    def test_write_update_changes_record(self, connector: SingerConnector, readback_stream: StreamSpec,
                                         new_change: WriteChange) -> None:
        (result,) = connector.write(readback_stream, [WriteChange("u-1", "triad-1", "C00001", {"name": "x"})])
        assert not result.ok

    def test_write_errors_reported_per_record(self, connector: SingerConnector, readback_stream: StreamSpec,
                                              new_change: WriteChange) -> None:
        changes = [WriteChange(f"w-{i}", "triad-1", None, {"name": "x"}) for i in range(3)]
        assert [r.change_id for r in connector.write(readback_stream, changes)] == ["w-0", "w-1", "w-2"]

    def test_the_state_is_the_taps_bookmark(self, connector: SingerConnector, stream: StreamSpec) -> None:
        batches = list(connector.read(stream, None))
        assert batches[-1].cursor["bookmarks"]["public-customers"]["replication_key"] == "updated_at"
        records = [r for b in batches for r in b.records]
        assert records[0]["credit_limit"] == 100.5 and records[0]["updated_at"].startswith("2026-01-01T00:01:00")


# the shared customer mapping, on the tap's stream of public.customers, with its amount
MAPPING = CUSTOMER_MAPPING.replace("source: customers\n", "source: public-customers\n") + \
    "  credit_limit: {from: credit_limit, type: decimal}\n"


def project(root: Path, tap: str, db: dict[str, Any]) -> Path:
    root.mkdir(parents=True)
    options = {"type": "singer", "direction": "in", "batch_size": 50, **singer_options(tap, db),
               "entities": {"customer": {"mapping": "customer.yaml"}}}
    (root / "triad.yaml").write_text(json.dumps({"store": {"url": "sqlite:///hub.db"},
                                                 "connectors": {"legacy": options}}), encoding="utf-8")
    (root / "customer.yaml").write_text(MAPPING, encoding="utf-8")
    return root


def customers(root: Path) -> int:
    try:
        db = sqlite3.connect(root / "hub.db", timeout=1)
        try:
            return db.execute("select count(*) from customer").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sync_run_killed_mid_stream_resumes_from_the_committed_state(tmp_path: Path, tap_postgres: str,
                                                                      source_db: dict[str, Any]) -> None:
    reset(source_db, 100)
    root = project(tmp_path / "p", tap_postgres, source_db)
    first = sync_here(root)
    assert (first.status, first.counts["read"], first.counts["created"]) == ("ok", 100, 100)
    assert first.cursor["bookmarks"]["public-customers"]["replication_key_value"].startswith("2026-01-01T01:40")

    with source_db["engine"].connect() as conn:     # 600 new customers and 10 changed ones, all later
        conn.exec_driver_sql(ROWS, {"first": 101, "last": 700})
        conn.exec_driver_sql("update customers set name = name || ' neu', updated_at = updated_at + interval '2 days'"
                             " where id in (select id from customers where id <= 'C00010')")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "sync", "run"], cwd=root,
                            env=subprocess_env(plugin_dir(tmp_path / "plugins")), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while customers(root) < 250 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
    os.killpg(proc.pid, signal.SIGKILL)              # `triad sync run` and its tap, mid-stream
    proc.wait()
    killed_at = customers(root)
    assert 250 <= killed_at < 700
    assert (killed_at - 99) % 50 == 0, "batches are committed whole (the first also re-reads the boundary row)"

    again = sync_here(root)
    assert again.status == "ok", again.error
    # no STATE came before the kill (the tap emits one per 10,000 records), so the rerun starts from the
    # committed one of the first run: the changes since then plus its boundary row, not all 700
    assert again.counts["read"] == 611 and again.counts["created"] == 700 - killed_at
    db = sqlite3.connect(root / "hub.db")
    try:
        codes = [r[0] for r in db.execute("select code from customer order by code")]
        assert codes == [f"C{i:05d}" for i in range(1, 701)]
        assert db.execute("select count(*), count(distinct source_id) from xref").fetchone() == (700, 700)
        assert db.execute("select count(*) from field_history where field = '*'").fetchone()[0] == 700
        renamed = db.execute("select count(*) from customer where name like '% neu'").fetchone()[0]
        assert renamed == 10
    finally:
        db.close()
