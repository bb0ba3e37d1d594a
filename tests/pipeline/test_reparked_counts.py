"""A parked row read again in a newer version, still failing, is counted as quarantined in its run."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main


def run(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_a_newer_version_of_a_parked_row_that_still_fails_counts_as_quarantined(project: Path):
    first = run("sync", "run", "-c", "crm", "-e", "customer")["runs"][0]
    assert first["quarantined"] == 1                                  # the sample's bad e-mail row
    accounts = project / "exports" / "crm" / "accounts.csv"
    lines = accounts.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4].replace("Broken Email Ltd", "Broken Email Limited").replace("T05:00", "T07:00")
    accounts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = run("sync", "run", "-c", "crm", "-e", "customer")["runs"][0]
    assert (again["read"], again["unchanged"], again["quarantined"]) == (1, 0, 1), again   # not 1 read, 0 of anything
    [item] = run("quarantine", "list")["items"]
    assert item["source_id"] == "001A000004"                           # one parked item, its newer version
