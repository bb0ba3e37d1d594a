"""`triad scheduler`: jobs from `schedules` in the hub database; two schedulers on one PostgreSQL store
never run one stream at the same time; SIGTERM lets the running batch commit and exits cleanly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hub.config import parse_config
from hub.scheduler import job_specs

from .helpers import rows, write_project

ROOT = Path(__file__).resolve().parents[2]
# cli.py registers these; registering again here keeps the tests independent of that line
CLI = ("from cli import main; from hub.cli_realtime import scheduler, worker; "
       "main.add_command(scheduler); main.add_command(worker); main()")
N = 1000
CONFIG = """
connectors:
  erp:
    type: file
    path: ./exports
    direction: in
    batch_size: 100
    entities: {customer: {mapping: customer.yaml}}
schedules:
  - {connector: erp, entity: customer, every: 1s}
  - {push: all, every: 2s}
"""
MAPPING = """
source: customers.csv
key: customer_no
fields:
  code: customer_no
  name: name
  city: city
"""   # no updated_at column: every run reads the whole file, so runs take a while and overlap in time


def main_with_commands() -> click.Group:
    from cli import main
    from hub.cli_realtime import scheduler, worker
    main.add_command(scheduler)
    main.add_command(worker)
    return main


def test_job_ids_and_triggers():
    cfg = parse_config("""
connectors: {erp: {type: file, path: ., entities: [customer, order]}, crm: {type: file, path: ., entities: [customer]}}
schedules:
  - {connector: erp, entity: customer, every: 5m}
  - {connector: crm, cron: "*/10 * * * *"}
  - {push: all, every: 30s}
  - {push: crm, every: 1h}
""", env_override=False)
    specs = {s.id: s for s in job_specs(cfg)}
    assert list(specs) == ["sync:erp:customer", "sync:crm:*", "push:all", "push:crm"]
    assert specs["sync:erp:customer"].trigger().interval.total_seconds() == 300
    cron = {f.name: str(f) for f in specs["sync:crm:*"].trigger().fields}
    assert (cron["minute"], cron["hour"]) == ("*/10", "*")
    assert specs["push:crm"].trigger().interval.total_seconds() == 3600


def test_jobs_command_lists_configured_schedules(tmp_path: Path, sqlite_url: str):
    cfg = write_project(tmp_path / "p", CONFIG, sqlite_url)
    r = CliRunner().invoke(main_with_commands(), ["--config", str(cfg), "--json", "scheduler", "jobs"])
    assert r.exit_code == 0, r.output
    jobs = json.loads(r.stdout)["jobs"]
    assert [(j["id"], j["schedule"], j["installed"]) for j in jobs] == [
        ("push:all", "every 2s", False), ("sync:erp:customer", "every 1s", False)]


def scheduler_process(project: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}
    return subprocess.Popen([sys.executable, "-c", CLI, "--config", str(project / "triad.yaml"), "scheduler",
                             "start"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_schedulers_on_one_postgresql_store(tmp_path: Path, pg_url: str):
    project = tmp_path / "p"
    write_project(project, CONFIG, pg_url)
    (project / "customer.yaml").write_text(MAPPING, encoding="utf-8")
    lines = ["customer_no,name,city"] + [f"C{i:05d},公司{i},城市{i % 40}" for i in range(N)]
    (project / "exports" / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    procs = [scheduler_process(project) for _ in range(2)]
    from hub.store import make_engine
    engine = make_engine(pg_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:          # a few runs after the initial load
            n = rows(engine, "select count(*) n from sync_run where status = 'ok'")[0].n
            if n >= 4 or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
        assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs]
        listed = CliRunner().invoke(main_with_commands(), ["--config", str(project / "triad.yaml"), "--json",
                                                           "scheduler", "jobs"])
        jobs = {j["id"]: j for j in json.loads(listed.stdout)["jobs"]}
        assert jobs["sync:erp:customer"]["installed"] and jobs["sync:erp:customer"]["next_run_at"]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    for out, err in outs:
        assert "scheduler running 2 job(s)" in out and "scheduler stopped" in out
        assert "Traceback" not in err
        assert "sync erp/customer" in err                      # each process ran the job (or found it taken)
    runs = rows(engine, "select status, started_at, finished_at, stats from sync_run where connector = 'erp' "
                        "order by started_at")
    engine.dispose()
    assert len(runs) >= 4 and all(r.finished_at is not None for r in runs)    # nothing left `running`
    assert {r.status for r in runs} <= {"ok", "stopped"}
    for a, b in zip(runs, runs[1:]):
        assert a.finished_at <= b.started_at, (a, b)           # one run of the stream at a time
    skipped = sum(err.count("skipped") for _, err in outs)
    assert skipped >= 1                                        # the two did meet, and one stood aside
    first = runs[0].stats if isinstance(runs[0].stats, dict) else json.loads(runs[0].stats)
    assert first["created"] == N


def test_worker_once_takes_the_inbox_the_streams_and_the_outbox(tmp_path: Path, sqlite_url: str):
    from hub.inbox import store
    from hub.store import make_engine

    from .helpers import SECRET, customer_row, signed, write_customers
    cfg = write_project(tmp_path / "p", f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
  out: {{type: file, path: ./exports, direction: out, outbox: ./outbox, entities: [customer]}}
""", sqlite_url)
    write_customers(tmp_path / "p" / "exports", [customer_row(1, "From The File")])
    engine = make_engine(sqlite_url)
    body, _ = signed({"entity": "customer", "records": [customer_row(2, "From A Webhook")]})
    store(engine, "erp", {}, body)
    r = CliRunner().invoke(main_with_commands(), ["--config", str(cfg), "--json", "worker", "--once"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["cycles"] == 1 and result["inbox_rows"] == 1
    assert [(x["connector"], x["status"], x["created"]) for x in result["runs"]] == [("erp", "ok", 1)]
    assert {r.name for r in rows(engine, "select name from customer")} == {"From The File", "From A Webhook"}
    assert rows(engine, "select count(*) n from outbox where status = 'done'")[0].n == 2
    assert list((tmp_path / "p" / "outbox").glob("*"))
    engine.dispose()


def test_worker_once_exits_1_when_writes_failed_as_sync_push_does(tmp_path: Path, sqlite_url: str):
    """A write that failed and waits for its retry is a failure of this cycle: `worker --once` says so by
    its exit code, as `sync push` does (a script running one cycle saw 0 and went on)."""
    from .helpers import customer_row, write_customers
    cfg = write_project(tmp_path / "p", """
connectors:
  erp: {type: file, path: ./exports, direction: in, entities: [customer]}
  out: {type: file, path: ./exports, direction: out, outbox: ./outbox, entities: [customer]}
""", sqlite_url)
    write_customers(tmp_path / "p" / "exports", [customer_row(1, "Cannot Be Written")])
    (tmp_path / "p" / "outbox").write_text("not a folder", encoding="utf-8")
    r = CliRunner().invoke(main_with_commands(), ["--config", str(cfg), "--json", "worker", "--once"])
    assert r.exit_code == 1, r.output
    (pushed,) = json.loads(r.stdout)["pushes"]
    assert pushed["connector"] == "out" and pushed["failed"] == 1 and pushed["dead"] == 0
