"""A record whose exact keys point at two golden records (its tax id at one, its e-mail at another):
it links to the first key's record and opens one match candidate between the two, never a merge.
Through the CLI, on a project from `triad init` (erp and crm file connectors)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

MATCHING = """matching:
  customer:
    exact: [tax_id, email]
    fuzzy: {fields: {name: 0.6, city: 0.2, phone: 0.2}, link_at: 0.92, review_at: 0.75}
"""
TAX = "91310000MA1FL4XQ01"
TAX_XH = "91310000MA1FL4XQ14"
BOSS = "boss@xh-group.cn"


@pytest.fixture
def project(init_project: Path) -> Path:
    cfg = init_project / "triad.yaml"
    text = cfg.read_text(encoding="utf-8")
    start = text.index("matching:")
    end = text.index("\n\n", start)
    cfg.write_text(text[:start] + MATCHING + text[end:], encoding="utf-8")
    erp = init_project / "exports" / "erp" / "customers.csv"
    erp.write_text("\n".join(erp.read_text(encoding="utf-8").splitlines()[:2]) + "\n", encoding="utf-8")  # C0001
    crm("")
    return init_project


def crm(*rows: str) -> None:
    path = Path("exports/crm/accounts.csv")
    header = path.read_text(encoding="utf-8").splitlines()[0]
    path.write_text("\n".join([header, *(r for r in rows if r)]) + "\n", encoding="utf-8")


def account(sid: str, name: str, tax: str, email: str, city: str = "", ts: str = "2026-11-06T02:00:00Z") -> str:
    return f"{sid},{name},{tax},{email},,CN,{city},,,,true,{ts}"


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else {}


def sync() -> None:
    triad("sync", "run", "-e", "customer")


def live() -> dict[str, dict]:
    return {r["id"]: r for r in triad("records", "list", "customer", "--limit", "50")["records"]}


def record_of(system: str, sid: str) -> str:
    return next(rid for rid, r in live().items() if sid in r["xrefs"].get(system, []))


def candidates() -> list[dict]:
    return triad("matches", "list")["candidates"]


def stored_details() -> list[dict]:
    with sqlite3.connect("triad.db") as db:
        return [json.loads(d) for (d,) in db.execute("SELECT details FROM match_candidate")]


A9 = account("A9", "XH Group", "", BOSS)
LATER = "2026-11-08T02:00:00Z"   # rows older than the last sync's are not read again
A10 = account("A10", "星海贸易", TAX, BOSS, "上海", "2026-11-07T02:00:00Z")


def test_keys_pointing_at_two_records_open_one_candidate_a_steward_can_merge(project: Path):
    crm(A9)
    sync()
    xinghai, xh = record_of("erp", "C0001"), record_of("crm", "A9")
    assert xinghai != xh and candidates() == []
    crm(A9, A10)
    sync()
    assert record_of("crm", "A10") == xinghai            # the first key (tax_id) decides the link
    assert len(live()) == 2                              # no automatic merge
    (c,) = candidates()
    assert {c["record_a"], c["record_b"]} == {xinghai, xh} and c["score"] == 1.0
    assert stored_details() == [{"exact": {"tax_id": TAX, "email": BOSS}}]
    assert triad("matches", "list", "--merges")["merges"] == []

    sync()                                               # nothing new: nothing opened again
    crm(A9, A10, account("A11", "星海贸易", TAX, BOSS, "上海", LATER))   # both keys again
    sync()
    assert [x["id"] for x in candidates()] == [c["id"]]

    triad("matches", "merge", c["id"])
    (rec,) = live().values()
    assert {s: sorted(ids) for s, ids in rec["xrefs"].items()} == {"crm": ["A10", "A11", "A9"], "erp": ["C0001"]}
    assert candidates() == []
    assert [m["status"] for m in triad("matches", "list", "--merges")["merges"]] == ["merged"]


def test_a_pair_open_or_rejected_is_not_opened_again(project: Path):
    xh = account("A9", "XH Group", TAX_XH, BOSS)
    crm(xh)
    sync()
    crm(xh, A10)
    sync()
    (c,) = candidates()
    # tax id at XH Group, e-mail at 星海: the same two records, the other way round
    crm(xh, A10, account("A12", "XH Group", TAX_XH, "finance@xinghai.cn", ts=LATER))
    sync()
    assert record_of("crm", "A12") == record_of("crm", "A9")
    assert [x["id"] for x in candidates()] == [c["id"]]          # open already
    triad("matches", "reject", c["id"])
    crm(xh, A10, account("A13", "XH Group", TAX_XH, "finance@xinghai.cn", ts="2026-11-09T02:00:00Z"))
    sync()
    assert record_of("crm", "A13") == record_of("crm", "A9")
    assert candidates() == [] and len(live()) == 2              # a steward said no


def test_an_ordinary_exact_link_opens_no_candidate(project: Path):
    crm(account("A1", "星海", TAX, "finance@xinghai.cn"), account("A2", "星海贸易", TAX, ""),
        account("A3", "Xinghai", "", "FINANCE@xinghai.cn"))
    sync()
    assert len(live()) == 1
    assert candidates() == [] and stored_details() == []
