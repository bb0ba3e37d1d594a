"""The shipped DingTalk approval mapping: valid, and it carries an instance both ways."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from connectors.dingtalk.records import shape
from hub.mapping import load_mapping, shipped_mappings_dir, validate_mapping_file

PATH = shipped_mappings_dir() / "dingtalk" / "approval.yaml"


def test_mapping_is_valid() -> None:
    assert validate_mapping_file(PATH, "approval") == []


def test_instance_both_ways() -> None:
    mapping = load_mapping(PATH, "approval")
    result = {"title": "王芳提交的付款申请", "createTime": "2026-03-02T01:15Z", "finishTime": "2026-03-03T08:40Z",
              "originatorUserId": "0420506555", "status": "COMPLETED", "result": "refuse",
              "formComponentValues": [{"name": "关联对象", "value": "付款"}, {"name": "关联单号", "value": "FK-2026-00007"},
                                      {"name": "金额", "value": "1,250.00"}, {"name": "币种", "value": "CNY"},
                                      {"name": "评分", "value": "7"}],
              "tasks": [{"userId": "manager01", "status": "COMPLETED", "result": "REFUSE",
                         "createTime": "2026-03-02T01:15Z", "finishTime": "2026-03-03T08:40Z"}],
              "operationRecords": [{"userId": "0420506555", "date": "2026-03-02T01:15Z", "type": "START_PROCESS_INSTANCE"},
                                   {"userId": "manager01", "date": "2026-03-03T08:40Z", "type": "EXECUTE_TASK_NORMAL",
                                    "result": "REFUSE", "remark": "缺少合同附件"}]}
    record = mapping.to_canonical(shape(result, "ad253df6-e175caf", "PROC-TRIAD-PAYMENT"))
    assert record.source_id == "ad253df6-e175caf"
    assert record.source_ts == datetime(2026, 3, 3, 8, 40, tzinfo=timezone.utc)
    assert record.values == {
        "approval_no": "ad253df6-e175caf", "kind": "payment", "subject_entity": "payment",
        "subject_id": "FK-2026-00007", "status": "rejected", "applicant": "0420506555", "approver": "manager01",
        "amount": Decimal("1250.00"), "currency": "CNY",
        "submitted_at": datetime(2026, 3, 2, 1, 15, tzinfo=timezone.utc),
        "decided_at": datetime(2026, 3, 3, 8, 40, tzinfo=timezone.utc), "comment": "缺少合同附件", "score": 7}
    out = mapping.to_source(record.values)
    assert out == {"processCode": "PROC-TRIAD-PAYMENT", "_status": "COMPLETED/refuse", "originatorUserId": "0420506555",
                   "_form": {"关联对象": "付款", "关联单号": "FK-2026-00007", "金额": "1250.00", "币种": "CNY", "评分": 7}}
    flow = mapping.to_source({"kind": "budget", "subject_entity": "opportunity", "status": "pending"})
    assert flow == {"processCode": "PROC-TRIAD-BUDGET", "_form": {"关联对象": "商机"}, "_status": "RUNNING"}
    for status in ("pending", "approved", "rejected", "cancelled"):
        written = mapping.to_source({"status": status})["_status"]
        state, _, outcome = written.partition("/")
        back = shape({"status": state, "result": outcome}, "i", None)      # as DingTalk would answer it
        assert back["_status"] == written and mapping.to_canonical(back).values["status"] == status
