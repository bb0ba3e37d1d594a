"""YonyouConnector passes the shared connector contract (tests/connectors/contract.py)."""
from __future__ import annotations

import sys
from itertools import count
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))   # the contract lives there
from contract import ConnectorContract  # noqa: E402

from connectors.yonyou.connector import YonyouConnector  # noqa: E402
from hub.connector import StreamSpec, WriteChange  # noqa: E402

_ids = count(1)


class TestYonyouContract(ConnectorContract):
    update_field = "email"

    @pytest.fixture
    def connector(self, make_sim: Callable[..., Any]) -> Iterator[YonyouConnector]:
        sim = make_sim(records=35)
        conn = YonyouConnector("bip", {"base_url": sim.url, "tenant_id": "triad-tenant",
                                       "app_key": "triad-client", "app_secret": "triad-secret"})
        yield conn
        conn.close()

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="merchant", key="id", updated_at="pubts",
                          timezone="Asia/Shanghai", batch_size=10)

    @pytest.fixture
    def seed_change(self, connector: YonyouConnector, stream: StreamSpec) -> Callable[[], str]:
        def change() -> str:
            first = connector.client.call("POST", "/yonbip/digitalModel/merchant/newlist",
                                          body={"pageIndex": 1, "pageSize": 1})["data"][0]
            (result,) = connector.write(stream, [WriteChange(f"seed-{next(_ids)}", "r", str(first["id"]),
                                                             {"email": f"seed{next(_ids)}@example.cn"})])
            assert result.ok, result.error
            return str(first["id"])
        return change

    @pytest.fixture
    def new_change(self) -> WriteChange:
        return WriteChange(f"new-{next(_ids)}", "triad-1", None,
                           {"name": {"simplifiedName": "契约测试有限公司"}, "email": "contract@example.cn"})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        return WriteChange(f"bad-{next(_ids)}", "triad-2", None, {"email": "noname@example.cn"})   # name required
