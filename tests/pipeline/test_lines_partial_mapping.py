"""A system whose mapping carries fewer order-line fields changes only those (SPEC section 5).

``f`` uses the shipped file mapping (its lines carry ``description``); the second system's
``each:`` leaves ``description`` out. Reading our own write back from it is a no-op, a real edit of
a sub-field it carries still merges, and the golden lines keep the description throughout.
"""
from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

LINE = {"line_no": 1, "sku": "A-1", "description": "Valve", "quantity": "2", "unit_price": "10.00", "amount": "20.00"}
WITH_DESCRIPTION = {"line_no": 1, "sku": "A-1", "description": "Valve", "quantity": "2", "unit_price": "10",
                    "amount": "20"}
LINES_WITHOUT_DESCRIPTION = """\
  lines:
    from: lines
    each:
      line_no: {from: line_no, type: int}
      sku: sku
      quantity: {from: quantity, type: decimal}
      unit_price: {from: unit_price, type: decimal}
      amount: {from: amount, type: decimal}
"""
SECOND_MAPPING = """\
source: %s
key: order_no
updated_at: updated_at
fields:
  order_no: order_no
  order_date: {from: order_date, type: date}
  status: status
  currency: currency
""" + LINES_WITHOUT_DESCRIPTION


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else {}


def run(connector: str) -> dict:
    (result,) = triad("sync", "run", "--connector", connector)["runs"]
    assert result["status"] == "ok", result
    return result


def push(connector: str) -> dict:
    pushes = {p["connector"]: p for p in triad("sync", "push")["pushes"]}
    return pushes[connector]


def the_order() -> dict:
    (record,) = triad("records", "list", "order")["records"]
    return triad("records", "show", "order", record["id"])


def write_f_export(root: Path) -> None:
    with open(root / "f" / "orders.csv", "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["order_no", "order_date", "status", "currency", "total_amount", "updated_at", "lines"])
        out.writerow(["FO1", "2026-11-10", "confirmed", "CNY", "20.00", "2026-11-10 09:00:00", json.dumps([LINE])])


def project(root: Path, monkeypatch: pytest.MonkeyPatch, second: str) -> Path:
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    monkeypatch.delenv("TRIAD_USER", raising=False)
    (root / "f").mkdir(parents=True)
    (root / "triad.yaml").write_text(
        'store: {url: "sqlite:///triad.db"}\n'
        "connectors:\n"
        "  f: {type: file, path: ./f, direction: both, entities: {order: {}}}\n"
        f"  db: {second}\n", encoding="utf-8")
    monkeypatch.chdir(root)
    write_f_export(root)
    triad("db", "upgrade")
    return root


def lines_history(shown: dict) -> list[dict]:
    return [h for h in shown["history"] if h["field"] == "lines"]


@pytest.fixture
def two_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "db").mkdir()
    (root / "db_order.yaml").write_text(SECOND_MAPPING % "orders.jsonl", encoding="utf-8")
    (root / "db" / "orders.jsonl").write_text("", encoding="utf-8")
    return project(root, monkeypatch, "{type: file, path: ./db, direction: both, "
                                      "entities: {order: {mapping: db_order.yaml}}}")


def import_outbox(root: Path, updated_at: str, **line_changes: str) -> dict:
    """The second system imports what the hub wrote to it, as its own export (optionally edited)."""
    (written,) = [json.loads(x) for f in sorted((root / "db" / "outbox").glob("*.jsonl"))
                  for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    row = {k: v for k, v in written.items() if not k.startswith("__")}
    row["lines"] = [dict(line, **line_changes) for line in row["lines"]]
    row["updated_at"] = updated_at
    (root / "db" / "orders.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return row


def test_reading_back_our_write_from_a_system_without_descriptions_keeps_them(two_files: Path):
    assert run("f")["created"] == 1
    run("db")                                   # read once (empty): the order can be created there
    assert push("db")["created"] == 1
    row = import_outbox(two_files, "2026-11-11T09:00:00Z")
    assert "description" not in row["lines"][0]          # the system holds no description

    echo = run("db")
    assert (echo["updated"], echo["conflicts"], echo["queued"]) == (0, 0, 0), echo
    shown = the_order()
    assert shown["fields"]["lines"][0]["description"] == "Valve"
    assert lines_history(shown) == []
    assert triad("outbox", "list", "--status", "pending")["items"] == []


def test_an_edit_of_a_carried_line_field_merges_and_keeps_the_description(two_files: Path):
    run("f")
    run("db")
    push("db")
    import_outbox(two_files, "2026-11-11T09:00:00Z")
    run("db")
    import_outbox(two_files, "2026-11-12T09:00:00Z", quantity="3", amount="30")

    edit = run("db")
    assert (edit["updated"], edit["conflicts"], edit["queued"]) == (1, 0, 1), edit
    shown = the_order()
    assert shown["fields"]["lines"] == [dict(WITH_DESCRIPTION, quantity="3", amount="30")]
    (change,) = lines_history(shown)
    assert (change["system"], change["reason"]) == ("db", "informed")
    assert change["new"] == [dict(WITH_DESCRIPTION, quantity="3", amount="30")]
    (queued,) = triad("outbox", "list", "--status", "pending")["items"]
    assert queued["connector"] == "f" and queued["fields"]["lines"][0]["description"] == "Valve"


def test_an_edit_back_to_a_value_we_once_wrote_is_an_edit(two_files: Path):
    """Our write shown back settles it: the system later setting its lines back to that value is its
    own edit, not our write arriving late."""
    run("f")
    run("db")
    push("db")
    import_outbox(two_files, "2026-11-11T09:00:00Z")
    run("db")                                                  # our write shown back
    import_outbox(two_files, "2026-11-12T09:00:00Z", quantity="3", amount="30")
    assert run("db")["updated"] == 1
    import_outbox(two_files, "2026-11-13T09:00:00Z")          # back to 2, as once written

    back = run("db")
    assert back["updated"] == 1, back
    assert the_order()["fields"]["lines"] == [WITH_DESCRIPTION]


def test_a_line_dropped_by_the_system_still_counts(two_files: Path):
    run("f")
    run("db")
    push("db")
    row = import_outbox(two_files, "2026-11-11T09:00:00Z")
    run("db")
    extra = dict(row["lines"][0], line_no=2, sku="B-2")
    row["lines"] = [extra]                 # line 1 removed, line 2 added
    row["updated_at"] = "2026-11-12T09:00:00Z"
    (two_files / "db" / "orders.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")

    assert run("db")["updated"] == 1
    (line,) = the_order()["fields"]["lines"]
    assert (line["line_no"], line["sku"]) == (2, "B-2") and line.get("description") is None


@pytest.fixture
def sql_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    with sqlite3.connect(root / "erp.db") as db:
        db.execute("CREATE TABLE orders (order_no TEXT PRIMARY KEY, order_date TEXT, status TEXT, "
                   "currency TEXT, lines TEXT, updated_at TEXT)")
    (root / "db_order.yaml").write_text(SECOND_MAPPING % "orders", encoding="utf-8")
    return project(root, monkeypatch, "{type: sql, url: 'sqlite:///erp.db', direction: both, "
                                      "entities: {order: {mapping: db_order.yaml}}}")


def test_a_sql_table_without_descriptions_reads_our_write_back_unchanged(sql_table: Path):
    run("f")
    run("db")
    assert push("db")["created"] == 1
    with sqlite3.connect(sql_table / "erp.db") as db:
        (stored,) = db.execute("SELECT lines FROM orders").fetchone()
        db.execute("UPDATE orders SET updated_at = '2026-11-11T09:00:00Z'")
    assert "description" not in json.loads(stored)[0]

    echo = run("db")
    assert (echo["updated"], echo["conflicts"], echo["queued"]) == (0, 0, 0), echo
    shown = the_order()
    assert shown["fields"]["lines"] == [WITH_DESCRIPTION]
    assert lines_history(shown) == []
