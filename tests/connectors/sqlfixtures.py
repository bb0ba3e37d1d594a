"""Tables and seed rows for the sql connector tests (SQLite, MariaDB, PostgreSQL alike)."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (Column, DateTime, Integer, MetaData, Numeric, String, Table, Text, create_engine,
                        update)
from sqlalchemy.engine import Engine

TZ = "Asia/Shanghai"
ROWS = 70
START = datetime(2024, 3, 1, 9, 0, 0)

DB_PARAMS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb),
             pytest.param("postgresql", marks=pytest.mark.postgres)]


def db_url_for(request: pytest.FixtureRequest, tmp_path) -> str:
    """The database URL for the ``db`` param of a test (a fresh database on the servers)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'erp.db'}"
    if request.param == "mariadb":
        return request.getfixturevalue("mariadb_url")
    return request.getfixturevalue("pg_session_url")


def tables(md: MetaData) -> tuple[Table, Table]:
    customers = Table(
        "customers", md,
        Column("customer_no", String(32), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("email", String(200)),
        Column("city", String(100)),
        Column("credit_limit", Numeric(18, 2)),
        Column("notes", Text),
        Column("updated_at", DateTime, nullable=True),
    )
    payments = Table(
        "payments", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("payment_no", String(32)),
        Column("amount", Numeric(18, 2), nullable=False),
        Column("updated_at", DateTime),
    )
    return customers, payments


def create_schema(url: str, rows: int = ROWS) -> Engine:
    """Fresh ``customers`` (string key, ``rows`` seeded out of time order) and ``payments`` (autoincrement)."""
    engine = create_engine(url)
    md = MetaData()
    customers, _payments = tables(md)
    md.drop_all(engine)
    md.create_all(engine)
    order = list(range(1, rows + 1))
    order.reverse()  # inserted newest first: reads must not depend on insertion order
    if not rows:
        return engine
    with engine.begin() as conn:
        conn.execute(customers.insert(), [
            {"customer_no": f"C{i:04d}", "name": f"客户 {i}", "email": f"c{i}@example.com", "city": "上海",
             "credit_limit": Decimal(f"{i * 1000}.50"), "notes": None,
             "updated_at": START + timedelta(minutes=i)} for i in order])
    return engine


def touch(engine: Engine, key: str, **values) -> None:
    """Change one customer as the owning application would: new values, updated_at = now (local, whole seconds)."""
    md = MetaData()
    customers, _ = tables(md)
    now = datetime.now(ZoneInfo(TZ)).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        conn.execute(update(customers).where(customers.c.customer_no == key).values(updated_at=now, **values))
