"""Raw DingTalk instance records: the GetProcessInstance ``result`` plus a few derived keys.

The system's fields stay as DingTalk sends them. Added, because the get answer
lacks them or a mapping cannot express them with one dotted path:

* ``processInstanceId`` and ``processCode`` (the key and the template; the get answer has neither);
* ``_form``: ``{component name: value}`` from ``formComponentValues``;
* ``_status``: ``status``, or ``COMPLETED/agree`` / ``COMPLETED/refuse`` once decided;
* ``_approver``: the user of the last task;
* ``_comment``: the remark of the last approval action (审批意见), e.g. a refusal's reason;
* ``_changed_at``: the newest time on the instance (create, finish, task and record times), UTC ISO.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

OPEN_STATUSES = frozenset({"NEW", "RUNNING"})
CANCEL_STATUSES = frozenset({"TERMINATED", "CANCELED"})


def parse_time(value: Any) -> datetime | None:
    """``2024-05-20T10:00Z`` (new API), ``2024-05-20 10:00:00`` (legacy, Beijing time) or epoch ms."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    try:
        dt = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        from zoneinfo import ZoneInfo
        dt = dt.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return dt.astimezone(timezone.utc)


def combined_status(result: dict[str, Any]) -> str:
    status = str(result.get("status") or "")
    outcome = str(result.get("result") or "").lower()
    return f"{status}/{outcome}" if status == "COMPLETED" and outcome in ("agree", "refuse") else status


def changed_at(result: dict[str, Any]) -> datetime | None:
    stamps = [result.get("createTime"), result.get("finishTime")]
    stamps += [r.get("date") for r in result.get("operationRecords") or []]
    for task in result.get("tasks") or []:
        stamps += [task.get("createTime"), task.get("finishTime")]
    times = [t for t in (parse_time(s) for s in stamps) if t is not None]
    return max(times) if times else None


def shape(result: dict[str, Any], instance_id: str, process_code: str | None) -> dict[str, Any]:
    """One raw record from a GetProcessInstance ``result`` (see the module docstring)."""
    rec = dict(result)
    rec["processInstanceId"] = instance_id
    rec["processCode"] = process_code
    rec["_form"] = {str(c["name"]): c.get("value") for c in result.get("formComponentValues") or []
                    if isinstance(c, dict) and c.get("name")}
    rec["_status"] = combined_status(result)
    tasks = [t for t in result.get("tasks") or [] if isinstance(t, dict)]
    rec["_approver"] = tasks[-1].get("userId") if tasks else None
    remarks = [r.get("remark") for r in result.get("operationRecords") or []
               if isinstance(r, dict) and r.get("type") == "EXECUTE_TASK_NORMAL" and r.get("remark")]
    rec["_comment"] = remarks[-1] if remarks else None
    changed = changed_at(result)
    rec["_changed_at"] = changed.isoformat() if changed else None
    return rec


def is_final(record: dict[str, Any]) -> bool:
    return str(record.get("status") or "") not in OPEN_STATUSES


def same_value(wanted: Any, current: Any) -> bool:
    """Outbound value vs the instance's: numbers compare as numbers ("12000.0" == "12000.00")."""
    if wanted in (None, "") and current in (None, ""):
        return True
    try:
        return Decimal(str(wanted)) == Decimal(str(current))
    except (InvalidOperation, ValueError):
        return str(wanted) == str(current)


def differences(values: dict[str, Any], record: dict[str, Any], status_key: str = "_status",
                open_statuses: frozenset[str] = OPEN_STATUSES) -> list[str]:
    """Outbound keys whose value differs from the instance's (open statuses count as equal)."""
    out = []
    for key, wanted in values.items():
        if key == "_form" and isinstance(wanted, dict):
            form = record.get("_form") or {}
            out += [f"_form.{k}" for k, v in wanted.items() if not same_value(v, form.get(k))]
        elif key == status_key:
            now = record.get(status_key)
            if not (wanted == now or (wanted in open_statuses and now in open_statuses)):
                out.append(key)
        elif not same_value(wanted, record.get(key)):
            out.append(key)
    return out
