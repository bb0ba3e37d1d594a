"""The DingTalk simulator's data: approval processes (审批模板), users and process instances.

Instances are kept with millisecond times; :func:`render` gives the new
API's ``GetProcessInstance`` ``result`` (times as ``yyyy-MM-ddTHH:mmZ``, the
UTC minute format the official SDK documents). Every instance has one approval
node: :meth:`Workflow.decide` completes it, :meth:`Workflow.terminate` revokes it.
"""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from connectors.dingtalk.sim_common import RNG_KEY, keep_rng

OPEN = ("NEW", "RUNNING")

# processCode -> template. Every form has the same components (name, componentType); required ones are checked.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("关联对象", "DDSelectField"), ("关联单号", "TextField"), ("金额", "MoneyField"), ("币种", "DDSelectField"),
    ("说明", "TextareaField"), ("评分", "NumberField"), ("Triad变更号", "TextField"))
REQUIRED = ("关联单号", "金额")
PROCESSES: dict[str, dict[str, str]] = {
    "PROC-TRIAD-CONTRACT": {"name": "合同审批", "subject": "合同", "prefix": "HT"},
    "PROC-TRIAD-PAYMENT": {"name": "付款申请", "subject": "付款", "prefix": "FK"},
    "PROC-TRIAD-CREDIT": {"name": "信用额度申请", "subject": "客户", "prefix": "C"},
    "PROC-TRIAD-BUDGET": {"name": "预算审批", "subject": "商机", "prefix": "OPP"},   # raised by flows; none generated
    "PROC-TRIAD-REVIEW": {"name": "客户满意度评价", "subject": "订单", "prefix": "PJ"},  # raised by flows; none generated
}
GENERATED = ("PROC-TRIAD-CONTRACT", "PROC-TRIAD-PAYMENT", "PROC-TRIAD-CREDIT")
REFUSALS = ("金额超出预算，请调整后重新提交", "缺少合同附件", "客户信用评级不足")
DEPARTMENTS = ((1, "总经办"), (38311102, "销售部"), (38311103, "财务部"), (38311104, "采购部"))
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "婷", "强", "丽", "涛", "明", "超", "霞")


def person_name(rng: random.Random) -> str:
    """A two- or three-character Chinese name."""
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


class WorkflowError(Exception):
    """A request the workflow refuses: answered 400 with this code and message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def iso_minute(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ``2024-05-20T10:00Z`` (the new API's UTC minute format)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _instance_id(rng: random.Random) -> str:
    # shaped like the ids in DingTalk's callback samples: "ad253df6-e175caf-..."
    hexdigits = "0123456789abcdef"
    return "-".join("".join(rng.choice(hexdigits) for _ in range(n)) for n in (8, 7, 4, 4, 12))


def generate(seed: int, records: int, now_ms: int | None = None) -> dict[str, Any]:
    """The initial data set: users, departments and ``records`` instances over the last 60 days."""
    rng = random.Random(seed)
    now_ms = now_ms or int(time.time() * 1000)
    users = []
    for i in range(12):
        dept_id, dept_name = DEPARTMENTS[i % len(DEPARTMENTS)]
        users.append({"userId": f"{rng.randrange(10**15, 10**16)}", "name": person_name(rng),
                      "deptId": dept_id, "deptName": dept_name})
    data: dict[str, Any] = {"users": users, "instances": {}, "seq": 0}
    wf = Workflow(data, rng)
    codes = list(GENERATED)
    for i in range(records):
        code = codes[i % len(codes)]
        proc = PROCESSES[code]
        originator = users[rng.randrange(len(users))]
        created = now_ms - rng.randrange(3600_000, 60 * 86400_000)
        amount = Decimal(rng.randrange(100_000, 50_000_000)) / 100
        form = {"关联对象": proc["subject"], "关联单号": f"{proc['prefix']}-{2024 + i % 2}-{i + 1:05d}",
                "金额": f"{amount:.2f}", "币种": rng.choice(("CNY", "CNY", "CNY", "USD")),
                "说明": f"{proc['name']}（{originator['deptName']}）"}
        if i % 3 == 0:
            form["评分"] = str(rng.randint(1, 10))
        inst = wf.create(code, originator["userId"], originator["deptId"],
                         [{"name": k, "value": v} for k, v in form.items()], at_ms=created)
        roll = rng.random()
        if roll < 0.55:
            finish = min(now_ms - 1800_000, created + rng.randrange(600_000, 3 * 86400_000))
            agree = rng.random() < 0.75
            wf.decide(inst["id"], "agree" if agree else "refuse", at_ms=max(finish, created + 60_000),
                      remark="同意" if agree else rng.choice(REFUSALS))
        elif roll < 0.7:
            finish = min(now_ms - 1800_000, created + rng.randrange(600_000, 86400_000))
            wf.terminate(inst["id"], at_ms=max(finish, created + 60_000))
    data.pop(RNG_KEY, None)     # the running simulator draws ids from its own generator
    return data


class Workflow:
    """Process instances over a JSON-able ``data`` dict (kept by :class:`connectors.simkit.JsonState`)."""

    def __init__(self, data: dict[str, Any], rng: random.Random) -> None:
        self.data = data
        self.rng = rng

    @property
    def instances(self) -> dict[str, dict[str, Any]]:
        return self.data["instances"]

    def user(self, user_id: str) -> dict[str, Any] | None:
        return next((u for u in self.data["users"] if u["userId"] == user_id), None)

    def _approver_for(self, originator: str) -> str:
        others = [u["userId"] for u in self.data["users"] if u["userId"] != originator]
        return others[len(originator) * 7 % len(others)] if others else originator

    def _new_id(self) -> str:
        # never an id in use: a state file from before the generator's position was kept replays old ids
        iid = _instance_id(self.rng)
        while iid in self.instances:
            iid = _instance_id(self.rng)
        keep_rng(self.data, self.rng)
        return iid

    def get(self, instance_id: str) -> dict[str, Any]:
        inst = self.instances.get(instance_id)
        if inst is None:
            raise WorkflowError("InvalidProcessInstanceId", f"审批实例不存在: {instance_id}")
        return inst

    def create(self, process_code: str, originator: str, dept_id: Any, values: list[dict[str, Any]],
               at_ms: int | None = None) -> dict[str, Any]:
        """Start an instance (StartProcessInstance); its one approval task is RUNNING."""
        if process_code not in PROCESSES:
            raise WorkflowError("InvalidProcessCode", f"审批模板不存在: processCode={process_code}")
        user = self.user(originator)
        if user is None:
            raise WorkflowError("InvalidUserId", f"发起人不存在: originatorUserId={originator}")
        known = dict(COMPONENTS)
        form: list[dict[str, Any]] = []
        for item in values:
            name = item.get("name")
            if name not in known:
                raise WorkflowError("InvalidFormComponent", f"表单组件不存在: {name}")
            value = item.get("value")
            form.append({"id": f"{known[name]}-{COMPONENTS.index((name, known[name])):02d}", "name": name,
                         "value": "" if value is None else str(value), "componentType": known[name], "bizAlias": ""})
        filled = {f["name"] for f in form if f["value"] != ""}
        missing = [n for n in REQUIRED if n not in filled]
        if missing:
            raise WorkflowError("InvalidFormComponentValue", f"必填表单组件为空: {', '.join(missing)}")
        at = at_ms or int(time.time() * 1000)
        self.data["seq"] += 1
        iid = self._new_id()
        approver = self._approver_for(originator)
        dept = int(dept_id) if str(dept_id).lstrip("-").isdigit() else user["deptId"]
        if dept == -1:
            dept = user["deptId"]
        inst = {
            "id": iid, "processCode": process_code, "createTime": at, "finishTime": None,
            "title": f"{user['name']}提交的{PROCESSES[process_code]['name']}",
            "originatorUserId": originator, "originatorDeptId": str(dept),
            "originatorDeptName": dict(DEPARTMENTS).get(dept, user["deptName"]),
            "status": "RUNNING", "result": "", "businessId": f"{time.strftime('%Y%m%d', time.gmtime(at / 1000))}"
                                                            f"{self.data['seq']:06d}",
            "form": form, "approvers": [approver],
            "tasks": [{"taskId": 60_000_000_000 + self.data["seq"] * 10, "userId": approver, "status": "RUNNING",
                       "result": "NONE", "createTime": at, "finishTime": None, "activityId": "node_approve_1"}],
            "records": [{"userId": originator, "date": at, "type": "START_PROCESS_INSTANCE", "result": "NONE",
                         "showName": "发起审批", "remark": ""}],
        }
        self.instances[iid] = inst
        return inst

    def decide(self, instance_id: str, result: str, approver: str | None = None,
               at_ms: int | None = None, remark: str = "") -> dict[str, Any]:
        """Complete a running instance with ``agree`` or ``refuse`` (the approver acts on the open task)."""
        if result not in ("agree", "refuse"):
            raise WorkflowError("InvalidParameter", f"result must be agree or refuse, got {result}")
        inst = self.get(instance_id)
        if inst["status"] not in OPEN:
            raise WorkflowError("InvalidProcessInstanceStatus", f"审批实例已结束: {inst['status']}")
        at = at_ms or int(time.time() * 1000)
        task = next(t for t in inst["tasks"] if t["status"] == "RUNNING")
        if approver:
            task["userId"] = approver
        task.update(status="COMPLETED", result=result.upper(), finishTime=at)
        inst["records"].append({"userId": task["userId"], "date": at, "type": "EXECUTE_TASK_NORMAL",
                                "result": result.upper(), "showName": "审批人", "remark": remark})
        inst.update(status="COMPLETED", result=result, finishTime=at)
        return inst

    def terminate(self, instance_id: str, operator: str | None = None, at_ms: int | None = None,
                  remark: str = "") -> dict[str, Any]:
        """Revoke a running instance (TerminateProcessInstance): TERMINATED, no result."""
        inst = self.get(instance_id)
        if inst["status"] not in OPEN:
            raise WorkflowError("InvalidProcessInstanceStatus", f"审批实例已结束，不能撤销: {inst['status']}")
        at = at_ms or int(time.time() * 1000)
        for task in inst["tasks"]:
            if task["status"] == "RUNNING":
                task.update(status="CANCELED", result="NONE", finishTime=at)
        inst["records"].append({"userId": operator or inst["originatorUserId"], "date": at,
                                "type": "TERMINATE_PROCESS_INSTANCE", "result": "NONE", "showName": "撤销",
                                "remark": remark})
        inst.update(status="TERMINATED", result="", finishTime=at)
        return inst

    def list_ids(self, process_code: str, start_ms: int, end_ms: int | None,
                 user_ids: list[str] | None = None, statuses: list[str] | None = None) -> list[str]:
        """Instance ids of a process started in ``[start_ms, end_ms]``, oldest first."""
        hits = [i for i in self.instances.values()
                if i["processCode"] == process_code and i["createTime"] >= start_ms
                and (end_ms is None or i["createTime"] <= end_ms)
                and (not user_ids or i["originatorUserId"] in user_ids)
                and (not statuses or i["status"] in statuses)]
        hits.sort(key=lambda i: (i["createTime"], i["id"]))
        return [i["id"] for i in hits]


def render(inst: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` of ``GET /v1.0/workflow/processInstances`` for one instance (SDK field names)."""
    out: dict[str, Any] = {
        "title": inst["title"], "createTime": iso_minute(inst["createTime"]),
        "originatorUserId": inst["originatorUserId"], "originatorDeptId": inst["originatorDeptId"],
        "originatorDeptName": inst["originatorDeptName"], "status": inst["status"], "result": inst["result"],
        "businessId": inst["businessId"], "approverUserIds": list(inst["approvers"]), "ccUserIds": [],
        "formComponentValues": [dict(f) for f in inst["form"]],
        "operationRecords": [{**r, "date": iso_minute(r["date"]), "images": [], "attachments": [],
                              "activityId": "node_approve_1" if r["type"] == "EXECUTE_TASK_NORMAL" else ""}
                             for r in inst["records"]],
        "tasks": [{"taskId": t["taskId"], "userId": t["userId"], "status": t["status"], "result": t["result"],
                   "createTime": iso_minute(t["createTime"]), "activityId": t["activityId"],
                   "processInstanceId": inst["id"],
                   "pcUrl": f"https://aflow.dingtalk.com/dingtalk/pc/query/pchomepage.htm?procInsId={inst['id']}",
                   "mobileUrl": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?procInsId={inst['id']}",
                   **({"finishTime": iso_minute(t["finishTime"])} if t["finishTime"] else {})}
                  for t in inst["tasks"]],
        "bizAction": "NONE", "attachedProcessInstanceIds": [],
    }
    if inst["finishTime"]:
        out["finishTime"] = iso_minute(inst["finishTime"])
    return out
