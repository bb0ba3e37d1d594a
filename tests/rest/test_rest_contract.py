"""RestConnector passes the shared connector contract (tests/connectors/contract.py) against the simulator."""
from __future__ import annotations

import sys
from itertools import count
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))   # the contract lives there
from contract import ConnectorContract  # noqa: E402

from connectors.rest.connector import RestConnector  # noqa: E402
from hub.connector import StreamSpec, WriteChange  # noqa: E402

_ids = count(1)


class TestRestContract(ConnectorContract):
    update_field = "name"

    @pytest.fixture
    def connector(self, make_sim: Callable[..., Any]) -> Iterator[RestConnector]:
        sim = make_sim(records=35)
        conn = RestConnector("crm", {"api": "simulator", "base_url": sim.url, "backoff": 0.01})
        yield conn
        conn.close()

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="companies", key="id", updated_at="updated_at", batch_size=10,
                          fields=("id", "code", "name", "email", "city", "updated_at"))

    @pytest.fixture
    def seed_change(self, connector: RestConnector, stream: StreamSpec) -> Callable[[], str]:
        def change() -> str:      # a write through the API: the simulator stamps it "now"
            (result,) = connector.write(stream, [WriteChange(f"seed-{next(_ids)}", "r", "co-00007",
                                                             {"name": "Contract Test Changed GmbH"})])
            assert result.ok, result.error
            return "co-00007"
        return change

    @pytest.fixture
    def new_change(self) -> WriteChange:
        return WriteChange(f"new-{next(_ids)}", "triad-1", None, {"name": "Contract Test Ltd",
                                                                   "email": "ap@contract-test.example"})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        return WriteChange(f"bad-{next(_ids)}", "triad-2", None, {"email": "ap@no-name.example"})  # name is required
