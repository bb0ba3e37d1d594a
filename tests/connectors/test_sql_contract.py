"""The sql connector against the shared connector contract, on SQLite, MariaDB and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal

import pytest
from contract import ConnectorContract
from sqlfixtures import DB_PARAMS, TZ, create_schema, db_url_for, touch

from connectors.sql.connector import SqlConnector
from hub.connector import StreamSpec, WriteChange


class TestSqlContract(ConnectorContract):
    @pytest.fixture(params=DB_PARAMS)
    def db_url(self, request: pytest.FixtureRequest, tmp_path) -> str:
        return db_url_for(request, tmp_path)

    @pytest.fixture
    def engine(self, db_url: str):
        engine = create_schema(db_url)
        yield engine
        engine.dispose()

    @pytest.fixture
    def connector(self, db_url: str, engine):
        conn = SqlConnector("erpdb", {"url": db_url})
        yield conn
        conn.close()

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="customers", key="customer_no", updated_at="updated_at",
                          timezone=TZ, batch_size=25,
                          fields=("customer_no", "name", "email", "city", "credit_limit", "updated_at"))

    @pytest.fixture
    def seed_change(self, engine):
        def change() -> str:
            touch(engine, "C0007", name="客户 7 (renamed)")
            return "C0007"
        return change

    @pytest.fixture
    def new_change(self) -> WriteChange:
        return WriteChange(change_id="chg-1", record_id="01HZX0000000000000000000A1", source_id=None,
                           values={"name": "Acme Trading", "email": "buy@acme.example", "city": "Hangzhou",
                                   "credit_limit": Decimal("5000.00")})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        # name is NOT NULL: the database itself refuses this one record
        return WriteChange(change_id="chg-bad", record_id="01HZX0000000000000000000B1", source_id=None,
                           values={"name": None, "email": "bad@acme.example"})
