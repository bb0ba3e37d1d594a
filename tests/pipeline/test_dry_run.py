"""`triad sync run --dry-run`: a real run's figures (each stream seeing what the earlier ones would
have written, parked rows retried), and the store left exactly as it was; on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, select, text

from cli import main
from hub.pipeline import STAT_KEYS
from hub.store import make_engine

LATE_CUSTOMER = ("001A000009,Late Arrival Co,,late@arrival.example,+1 415 555 0000,US,Boston,1 Main St,Bronze,"
                 "Jane Doe,true,2026-11-20T05:00:00Z\n")   # the customer of the parked CRM order CRM-5002


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    monkeypatch.delenv("TRIAD_USER", raising=False)
    r = CliRunner().invoke(main, ["init", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout)


def figures(result: dict) -> list[tuple]:
    """Per stream, in run order: what a run reports, without its id. Of the cursor only the change time:
    the file connector notes a file as read in full only once it is a few seconds old."""
    return [(r["connector"], r["entity"], r["status"], (r["cursor"] or {}).get("ts"), *(r[k] for k in STAT_KEYS))
            for r in result["runs"]]


def snapshot(url: str) -> dict[str, Any]:
    """Every table of the store: its row count and its rows (sorted), to compare before and after."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in sorted(inspect(conn).get_table_names()):
                rows = conn.execute(text(f'SELECT * FROM "{name}"')).all()
                out[name] = (len(rows), sorted(repr(tuple(r)) for r in rows))
            return out
    finally:
        engine.dispose()


def counts(snap: dict[str, Any]) -> dict[str, int]:
    return {name: n for name, (n, _) in snap.items()}


def test_dry_run_reports_what_the_real_run_does_and_writes_nothing(project: Path, store_url: str):
    before = snapshot(store_url)
    dry = triad("sync", "run", "--dry-run")
    after = snapshot(store_url)
    assert counts(after) == counts(before)
    assert after == before
    assert all(r["dry_run"] is True for r in dry["runs"])
    assert triad("runs", "list")["runs"] == []
    gone = CliRunner().invoke(main, ["runs", "show", dry["runs"][0]["id"]])   # its ids were reported, not kept
    assert gone.exit_code == 1 and "`sync run --dry-run` keeps no runs" in gone.output, gone.output
    assert {s["last_status"] for s in triad("status")["streams"]} == {None}
    assert {s["cursor"] for s in triad("status")["streams"]} == {None}

    real = triad("sync", "run")
    assert figures(dry) == figures(real)
    by_stream = {(r["connector"], r["entity"]): r for r in dry["runs"]}
    crm = by_stream[("crm", "customer")]   # it links to erp's customers, which the dry run never kept
    assert (crm["created"], crm["linked"], crm["conflicts"]) == (1, 2, 2)
    order = by_stream[("erp", "order")]    # its customers come from the customer streams run before it
    assert (order["created"], order["quarantined"]) == (3, 0)


def test_dry_run_retries_parked_rows_like_a_real_run(project: Path, store_url: str):
    triad("sync", "run")
    with open(project / "exports" / "crm" / "accounts.csv", "a", encoding="utf-8") as fh:
        fh.write(LATE_CUSTOMER)
    before = snapshot(store_url)
    dry = triad("sync", "run", "--dry-run")
    assert snapshot(store_url) == before
    real = triad("sync", "run")
    assert figures(dry) == figures(real)
    order = {(r["connector"], r["entity"]): r for r in dry["runs"]}[("crm", "order")]
    assert (order["created"], order["quarantined"]) == (1, 0)   # the parked order, retried: its customer came
    assert len(triad("runs", "list")["runs"]) == 8       # the two real runs' streams, no dry one


def test_a_failed_stream_in_a_dry_run_is_undone_alone(project: Path, store_url: str,
                                                      monkeypatch: pytest.MonkeyPatch):
    """A store error in one stream (which aborts the transaction on PostgreSQL) fails that stream only;
    the streams after it run on, as in a real run."""
    import hub.sync
    real_batch = hub.sync.process_batch

    def failing(conn, ctx, *args, **kwargs):  # noqa: ANN001, ANN202
        if (ctx.system, ctx.entity) == ("erp", "order"):
            conn.execute(select(text("x")).select_from(text("no_such_table")))
        return real_batch(conn, ctx, *args, **kwargs)

    monkeypatch.setattr(hub.sync, "process_batch", failing)
    before = snapshot(store_url)
    dry = triad("sync", "run", "--dry-run", code=1)
    assert snapshot(store_url) == before
    real = triad("sync", "run", code=1)
    assert [f[2] for f in figures(dry)] == ["ok", "ok", "error", "ok"]
    assert figures(dry) == figures(real)
    assert figures(dry)[3][4:6] == (2, 1)    # crm/order: read 2, created 1 (the other order's customer is unknown)
