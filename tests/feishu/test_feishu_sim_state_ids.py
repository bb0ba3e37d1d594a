"""A Feishu simulator restarted from its --state file hands out new ids and keeps what it created before."""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from connectors.feishu.sim_approval import GENERATED

CONTRACT = GENERATED[0]


def create(sim: Any, token: str, request_uuid: str, subject: str) -> Any:
    body = {"approval_code": CONTRACT, "user_id": sim.user(0), "uuid": request_uuid,
            "form": json.dumps([{"id": "subject_id", "value": subject}, {"id": "amount", "value": 100}])}
    return sim.call("POST", "/instances", token, json=body)


def all_codes(sim: Any, token: str) -> list[str]:
    window = {"start_time": 0, "end_time": int(time.time() * 1000) + 60_000, "page_size": 100}
    codes: list[str] = []
    for approval_code in GENERATED:
        answer = sim.call("GET", "/instances", token, params={"approval_code": approval_code, **window}).json()
        codes += answer["data"]["instance_code_list"]
    return codes


def subject(sim: Any, token: str, code: str) -> str:
    data = sim.call("GET", f"/instances/{code}", token).json()["data"]
    return next(w["value"] for w in json.loads(data["form"]) if w["custom_id"] == "subject_id")


def test_restart_gives_new_instance_code(make_sim: Callable[..., Any], tmp_path: Any) -> None:
    path = str(tmp_path / "fs.json")
    first = make_sim(records=5, state=path)
    token = first.token()
    one = create(first, token, "A-1", "HT-BEFORE")
    assert one.status_code == 200, one.text
    code_one = one.json()["data"]["instance_code"]
    first.stop()

    again = make_sim(records=5, state=path)
    token = again.token()
    two = create(again, token, "A-2", "HT-AFTER")
    assert two.status_code == 200, two.text
    code_two = two.json()["data"]["instance_code"]
    assert code_two != code_one
    assert subject(again, token, code_one) == "HT-BEFORE" and subject(again, token, code_two) == "HT-AFTER"
    codes = all_codes(again, token)
    assert len(codes) == len(set(codes)) == 7 and {code_one, code_two} <= set(codes)
    retried = create(again, token, "A-1", "HT-RETRY")
    assert retried.json()["code"] == 60012, "the uuid of the first instance is still taken"
    assert subject(again, token, code_one) == "HT-BEFORE"


def test_restart_gives_new_approval_code(make_sim: Callable[..., Any], tmp_path: Any) -> None:
    path = str(tmp_path / "fs.json")
    form = {"form_content": json.dumps([{"id": "widget1", "custom_id": "subject_id", "name": "单号"}])}

    def define(sim: Any, name: str) -> str:
        answer = sim.call("POST", "/approvals", sim.token(), json={"approval_name": name, "form": form}).json()
        assert answer["code"] == 0, answer
        return answer["data"]["approval_code"]

    first = make_sim(records=5, state=path)
    code_one = define(first, "before")
    first.stop()
    again = make_sim(records=5, state=path)
    code_two = define(again, "after")
    assert code_two != code_one
    assert again.sim.state.data["definitions"][code_one]["name"] == "before"


def test_fresh_start_is_deterministic(make_sim: Callable[..., Any]) -> None:
    made = []
    for _ in range(2):
        sim = make_sim(records=5, seed=11)
        made.append(create(sim, sim.token(), "", "HT-1").json()["data"]["instance_code"])
    assert made[0] == made[1]
