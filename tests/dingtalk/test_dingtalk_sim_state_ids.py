"""A DingTalk simulator restarted from its --state file hands out new ids and keeps what it created before."""
from __future__ import annotations

from typing import Any, Callable

CONTRACT = "PROC-TRIAD-CONTRACT"
INSTANCES = "/v1.0/workflow/processInstances"


def start(sim: Any, token: str, number: str) -> Any:
    body = {"processCode": CONTRACT, "originatorUserId": sim.sim.workflow.data["users"][0]["userId"], "deptId": -1,
            "formComponentValues": [{"name": "关联单号", "value": number}, {"name": "金额", "value": "100.00"}]}
    return sim.call("POST", INSTANCES, token, json=body)


def number(sim: Any, token: str, iid: str) -> str:
    result = sim.call("GET", INSTANCES, token, params={"processInstanceId": iid}).json()["result"]
    return next(f["value"] for f in result["formComponentValues"] if f["name"] == "关联单号")


def all_ids(sim: Any, token: str) -> list[str]:
    ids: list[str] = []
    for code in ("PROC-TRIAD-CONTRACT", "PROC-TRIAD-PAYMENT", "PROC-TRIAD-CREDIT"):
        query = {"processCode": code, "startTime": 0, "maxResults": 20}
        ids += sim.call("POST", "/v1.0/workflow/processes/instanceIds/query", token, json=query).json()["result"]["list"]
    return ids


def test_restart_gives_new_instance_id(make_sim: Callable[..., Any], tmp_path: Any) -> None:
    path = str(tmp_path / "dt.json")
    first = make_sim(records=5, state=path)
    one = start(first, first.token(), "HT-BEFORE")
    assert one.status_code == 200, one.text
    id_one = one.json()["instanceId"]
    first.stop()

    again = make_sim(records=5, state=path)
    token = again.token()
    two = start(again, token, "HT-AFTER")
    assert two.status_code == 200, two.text
    id_two = two.json()["instanceId"]
    assert id_two != id_one
    assert number(again, token, id_one) == "HT-BEFORE" and number(again, token, id_two) == "HT-AFTER"
    ids = all_ids(again, token)
    assert len(ids) == len(set(ids)) == 7 and {id_one, id_two} <= set(ids)


def test_fresh_start_is_deterministic(make_sim: Callable[..., Any]) -> None:
    made = []
    for _ in range(2):
        sim = make_sim(records=5, seed=11)
        made.append(start(sim, sim.token(), "HT-1").json()["instanceId"])
    assert made[0] == made[1]
