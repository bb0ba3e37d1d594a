"""A value longer than its golden column (a 300-character name, a key beyond 255 characters) parks its
row alone, with the field and the limit, on SQLite and on PostgreSQL alike: PostgreSQL used to refuse the
whole batch (no row of the stream stored, every run again), SQLite kept the value."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

CONFIG = """connectors:
  erp:
    type: file
    path: ./exports
    direction: in
    entities:
      customer: {mapping: customer.yaml}
"""

MAPPING = """source: customers.csv
key: customer_no
updated_at: updated_at
fields:
  code: customer_no
  name: name
  city: city
"""


@pytest.fixture
def project(tmp_path: Path, migrated, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    monkeypatch.delenv("TRIAD_USER", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exports").mkdir()
    (tmp_path / "triad.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "customer.yaml").write_text(MAPPING, encoding="utf-8")
    return tmp_path


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_an_over_long_value_parks_its_row_and_the_rest_loads(project: Path):
    rows = ["G1,Good One,上海", f"L1,{'长' * 300},上海", f"L2,Long City,{'x' * 129}", f"{'K' * 256},Long Key,北京",
            "G2,Good Two,北京"]
    (project / "exports" / "customers.csv").write_text(
        "customer_no,name,city,updated_at\n" + "".join(f"{r},2026-11-01 09:00:00\n" for r in rows), encoding="utf-8")
    (run,) = triad("sync", "run")["runs"]
    assert run["status"] == "ok", run
    assert (run["created"], run["quarantined"]) == (2, 3)
    codes = {r["fields"]["code"] for r in triad("records", "list", "customer")["records"]}
    assert codes == {"G1", "G2"}
    parked = triad("quarantine", "list")["items"]
    reasons = {p["source_id"][:2]: (p["reasons"][0]["field"], p["reasons"][0]["message"]) for p in parked}
    assert reasons["L1"] == ("name", "name: is 300 characters long; at most 255 fit")
    assert reasons["L2"] == ("city", "city: is 129 characters long; at most 128 fit")
    assert reasons["KK"] == ("customer_no", "the key is 256 characters long; at most 255 fit")


def test_a_database_error_is_recorded_without_the_statement_and_its_values():
    from sqlalchemy.exc import DataError

    from hub.sync import _describe
    driver = Exception("value too long for type character varying(255)\nCONTEXT: somewhere")
    exc = DataError("INSERT INTO customer (name) VALUES (%(name)s)", {"name": "王丽 +8613800000000"}, driver)
    assert _describe(exc) == "DataError (Exception): value too long for type character varying(255)"


def test_an_amount_sqlite_cannot_keep_exactly_is_parked_there_and_kept_on_postgresql(project: Path, store_url: str):
    """SQLite keeps a decimal as an 8-byte float: 99999999999999.99 came back as 99999999999999.98."""
    (project / "customer.yaml").write_text(MAPPING + "  credit_limit: {from: credit_limit, type: decimal}\n",
                                           encoding="utf-8")
    rows = ["A,9999999999999.99", "B,99999999999999.99", "C,1234567890123456", "D,1000000000000000", "E,0.07"]
    (project / "exports" / "customers.csv").write_text(
        "customer_no,name,city,credit_limit,updated_at\n"
        + "".join(f"{code},N,X,{limit},2026-11-01 09:00:00\n" for code, limit in (r.split(",") for r in rows)),
        encoding="utf-8")
    (run,) = triad("sync", "run")["runs"]
    stored = {r["fields"]["code"]: r["fields"]["credit_limit"] for r in triad("records", "list", "customer")["records"]}
    sqlite = store_url.startswith("sqlite")
    kept = {"A": "9999999999999.99", "D": "1000000000000000", "E": "0.07"}
    if not sqlite:
        kept |= {"B": "99999999999999.99", "C": "1234567890123456"}
    assert {code: Decimal(str(value)) for code, value in stored.items()} == \
        {code: Decimal(value) for code, value in kept.items()}
    assert run["quarantined"] == (2 if sqlite else 0)
    if sqlite:
        parked = {p["source_id"]: p["reasons"][0] for p in triad("quarantine", "list")["items"]}
        assert parked["B"]["field"] == "credit_limit"
        assert parked["B"]["message"] == ("credit_limit: 99999999999999.99 has 16 significant digits; "
                                          "this SQLite store keeps 15 exactly (PostgreSQL keeps them all)")
        assert set(parked) == {"B", "C"}


def test_quarantine_show_gives_a_reason_in_full(project: Path, store_url: str):
    """A detail view shows the whole reason (list views cut cells at 60 characters)."""
    (project / "customer.yaml").write_text(MAPPING + "  credit_limit: {from: credit_limit, type: decimal}\n",
                                           encoding="utf-8")
    (project / "exports" / "customers.csv").write_text(
        "customer_no,name,city,credit_limit,updated_at\n"
        f"L1,{'长' * 300},上海,1,2026-11-01 09:00:00\nB1,Big,X,99999999999999999.99,2026-11-01 09:00:00\n",
        encoding="utf-8")
    triad("sync", "run")
    items = {i["source_id"]: i["id"] for i in triad("quarantine", "list")["items"]}
    r = CliRunner().invoke(main, ["quarantine", "show", items["B1"]], env={"COLUMNS": "400"}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "the store keeps at most 16 digits before the decimal point (largest 9999999999999999.99)" in r.output
