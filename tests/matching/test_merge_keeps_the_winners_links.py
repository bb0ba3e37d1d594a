"""After `matches merge A B` the winner has two links in a system (its own and the loser's row there). Its
updates and the references to it go to its own: an order of A's written to the ERP names A's customer
number there, not the merged-away B's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--user", "alice", "--json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture
def project(init_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    triad("sync", "run")
    return init_project


def golden_id(code: str) -> str:
    return triad("records", "list", "customer", "--where", f"code={code}")["records"][0]["id"]


def test_an_order_of_the_winner_goes_out_under_the_winners_own_customer_number(project: Path):
    a, b = golden_id("C0001"), golden_id("C0004")
    orders = [r for r in triad("records", "list", "order")["records"] if r["fields"]["customer_id"] == a
              and "erp" not in r["xrefs"]]
    assert orders, "the sample has a CRM order of C0001's customer that the ERP does not hold yet"
    triad("matches", "merge", a, b)
    assert sorted(triad("records", "show", "customer", a)["xrefs"]["erp"]) == ["C0001", "C0004"]
    triad("sync", "push")
    written = [json.loads(line) for f in sorted((project / "exports" / "erp" / "outbox").glob("order-*"))
               for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    mine = [w for w in written if w["order_no"] in {o["xrefs"]["crm"][0] for o in orders}]
    assert mine and {w["customer_no"] for w in mine} == {"C0001"}, mine
