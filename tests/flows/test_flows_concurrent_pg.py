"""Several processes moving flows on one PostgreSQL store: each run moves in one process at a time (no
crash on a step another process wrote), nothing starts twice; and the scheduler stops without a traceback."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from realtime.helpers import rows

from .test_flows_automatic import CLI, FLOWS, OPP_HEADER, ROOT, env, make_project, opportunity

N = 300


def write_opportunities(root: Path, proposal: range) -> None:
    lines = [opportunity("Proposal" if i in proposal else "Qualification",
                         "2026-11-02T00:00:00Z" if i in proposal else "2026-11-01T00:00:00Z", i) for i in range(2 * N)]
    (root / "crm" / "opportunities.csv").write_text("\n".join([OPP_HEADER, *lines]) + "\n", encoding="utf-8")


def run_cli(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, "--config", str(cfg), *args], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=300)


def at_once(cfg: Path, *args: str) -> list[tuple[int, str, str]]:
    procs = [subprocess.Popen([sys.executable, "-c", CLI, "--config", str(cfg), *args], cwd=ROOT, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs)]


@pytest.mark.slow
def test_two_processes_move_the_same_flows_without_clashing(tmp_path: Path, pg_url: str):
    from hub.store import make_engine
    root = tmp_path / "p"
    cfg = make_project(root, pg_url)
    write_opportunities(root, range(0))
    no_flows = root / "no_flows.yaml"          # syncs that leave the flows to the two processes below
    no_flows.write_text(cfg.read_text(encoding="utf-8").replace(FLOWS, ""), encoding="utf-8")
    assert run_cli(cfg, "sync", "run").returncode == 0           # places the flows' cursor after the first load

    write_opportunities(root, range(0, N))
    assert run_cli(no_flows, "sync", "run").returncode == 0
    for code, out, err in at_once(cfg, "--json", "flows", "run"):
        assert code == 0 and "Traceback" not in err, err[-3000:]

    write_opportunities(root, range(0, 2 * N))
    assert run_cli(no_flows, "sync", "run").returncode == 0
    for code, out, err in at_once(cfg, "--json", "worker", "--once"):
        assert code == 0 and "Traceback" not in err, err[-3000:]
        assert json.loads(out)["cycles"] == 1

    engine = make_engine(pg_url)
    try:
        runs = rows(engine, "select status, count(*) n from flow_run group by status")
        steps = rows(engine, "select run_id, step_no, count(*) n from flow_step group by run_id, step_no having count(*) > 1")
        approvals = rows(engine, "select count(*) n from approval")[0].n
    finally:
        engine.dispose()
    assert {r.status: r.n for r in runs} == {"waiting": 2 * N}
    assert steps == [] and approvals == 2 * N


@pytest.mark.slow
def test_the_scheduler_stops_cleanly_while_a_long_job_runs(tmp_path: Path, pg_url: str):
    """APScheduler's loop may wake while the pool is shutting down: no late job and no traceback."""
    root = tmp_path / "p"
    cfg = make_project(root, pg_url, """
schedules:
  - {connector: crm, entity: opportunity, every: 1s}
  - {push: all, every: 1s}
""")
    text = cfg.read_text(encoding="utf-8").replace("    entities:\n      customer:", "    batch_size: 20000\n"
                                                   "    entities:\n      customer:", 1)
    cfg.write_text(text, encoding="utf-8")
    mapping = root / "m" / "crm_opportunity.yaml"        # no updated_at: every run reads the whole file
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("updated_at: ts\n", ""), encoding="utf-8")
    lines = [f"O{i},,商机 {i},Qualification,{i}.00,王丽,2026-11-01T00:00:00Z" for i in range(20000)]
    (root / "crm" / "opportunities.csv").write_text("\n".join([OPP_HEADER, *lines]) + "\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", CLI, "--config", str(cfg), "scheduler", "start"], cwd=ROOT,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)                                   # the first (long) batch is running
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err[-3000:]
    assert "scheduler stopped" in out
    assert "Traceback" not in err and "RuntimeError" not in err, err[-3000:]
    assert err.count("stopping: no new jobs") == 1
