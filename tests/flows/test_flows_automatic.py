"""Hand-offs are automatic: `triad scheduler start` and `triad serve` start and move flow runs after the
changes they bring in, with no `triad flows run` or `triad worker` in between."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.helpers import SECRET, Served, rows, signed, wait_for

ROOT = Path(__file__).resolve().parents[2]
CLI = ("from cli import main; from hub.cli_realtime import scheduler, worker; "
       "main.add_command(scheduler); main.add_command(worker); main()")

CONNECTORS = f"""
connectors:
  crm:
    type: file
    path: ./crm
    webhook_secret: {SECRET}
    entities:
      customer: {{mapping: m/crm_customer.yaml}}
      opportunity: {{mapping: m/crm_opportunity.yaml}}
  oa:
    type: file
    path: ./oa
    webhook_secret: {SECRET}
    entities: {{approval: {{mapping: m/oa_approval.yaml}}}}
"""
FLOWS = """
flows:
  - name: budget_check
    when: {entity: opportunity, field: stage, becomes: proposal, system: crm}
    steps:
      - name: budget
        action: raise_approval
        systems: [oa]
        set: {kind: budget}
        copy: {amount: trigger.amount, applicant: trigger.owner}
        wait_for: {record: budget, field: status, in: [approved, rejected]}
      - {name: won, when: {budget.status: approved}, action: update_record, target: trigger, set: {stage: closed_won}}
"""
MAPPINGS = {
    "crm_customer.yaml": "source: accounts.csv\nkey: id\nupdated_at: ts\nfields:\n  name: name\n  tax_id: tax\n",
    "crm_opportunity.yaml": (
        "source: opportunities.csv\nkey: id\nupdated_at: ts\nfields:\n  opportunity_no: id\n"
        "  customer_id: {from: account, ref: customer}\n  name: name\n"
        "  stage: {from: stage, values: {Qualification: qualification, Proposal: proposal, Won: closed_won}}\n"
        "  amount: {from: amount, type: decimal}\n  owner: owner\n"),
    "oa_approval.yaml": (
        "source: approvals.csv\nkey: id\nupdated_at: ts\nfields:\n  approval_no: id\n  kind: kind\n"
        "  status: status\n  approver: approver\n  amount: {from: amount, type: decimal}\n"),
}
OPP_HEADER = "id,account,name,stage,amount,owner,ts"


def opportunity(stage: str, ts: str, i: int = 1) -> str:
    return f"O{i},A1,星海 框架 {i},{stage},120000.00,王丽,{ts}"


def make_project(root: Path, store_url: str, extra: str = FLOWS, opportunities: list[str] | None = None) -> Path:
    """crm + oa file systems and the budget flow; the store migrated. Returns triad.yaml."""
    from hub.config import load_config
    from hub.store import make_engine, upgrade
    (root / "m").mkdir(parents=True)
    for name, text in MAPPINGS.items():
        (root / "m" / name).write_text(text, encoding="utf-8")
    for d in ("crm", "oa"):
        (root / d).mkdir()
    (root / "crm" / "accounts.csv").write_text(
        "id,name,tax,ts\nA1,上海星海贸易有限公司,91310000MA1FL4XQ01,2026-11-01T00:00:00Z\n", encoding="utf-8")
    lines = opportunities or [opportunity("Qualification", "2026-11-01T00:00:00Z")]
    (root / "crm" / "opportunities.csv").write_text("\n".join([OPP_HEADER, *lines]) + "\n", encoding="utf-8")
    cfg = root / "triad.yaml"
    cfg.write_text(f"store: {{url: '{store_url}'}}\n" + CONNECTORS + extra, encoding="utf-8")
    engine = make_engine(load_config(str(cfg)).store.url)
    upgrade(engine)
    engine.dispose()
    return cfg


def pushed_approvals(root: Path) -> list[dict]:
    out = []
    for f in sorted((root / "oa" / "outbox").glob("approval*")):
        out += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def stage(engine, no: str = "O1") -> str | None:  # noqa: ANN001
    found = rows(engine, "select stage from opportunity where opportunity_no = :no", no=no)
    return found[0].stage if found else None


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}


@pytest.mark.slow
def test_the_scheduler_starts_and_moves_flow_runs(tmp_path: Path, sqlite_url: str):
    from hub.store import make_engine
    root = tmp_path / "p"
    cfg = make_project(root, sqlite_url, FLOWS + """
schedules:
  - {connector: crm, every: 1s}
  - {connector: oa, every: 1s}
  - {push: all, every: 1s}
""")
    engine = make_engine(sqlite_url)
    proc = subprocess.Popen([sys.executable, "-c", CLI, "--config", str(cfg), "scheduler", "start"], cwd=ROOT,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: stage(engine) == "qualification" or proc.poll() is not None, 60, "first sync")
        (root / "crm" / "opportunities.csv").write_text(
            f"{OPP_HEADER}\n{opportunity('Proposal', '2026-11-02T00:00:00Z')}\n", encoding="utf-8")
        # the sync job starts the run and raises the approval; the push job delivers it to the OA system
        (approval,) = wait_for(lambda: pushed_approvals(root) or proc.poll() is not None, 60, "approval pushed")
        assert approval["kind"] == "budget" and approval["status"] == "pending"
        assert [r.status for r in rows(engine, "select status from flow_run")] == ["waiting"]
        (root / "oa" / "approvals.csv").write_text(
            f"id,kind,status,approver,amount,ts\n{approval['id']},budget,approved,李总,120000.00,2099-01-03T00:00:00Z\n",
            encoding="utf-8")
        wait_for(lambda: stage(engine) == "closed_won" or proc.poll() is not None, 60, "run moved on by the oa job")
        assert [r.status for r in rows(engine, "select status from flow_run")] == ["done"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        engine.dispose()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "flows: 1 started" in err
    assert len(pushed_approvals(root)) == 1                      # no second approval from the later syncs


def test_serve_moves_flows_after_webhooks(tmp_path: Path, sqlite_url: str):
    from hub.flows import list_runs
    root = tmp_path / "p"
    cfg = make_project(root, sqlite_url)
    from click.testing import CliRunner

    from cli import main
    assert CliRunner().invoke(main, ["--config", str(cfg), "sync", "run"]).exit_code == 0
    with Served(cfg) as s:
        engine = s.engine
        record = dict(zip(OPP_HEADER.split(","), opportunity("Proposal", "2026-11-02T00:00:00Z").split(",")))
        body, headers = signed({"entity": "opportunity", "records": [record]})
        assert s.post("crm", body, headers).status_code == 202
        # the inbox batch starts the run; its approval reaches the OA system without a push command
        (approval,) = wait_for(lambda: pushed_approvals(root), 30, "approval delivered by serve")
        (run,) = list_runs(engine)
        assert run["status"] == "waiting" and stage(engine) == "proposal"
        body, headers = signed({"entity": "approval", "records": [
            {"id": approval["id"], "kind": "budget", "status": "approved", "approver": "李总", "amount": "120000.00",
             "ts": "2099-01-03T00:00:00Z"}]})
        assert s.post("oa", body, headers).status_code == 202
        wait_for(lambda: list_runs(engine)[0]["status"] == "done", 30, "run done after the approval callback")
        assert stage(engine) == "closed_won"
