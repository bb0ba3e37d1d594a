"""The sql connector beyond the contract: paging, values, upserts, keys, errors, URLs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import MetaData, event, text
from sqlfixtures import DB_PARAMS, START, TZ, create_schema, db_url_for, tables

from connectors.sql.connector import SqlConnector
from hub.connector import StreamSpec, WriteChange
from hub.errors import ConfigError
from hub.secrets import Secret


@pytest.fixture(params=DB_PARAMS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, tmp_path)


@pytest.fixture
def engine(db_url: str):
    engine = create_schema(db_url, rows=12)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(db_url: str, engine):
    connector = SqlConnector("erpdb", {"url": db_url})
    yield connector
    connector.close()


def spec(source: str = "customers", key: str = "customer_no", batch_size: int = 5, **kw) -> StreamSpec:
    kw.setdefault("updated_at", "updated_at")
    return StreamSpec(entity="customer", source=source, key=key, timezone=TZ, batch_size=batch_size, **kw)


def read(connector: SqlConnector, stream: StreamSpec, cursor=None):
    batches = list(connector.read(stream, cursor))
    return [r for b in batches for r in b.records], batches


def statements(engine, params: list | None = None) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.upper())
        if params is not None:
            params.append(parameters)
    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_values_are_text_with_exact_decimals(conn: SqlConnector) -> None:
    records, _ = read(conn, spec(fields=("customer_no", "credit_limit", "notes", "updated_at")))
    first = records[0]
    assert first == {"customer_no": "C0001", "credit_limit": "1000.50", "notes": None,
                     "updated_at": first["updated_at"]}
    assert first["updated_at"].startswith("2024-03-01 09:01:00")
    assert all(isinstance(r["credit_limit"], str) for r in records)


def test_keyset_paging_without_offset_over_equal_timestamps(conn: SqlConnector, engine) -> None:
    customers, _ = tables(MetaData())
    with engine.begin() as c:   # 12 rows share one timestamp: paging must continue by key inside it
        c.execute(customers.update().values(updated_at=START))
    params: list = []
    seen = statements(conn.engine, params)
    records, batches = read(conn, spec(batch_size=5))
    keys = [r["customer_no"] for r in records]
    assert keys == sorted(keys) and len(keys) == len(set(keys)) == 12
    assert [len(b.records) for b in batches] == [5, 5, 2]
    selects = [(s, p) for s, p in zip(seen, params) if s.lstrip().startswith("SELECT") and "CUSTOMERS" in s]
    assert len(selects) == 4 and all("LIMIT" in s for s, _ in selects)   # unstamped rows first, then 3 pages
    # SQLite's compiler always appends "OFFSET ?" -- bound to 0; the others have no OFFSET at all
    assert all("OFFSET" not in s or (conn.engine.dialect.name == "sqlite" and p[-1] == 0) for s, p in selects)
    assert batches[0].cursor == {"ts": "2024-03-01T01:00:00+00:00", "key": "C0005"}


def test_incremental_read_and_cursor_cap(conn: SqlConnector) -> None:
    since = {"ts": (START + timedelta(minutes=10) - timedelta(hours=8)).replace(tzinfo=timezone.utc).isoformat(),
             "key": "C0010"}
    records, batches = read(conn, spec(), since)
    assert [r["customer_no"] for r in records] == ["C0010", "C0011", "C0012"]   # closed lower bound
    started = datetime(2024, 3, 1, 1, 5, 30, 900000, tzinfo=timezone.utc)         # 09:05:30 in Shanghai
    _, batches = read(conn, spec(run_started_at=started))
    assert batches[0].cursor == {"ts": "2024-03-01T01:05:00+00:00", "key": "C0005"}
    assert all(b.cursor == {"ts": "2024-03-01T01:05:30+00:00", "key": None} for b in batches[1:])


def test_rows_without_timestamp_come_with_every_read(conn: SqlConnector, engine) -> None:
    customers, _ = tables(MetaData())
    with engine.begin() as c:
        c.execute(customers.insert().values(customer_no="A0000", name="never stamped", updated_at=None))
    records, batches = read(conn, spec())
    assert [r["customer_no"] for r in records][0] == "A0000" and len(records) == 13
    assert batches[0].cursor is None
    later, _ = read(conn, spec(), batches[-1].cursor)     # an unstamped row may have changed since: read again
    assert "A0000" in {r["customer_no"] for r in later}


def test_table_without_updated_at_is_read_in_full(conn: SqlConnector) -> None:
    records, batches = read(conn, spec(updated_at=None), {"ts": "2030-01-01T00:00:00+00:00", "key": None})
    assert len(records) == 12 and all(b.cursor == {"ts": "2030-01-01T00:00:00+00:00", "key": None} for b in batches)


def test_upsert_statement_and_parameters(conn: SqlConnector, engine) -> None:
    seen = statements(conn.engine)
    evil = "O'Brien'); DROP TABLE customers; --"
    results = conn.write(spec(), [
        WriteChange("c1", "R1", "C0001", {"name": evil, "credit_limit": "1.10"}),
        WriteChange("c2", "R2", None, {"name": "new", "credit_limit": Decimal("20")}),
        WriteChange("c3", "R3", None, {"customer_no": "K-9", "name": "keyed"}),
    ])
    assert [(r.ok, r.source_id) for r in results] == [(True, "C0001"), (True, "T-R2"), (True, "K-9")]
    dialect = conn.engine.dialect.name
    upserts = [s for s in seen if s.lstrip().startswith("INSERT")]
    marker = "ON DUPLICATE KEY UPDATE" if dialect in ("mysql", "mariadb") else "ON CONFLICT"
    assert upserts and all(marker in s for s in upserts)
    assert not any("O'BRIEN" in s for s in seen)
    records = {r["customer_no"]: r for r in read(conn, spec(batch_size=100))[0]}
    assert records["C0001"]["name"] == evil and records["C0001"]["credit_limit"] == "1.10"
    assert records["T-R2"]["credit_limit"] == "20.00"
    stamped = datetime.fromisoformat(records["T-R2"]["updated_at"])
    assert stamped > START + timedelta(days=30)      # a write is stamped like a change of the system
    assert len(records) == 14


def test_autoincrement_key_returns_the_new_id(conn: SqlConnector) -> None:
    pay = StreamSpec(entity="payment", source="payments", key="id", updated_at="updated_at", timezone=TZ)
    results = conn.write(pay, [WriteChange("p1", "R1", None, {"payment_no": "P-1", "amount": "10.00"}),
                               WriteChange("p2", "R2", None, {"payment_no": "P-2", "amount": "11.00"})])
    assert all(r.ok for r in results)
    ids = [r.source_id for r in results]
    assert ids[0].isdigit() and int(ids[1]) == int(ids[0]) + 1
    (update,) = conn.write(pay, [WriteChange("p3", "R1", ids[0], {"amount": "12.50"})])
    assert update.ok and update.source_id == ids[0]
    records = {r["id"]: r for r in read(conn, pay)[0]}
    assert records[ids[0]]["amount"] == "12.50" and records[ids[1]]["payment_no"] == "P-2"


def test_per_record_errors_keep_the_good_records(conn: SqlConnector) -> None:
    results = conn.write(spec(), [
        WriteChange("ok1", "R1", None, {"name": "fine"}),
        WriteChange("null", "R2", "C0002", {"name": None}),              # NOT NULL: refused by the database
        WriteChange("long", "R3", None, {"name": "x" * 201}),            # longer than VARCHAR(200)
        WriteChange("num", "R4", None, {"name": "n", "credit_limit": "lots"}),
        WriteChange("col", "R5", None, {"name": "n", "nickname": "x"}),
        WriteChange("del", "R6", None, {}, delete=True),
        WriteChange("ok2", "R7", "C0003", {"city": "杭州"}),
    ])
    by_id = {r.change_id: r for r in results}
    assert by_id["ok1"].ok and by_id["ok2"].ok
    assert not by_id["null"].ok and "name" in by_id["null"].error.lower()
    assert "200" in by_id["long"].error and "credit_limit" in by_id["num"].error
    assert "nickname" in by_id["col"].error and "no source id" in by_id["del"].error
    assert not any(r.retriable for r in results)
    records = {r["customer_no"]: r for r in read(conn, spec(batch_size=100))[0]}
    assert records["C0003"]["city"] == "杭州" and records["C0002"]["name"] == "客户 2"


def test_a_decimal_the_column_would_round_is_refused_not_written_rounded(conn: SqlConnector, db_url: str) -> None:
    results = conn.write(spec(), [
        WriteChange("places", "R1", "C0001", {"credit_limit": "1234.567"}),            # NUMERIC(18, 2)
        WriteChange("whole", "R2", "C0002", {"credit_limit": "1234567890123456789"}),  # 19 digits, 16 fit
        WriteChange("fits", "R3", "C0003", {"credit_limit": "1234.50"}),
    ])
    by_id = {r.change_id: r for r in results}
    assert not by_id["places"].ok and "3 decimal places, the column holds 2" in by_id["places"].error
    assert not by_id["whole"].ok and "19 digits before the decimal point, the column holds 16" in by_id["whole"].error
    assert by_id["fits"].ok and not any(r.retriable for r in results)
    if db_url.startswith("sqlite"):    # a float underneath: more than 15 significant digits would change
        [long] = conn.write(spec(), [WriteChange("long", "R4", "C0004", {"credit_limit": "12345678901234.56"})])
        assert not long.ok and "SQLite keeps 15" in long.error
    records = {r["customer_no"]: r for r in read(conn, spec(batch_size=100))[0]}
    assert Decimal(records["C0001"]["credit_limit"]) == Decimal("1000.50")            # untouched
    assert Decimal(records["C0003"]["credit_limit"]) == Decimal("1234.50")


def test_delete(conn: SqlConnector) -> None:
    (result,) = conn.write(spec(), [WriteChange("d1", "R1", "C0004", {}, delete=True)])
    assert result.ok
    assert "C0004" not in {r["customer_no"] for r in read(conn, spec(batch_size=100))[0]}


def test_missing_table_and_columns_are_config_errors(conn: SqlConnector) -> None:
    with pytest.raises(ConfigError, match="table 'nope' does not exist"):
        read(conn, spec(source="nope"))
    with pytest.raises(ConfigError, match="no key column 'id'"):
        read(conn, spec(key="id"))
    with pytest.raises(ConfigError, match="no updated_at column 'modified'"):
        conn.write(spec(updated_at="modified"), [])
    with pytest.raises(ConfigError, match="must hold dates/times"):
        read(conn, spec(updated_at="credit_limit"))


def test_check_reports_unreachable_databases_without_raising(tmp_path: Path) -> None:
    assert SqlConnector("db", {"url": f"sqlite:///{tmp_path / 'x.db'}"}).check().ok
    bad = SqlConnector("db", {"url": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"}).check()
    assert not bad.ok and "cannot reach" in bad.detail
    closed = SqlConnector("db", {"url": "mysql+pymysql://root:pw@127.0.0.1:1/x?connect_timeout=2"}).check()
    assert not closed.ok and "pw" not in closed.detail
    nodriver = SqlConnector("db", {"url": "nosuchdb://h/x"}).check()
    assert not nodriver.ok


def test_url_password_secret_and_relative_sqlite_path(tmp_path: Path) -> None:
    conn = SqlConnector("db", {"url": "mysql+pymysql://app@db.example/erp", "password": Secret("s3cr3t!")})
    assert conn.url.password == "s3cr3t!" and "s3cr3t" not in conn.safe_url
    rel = SqlConnector("db", {"url": "sqlite:///data/erp.db"}, base_dir=str(tmp_path))
    assert rel.url.database == str((tmp_path / "data" / "erp.db").resolve())
    with pytest.raises(ConfigError, match="connectors.db.url: required"):
        SqlConnector("db", {})
    with pytest.raises(ConfigError, match="not an SQLAlchemy URL"):
        SqlConnector("db", {"url": "not a url"})


def test_sqlite_timestamps_written_by_other_programs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    engine = create_schema(url, rows=0)
    with engine.begin() as c:   # text forms SQLAlchemy itself would not write
        c.execute(text("INSERT INTO customers (customer_no, name, updated_at) VALUES "
                       "('L1', 'a', '2024-05-01 10:00:00'), ('L2', 'b', '2024-05-01 10:00:00.250000'), "
                       "('L3', 'c', '2024-05-02')"))
    engine.dispose()
    conn = SqlConnector("db", {"url": url})
    records, batches = read(conn, spec())
    assert [r["updated_at"] for r in records] == ["2024-05-01 10:00:00", "2024-05-01 10:00:00.250000", "2024-05-02"]
    again, _ = read(conn, spec(), {"ts": "2024-05-01T02:00:00+00:00", "key": "L1"})
    assert [r["customer_no"] for r in again] == ["L1", "L2", "L3"]
    conn.close()


def test_update_of_a_vanished_row_recreates_it(conn: SqlConnector) -> None:
    conn.write(spec(), [WriteChange("d1", "R1", "C0004", {}, delete=True)])
    (result,) = conn.write(spec(), [WriteChange("u1", "R1", "C0004", {"name": "back again"})])
    assert result.ok and result.source_id == "C0004"
    records = {r["customer_no"]: r for r in read(conn, spec(batch_size=100))[0]}
    assert records["C0004"]["name"] == "back again"


def test_key_without_unique_constraint_updates_then_inserts(db_url: str, engine) -> None:
    from sqlalchemy import Column, DateTime, Integer, String, Table
    md = MetaData()
    contacts = Table("contacts", md, Column("id", Integer, primary_key=True, autoincrement=True),
                     Column("code", String(20), index=True), Column("name", String(50)),
                     Column("updated_at", DateTime))
    md.drop_all(engine)
    md.create_all(engine)
    with engine.begin() as c:
        c.execute(contacts.insert().values(code="K1", name="old", updated_at=START))
    connector = SqlConnector("erpdb", {"url": db_url})
    stream = StreamSpec(entity="customer", source="contacts", key="code", updated_at="updated_at", timezone=TZ)
    results = connector.write(stream, [WriteChange("a", "R1", "K1", {"name": "new"}),
                                       WriteChange("b", "R2", None, {"name": "created"})])
    assert [(r.ok, r.source_id) for r in results] == [(True, "K1"), (True, "T-R2")]
    rows = {r["code"]: r["name"] for r in read(connector, stream)[0]}
    assert rows == {"K1": "new", "T-R2": "created"}
    connector.close()
