"""Raw Feishu instance records: the approval v4 get ``data`` plus a few derived keys.

The system's fields stay as Feishu sends them (``form`` stays a JSON string).
Added, because the answer lacks them or a mapping cannot express them with one
dotted path:

* ``instance_code`` (the key; set from the request when the answer omits it, as the fixture does);
* ``_form``: ``{widget custom_id (else id): value}`` parsed from ``form``;
* ``_approver``: the user of the last task;
* ``_comment``: the comment of the last approve / reject in ``timeline`` (a refusal's reason, say);
* ``_decided_at``: ``end_time`` as UTC ISO once the instance ended (``end_time`` is "0" while open);
* ``_changed_at``: the newest time on the instance (start, end, task and timeline times), UTC ISO.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

FINAL_STATUSES = frozenset({"APPROVED", "REJECTED", "CANCELED", "DELETED", "REVERTED"})
OPEN_STATUSES = frozenset({"PENDING"})


def ms_time(value: Any) -> datetime | None:
    """Feishu's millisecond strings ("1668155925149"); "0" and blanks mean none."""
    try:
        ms = int(str(value))
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc) if ms > 0 else None


def parse_form(form: Any) -> dict[str, Any]:
    """``{custom_id or id: value}`` of the ``form`` JSON string (a list is taken as is)."""
    if isinstance(form, str):
        try:
            form = json.loads(form) if form else []
        except ValueError:
            return {}
    out: dict[str, Any] = {}
    for item in form if isinstance(form, list) else []:
        if isinstance(item, dict):
            key = item.get("custom_id") or item.get("id")
            if key:
                out[str(key)] = item.get("value")
    return out


def shape(data: dict[str, Any], instance_code: str) -> dict[str, Any]:
    """One raw record from the get answer's ``data`` (see the module docstring)."""
    rec = dict(data)
    rec.setdefault("instance_code", instance_code)
    rec["_form"] = parse_form(data.get("form"))
    tasks = [t for t in data.get("task_list") or [] if isinstance(t, dict)]
    rec["_approver"] = tasks[-1].get("user_id") if tasks else None
    comments = [t.get("comment") for t in data.get("timeline") or []
                if isinstance(t, dict) and t.get("type") in ("PASS", "REJECT") and t.get("comment")]
    rec["_comment"] = comments[-1] if comments else None
    decided = ms_time(data.get("end_time"))
    rec["_decided_at"] = decided.isoformat() if decided else None
    stamps = [data.get("start_time"), data.get("end_time")]
    stamps += [t.get("create_time") for t in data.get("timeline") or [] if isinstance(t, dict)]
    for task in tasks:
        stamps += [task.get("start_time"), task.get("end_time")]
    times = [t for t in (ms_time(s) for s in stamps) if t is not None]
    rec["_changed_at"] = max(times).isoformat() if times else None
    return rec


def is_final(record: dict[str, Any]) -> bool:
    return str(record.get("status") or "") in FINAL_STATUSES
