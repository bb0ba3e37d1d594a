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


def test_a_dropped_row_read_again_unchanged_stays_dropped_and_a_newer_version_is_parked(project: Path):
    run("sync", "run", "-c", "crm", "-e", "customer")
    [item] = run("quarantine", "list")["items"]
    CliRunner().invoke(main, ["quarantine", "drop", item["id"]], catch_exceptions=False)
    accounts = project / "exports" / "crm" / "accounts.csv"
    text = accounts.read_text(encoding="utf-8")
    accounts.write_text(text + "001A000005,New Co,,new@new.co,,CN,上海,,Bronze,王丽,true,2026-11-06T06:00:00Z\n",
                        encoding="utf-8")                       # the file changes: every row is read again
    again = run("sync", "run", "-c", "crm", "-e", "customer")["runs"][0]
    assert again["quarantined"] == 0 and again["created"] == 1, again
    assert run("quarantine", "list")["items"] == []             # given up on: not parked again
    accounts.write_text(accounts.read_text(encoding="utf-8").replace("Broken Email Ltd", "Broken Email Limited")
                        .replace("T05:00", "T07:00"), encoding="utf-8")
    newer = run("sync", "run", "-c", "crm", "-e", "customer")["runs"][0]
    assert newer["quarantined"] == 1 and [i["source_id"] for i in run("quarantine", "list")["items"]] == ["001A000004"]
