"""A failed flow step says which step, which field and which value; constants are checked by type."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from hub.flows import constant

CONFIG = """
store: {url: 'sqlite:///hub.db'}
connectors:
  crm:
    type: file
    path: ./crm
    entities:
      customer: {mapping: m/crm_customer.yaml}
flows:
  - name: vip
    when: {entity: customer, field: tier, becomes: vip, system: crm}
    steps:
      - {name: mark, action: update_record, target: trigger, set: {payment_terms: NT30}}
      - {name: raise limit, action: update_record, target: trigger, set: {credit_limit: notanumber}}
"""

WAITING = CONFIG.replace(
    "      - {name: raise limit, action: update_record, target: trigger, set: {credit_limit: notanumber}}\n",
    "      - {name: approved, action: wait, wait_for: {record: trigger, field: status, in: [active]}}\n")

MAPPING = "source: accounts.csv\nkey: id\nupdated_at: ts\nfields:\n  name: name\n  tax_id: tax\n  tier: tier\n"


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if r.stdout.strip() else {}


def accounts(folder: Path, tier: str, ts: str) -> None:
    (folder / "crm" / "accounts.csv").write_text(
        f"id,name,tax,tier,ts\nA1,上海星海贸易有限公司,91310000MA1FL4XQ01,{tier},{ts}\n", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "triad.yaml").write_text(WAITING, encoding="utf-8")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "crm_customer.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "crm").mkdir()
    accounts(tmp_path, "standard", "2026-11-01T00:00:00Z")
    triad("db", "upgrade")
    return tmp_path


def test_a_bad_constant_is_refused_with_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # a constant no run could write fails when the config is read, naming the flow, step, field and value
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "triad.yaml").write_text(CONFIG, encoding="utf-8")
    r = CliRunner().invoke(main, ["config", "validate"])
    assert r.exit_code == 2, r.output
    assert "flows[0]: steps[1] (raise limit): set: credit_limit: 'notanumber' is not a decimal number" in r.output
    (tmp_path / "triad.yaml").write_text(CONFIG.replace("notanumber", "100").replace("field: tier, becomes: vip", "field: credit_limit, becomes: lots"), encoding="utf-8")
    r = CliRunner().invoke(main, ["config", "validate"])
    assert r.exit_code == 2 and "flows[0]" in r.output and "becomes" in r.output, r.output


@pytest.mark.parametrize("value, type_name, expected", [
    ("notanumber", "decimal", "credit_limit: 'notanumber' is not a decimal number"),
    ("NaN", "decimal", "credit_limit: 'NaN' is not a decimal number"),
    ("1.5x", "int", "credit_limit: '1.5x' is not a whole number"),
    ("yesterday", "date", "credit_limit: 'yesterday' is not a date (YYYY-MM-DD)"),
    (2026, "date", "credit_limit: 2026 is not a date (YYYY-MM-DD)"),
    ("soon", "datetime", "credit_limit: 'soon' is not a date and time (ISO 8601)"),
])
def test_constant_rejects_a_value_of_the_wrong_type(value: object, type_name: str, expected: str):
    with pytest.raises(ValueError) as err:
        constant("credit_limit", value, type_name)
    assert str(err.value) == expected


def test_constant_encodes_good_values():
    now = datetime(2026, 11, 2, 8, 30, tzinfo=timezone.utc)
    assert constant("credit_limit", "120000.50", "decimal") == "120000.5"
    assert constant("credit_limit", 3, "int") == 3
    assert constant("order_date", "today", "date", now) == "2026-11-02"
    assert constant("submitted_at", "now", "datetime", now) == now.isoformat()
    assert constant("stage", "closed_won", "string") == "closed_won"



def test_a_flow_run_failing_during_a_sync_run_makes_it_exit_1(project: Path):
    """`sync run` moves flows on too: a run that fails there is a failure of the command, as in `flows run`."""
    import sqlite3
    triad("sync", "run")
    accounts(project, "vip", "2026-11-02T00:00:00Z")
    first = triad("sync", "run")
    assert first["flows"]["waiting"] == 1 and first["flows"]["failed"] == 0
    with sqlite3.connect(project / "hub.db") as db:     # the record the run waits on is gone (cleaned up by hand)
        db.execute("DELETE FROM xref")
        db.execute("DELETE FROM customer")
    failed = triad("sync", "run", code=1)
    assert failed["flows"]["failed"] == 1 and all(r["status"] == "ok" for r in failed["runs"])
    human = CliRunner().invoke(main, ["sync", "run"], catch_exceptions=False)
    assert human.exit_code == 0, human.output            # failed runs are not moved again: nothing failed now
    runs = triad("flows", "list", "--status", "failed")["runs"]
    assert len(runs) == 1 and "no longer exists" in triad("flows", "show", runs[0]["id"])["steps"][1]["error"]
