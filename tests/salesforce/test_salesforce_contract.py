"""SalesforceConnector passes the shared connector contract (tests/connectors/contract.py)."""
from __future__ import annotations

import sys
from itertools import count
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))   # the contract lives there
from contract import ConnectorContract  # noqa: E402

from connectors.salesforce.connector import SalesforceConnector  # noqa: E402
from hub.connector import StreamSpec, WriteChange  # noqa: E402

_ids = count(1)


class TestSalesforceContract(ConnectorContract):
    update_field = "Name"

    @pytest.fixture
    def sim_server(self, make_sim: Callable[..., Any]) -> Any:
        return make_sim(records=35)

    @pytest.fixture
    def connector(self, sim_server: Any, make_connector: Callable[..., SalesforceConnector]) -> Iterator[SalesforceConnector]:
        yield make_connector(sim_server)

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="Account", key="Id", updated_at="SystemModstamp",
                          batch_size=10, fields=("Id", "SystemModstamp", "Name", "Phone", "Owner.Name"))

    @pytest.fixture
    def seed_change(self, sim_server: Any) -> Callable[[], str]:
        def change() -> str:
            rid = sim_server.org.ids("Account")[7]
            sim_server.org.edit("Account", rid, {"Name": f"北京华信科技有限公司 {next(_ids)}"})
            return rid
        return change

    @pytest.fixture
    def new_change(self) -> WriteChange:
        n = next(_ids)
        return WriteChange(f"new-{n}", f"triad-{n}", None, {"Name": "契约测试有限公司", "Phone": "+86 21 6123 4567"})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        n = next(_ids)
        return WriteChange(f"bad-{n}", f"triad-{n}", None, {"Phone": "+86 21 6123 4567"})   # Name is required
