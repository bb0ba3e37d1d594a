"""PostgreSQL plans the pipeline's key lookups from statistics; after a load the hub gathers them itself
(where autovacuum is off, as on this machine, or has not come round yet, a table of thousands of rows
looks empty to the planner and each looked-up key scans every row of its system)."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from cli import main
from hub import planner_stats
from hub.store import make_engine

N = 2500   # more than planner_stats.MIN_CHANGED, in three batches

CONFIG = """
store: {{url: '{url}'}}
connectors:
  erp:
    type: file
    path: ./exports
    direction: in
    batch_size: 1000
    entities: {{customer: {{mapping: customer.yaml}}}}
"""
MAPPING = """
source: customers.csv
key: no
fields:
  code: no
  name: name
"""


def statistics(url: str) -> dict[str, float]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text(
                "SELECT relname, reltuples FROM pg_class WHERE relname IN ('xref', 'source_state', 'customer')")).all())
    finally:
        engine.dispose()


def sync(root: Path, *args: str) -> dict:
    r = CliRunner().invoke(main, ["--config", str(root / "triad.yaml"), "--json", "sync", "run", *args])
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.stdout)["runs"]
    return run


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Path:
    (tmp_path / "exports").mkdir()
    (tmp_path / "triad.yaml").write_text(CONFIG.format(url=pg_url), encoding="utf-8")
    (tmp_path / "customer.yaml").write_text(MAPPING, encoding="utf-8")
    rows = "".join(f"C{i:05d},Company {i}\n" for i in range(N))
    (tmp_path / "exports" / "customers.csv").write_text("no,name\n" + rows, encoding="utf-8")
    r = CliRunner().invoke(main, ["--config", str(tmp_path / "triad.yaml"), "db", "upgrade"])
    assert r.exit_code == 0, r.output
    return tmp_path


def test_a_load_leaves_the_planner_statistics_of_what_it_wrote(project: Path, pg_url: str):
    assert set(statistics(pg_url).values()) == {-1}          # never analyzed: the planner's guess is "empty"
    assert sync(project)["created"] == N
    after = statistics(pg_url)
    assert set(after) == {"xref", "source_state", "customer"}
    assert all(rows >= 1000 for rows in after.values()), after
    # an unchanged re-read writes nothing, so nothing is analyzed again
    assert sync(project, "--full")["unchanged"] == N
    engine = make_engine(pg_url)
    try:
        assert planner_stats.refresh(engine) == []
    finally:
        engine.dispose()


def test_nothing_to_do_on_sqlite(tmp_path: Path):
    assert planner_stats.refresh(make_engine(f"sqlite:///{tmp_path / 'x.db'}")) == []


def test_a_burst_of_webhook_events_leaves_statistics_too(tmp_path: Path, pg_url: str):
    from hub.config import load_config
    from hub.inbox import store
    from hub.inbox_processor import InboxProcessor
    from hub.streams import Parts
    from realtime.helpers import SECRET, customer_row, write_project
    cfg = load_config(str(write_project(tmp_path / "p", f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
""", pg_url)))
    engine, parts = make_engine(cfg.store.url), Parts(cfg)
    try:
        body = json.dumps({"entity": "customer", "records": [customer_row(i, f"Company {i}") for i in range(N)]})
        store(engine, "erp", {"content-type": "application/json"}, body.encode())
        assert InboxProcessor(engine, parts, worker="t").run_once().done == 1
        assert all(rows >= 1000 for rows in statistics(pg_url).values()), statistics(pg_url)
    finally:
        parts.close()
        engine.dispose()


@pytest.fixture
def app_role(pg_url: str) -> Iterator[str]:
    """A role that may read and write the store's tables but does not own them (an application login
    beside the role that ran the migrations)."""
    name = f"triad_app_{uuid.uuid4().hex[:8]}"
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE ROLE {name} LOGIN"))
            conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}"))
            conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}"))
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {name}"))
            conn.execute(text(f"DROP ROLE {name}"))
        engine.dispose()


def test_a_role_that_does_not_own_the_tables_does_not_analyze_them_and_is_told_once(
        project: Path, pg_url: str, app_role: str, caplog: pytest.LogCaptureFixture):
    (project / "triad.yaml").write_text(CONFIG.format(url=pg_url.replace("postgres@", f"{app_role}@", 1)),
                                        encoding="utf-8")
    caplog.set_level("WARNING", logger="hub.planner_stats")
    assert sync(project)["created"] == N            # three batches, each followed by a look at the statistics
    assert set(statistics(pg_url).values()) == {-1}    # PostgreSQL would skip them, with a warning in its log
    told = [r.getMessage() for r in caplog.records if r.name == "hub.planner_stats"]
    assert len(told) == 1, told
    assert "only their owner may refresh them" in told[0] and app_role in told[0] and "xref" in told[0]
    engine = make_engine(pg_url.replace("postgres@", f"{app_role}@", 1))
    try:
        assert planner_stats.refresh(engine) == []      # nothing tried
    finally:
        engine.dispose()
