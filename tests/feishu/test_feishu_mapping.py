"""The shipped Feishu approval mapping: valid, and it carries an instance both ways."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

from connectors.feishu.records import shape
from hub.mapping import load_mapping, shipped_mappings_dir, validate_mapping_file

PATH = shipped_mappings_dir() / "feishu" / "approval.yaml"
CONTRACT = "4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F01"


def test_mapping_is_valid() -> None:
    assert validate_mapping_file(PATH, "approval") == []


def test_instance_both_ways() -> None:
    mapping = load_mapping(PATH, "approval")
    form = [{"id": "widget1", "custom_id": "subject_entity", "type": "input", "value": "contract"},
            {"id": "widget2", "custom_id": "subject_id", "type": "input", "value": "HT-2026-00003"},
            {"id": "widget3", "custom_id": "amount", "type": "amount", "value": 98000.5},
            {"id": "widget4", "custom_id": "currency", "type": "input", "value": "USD"},
            {"id": "widget5", "custom_id": "score", "type": "number", "value": 9.0}]
    data = {"approval_code": CONTRACT, "start_time": "1767225600000", "end_time": "1767312000000",
            "user_id": "36f3bcba", "status": "APPROVED", "form": json.dumps(form),
            "task_list": [{"user_id": "66geca66", "start_time": "1767225600161", "end_time": "1767312000000"}],
            "timeline": [{"type": "START", "create_time": "1767225600000"},
                         {"type": "PASS", "create_time": "1767312000000", "comment": "同意"}]}
    record = mapping.to_canonical(shape(data, "AEE54764-3873-4605-BFDF-F33BE3F0D6F7"))
    assert record.source_ts == datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert record.values == {
        "approval_no": "AEE54764-3873-4605-BFDF-F33BE3F0D6F7", "kind": "contract", "subject_entity": "contract",
        "subject_id": "HT-2026-00003", "status": "approved", "applicant": "36f3bcba", "approver": "66geca66",
        "amount": Decimal("98000.5"), "currency": "USD",
        "submitted_at": datetime(2026, 1, 1, tzinfo=timezone.utc), "decided_at": datetime(2026, 1, 2, tzinfo=timezone.utc),
        "comment": "同意", "score": 9}
    assert mapping.to_source(record.values) == {
        "approval_code": CONTRACT, "status": "APPROVED", "user_id": "36f3bcba",
        "_form": {"subject_entity": "contract", "subject_id": "HT-2026-00003", "amount": "98000.5", "currency": "USD",
                  "score": 9}}
    for status in ("pending", "approved", "rejected", "cancelled"):
        assert mapping.to_canonical({"instance_code": "x", **mapping.to_source({"status": status})}
                                    ).values["status"] == status
