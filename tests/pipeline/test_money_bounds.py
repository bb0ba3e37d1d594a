"""Amounts through a file connector into SQLite and PostgreSQL: one amount too large for Numeric(18, 2)
or written with a decimal comma quarantines its row and the rest of the file loads (SPEC sections 2
and 5); amounts with more decimals than the column are stored, and recorded in history, rounded half-up
the same way on both stores."""
from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

CONFIG = """
store:
  url: sqlite:///unused.db
connectors:
  erp:
    type: file
    path: ./exports
    direction: in{options}
    entities:
      customer: {{mapping: customer.yaml}}
"""

MAPPING = """
source: customers.csv
key: customer_no
updated_at: updated_at
fields:
  code: customer_no
  name: name
  credit_limit: {from: credit_limit, type: decimal}
"""


def make_project(root: Path, rows: list[str], delimiter: str = ",") -> None:
    options = f"\n    delimiter: \"{delimiter}\"" if delimiter != "," else ""
    (root / "exports").mkdir(parents=True)
    (root / "triad.yaml").write_text(textwrap.dedent(CONFIG).format(options=options), encoding="utf-8")
    (root / "customer.yaml").write_text(textwrap.dedent(MAPPING), encoding="utf-8")
    header = delimiter.join(["customer_no", "name", "credit_limit", "updated_at"])
    (root / "exports" / "customers.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, migrated, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    monkeypatch.delenv("TRIAD_USER", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def sync_once(*options: str) -> dict:
    (run,) = triad("sync", "run", *options)["runs"]
    return run


def stored_credit_limits(engine) -> dict[str, Decimal]:
    """What the store's column holds, read without SQLAlchemy's Numeric conversion (SQLite keeps a REAL)."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT code, credit_limit FROM customer").all()
    return {code: Decimal(str(value)) for code, value in rows}


def test_an_overflowing_amount_quarantines_its_row_and_the_rest_loads(project: Path, migrated) -> None:
    make_project(project, [
        "C1,Alpha,1000.00,2026-01-01 08:00:00",
        "C2,Beta,2.675,2026-01-01 08:01:00",
        "C3,Gamma,99999999999999999.99,2026-01-01 08:02:00",
        "C4,Delta,1234.565,2026-01-01 08:03:00",
        "C5,Epsilon,9999999999999999.99,2026-01-01 08:04:00",
    ])
    sqlite = migrated.dialect.name == "sqlite"
    for attempt in range(2):                  # a full rerun neither fails nor loads anything twice
        run = sync_once("--full")
        assert run["status"] == "ok" and run["error"] is None, run
        assert run["read"] == 5, run
        first = (3, 0, 2) if sqlite else (4, 0, 1)
        assert (run["created"], run["updated"], run["quarantined"]) == (first if attempt == 0 else (0, 0, 0)), run

    items = {item["source_id"]: item for item in triad("quarantine", "list")["items"]}
    assert set(items) == ({"C3", "C5"} if sqlite else {"C3"})
    item = items["C3"]
    assert item["kind"] == "mapping"
    (reason,) = item["reasons"]
    assert reason["field"] == "credit_limit"
    assert reason["message"].startswith("credit_limit: 99999999999999999.99 is too large")
    assert "9999999999999999.99" in reason["message"]
    if sqlite:     # SQLite's REAL keeps 15 significant digits, not 18: parked, never stored changed
        (reason,) = items["C5"]["reasons"]
        assert reason["message"] == ("credit_limit: 9999999999999999.99 has 18 significant digits; "
                                     "this SQLite store keeps 15 exactly (PostgreSQL keeps them all)")

    # rounded half-up at mapping time: the same number in either store, as the golden value and in history
    stored = stored_credit_limits(migrated)
    assert set(stored) == ({"C1", "C2", "C4"} if sqlite else {"C1", "C2", "C4", "C5"})
    assert (stored["C1"], stored["C2"], stored["C4"]) == (Decimal("1000"), Decimal("2.68"), Decimal("1234.57"))
    if not sqlite:
        assert stored["C5"] == Decimal("9999999999999999.99")
    records = {r["fields"]["code"]: r for r in triad("records", "list", "customer")["records"]}
    assert records["C2"]["fields"]["credit_limit"] == "2.68"
    (created,) = triad("records", "show", "customer", records["C2"]["id"])["history"]
    assert created["reason"] == "create" and created["new"]["credit_limit"] == "2.68"


def test_decimal_commas_are_quarantined_not_read_as_other_numbers(project: Path, migrated) -> None:
    make_project(project, [
        "C1;Alpha;12,50;2026-01-01 08:00:00",
        "C2;Beta;1.234,50;2026-01-01 08:01:00",
        "C3;Gamma;1,234.50;2026-01-01 08:02:00",
        "C4;Delta;1250;2026-01-01 08:03:00",
    ], delimiter=";")
    run = sync_once()
    assert run["status"] == "ok" and (run["read"], run["created"], run["quarantined"]) == (4, 2, 2), run
    items = {i["source_id"]: i for i in triad("quarantine", "list")["items"]}
    assert set(items) == {"C1", "C2"}
    for item in items.values():
        (reason,) = item["reasons"]
        assert reason["field"] == "credit_limit" and "never as a decimal point" in reason["message"]
    assert stored_credit_limits(migrated) == {"C3": Decimal("1234.5"), "C4": Decimal("1250")}
