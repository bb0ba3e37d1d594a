"""A run waiting on an approval that is cancelled fails visibly (and a retry raises a new one); a run whose
trigger a steward merged away goes on with the survivor."""
from __future__ import annotations

from pathlib import Path

from .test_flow_engine import decide, project, pushed, triad, write  # noqa: F401 - the fixture and helpers

OPPS = "id,account,name,stage,amount,currency,owner,reason,ts"


def _proposal(project: Path, *rows: str) -> dict:
    triad("sync", "run")
    write(project / "crm" / "opportunities.csv", OPPS, *rows)
    triad("sync", "run")
    (run,) = triad("flows", "list")["runs"]
    return run


def test_a_cancelled_approval_fails_the_run_and_a_retry_raises_a_new_one(project: Path):
    run = _proposal(project, "O1,A1,星海 2027 框架,Proposal,120000.00,CNY,王丽,,2026-11-02T00:00:00Z")
    budget = triad("flows", "show", run["id"])["context"]["records"]["budget"]
    triad("sync", "push")
    decide(project, budget, "cancelled", "", "", "120000.00")
    assert triad("sync", "run", code=1)["flows"]["failed"] == 1     # said by the sync that read it
    shown = triad("flows", "show", run["id"])
    assert shown["status"] == "failed"
    [step] = [s for s in shown["steps"] if s["name"] == "budget"]
    assert step["status"] == "failed" and "budget.status is cancelled" in step["error"]
    assert step["attempts"] == 1          # the passes that found it waiting were no attempts
    retried = triad("flows", "retry", run["id"])
    assert retried["status"] == "waiting"
    again = triad("flows", "show", run["id"])["context"]["records"]["budget"]
    assert again != budget
    triad("sync", "push")
    assert len([a for a in pushed(project / "oa", "approval") if a["kind"] == "budget"]) == 2


def test_a_trigger_merged_away_is_followed_to_its_survivor(project: Path):
    run = _proposal(project, "O1,A1,星海 2027 框架,Proposal,120000.00,CNY,王丽,,2026-11-02T00:00:00Z",
                    "O2,A1,星海 试点,Qualification,8000.00,CNY,王丽,,2026-11-01T00:00:00Z")
    opps = {r["fields"]["opportunity_no"]: r["id"] for r in triad("records", "list", "opportunity")["records"]}
    triad("--user", "root", "matches", "merge", opps["O2"], opps["O1"], "--entity", "opportunity")
    survivor = opps["O2"]
    budget = triad("flows", "show", run["id"])["context"]["records"]["budget"]
    triad("sync", "push")
    decide(project, budget, "approved", "李总", "预算内", "120000.00")
    triad("sync", "run")
    shown = triad("flows", "show", run["id"])
    assert shown["context"]["records"]["trigger"] == survivor
    won = triad("records", "show", "opportunity", survivor)["fields"]
    assert won["stage"] == "closed_won" and won["approval_id"] == budget
    order = triad("records", "show", "order", shown["context"]["records"]["order"])["fields"]
    assert order["opportunity_id"] == survivor
