"""The Feishu simulator's data: approval definitions, users and instances (approval v4).

Instances are kept in the wire shape of ``GET /open-apis/approval/v4/instances/:id``
with integer milliseconds and ``form`` as a list; :func:`render` gives the
exact body shape of the saved fixture (times as strings, ``form`` as a JSON
string, ``end_time`` "0" while open). Every definition has one approval node.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from decimal import Decimal
from typing import Any

from connectors.dingtalk.sim_common import RNG_KEY, keep_rng
from connectors.dingtalk.sim_workflow import person_name

FINAL = ("APPROVED", "REJECTED", "CANCELED", "DELETED")


def _widgets(prefix: str) -> list[dict[str, Any]]:
    spec = (("subject_entity", "关联对象", "input"), ("subject_id", "关联单号", "input"),
            ("amount", "金额", "amount"), ("currency", "币种", "input"), ("remark", "说明", "textarea"),
            ("score", "评分", "number"))
    return [{"id": f"widget{prefix}{i:02d}", "custom_id": cid, "name": name, "type": kind}
            for i, (cid, name, kind) in enumerate(spec)]


# approval_code -> definition (codes are per tenant; these are the simulator's)
DEFINITIONS: dict[str, dict[str, Any]] = {
    "4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F01": {"name": "合同审批", "subject": "contract", "prefix": "HT",
                                             "widgets": _widgets("1668155666")},
    "4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F02": {"name": "付款申请", "subject": "payment", "prefix": "FK",
                                             "widgets": _widgets("1668155777")},
    "4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F03": {"name": "信用额度申请", "subject": "customer", "prefix": "C",
                                             "widgets": _widgets("1668155888")},
    "4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F04": {"name": "预算审批", "subject": "opportunity", "prefix": "OPP",
                                             "widgets": _widgets("1668155999")},     # raised by flows; none generated
}
GENERATED = tuple(DEFINITIONS)[:3]
REFUSALS = ("金额超出预算，请调整后重新提交", "缺少合同附件", "客户信用评级不足")
REQUIRED = ("subject_id", "amount")


class ApprovalError(Exception):
    """A refused request: answered with this Feishu ``code`` and ``msg`` (HTTP 400)."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def generate(seed: int, records: int, now_ms: int | None = None) -> dict[str, Any]:
    """The initial data set: definitions, users and ``records`` instances over the last 60 days."""
    rng = random.Random(seed)
    now_ms = now_ms or int(time.time() * 1000)
    users = [{"user_id": _hex(rng, 8), "open_id": "ou_" + _hex(rng, 32), "name": person_name(rng)}
             for _ in range(12)]
    definitions = {code: {**d, "node": {"node_id": _hex(rng, 32), "custom_node_id": "approve-here", "node_name": "审批"}}
                   for code, d in DEFINITIONS.items()}
    data: dict[str, Any] = {"definitions": definitions, "users": users, "instances": {}, "uuids": {}, "seq": 0,
                            "tenant_key": _hex(rng, 16)}
    engine = Approvals(data, rng)
    codes = list(GENERATED)
    for i in range(records):
        code = codes[i % len(codes)]
        d = definitions[code]
        user = users[rng.randrange(len(users))]
        created = now_ms - rng.randrange(3600_000, 60 * 86400_000)
        amount = Decimal(rng.randrange(100_000, 50_000_000)) / 100
        form = [{"id": "subject_entity", "value": d["subject"]},
                {"id": "subject_id", "value": f"{d['prefix']}-{2024 + i % 2}-{i + 1:05d}"},
                {"id": "amount", "value": float(amount)},
                {"id": "currency", "value": rng.choice(("CNY", "CNY", "CNY", "USD"))},
                {"id": "remark", "value": f"{d['name']}"}]
        if i % 3 == 0:
            form.append({"id": "score", "value": rng.randint(1, 10)})
        inst = engine.create(code, user["user_id"], None, form, at_ms=created)
        roll = rng.random()
        finish = max(created + 60_000, min(now_ms - 1800_000, created + rng.randrange(600_000, 3 * 86400_000)))
        if roll < 0.55:
            approve = rng.random() < 0.75
            engine.decide(inst["instance_code"], "APPROVED" if approve else "REJECTED", at_ms=finish,
                          comment="同意" if approve else rng.choice(REFUSALS))
        elif roll < 0.68:
            engine.cancel(code, inst["instance_code"], user["user_id"], at_ms=finish)
    data.pop(RNG_KEY, None)     # the running simulator draws ids from its own generator
    return data


class Approvals:
    """Approval instances over a JSON-able ``data`` dict (kept by :class:`connectors.simkit.JsonState`)."""

    def __init__(self, data: dict[str, Any], rng: random.Random) -> None:
        self.data = data
        self.rng = rng

    @property
    def instances(self) -> dict[str, dict[str, Any]]:
        return self.data["instances"]

    def user(self, user_id: str | None = None, open_id: str | None = None) -> dict[str, Any] | None:
        return next((u for u in self.data["users"] if (user_id and u["user_id"] == user_id)
                     or (open_id and u["open_id"] == open_id)), None)

    def get(self, instance_code: str) -> dict[str, Any]:
        inst = self.instances.get(instance_code)
        if inst is None:
            raise ApprovalError(1390003, "instance code not found")
        return inst

    def new_code(self, taken: dict[str, Any]) -> str:
        """A fresh upper-case UUID not among ``taken`` (the generator's position is kept in the data set)."""
        # never a code in use: a state file from before the position was kept replays old codes
        code = str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()
        while code in taken:
            code = str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()
        keep_rng(self.data, self.rng)
        return code

    def define(self, code: str, name: str, widgets: list[dict[str, Any]]) -> None:
        """Add an approval definition (``POST /approval/v4/approvals``)."""
        self.data["definitions"][code] = {"name": name, "subject": "", "prefix": "", "widgets": widgets,
                                          "node": {"node_id": _hex(self.rng, 32), "custom_node_id": "approve-here",
                                                   "node_name": "审批"}}
        keep_rng(self.data, self.rng)

    def _form(self, definition: dict[str, Any], items: Any) -> list[dict[str, Any]]:
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ApprovalError(1390001, "param is invalid: form must be a JSON array of widgets")
        widgets = definition["widgets"]
        out = []
        for item in items:
            ref = str(item.get("id") or "")
            widget = next((w for w in widgets if ref in (w["id"], w.get("custom_id"))), None)
            if widget is None:
                raise ApprovalError(1390001, f"param is invalid: form widget {ref or '?'} not found")
            value = item.get("value")
            if widget["type"] in ("amount", "number") and value not in (None, ""):
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise ApprovalError(1390001, f"param is invalid: {ref} must be a number") from None
            out.append({"id": widget["id"], "custom_id": widget.get("custom_id", ""), "name": widget["name"],
                        "type": widget["type"], "ext": None, "value": value})
        filled = {w["custom_id"] for w in out if w["value"] not in (None, "")}
        missing = [r for r in REQUIRED if any(w.get("custom_id") == r for w in widgets) and r not in filled]
        if missing:
            raise ApprovalError(1390001, f"param is invalid: required widget {', '.join(missing)} is empty")
        return out

    def create(self, approval_code: str, user_id: str | None, open_id: str | None, form: Any,
               request_uuid: str = "", at_ms: int | None = None) -> dict[str, Any]:
        """Start an instance; one PENDING task on the approval node."""
        definition = self.data["definitions"].get(approval_code)
        if definition is None:
            raise ApprovalError(1390002, "approval code not found")
        user = self.user(user_id, open_id)
        if user is None:
            raise ApprovalError(1390001, "param is invalid: user_id or open_id of the initiator is required")
        key = request_uuid.lower()
        if key and key in self.data["uuids"]:
            raise ApprovalError(60012, "uuid conflict: an instance was already created with this uuid")
        items = self._form(definition, form)
        at = at_ms or int(time.time() * 1000)
        self.data["seq"] += 1
        code = self.new_code(self.instances)
        others = [u for u in self.data["users"] if u["user_id"] != user["user_id"]]
        approver = others[self.data["seq"] % len(others)]
        node = definition["node"]
        inst = {
            "instance_code": code, "approval_code": approval_code, "approval_name": definition["name"],
            "department_id": "", "start_time": at, "end_time": 0, "user_id": user["user_id"],
            "open_id": user["open_id"], "serial_number": time.strftime("%Y%m%d", time.gmtime(at / 1000))
            + f"{self.data['seq']:04d}", "status": "PENDING", "uuid": request_uuid, "form": items, "reverted": False,
            "task_list": [{"custom_node_id": node["custom_node_id"], "end_time": 0,
                           "id": str(7164675144512831489 + self.data["seq"]), "node_id": node["node_id"],
                           "node_name": node["node_name"], "open_id": approver["open_id"], "start_time": at + 150,
                           "status": "PENDING", "type": "AND", "user_id": approver["user_id"]}],
            "timeline": [{"create_time": at, "ext": "{}", "node_key": "", "open_id": user["open_id"], "type": "START",
                          "user_id": user["user_id"]}],
        }
        self.instances[code] = inst
        if key:
            self.data["uuids"][key] = code
        return inst

    def decide(self, instance_code: str, status: str, approver: str | None = None,
               at_ms: int | None = None, comment: str = "") -> dict[str, Any]:
        """The approver approves or rejects the pending task (with an optional comment); the instance ends."""
        if status not in ("APPROVED", "REJECTED"):
            raise ApprovalError(1390001, f"param is invalid: status must be APPROVED or REJECTED, got {status}")
        inst = self.get(instance_code)
        if inst["status"] != "PENDING":
            raise ApprovalError(1390001, f"instance is {inst['status']}, not PENDING")
        at = at_ms or int(time.time() * 1000)
        task = next(t for t in inst["task_list"] if t["status"] == "PENDING")
        user = self.user(approver) if approver else None
        if user:
            task.update(user_id=user["user_id"], open_id=user["open_id"])
        task.update(status=status, end_time=at)
        entry = {"create_time": at, "ext": "{}", "node_key": task["custom_node_id"], "open_id": task["open_id"],
                 "type": "PASS" if status == "APPROVED" else "REJECT", "user_id": task["user_id"], "task_id": task["id"]}
        if comment:
            entry["comment"] = comment
        inst["timeline"].append(entry)
        inst.update(status=status, end_time=at)
        return inst

    def cancel(self, approval_code: str, instance_code: str, user_id: str | None,
               at_ms: int | None = None) -> dict[str, Any]:
        """The initiator withdraws a pending instance (撤回)."""
        inst = self.get(instance_code)
        if inst["approval_code"] != approval_code:
            raise ApprovalError(1390001, "param is invalid: approval_code does not match the instance")
        if user_id != inst["user_id"]:
            raise ApprovalError(1390001, "param is invalid: only the initiator can cancel the instance")
        if inst["status"] != "PENDING":
            raise ApprovalError(1390001, f"instance is {inst['status']} and cannot be canceled")
        at = at_ms or int(time.time() * 1000)
        for task in inst["task_list"]:
            if task["status"] == "PENDING":
                task.update(status="DONE", end_time=at)
        inst["timeline"].append({"create_time": at, "ext": "{}", "node_key": "", "open_id": inst["open_id"],
                                 "type": "CANCEL", "user_id": inst["user_id"]})
        inst.update(status="CANCELED", end_time=at)
        return inst

    def list_codes(self, approval_code: str, start_ms: int, end_ms: int) -> list[str]:
        """Codes of the definition's instances started in ``[start_ms, end_ms]``, oldest first."""
        hits = [i for i in self.instances.values()
                if i["approval_code"] == approval_code and start_ms <= i["start_time"] <= end_ms]
        hits.sort(key=lambda i: (i["start_time"], i["instance_code"]))
        return [i["instance_code"] for i in hits]


def render(inst: dict[str, Any]) -> dict[str, Any]:
    """``data`` of ``GET /open-apis/approval/v4/instances/:instance_id`` (the fixture's shape)."""
    form = [{k: w[k] for k in ("id", "custom_id", "name", "type", "ext", "value")} for w in inst["form"]]
    return {
        "approval_code": inst["approval_code"], "approval_name": inst["approval_name"],
        "department_id": inst["department_id"], "end_time": str(inst["end_time"]),
        "form": json.dumps(form, ensure_ascii=False, separators=(",", ":")),
        "open_id": inst["open_id"], "reverted": inst["reverted"], "serial_number": inst["serial_number"],
        "start_time": str(inst["start_time"]), "status": inst["status"],
        "task_list": [{**t, "end_time": str(t["end_time"]), "start_time": str(t["start_time"])}
                      for t in inst["task_list"]],
        "timeline": [{**t, "create_time": str(t["create_time"])} for t in inst["timeline"]],
        "user_id": inst["user_id"], "uuid": inst["uuid"],
    }
