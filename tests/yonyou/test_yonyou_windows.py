"""The customer list cannot be ordered: it is read in pubts windows whose cursor is committed per
window, so a run stopped by the call quota (the simulator's --request-budget) resumes."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from hub.connector import StreamSpec
from hub.errors import ConfigError, LimitExceeded

MAX_RUNS = 40


def customers(**options) -> StreamSpec:
    return StreamSpec(entity="customer", source="merchant", key="id", updated_at="pubts", timezone="Asia/Shanghai",
                      batch_size=10, run_started_at=datetime.now(timezone.utc), options=options)


def run_once(conn, cursor, seen: set) -> tuple[object, bool]:
    """One run as the hub makes it: each batch's cursor is committed with it; a spent quota stops the run."""
    try:
        for batch in conn.read(customers(), cursor):
            seen |= {r["id"] for r in batch.records}
            cursor = batch.cursor if batch.cursor is not None else cursor
    except LimitExceeded:
        return cursor, False
    return cursor, True


def test_a_run_stopped_by_the_quota_resumes_where_it_stopped(make_sim, make_connector) -> None:
    sim = make_sim(records=80, request_budget=4)
    cursor, seen, cursors = None, set(), []
    for runs in range(1, MAX_RUNS + 1):
        cursor, finished = run_once(make_connector(sim), cursor, seen)
        cursors.append(cursor)
        if finished:
            break
        sim.app.sim.calls = 0                     # the quota renews before the next run
    assert finished, f"not done after {MAX_RUNS} runs of 4 calls: the cursor did not move ({cursors[-3:]})"
    assert runs > 1 and seen == {m["id"] for m in sim.state["merchants"]}
    stamps = [datetime.fromisoformat(c) for c in cursors if c is not None]
    assert stamps == sorted(stamps) and len(set(stamps)) > runs // 2     # most stopped runs moved it


def test_a_small_incremental_run_costs_one_call(sim, make_connector) -> None:
    conn = make_connector(sim)
    cursor, finished = run_once(conn, None, set())
    assert finished
    changed = sim.state["merchants"][5]
    assert sim.api("POST", "/yonbip/digitalModel/batch/merchant/save", {"data": [
        {"_status": "Update", "id": changed["id"], "email": "later@example.cn"}]}).json()["code"] == "200"
    before, seen = sim.app.sim.stats["api_calls"], set()
    assert run_once(conn, cursor, seen)[1] and seen == {changed["id"]}
    assert sim.app.sim.stats["api_calls"] - before == 1


def test_windows_start_at_start_date(sim, make_connector) -> None:
    conn = make_connector(sim, start_date="2026-06-01")
    seen = {r["id"] for b in conn.read(customers(), None) for r in b.records}
    assert seen == {m["id"] for m in sim.state["merchants"] if m["pubts"] >= "2026-06-01 00:00:00"}
    with pytest.raises(ConfigError, match="start_date"):
        list(make_connector(sim, start_date="June").read(customers(), None))


def test_sync_run_finishes_under_a_request_budget(make_sim, tmp_path: Path, monkeypatch) -> None:
    sim = make_sim(records=60, request_budget=5)
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    config = tmp_path / "triad.yaml"
    config.write_text(f"""store: {{url: "sqlite:///{tmp_path / 'triad.db'}"}}
connectors:
  bip:
    type: yonyou
    base_url: {sim.url}
    app_key: triad-client
    app_secret: triad-secret
    backoff: 0.01
    direction: in
    entities: {{customer: {{batch_size: 10}}}}
""", encoding="utf-8")
    assert CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    statuses = []
    for _ in range(MAX_RUNS):
        result = CliRunner().invoke(main, ["--config", str(config), "--json", "sync", "run"])
        (run,) = json.loads(result.stdout)["runs"]
        statuses.append(run["status"])
        if run["status"] == "ok":
            break
        sim.app.sim.calls = 0
    assert statuses[-1] == "ok" and "stopped" in statuses, statuses
    listed = CliRunner().invoke(main, ["--config", str(config), "--json", "records", "list", "customer",
                                       "--limit", "1000"])
    assert len(json.loads(listed.stdout)["records"]) == 60
