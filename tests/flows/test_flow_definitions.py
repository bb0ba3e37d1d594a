"""A flow definition with a mistake fails `config validate` (exit 2) naming the file, the key path and what was
expected, instead of being accepted and then misbehaving in a run; a correct flow is still accepted."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from hub.config import parse_config

CONNECTORS = """
store: {url: 'sqlite:///hub.db'}
connectors:
  crm: {type: file, path: ./crm, entities: [customer, opportunity, order]}
  erp: {type: file, path: ./erp, entities: [customer, order]}
  oa: {type: file, path: ./oa, entities: [approval]}
  bi: {type: file, path: ./bi, direction: in, entities: [order]}
  fin: {type: yonyou, base_url: 'http://127.0.0.1:9', entities: [payment]}
flows:
"""

TRIGGER = "    when: {entity: opportunity, field: stage, becomes: proposal, system: crm}\n"

GOOD_FLOW = """
  - name: lead_to_order
    when: {entity: opportunity, field: stage, becomes: proposal, system: crm}
    steps:
      - name: budget
        action: raise_approval
        systems: [oa]
        set: {kind: budget}
        copy: {amount: trigger.amount, currency: trigger.currency, subject_id: trigger.id}
        wait_for: {record: budget, field: status, in: [approved, rejected]}
      - {name: link, action: update_record, target: trigger, systems: [crm], copy: {approval_id: budget.id}}
      - name: sales_order
        when: {budget.status: [approved]}
        action: create_record
        entity: order
        systems: [crm, erp]
        number: order_no
        number_prefix: SO-
        set: {status: confirmed, order_date: today}
        copy: {customer_id: trigger.customer_id, total_amount: trigger.amount}
        line: {set: {sku: MZ-FG-C900, quantity: 1}, copy: {unit_price: trigger.amount}}
      - {name: shipped, action: wait, wait_for: {record: sales_order, field: tracking_no, present: true}}
"""


def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flows: str) -> tuple[int, str]:
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "triad.yaml").write_text(CONNECTORS + flows, encoding="utf-8")
    r = CliRunner().invoke(main, ["config", "validate"])
    return r.exit_code, r.output


def flow(*steps: str, name: str = "f") -> str:
    return f"  - name: {name}\n{TRIGGER}    steps:\n" + "".join(f"      - {s}\n" for s in steps)


def test_duplicate_step_names_and_a_step_named_trigger_are_refused(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: a, action: raise_approval, systems: [oa], set: {kind: budget}}",
        "{name: a, action: raise_approval, systems: [oa], set: {kind: legal}}",
        "{name: trigger, action: create_record, entity: order, systems: [crm]}"))
    assert code == 2, out
    assert "triad.yaml: flows[0]: steps[1] (a): name: 'a' is already the name of steps[0]" in out
    assert "triad.yaml: flows[0]: steps[2] (trigger): name: 'trigger' is reserved" in out


def test_a_flow_name_given_twice_is_refused(tmp_path, monkeypatch):
    one = flow("{name: a, action: update_record, target: trigger, set: {stage: negotiation}}", name="deal")
    other = flow("{name: b, action: wait, wait_for: {record: trigger, field: stage, present: true}}", name="other")
    code, out = validate(tmp_path, monkeypatch, one + other + one)
    assert code == 2, out
    assert "triad.yaml: flows[2].name: 'deal' is already the name of flows[0]" in out


@pytest.mark.parametrize("step, expected", [
    ("{name: b, action: raise_approval, systems: [oa], copy: {amount: trigger.amout, currency: trigger.curency}}",
     ["steps[0] (b): copy.amount: 'trigger.amout': opportunity has no field 'amout'; did you mean 'amount'?",
      "steps[0] (b): copy.currency: 'trigger.curency': opportunity has no field 'curency'; did you mean 'currency'?"]),
    ("{name: b, action: raise_approval, systems: [oa], copy: {amout: trigger.amount}}",
     ["steps[0] (b): copy.amout: approval has no field 'amout'; did you mean 'amount'?"]),
    ("{name: b, action: raise_approval, systems: [oa], wait_for: {record: b, field: statsu, in: [approved]}}",
     ["steps[0] (b): wait_for.field: approval has no field 'statsu'; did you mean 'status'?"]),
    ("{name: b, action: raise_approval, systems: [oa], wait_for: {record: b, field: status, in: [aproved]}}",
     ["steps[0] (b): wait_for.in[0]: 'aproved' is not a status of approval; did you mean 'approved'?"]),
    ("{name: b, action: update_record, target: trigger, when: {trigger.statge: proposal}, set: {stage: negotiation}}",
     ["steps[0] (b): when: 'trigger.statge': opportunity has no field 'statge'; did you mean 'stage'?"]),
    ("{name: b, action: create_record, entity: order, systems: [crm], number: ordr_no}",
     ["steps[0] (b): number: order has no field 'ordr_no'; did you mean 'order_no'?"]),
    ("{name: b, action: create_record, entity: order, systems: [crm], line: {set: {skuu: X1}}}",
     ["steps[0] (b): line.set.skuu: an order line has no field 'skuu'; did you mean 'sku'?"]),
    ("{name: b, action: create_record, entity: order, systems: [crm], set: {status: confirmd}}",
     ["steps[0] (b): set.status: 'confirmd' is not a status of order; did you mean 'confirmed'?"]),
    ("{name: b, action: update_record, target: trigger, copy: {name: trigger}}",
     ["steps[0] (b): copy.name: 'trigger': not a reference; expected <trigger or step>.<field>"]),
])
def test_a_misspelt_field_is_refused_with_a_did_you_mean(tmp_path, monkeypatch, step: str, expected: list[str]):
    code, out = validate(tmp_path, monkeypatch, flow(step))
    assert code == 2, out
    for line in expected:
        assert f"triad.yaml: flows[0]: {line}" in out


def test_a_condition_on_an_earlier_step_field_is_checked_against_that_step_entity(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: budget, action: raise_approval, systems: [oa], wait_for: {record: budget, field: status, "
        "in: [approved]}}",
        "{name: won, when: {budget.statsu: approved}, action: update_record, target: trigger, "
        "set: {stage: closed_won}}",
        "{name: lost, when: {budgte.status: rejected}, action: update_record, target: trigger, "
        "set: {stage: closed_lost}}"))
    assert code == 2, out
    assert "flows[0]: steps[1] (won): when: 'budget.statsu': approval has no field 'statsu'; did you mean 'status'?" in out
    assert ("flows[0]: steps[2] (lost): when: 'budgte.status': 'budgte' is not the trigger or an earlier step; "
            "did you mean 'budget'?") in out


def test_a_trigger_value_outside_the_field_values_is_refused(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: won, action: update_record, target: trigger, set: {stage: closed_won}}").replace(
        "becomes: proposal", "becomes: propsal"))
    assert code == 2, out
    assert "triad.yaml: flows[0].when: becomes: 'propsal' is not a stage of opportunity; did you mean 'proposal'?" in out


def test_a_step_that_makes_no_record_cannot_be_referenced(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: link, action: update_record, target: trigger, set: {stage: negotiation}}",
        "{name: b, action: raise_approval, systems: [oa], copy: {subject_id: link.id}}",
        "{name: w, action: wait, wait_for: {record: w, field: id, present: true}}"))
    assert code == 2, out
    assert "flows[0]: steps[2] (w): wait_for.record: 'w' is a wait step, which makes no record" in out
    assert ("flows[0]: steps[1] (b): copy.subject_id: 'link.id': 'link' is an update_record step, which makes no "
            "record; refer to its target 'trigger' instead") in out


def test_keys_an_action_does_not_read_are_refused(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: w, action: wait, set: {stage: won}, wait_for: {record: trigger, field: stage, present: true}}"))
    assert code == 2, out
    assert "flows[0].steps[0]: a wait step does not use set" in out


@pytest.mark.parametrize("system, expected", [
    ("oa", "flows[0].steps[0].systems[0]: oa does not sync order (its entities: approval)"),
    ("bi", "flows[0].steps[0].systems[0]: bi only reads order (direction in)"),
])
def test_a_step_writing_to_a_system_without_the_entity_is_refused(tmp_path, monkeypatch, system, expected):
    code, out = validate(tmp_path, monkeypatch, flow(
        f"{{name: o, action: create_record, entity: order, systems: [{system}]}}"))
    assert code == 2, out
    assert f"triad.yaml: {expected}" in out


def test_a_step_writing_an_entity_its_system_cannot_write_is_refused(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: p, action: create_record, entity: payment, systems: [fin]}"))
    assert code == 2, out
    assert "triad.yaml: flows[0].steps[0].systems[0]: the yonyou connector cannot write payment" in out


def test_an_update_step_is_checked_against_its_target_entity(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: won, action: update_record, target: trigger, systems: [erp], set: {stage: closed_won}}"))
    assert code == 2, out
    assert "triad.yaml: flows[0].steps[0].systems[0]: erp does not sync opportunity (its entities: customer, order)" in out


def test_a_trigger_system_that_does_not_read_the_entity_is_refused(tmp_path, monkeypatch):
    code, out = validate(tmp_path, monkeypatch, flow(
        "{name: won, action: update_record, target: trigger, set: {stage: closed_won}}").replace(
        "system: crm", "system: erp"))
    assert code == 2, out
    assert "triad.yaml: flows[0].when.system: erp does not sync opportunity (its entities: customer, order)" in out


def test_a_correct_flow_is_accepted(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    cfg = parse_config(CONNECTORS + GOOD_FLOW, "triad.yaml", env_override=False)
    assert [s.name for s in cfg.flows[0].steps] == ["budget", "link", "sales_order", "shipped"]


def test_the_shipped_demo_flow_validates(monkeypatch):
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.setenv("TRIAD_DEMO_OA_AES_KEY", "a" * 43)
    demo = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
    r = CliRunner().invoke(main, ["--config", str(demo), "config", "validate"])
    assert r.exit_code == 0, r.output
