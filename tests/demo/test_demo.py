"""`triad demo` runs as a newcomer would run it, and tells the whole story."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAD_")}
    p = subprocess.run([sys.executable, "-m", "cli", "demo", "--dir", str(tmp_path / "d")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    for title in ("Three systems are up", "Initial sync", "Identity", "Conflicts",
                  "the flow raises a budget approval in DingTalk", "the deal is won, the order goes to CRM and ERP",
                  "status and tracking number flow back to the CRM", "a satisfaction review lands in DingTalk", "Done"):
        assert title in out, (title, out)
    assert "6 of 6 overlapping companies linked" in out
    assert "ShippingStatus__c=Shipped, TrackingNumber__c=SF1029384756" in out
    assert ": done" in out and "triad --config" in out

    # the commands it prints work afterwards, against the store it left
    cfg = str(tmp_path / "d" / "triad.yaml")
    conflicts = subprocess.run([sys.executable, "-m", "cli", "--config", cfg, "--json", "conflicts", "list",
                                "--status", "open"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert conflicts.returncode == 0, conflicts.stderr
    (open_conflict,) = json.loads(conflicts.stdout)["conflicts"]
    assert open_conflict["field"] == "email" and set(open_conflict["values"]) == {"crm", "erp"}
    runs = subprocess.run([sys.executable, "-m", "cli", "--config", cfg, "--json", "flows", "list"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    (run,) = json.loads(runs.stdout)["runs"]
    assert run["flow"] == "lead_to_order" and run["status"] == "done"


def test_demo_json_summary(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAD_")}
    p = subprocess.run([sys.executable, "-m", "cli", "--json", "demo", "--dir", str(tmp_path / "d")], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    assert [r["status"] for r in summary["flow_runs"]] == ["done"]
    assert summary["order"] and summary["opportunity"] and summary["open_conflict"]
    assert len(summary["hops"]) == 9
