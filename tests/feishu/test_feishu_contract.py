"""FeishuConnector passes the shared connector contract (tests/connectors/contract.py).

One deviation: a submitted Feishu approval cannot be edited, so the contract's
update test is replaced by the approval's own update rules (edits are refused
per record, unchanged values pass, a cancel withdraws the instance).
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

from connectors.feishu.connector import FeishuConnector  # noqa: E402
from hub.connector import StreamSpec, WriteChange  # noqa: E402
from hub.mapping import load_mapping, shipped_mappings_dir  # noqa: E402

_ids = count(1)
MAPPING = load_mapping(shipped_mappings_dir() / "feishu" / "approval.yaml", "approval")


class TestFeishuContract(ConnectorContract):
    update_field = "user_id"

    @pytest.fixture
    def contract_sim(self, make_sim: Callable[..., Any]) -> Any:
        return make_sim(records=36)

    @pytest.fixture
    def connector(self, contract_sim: Any, make_connector: Callable[..., Any]) -> Iterator[FeishuConnector]:
        yield make_connector(contract_sim)

    @pytest.fixture
    def seed_change(self, contract_sim: Any) -> Callable[[], str]:
        def change() -> str:
            code = contract_sim.pending()[0]       # an approver decides an old, still pending approval
            contract_sim.sim.decide(code, "APPROVED")
            return code
        return change

    @pytest.fixture
    def new_change(self, contract_sim: Any) -> WriteChange:
        n = next(_ids)
        values = MAPPING.to_source({"kind": "contract", "subject_entity": "contract", "subject_id": f"HT-2026-{n:05d}",
                                    "status": "pending", "amount": Decimal("72000.00"), "currency": "USD",
                                    "applicant": contract_sim.user(4)})
        return WriteChange(f"new-{n}", f"triad-{n}", None, values)

    @pytest.fixture
    def bad_change(self, new_change: WriteChange) -> WriteChange:
        form = {k: v for k, v in new_change.values["_form"].items() if k != "amount"}     # amount is required
        return WriteChange(f"bad-{next(_ids)}", "triad-bad", None, {**new_change.values, "_form": form})

    def test_write_update_changes_record(self, connector: FeishuConnector, readback_stream: StreamSpec,
                                         new_change: WriteChange) -> None:
        (created,) = connector.write(readback_stream, [new_change])
        assert created.ok, created.error
        edit = replace(new_change, change_id=f"{new_change.change_id}-u", source_id=created.source_id,
                       values={"_form": {"currency": "EUR"}})
        unchanged = replace(edit, change_id=f"{new_change.change_id}-same", values={"_form": {"amount": "72000"}})
        cancel = replace(edit, change_id=f"{new_change.change_id}-c", values=MAPPING.to_source({"status": "cancelled"}))
        refused, same, cancelled = connector.write(readback_stream, [edit, unchanged, cancel])
        assert not refused.ok and "cannot edit" in refused.error
        assert same.ok and cancelled.ok and cancelled.source_id == created.source_id
        record = self._read_back(connector, readback_stream, created.source_id)
        assert record is not None and record["status"] == "CANCELED" and record["_form"]["currency"] == "USD"
