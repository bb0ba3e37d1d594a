"""`triad matches unmerge` gives back "both records, their xrefs, references and conflicts as they were before
it": the systems written while the two were merged get their references corrected, the read-back of those
writes is no edit, and the automatic conflicts the merge made go away with it.

A project from `triad init` (erp and crm `file` connectors, direction both): erp's C0004 and crm's A4 look
alike (a match candidate, not a link); each system has one order of its customer.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

SURVIVORSHIP = ("survivorship: {customer: {default: most_recent, priority: [erp, crm]}, "
                "order: {default: most_recent, priority: [erp, crm]}}\n"
                "matching: {customer: {exact: [tax_id, email], fuzzy: {fields: {name: 0.6, city: 0.2, phone: 0.2}, "
                "link_at: 0.92, review_at: 0.75}}}\n")
ROWS = {
    ("erp", "customers.csv"): "C0004,Acme Trading Inc,company,,acme@acme.example,+1 415 555 2671,United States,CA,"
                              "San Francisco,500 Market St,94105,USD,100000,NET30,active,2026-11-04 09:00:00",
    ("erp", "orders.csv"): "SO-1004,C0004,2026-11-12,draft,USD,5000.00,0,2026-11-12 08:00:00",
    ("crm", "accounts.csv"): "A4,Acme Tradng Inc,,sales@acme2.example,+1 510 555 9999,US,Oakland,Market,Bronze,Jane,"
                             "true,2026-11-06T05:00:00Z",
    ("crm", "orders.csv"): "CRM-5001,A4,2026-11-15,confirmed,USD,22600.00,2026-11-15T03:00:00Z",
}
FILES = {("erp", "customer"): ("customers.csv", "customer_no", "updated_at", "2026-11-20 10:00:00"),
         ("erp", "order"): ("orders.csv", "order_no", "updated_at", "2026-11-20 10:00:00"),
         ("crm", "customer"): ("accounts.csv", "AccountId", "LastModified", "2026-11-20T02:00:00Z"),
         ("crm", "order"): ("orders.csv", "OrderNumber", "LastModified", "2026-11-20T02:00:00Z")}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TRIAD_CONFIG", "TRIAD_USER", "TRIAD_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "p"
    triad("init", str(root), json_out=False)
    monkeypatch.chdir(root)
    yaml = (root / "triad.yaml").read_text(encoding="utf-8")
    start, end = yaml.index("survivorship:"), yaml.index("schedules:")
    end = yaml.index("\n\n", end) + 2      # no schedules either: nothing runs by itself
    (root / "triad.yaml").write_text(yaml[:start] + SURVIVORSHIP + "\n" + yaml[end:], encoding="utf-8")
    for (system, name), row in ROWS.items():
        path = root / "exports" / system / name
        header = path.read_text(encoding="utf-8").splitlines()[0]
        path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    triad("db", "upgrade", json_out=False)
    triad("sync", "run")
    return root


def triad(*args: str, json_out: bool = True):  # noqa: ANN201
    r = CliRunner().invoke(main, ["--user", "alice", *(["--json"] if json_out else []), *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout) if json_out and r.stdout.strip().startswith("{") else r.output


def candidate() -> dict:
    (c,) = triad("matches", "list")["candidates"]
    return c


def customer_of(system: str, source_id: str) -> str:
    return next(r["id"] for r in triad("records", "list", "customer")["records"]
                if source_id in r["xrefs"].get(system, []))


def orders() -> dict[str, str]:
    """order number -> the golden customer it belongs to."""
    return {r["fields"]["order_no"]: r["fields"]["customer_id"] for r in triad("records", "list", "order")["records"]}


def order_id(number: str) -> str:
    return next(r["id"] for r in triad("records", "list", "order")["records"] if r["fields"]["order_no"] == number)


def writes(root: Path, system: str, entity: str) -> list[dict]:
    """What the hub wrote to ``system`` and it has not imported yet, oldest first."""
    return [json.loads(line) for f in sorted((root / "exports" / system / "outbox").glob(f"{entity}-*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def take_in(root: Path, system: str, entity: str) -> None:
    """The system imports the hub's writes and exports its records again, stamped later than anything."""
    name, key, stamp, ts = FILES[(system, entity)]
    path = root / "exports" / system / name
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    for w in writes(root, system, entity):
        row = next((r for r in rows if r[key] == w[key]), None)
        if row is None:
            row = dict.fromkeys(header, "")
            rows.append(row)
        row.update({k: v for k, v in w.items() if not k.startswith("__")}, **{stamp: ts})
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.DictWriter(f, header)
        out.writeheader()
        out.writerows(rows)
    for f in (root / "exports" / system / "outbox").glob(f"{entity}-*.jsonl"):
        f.unlink()


def pending(entity: str) -> list[dict]:
    return [r for r in triad("outbox", "list", "--status", "pending")["items"] if r["entity"] == entity]


def test_unmerge_corrects_the_references_written_while_merged(project: Path) -> None:
    c = candidate()
    erp_b, crm_a = customer_of("erp", "C0004"), customer_of("crm", "A4")
    merged = triad("matches", "merge", c["id"])
    assert merged["winner"] == erp_b and merged["loser"] == crm_a
    triad("sync", "push")     # while merged each system gets the other's order, under the one customer it holds
    assert [(w["OrderNumber"], w["AccountId"]) for w in writes(project, "crm", "order")] == [("SO-1004", "A4")]
    assert [(w["order_no"], w["customer_no"]) for w in writes(project, "erp", "order")] == [("CRM-5001", "C0004")]

    triad("matches", "unmerge", merged["merge_id"])
    assert orders() == {"SO-1004": erp_b, "CRM-5001": crm_a}
    fixes = {(r["connector"], r["record_id"]): r["fields"] for r in pending("order")}
    so, crm_order = order_id("SO-1004"), order_id("CRM-5001")
    assert fixes == {("crm", so): {"customer_id": erp_b}, ("erp", crm_order): {"customer_id": crm_a}}

    # the systems show what they were written while merged: that is the hub's own write, not an edit
    take_in(project, "crm", "order")
    take_in(project, "erp", "order")
    triad("sync", "run", "-e", "order")
    assert orders() == {"SO-1004": erp_b, "CRM-5001": crm_a}
    assert {(r["connector"], r["record_id"]): r["fields"] for r in pending("order")} == fixes

    # the steward says they differ: each customer reaches the other system, then the corrected orders
    triad("matches", "reject", c["id"])
    triad("sync", "push")
    assert pending("order") == [] and pending("customer") == []
    (b_in_crm,) = [w["AccountId"] for w in writes(project, "crm", "customer") if w["__op__"] == "create"]
    (a_in_erp,) = [w["customer_no"] for w in writes(project, "erp", "customer") if w["__op__"] == "create"]
    assert [(w["OrderNumber"], w["AccountId"]) for w in writes(project, "crm", "order")] == [("SO-1004", b_in_crm)]
    assert [(w["order_no"], w["customer_no"]) for w in writes(project, "erp", "order")] == [("CRM-5001", a_in_erp)]

    for system in ("erp", "crm"):
        for entity in ("customer", "order"):
            take_in(project, system, entity)
    triad("sync", "run")
    assert orders() == {"SO-1004": erp_b, "CRM-5001": crm_a}
    assert customer_of("crm", b_in_crm) == erp_b and customer_of("erp", a_in_erp) == crm_a
    assert pending("order") == []
    for number in ("SO-1004", "CRM-5001"):
        moves = [h for h in triad("records", "history", "order", order_id(number), "--field", "customer_id")["history"]
                 if h["reason"] not in ("merge", "unmerge")]
        assert all(h["old"] is None for h in moves), moves   # set once when created, never moved since


def test_unmerge_removes_the_automatic_conflicts_of_the_merge(project: Path) -> None:
    a, b = customer_of("crm", "A4"), customer_of("erp", "C0004")
    before = {rid: triad("records", "show", "customer", rid)["conflicts"] for rid in (a, b)}
    merged = triad("matches", "merge", a, b)
    survivor = triad("records", "show", "customer", merged["winner"])
    assert {c["field"] for c in survivor["conflicts"]} >= {"name", "email", "phone", "city", "address"}
    triad("matches", "unmerge", merged["merge_id"])
    assert {rid: triad("records", "show", "customer", rid)["conflicts"] for rid in (a, b)} == before
    assert triad("conflicts", "list", "--status", "auto")["conflicts"] == []
