"""DingTalkConnector passes the shared connector contract (tests/connectors/contract.py).

One deviation: a submitted DingTalk approval cannot be edited, so the contract's
update test is replaced by the approval's own update rules (edits are refused
per record, unchanged values pass, a cancel revokes the instance).
"""
from __future__ import annotations

import sys
from dataclasses import replace
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors"))   # the contract lives there
from contract import ConnectorContract  # noqa: E402

from connectors.dingtalk.connector import DingTalkConnector  # noqa: E402
from hub.connector import StreamSpec, WriteChange  # noqa: E402
from hub.mapping import load_mapping, shipped_mappings_dir  # noqa: E402

_ids = count(1)
MAPPING = load_mapping(shipped_mappings_dir() / "dingtalk" / "approval.yaml", "approval")


class TestDingTalkContract(ConnectorContract):
    update_field = "originatorUserId"

    @pytest.fixture
    def contract_sim(self, make_sim: Callable[..., Any]) -> Any:
        return make_sim(records=36)

    @pytest.fixture
    def connector(self, contract_sim: Any, make_connector: Callable[..., Any]) -> Iterator[DingTalkConnector]:
        yield make_connector(contract_sim)

    @pytest.fixture
    def seed_change(self, contract_sim: Any) -> Callable[[], str]:
        def change() -> str:
            iid = contract_sim.open_ids()[0]        # an approver decides an old, still running approval
            contract_sim.sim.decide(iid, "agree")
            return iid
        return change

    @pytest.fixture
    def new_change(self, contract_sim: Any) -> WriteChange:
        n = next(_ids)
        values = MAPPING.to_source({"kind": "payment", "subject_entity": "payment", "subject_id": f"FK-2026-{n:05d}",
                                    "status": "pending", "amount": Decimal("560.00"), "currency": "CNY",
                                    "applicant": contract_sim.sim.workflow.data["users"][3]["userId"]})
        return WriteChange(f"new-{n}", f"triad-{n}", None, values)

    @pytest.fixture
    def bad_change(self, new_change: WriteChange) -> WriteChange:
        form = {k: v for k, v in new_change.values["_form"].items() if k != "金额"}     # 金额 is required
        return WriteChange(f"bad-{next(_ids)}", "triad-bad", None, {**new_change.values, "_form": form})

    def test_write_update_changes_record(self, connector: DingTalkConnector, readback_stream: StreamSpec,
                                         new_change: WriteChange) -> None:
        (created,) = connector.write(readback_stream, [new_change])
        assert created.ok, created.error
        edit = replace(new_change, change_id=f"{new_change.change_id}-u", source_id=created.source_id,
                       values={"_form": {"金额": "999.00"}})
        unchanged = replace(edit, change_id=f"{new_change.change_id}-same", values={"_form": {"金额": "560.0"}})
        cancel = replace(edit, change_id=f"{new_change.change_id}-c", values=MAPPING.to_source({"status": "cancelled"}))
        refused, same, cancelled = connector.write(readback_stream, [edit, unchanged, cancel])
        assert not refused.ok and "cannot edit" in refused.error
        assert same.ok and cancelled.ok and cancelled.source_id == created.source_id
        record = self._read_back(connector, readback_stream, created.source_id)
        assert record is not None and record["_status"] == "TERMINATED" and record["_form"]["金额"] == "560.00"
