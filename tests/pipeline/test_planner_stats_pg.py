"""PostgreSQL plans the pipeline's key lookups from statistics; after a load the hub gathers them itself
(where autovacuum is off, as on this machine, or has not come round yet, a table of thousands of rows
looks empty to the planner and each looked-up key scans every row of its system)."""
from __future__ import annotations

import json
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
