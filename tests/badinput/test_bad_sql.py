"""The sql connector against hostile data in a source database (SQLite file): SQL-looking keys page,
map, store and write back literally; a hostile table name in a mapping is a missing table, not SQL."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connectors.sql.connector import SqlConnector
from hub.connector import StreamSpec, WriteChange

from .conftest import SQL_ID, Project, clean

KEYS = [SQL_ID, "%", "_", "a\\b", 'x" OR "1"="1', "Robert'); DROP TABLE customers;--", "../../etc/passwd",
        "C\u0000NUL", "'", "''", "\\'; --"]
COLUMNS = ["customer_no", "name", "type", "email", "status", "updated_at"]


def make_source(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("create table customers (customer_no text primary key, name text, type text, email text, "
                   "status text, updated_at text)")
        db.executemany("insert into customers values (?, ?, ?, ?, ?, ?)",
                       [(k, f"Name {n}; DELETE FROM customers", "company", f"k{n}@bad.example.cn", "active",
                         "2026-11-01 09:00:00") for n, k in enumerate(KEYS)])    # one timestamp: paging by key
        db.commit()
    finally:
        db.close()


def source_keys(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in db.execute("select customer_no from customers"))
    finally:
        db.close()


@pytest.fixture
def sql_project(project: Project) -> Project:
    make_source(project.root / "erp.db")
    mapping = project.root / "mappings" / "sqlsrc_customer.yaml"
    mapping.write_text("source: customers\nkey: customer_no\nupdated_at: updated_at\nfields:\n  code: customer_no\n"
                       "  name: name\n  customer_type: type\n  email: email\n  status: status\n", encoding="utf-8")
    cfg = project.config.read_text(encoding="utf-8")
    cfg = cfg.replace("connectors:\n", "connectors:\n  src:\n    type: sql\n    url: sqlite:///"
                      f"{project.root / 'erp.db'}\n    entities:\n      customer: {{mapping: "
                      "mappings/sqlsrc_customer.yaml, batch_size: 2}\n", 1)
    project.config.write_text(cfg, encoding="utf-8")
    return project


def test_sql_looking_keys_page_and_store_literally(sql_project: Project):
    run = sql_project.sync("-c", "src", codes=(0,))[("src", "customer")]
    # a NUL byte is kept by no store as text: that row is parked with its reason, the others go in literally
    stored = [k for k in KEYS if "\x00" not in k]
    assert run["status"] == "ok" and run["read"] == len(KEYS) and run["created"] == len(stored), run
    assert run["quarantined"] == len(KEYS) - len(stored)
    for key in stored:
        [found] = sql_project.customers(f"code={key}")
        assert found["xrefs"] == {"src": [key]}
    assert source_keys(sql_project.root / "erp.db") == sorted(KEYS)     # the source is untouched
    again = sql_project.sync("-c", "src", codes=(0,))[("src", "customer")]
    assert again["created"] == again["updated"] == 0


def test_hostile_table_name_in_a_mapping_is_a_missing_table(sql_project: Project):
    sql_project.edit("mappings/sqlsrc_customer.yaml", "source: customers",
                     "source: \"customers; DROP TABLE customers;--\"")
    run = sql_project.sync("-c", "src")[("src", "customer")]
    assert run["status"] == "error" and "does not exist" in run["error"]
    assert source_keys(sql_project.root / "erp.db") == sorted(KEYS)
    out = clean(sql_project.triad("sync", "run", "-c", "src"), 1)
    assert "customers; DROP TABLE customers;--" in out.stderr


def test_hostile_key_column_name_is_refused(sql_project: Project):
    sql_project.edit("mappings/sqlsrc_customer.yaml", "key: customer_no", "key: \"customer_no) OR 1=1 --\"")
    run = sql_project.sync("-c", "src")[("src", "customer")]
    assert run["status"] == "error" and "has no key column" in run["error"]


def test_writes_with_hostile_keys_and_values_are_parameterized(tmp_path: Path):
    make_source(tmp_path / "erp.db")
    connector = SqlConnector("src", {"url": f"sqlite:///{tmp_path / 'erp.db'}"})
    stream = StreamSpec(entity="customer", source="customers", key="customer_no", updated_at="updated_at",
                        fields=tuple(COLUMNS))
    changes = [WriteChange(f"ch{n}", f"rec{n}", key, {"name": "'); DROP TABLE customers;--"})
               for n, key in enumerate(KEYS)]
    changes.append(WriteChange("new", "rec-new", None, {"customer_no": "'; DELETE FROM customers;--",
                                                        "name": "%_\\", "email": "x@bad.example.cn"}))
    try:
        results = connector.write(stream, changes)
    finally:
        connector.close()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert sorted(source_keys(tmp_path / "erp.db")) == sorted([*KEYS, "'; DELETE FROM customers;--"])
    db = sqlite3.connect(tmp_path / "erp.db")
    try:
        names = {r[0] for r in db.execute("select name from customers")}
    finally:
        db.close()
    assert names == {"'); DROP TABLE customers;--", "%_\\"}
