"""The lead-to-order flow on file connectors: trigger, approval out and back, order to CRM and ERP,
shipment, satisfaction review; replays start nothing twice; a rejection closes the deal with its reason."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

CONFIG = """
store: {url: 'sqlite:///hub.db'}
connectors:
  crm:
    type: file
    path: ./crm
    entities:
      customer: {mapping: m/crm_customer.yaml}
      opportunity: {mapping: m/crm_opportunity.yaml}
      order: {mapping: m/crm_order.yaml}
  erp:
    type: file
    path: ./erp
    entities:
      customer: {mapping: m/erp_customer.yaml}
      order: {mapping: m/erp_order.yaml}
  oa:
    type: file
    path: ./oa
    entities: {approval: {mapping: m/oa_approval.yaml}}
flows:
  - name: lead_to_order
    when: {entity: opportunity, field: stage, becomes: proposal, system: crm}
    steps:
      - name: budget
        action: raise_approval
        systems: [oa]
        set: {kind: budget}
        copy: {amount: trigger.amount, currency: trigger.currency, applicant: trigger.owner}
        wait_for: {record: budget, field: status, in: [approved, rejected]}
      - {name: link, action: update_record, target: trigger, copy: {approval_id: budget.id}}
      - {name: lost, when: {budget.status: rejected}, action: update_record, target: trigger,
         set: {stage: closed_lost}, copy: {lost_reason: budget.comment}}
      - {name: won, when: {budget.status: approved}, action: update_record, target: trigger, set: {stage: closed_won}}
      - name: order
        when: {budget.status: approved}
        action: create_record
        entity: order
        systems: [crm, erp]
        number: order_no
        number_prefix: SO-
        set: {status: confirmed, order_date: today}
        copy: {customer_id: trigger.customer_id, opportunity_id: trigger.id, total_amount: trigger.amount,
               currency: trigger.currency}
      - {name: shipped, when: {budget.status: approved}, action: wait,
         wait_for: {record: order, field: tracking_no, present: true}}
      - {name: rated, when: {budget.status: approved}, action: wait,
         wait_for: {record: order, field: satisfaction_score, present: true}}
      - {name: review, when: {budget.status: approved}, action: raise_approval, systems: [oa],
         set: {kind: performance_review, subject_entity: order},
         copy: {subject_id: order.id, score: order.satisfaction_score, applicant: trigger.owner}}
"""

MAPPINGS = {
    "crm_customer.yaml": "source: accounts.csv\nkey: id\nupdated_at: ts\nfields:\n  name: name\n  tax_id: tax\n",
    "erp_customer.yaml": "source: customers.csv\nkey: id\nupdated_at: ts\nfields:\n  name: name\n  tax_id: tax\n",
    "crm_opportunity.yaml": (
        "source: opportunities.csv\nkey: id\nupdated_at: ts\nfields:\n  opportunity_no: id\n"
        "  customer_id: {from: account, ref: customer}\n  name: name\n"
        "  stage: {from: stage, values: {Qualification: qualification, Proposal: proposal,"
        " Won: closed_won, Lost: closed_lost}}\n"
        "  amount: {from: amount, type: decimal}\n  currency: currency\n  owner: owner\n"
        "  lost_reason: reason\n"),
    "crm_order.yaml": (
        "source: orders.csv\nkey: id\nupdated_at: ts\nfields:\n  order_no: no\n"
        "  customer_id: {from: account, ref: customer}\n  satisfaction_score: {from: score, type: int}\n"
        "  status: status\n  total_amount: {from: amount, type: decimal}\n"),
    "erp_order.yaml": (
        "source: orders.csv\nkey: id\nupdated_at: ts\nfields:\n  order_no: no\n"
        "  customer_id: {from: customer, ref: customer}\n  status: status\n  tracking_no: tracking\n"
        "  shipping_status: shipping\n  total_amount: {from: amount, type: decimal}\n"),
    "oa_approval.yaml": (
        "source: approvals.csv\nkey: id\nupdated_at: ts\nfields:\n  approval_no: id\n  kind: kind\n"
        "  status: status\n  approver: approver\n  comment: comment\n"
        "  amount: {from: amount, type: decimal}\n  score: {from: score, type: int}\n"),
}


def write(path: Path, header: str, *rows: str) -> None:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if r.stdout.strip() else {}


def pushed(folder: Path, entity: str) -> list[dict]:
    out = []
    for f in sorted((folder / "outbox").glob(f"{entity}*")):
        out += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "triad.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "m").mkdir()
    for name, text in MAPPINGS.items():
        (tmp_path / "m" / name).write_text(text, encoding="utf-8")
    for d in ("crm", "erp", "oa"):
        (tmp_path / d).mkdir()
    write(tmp_path / "crm" / "accounts.csv", "id,name,tax,ts", "A1,上海星海贸易有限公司,91310000MA1FL4XQ01,2026-11-01T00:00:00Z")
    write(tmp_path / "crm" / "opportunities.csv", "id,account,name,stage,amount,currency,owner,reason,ts",
          "O1,A1,星海 2027 框架,Qualification,120000.00,CNY,王丽,,2026-11-01T00:00:00Z",
          "O2,A1,星海 试点,Qualification,8000.00,CNY,王丽,,2026-11-01T00:00:00Z")
    triad("db", "upgrade")
    return tmp_path


def decide(project: Path, approval_id: str, status: str, approver: str, comment: str, amount: str) -> None:
    """The OA system's export of an approval the hub raised (the file connector named it T-<id>)."""
    write(project / "oa" / "approvals.csv", "id,kind,status,approver,comment,amount,score,ts",
          f"T-{approval_id},budget,{status},{approver},{comment},{amount},,2099-01-03T00:00:00Z")


def approvals_for(folder: Path) -> dict[str, dict]:
    return {row["__change_id__"]: row for row in pushed(folder, "approval")}


def test_lead_to_order_end_to_end_and_replays_start_nothing_twice(project: Path):
    triad("sync", "run")
    assert triad("flows", "list")["runs"] == []
    write(project / "crm" / "opportunities.csv", "id,account,name,stage,amount,currency,owner,reason,ts",
          "O1,A1,星海 2027 框架,Proposal,120000.00,CNY,王丽,,2026-11-02T00:00:00Z",
          "O2,A1,星海 试点,Qualification,8000.00,CNY,王丽,,2026-11-01T00:00:00Z")
    result = triad("sync", "run")
    assert result["flows"]["started"] == 1 and result["flows"]["waiting"] == 1
    (run,) = triad("flows", "list")["runs"]
    triad("sync", "push")
    (approval,) = pushed(project / "oa", "approval")
    assert approval["kind"] == "budget" and float(approval["amount"]) == 120000 and approval["status"] == "pending"

    # the same data again, and the flows again: no second approval
    again = triad("sync", "run")
    assert again["flows"]["started"] == 0
    triad("flows", "run")
    triad("sync", "push")
    assert len(pushed(project / "oa", "approval")) == 1

    # the approver agrees in the OA system (the file connector named the new record T-<id>)
    shown = triad("flows", "show", run["id"])
    budget_id = shown["context"]["records"]["budget"]
    decide(project, budget_id, "approved", "李总", "预算内", "120000.00")
    triad("sync", "run")
    shown = triad("flows", "show", run["id"])
    steps = {s["name"]: s["status"] for s in shown["steps"]}
    assert steps["budget"] == "done" and steps["lost"] == "skipped" and steps["won"] == "done"
    assert steps["order"] == "done" and steps["shipped"] == "waiting"
    opp = triad("records", "list", "opportunity", "--where", "opportunity_no=O1")["records"][0]
    assert opp["fields"]["stage"] == "closed_won" and opp["fields"]["approval_id"] == budget_id
    order_id = shown["context"]["records"]["order"]
    order = triad("records", "show", "order", order_id)
    assert order["fields"]["status"] == "confirmed" and order["fields"]["total_amount"] == "120000"
    assert order["fields"]["opportunity_id"] == opp["id"] and order["fields"]["order_no"].startswith("SO-")

    triad("sync", "push")
    erp_orders = pushed(project / "erp", "order")
    assert [o["no"] for o in erp_orders] == [order["fields"]["order_no"]]
    assert erp_orders[0]["customer"].startswith("T-")       # the customer reached the ERP first
    assert [o["no"] for o in pushed(project / "crm", "order")] == [order["fields"]["order_no"]]
    crm_opps = pushed(project / "crm", "opportunity")
    assert crm_opps and crm_opps[-1]["stage"] == "Won"

    # the ERP ships; the tracking number flows back to the CRM by ordinary sync
    write(project / "erp" / "orders.csv", "id,no,customer,status,tracking,shipping,amount,ts",
          f"T-{order_id},{order['fields']['order_no']},{erp_orders[0]['customer']},shipped,SF1234567890,shipped,120000.00,"
          "2099-01-05T00:00:00Z")
    triad("sync", "run")
    triad("sync", "push")
    assert pushed(project / "crm", "order")[-1].get("status") == "shipped"
    assert {s["name"]: s["status"] for s in triad("flows", "show", run["id"])["steps"]}["rated"] == "waiting"

    # the customer rates the delivery in the CRM; the score reaches the OA side
    write(project / "crm" / "orders.csv", "id,no,account,score,status,amount,ts",
          f"T-{order_id},{order['fields']['order_no']},A1,9,shipped,120000.00,2099-01-06T00:00:00Z")
    result = triad("sync", "run")
    assert triad("flows", "show", run["id"])["status"] == "done"
    triad("sync", "push")
    review = [a for a in pushed(project / "oa", "approval") if a["kind"] == "performance_review"]
    assert len(review) == 1 and int(review[0]["score"]) == 9


def test_a_rejection_closes_the_deal_with_its_reason(project: Path):
    triad("sync", "run")
    write(project / "crm" / "opportunities.csv", "id,account,name,stage,amount,currency,owner,reason,ts",
          "O2,A1,星海 试点,Proposal,8000.00,CNY,王丽,,2026-11-02T00:00:00Z")
    triad("sync", "run")
    (run,) = triad("flows", "list")["runs"]
    budget_id = triad("flows", "show", run["id"])["context"]["records"]["budget"]
    triad("sync", "push")
    decide(project, budget_id, "rejected", "李总", "超出季度预算", "8000.00")
    triad("sync", "run")
    shown = triad("flows", "show", run["id"])
    assert shown["status"] == "done"
    steps = {s["name"]: s["status"] for s in shown["steps"]}
    assert steps["lost"] == "done" and steps["won"] == "skipped" and steps["order"] == "skipped"
    opp = triad("records", "list", "opportunity", "--where", "opportunity_no=O2")["records"][0]
    assert opp["fields"]["stage"] == "closed_lost" and opp["fields"]["lost_reason"] == "超出季度预算"
    assert triad("records", "list", "order")["records"] == []


def test_flows_show_tells_a_step_whose_write_went_dead(project: Path):
    """A step is done once its record is golden and queued; `flows show` says where each write stands,
    so an approval that never reached the OA system (the run waits for it) is seen, with what to do."""
    with (project / "triad.yaml").open("a", encoding="utf-8") as fh:
        fh.write("outbox: {max_attempts: 1}\n")
    triad("sync", "run")
    write(project / "crm" / "opportunities.csv", "id,account,name,stage,amount,currency,owner,reason,ts",
          "O1,A1,星海 2027 框架,Proposal,120000.00,CNY,王丽,,2026-11-02T00:00:00Z")
    triad("sync", "run")
    (run,) = triad("flows", "list")["runs"]
    (queued,) = triad("flows", "show", run["id"])["steps"][0]["deliveries"]
    assert (queued["connector"], queued["status"]) == ("oa", "pending")
    (project / "oa" / "outbox").write_text("not a folder", encoding="utf-8")    # the OA side cannot take it
    triad("sync", "push", "--connector", "oa", code=1)
    step = triad("flows", "show", run["id"])["steps"][0]
    assert step["name"] == "budget" and step["status"] == "waiting"
    (dead,) = step["deliveries"]
    assert (dead["connector"], dead["status"], dead["id"]) == ("oa", "dead", queued["id"]) and dead["last_error"]
    text = CliRunner().invoke(main, ["flows", "show", run["id"]]).output
    assert f"step budget: the write to oa is dead (outbox item {queued['id']})" in text
    assert "triad outbox retry" in text
