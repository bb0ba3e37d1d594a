"""A record that does not carry a field says nothing about it: an export without a column (or a JSON
record leaving a key out) must not empty that field in the golden store, nor in the systems after it."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from cli import main


def run(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _without_column(path: Path, column: str, stamp_from: str, stamp_to: str) -> None:
    rows = list(csv.reader(path.open(encoding="utf-8")))
    i = rows[0].index(column)
    rows = [r[:i] + r[i + 1:] for r in rows]
    for r in rows[1:]:
        r[-1] = r[-1].replace(stamp_from, stamp_to)     # read again: a later change time
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def phones() -> dict[str, str | None]:
    return {r["fields"]["name"]: r["fields"]["phone"] for r in run("records", "list", "customer")["records"]}


def test_an_export_without_a_column_leaves_that_field_as_it_is(project: Path):
    run("sync", "run", "-c", "crm", "-e", "customer")
    before = phones()
    assert sum(p is not None for p in before.values()) == 3
    queued = {i["id"] for i in run("outbox", "list")["items"]}
    _without_column(project / "exports" / "crm" / "accounts.csv", "Phone", "2026-11-06", "2026-11-08")
    _without_column(project / "exports" / "crm" / "accounts.csv", "City", "2026-11-08", "2026-11-09")
    [ran] = run("sync", "run", "-c", "crm", "-e", "customer")["runs"]
    assert ran["status"] == "ok" and ran["quarantined"] == 1     # the sample's bad e-mail row, in its newer version
    assert phones() == before
    assert [i for i in run("outbox", "list")["items"] if i["id"] not in queued] == []   # nothing to send


def test_an_empty_cell_still_clears_the_field(project: Path):
    run("sync", "run", "-c", "crm", "-e", "customer")
    accounts = project / "exports" / "crm" / "accounts.csv"
    rows = list(csv.reader(accounts.open(encoding="utf-8")))
    i = rows[0].index("Phone")
    rows[1][i], rows[1][-1] = "", rows[1][-1].replace("2026-11-06", "2026-11-08")
    with accounts.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    run("sync", "run", "-c", "crm", "-e", "customer")
    assert phones()[rows[1][1]] is None
