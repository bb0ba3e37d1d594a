"""The sql connector and rows without a change stamp: added or edited after the first run, they are still read."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, DateTime, MetaData, String, Table, create_engine, update
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine
from sqlfixtures import DB_PARAMS, TZ, db_url_for

from connectors.sql.connector import SqlConnector
from hub.connector import StreamSpec

STAMP = datetime(2024, 3, 1, 9, 0, 0)


def customers(md: MetaData, *, text_stamp: bool = False) -> Table:
    # DATETIME(3) NULL on MariaDB, as ERPs that stamp in milliseconds declare it
    stamp_type = String(32) if text_stamp else DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
    return Table("ns_customers", md,
                 Column("customer_no", String(32), primary_key=True),
                 Column("name", String(200), nullable=False),
                 Column("updated_at", stamp_type, nullable=True))


def stamp(minutes: int, text_stamp: bool) -> datetime | str:
    at = STAMP + timedelta(minutes=minutes)
    return at.isoformat(sep=" ") if text_stamp else at


@pytest.fixture(params=DB_PARAMS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, tmp_path)


def fresh(url: str, rows: list[dict], *, text_stamp: bool = False) -> tuple[Engine, Table]:
    engine = create_engine(url)
    md = MetaData()
    table = customers(md, text_stamp=text_stamp)
    md.drop_all(engine)
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return engine, table


def spec(batch_size: int = 2) -> StreamSpec:
    return StreamSpec(entity="customer", source="ns_customers", key="customer_no", updated_at="updated_at",
                      timezone=TZ, batch_size=batch_size, run_started_at=datetime.now(timezone.utc))


def read(url: str, cursor, batch_size: int = 2):
    connector = SqlConnector("db", {"url": url})
    try:
        batches = list(connector.read(spec(batch_size), cursor))
    finally:
        connector.close()
    return {r["customer_no"]: r for b in batches for r in b.records}, batches


@pytest.mark.parametrize("text_stamp", [False, True], ids=["datetime", "text"])
def test_unstamped_rows_added_or_edited_after_the_first_run_are_read(db_url: str, text_stamp: bool) -> None:
    empty = "" if text_stamp else None     # a text column may hold '' where a datetime column holds NULL
    engine, table = fresh(db_url, [
        {"customer_no": "M1", "name": "one", "updated_at": stamp(1, text_stamp)},
        {"customer_no": "M2", "name": "two", "updated_at": stamp(2, text_stamp)},
        {"customer_no": "M3", "name": "three", "updated_at": empty},
    ], text_stamp=text_stamp)
    try:
        first, batches = read(db_url, None)
        assert sorted(first) == ["M1", "M2", "M3"]
        cursor = batches[-1].cursor
        assert cursor["ts"] == "2024-03-01T01:02:00+00:00"
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"customer_no": f"M{n}", "name": f"new {n}", "updated_at": empty}
                                          for n in range(4, 9)])
            conn.execute(update(table).where(table.c.customer_no == "M3").values(name="three, renamed"))
        later, batches = read(db_url, cursor)
    finally:
        engine.dispose()
    assert {"M3", "M4", "M5", "M6", "M7", "M8"} <= set(later), sorted(later)
    assert later["M3"]["name"] == "three, renamed"
    # unstamped rows come first, paged by key, and leave the cursor where it was
    assert [[r["customer_no"] for r in b.records] for b in batches] == [
        ["M3", "M4"], ["M5", "M6"], ["M7", "M8"], ["M2"]]       # M2: the closed lower bound
    assert all(b.cursor == cursor for b in batches)


def test_unstamped_rows_do_not_move_the_cursor_past_a_stamped_change(db_url: str) -> None:
    engine, table = fresh(db_url, [
        {"customer_no": "M1", "name": "one", "updated_at": stamp(1, False)},
        {"customer_no": "M9", "name": "nine", "updated_at": None},
    ])
    try:
        _, batches = read(db_url, None, batch_size=10)
        cursor = batches[-1].cursor
        assert cursor == {"ts": "2024-03-01T01:01:00+00:00", "key": "M1"}
        with engine.begin() as conn:
            conn.execute(update(table).where(table.c.customer_no == "M1").values(name="one, renamed",
                                                                                 updated_at=stamp(5, False)))
            conn.execute(table.insert(), [{"customer_no": "M0", "name": "zero", "updated_at": None}])
        later, batches = read(db_url, cursor, batch_size=10)
    finally:
        engine.dispose()
    assert later["M1"]["name"] == "one, renamed" and {"M0", "M9"} <= set(later)
    assert [r["customer_no"] for b in batches for r in b.records] == ["M0", "M9", "M1"]
    assert batches[0].cursor == cursor                                             # the unstamped page
    assert batches[-1].cursor == {"ts": "2024-03-01T01:05:00+00:00", "key": "M1"}   # the stamped change


def triad(config: Path, *args: str) -> dict:
    from cli import main
    result = CliRunner().invoke(main, ["--config", str(config), "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sync_run_takes_unstamped_rows_added_or_edited_since_the_last_run(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "db_customer.yaml").write_text(
        f"source: ns_customers\nkey: customer_no\nupdated_at: updated_at\ntimezone: {TZ}\n"
        "fields:\n  code: customer_no\n  name: name\n", encoding="utf-8")
    config = tmp_path / "triad.yaml"
    config.write_text(json.dumps({
        "store": {"url": f"sqlite:///{tmp_path / 'triad.db'}"},
        "connectors": {"db": {"type": "sql", "url": db_url, "direction": "in",
                              "entities": {"customer": {"mapping": "db_customer.yaml"}}}}}), encoding="utf-8")
    engine, table = fresh(db_url, [
        {"customer_no": "M1", "name": "one", "updated_at": stamp(1, False)},
        {"customer_no": "M2", "name": "two", "updated_at": stamp(2, False)},
        {"customer_no": "M3", "name": "three", "updated_at": None},
    ])
    try:
        triad(config, "db", "upgrade")
        sync = ("sync", "run", "--connector", "db", "--entity", "customer")
        (first,) = triad(config, *sync)["runs"]
        assert (first["status"], first["created"]) == ("ok", 3)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"customer_no": "M5", "name": "five", "updated_at": None}])
            conn.execute(update(table).where(table.c.customer_no == "M3").values(name="three, renamed"))
        (second,) = triad(config, *sync)["runs"]
    finally:
        engine.dispose()
    assert (second["status"], second["created"], second["updated"]) == ("ok", 1, 1), second
    assert second["cursor"] == first["cursor"]
    names = {r["fields"]["code"]: r["fields"]["name"] for r in triad(config, "records", "list", "customer")["records"]}
    assert names == {"M1": "one", "M2": "two", "M3": "three, renamed", "M5": "five"}


def test_a_text_stamp_with_fewer_fraction_digits_than_the_cursor_is_not_missed(db_url: str) -> None:
    at = "2024-03-01 09:00:00.5"        # as an ERP writes it: one fraction digit, not six
    engine, table = fresh(db_url, [{"customer_no": "C1", "name": "A", "updated_at": at}], text_stamp=True)
    _, batches = read(db_url, None)
    cursor = batches[-1].cursor
    with engine.begin() as conn:       # stamped in the same instant, after the first read
        conn.execute(table.insert(), [{"customer_no": "C2", "name": "B", "updated_at": at}])
    engine.dispose()
    assert "C2" in read(db_url, cursor)[0]
