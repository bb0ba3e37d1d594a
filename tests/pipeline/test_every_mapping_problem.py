"""A row with several values that do not fit names every one of them: a steward fixes the row once."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main

BAD_ROW = ("001A000009,Three Problems Ltd,123,not-an-email,12,Narnia,London,1 King St,Bronze,Jane Doe,true,"
           "2026-11-06T06:00:00Z\n")


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--json", *args])


def _with_bad_row(project: Path) -> None:
    accounts = project / "exports" / "crm" / "accounts.csv"
    accounts.write_text(accounts.read_text(encoding="utf-8") + BAD_ROW, encoding="utf-8")


def test_quarantine_keeps_every_field_that_does_not_fit(project: Path):
    _with_bad_row(project)
    assert run("sync", "run", "-c", "crm", "-e", "customer").exit_code == 0
    parked = [q for q in json.loads(run("quarantine", "list").stdout)["items"] if q["source_id"] == "001A000009"]
    assert len(parked) == 1, parked
    shown = json.loads(run("quarantine", "show", parked[0]["id"]).stdout)
    fields = [r["field"] for r in shown["reasons"]]
    assert fields == ["tax_id", "email", "phone", "country"], shown["reasons"]
    assert all(r["reason"] == "mapping" and r["message"].startswith(f"{r['field']}: ") for r in shown["reasons"])


def test_preview_lists_every_field_that_does_not_fit(project: Path):
    _with_bad_row(project)
    rows = json.loads(run("mappings", "preview", "crm", "customer", "--limit", "5").stdout)["records"]
    bad = rows[4]
    assert bad["field"] == "tax_id" and bad["error"].startswith("tax_id: ")
    assert [e["field"] for e in bad["errors"]] == ["tax_id", "email", "phone", "country"]
    # one problem: the list holds just it
    assert [e["field"] for e in rows[3]["errors"]] == ["email"]
    human = CliRunner().invoke(main, ["mappings", "preview", "crm", "customer", "--limit", "5"]).output
    assert "not-an-email" in human and "Narnia" in human
