"""KingdeeConnector passes the shared connector contract (tests/connectors/contract.py)."""
from __future__ import annotations

import sys
from itertools import count
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))   # the contract lives there
from contract import ConnectorContract  # noqa: E402

from connectors.kingdee.connector import KingdeeConnector  # noqa: E402
from hub.connector import StreamSpec, WriteChange  # noqa: E402

_ids = count(1)


class TestKingdeeContract(ConnectorContract):
    update_field = "FName"

    @pytest.fixture
    def connector(self, make_sim: Callable[..., Any]) -> Iterator[KingdeeConnector]:
        sim = make_sim(records=35)
        conn = KingdeeConnector("erp", {"base_url": sim.url, "acct_id": "triad-acct",
                                        "username": "demo@triad.local", "password": "triad-pass"})
        yield conn
        conn.close()

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="BD_Customer", key="FCUSTID", updated_at="FModifyDate",
                          timezone="Asia/Shanghai", batch_size=10,
                          fields=("FCUSTID", "FModifyDate", "FNumber", "FName", "FTEL", "FTRADINGCURRID.FNumber"))

    @pytest.fixture
    def seed_change(self, connector: KingdeeConnector, stream: StreamSpec) -> Callable[[], str]:
        def change() -> str:
            (result,) = connector.write(stream, [WriteChange(f"seed-{next(_ids)}", "r", "100007",
                                                             {"FName": "合同测试修改有限公司"})])
            assert result.ok, result.error
            return "100007"
        return change

    @pytest.fixture
    def new_change(self) -> WriteChange:
        # no FNumber: K3Cloud numbers the record itself (编码规则)
        return WriteChange(f"new-{next(_ids)}", "triad-1", None, {"FName": "契约测试有限公司",
                                                                   "FTEL": "+86 21 61234567"})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        return WriteChange(f"bad-{next(_ids)}", "triad-2", None, {"FTEL": "+86 21 61234567"})   # FName is required
