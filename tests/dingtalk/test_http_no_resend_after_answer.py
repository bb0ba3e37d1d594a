"""A create is not sent again once DingTalk has answered it, whatever the answer looked like.

A 200 whose body was cut means the instance was started: sending the create again would start a
second approval. The error goes to the caller; the next attempt finds the instance by its dedupe
component. Answers that say DingTalk did not act (throttled, token refused) are still sent again.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Callable

import pytest

from hub.connector import StreamSpec, WriteChange
from hub.errors import RetriableError
from hub.mapping import load_mapping, shipped_mappings_dir

MAPPING = load_mapping(shipped_mappings_dir() / "dingtalk" / "approval.yaml", "approval")
CREATE_PATH = "/v1.0/workflow/processInstances"


def new_approval(sim: Any, change_id: str) -> WriteChange:
    canonical = {"kind": "budget", "subject_entity": "order", "subject_id": "OPP-1", "status": "pending",
                 "applicant": sim.sim.workflow.data["users"][2]["userId"], "amount": Decimal("1000.00"),
                 "currency": "CNY"}
    return WriteChange(change_id, f"rec-{change_id}", None, MAPPING.to_source(canonical))


def holders(sim: Any, change_id: str) -> list[str]:
    """Instances whose dedupe component holds ``change_id``."""
    return [i["id"] for i in sim.sim.workflow.instances.values()
            if any(f["name"] == "Triad变更号" and f["value"] == change_id for f in i["form"])]


def create_body(sim: Any) -> dict[str, Any]:
    return {"processCode": "PROC-TRIAD-BUDGET", "originatorUserId": sim.sim.workflow.data["users"][2]["userId"],
            "deptId": -1, "formComponentValues": [{"name": "关联单号", "value": "OPP-1"},
                                                   {"name": "金额", "value": "1000.00"},
                                                   {"name": "Triad变更号", "value": "direct-1"}]}


def test_a_create_whose_answer_is_cut_starts_one_instance(make_sim: Callable[..., Any],
                                                          make_connector: Callable[..., Any]) -> None:
    sim = make_sim(records=10)
    client = make_connector(sim, retries=3).client
    client.token()                              # the token answer is whole; from now on every 200 body is cut
    before = len(sim.sim.workflow.instances)
    sim.options.truncate_rate = 1.0
    with pytest.raises(RetriableError, match="not JSON"):
        client.start_instance(create_body(sim))
    assert len(sim.sim.workflow.instances) == before + 1     # sent once, not once per attempt
    assert len(holders(sim, "direct-1")) == 1


def test_the_next_attempt_finds_the_instance_of_a_cut_answer(make_sim: Callable[..., Any],
                                                             make_connector: Callable[..., Any],
                                                             stream: StreamSpec) -> None:
    sim = make_sim(records=10)
    conn = make_connector(sim, retries=3)
    change = new_approval(sim, "chg-cut")
    conn.client.token()
    cut_creates = CutCreates(sim.app)
    sim.server.httpd.set_app(cut_creates)
    (first,) = conn.write(stream, [change])
    assert not first.ok and first.retriable and cut_creates.creates == 1
    assert len(holders(sim, "chg-cut")) == 1

    sim.server.httpd.set_app(sim.app)            # the outbox's next attempt, as in another process
    (again,) = make_connector(sim, retries=3).write(stream, [change])
    assert again.ok and [again.source_id] == holders(sim, "chg-cut")


def test_a_throttled_create_is_sent_again(make_sim: Callable[..., Any], make_connector: Callable[..., Any]) -> None:
    sim = make_sim(records=10)
    client = make_connector(sim, retries=3).client
    client.http.sleep = lambda seconds: None
    throttled = ThrottleFirstCreate(sim.app)
    sim.server.httpd.set_app(throttled)
    instance_id = client.start_instance(create_body(sim))
    assert throttled.creates == 2 and holders(sim, "direct-1") == [instance_id]


class CutCreates:
    """The simulator, with the body of every answered create cut in half (the instance is started)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.creates = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["REQUEST_METHOD"] != "POST" or environ["PATH_INFO"].rstrip("/") != CREATE_PATH:
            return self.app(environ, start_response)
        self.creates += 1
        captured: dict[str, Any] = {}
        body = b"".join(self.app(environ, lambda status, headers, exc_info=None: captured.update(status=status)))
        start_response(captured["status"], [("Content-Type", "application/json")])
        return [body[: len(body) // 2]]


class ThrottleFirstCreate:
    """The simulator, refusing the first create the way DingTalk throttles (403 QpsLimit), before acting."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.creates = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].rstrip("/") == CREATE_PATH:
            self.creates += 1
            if self.creates == 1:
                start_response("403 Forbidden", [("Content-Type", "application/json"), ("Retry-After", "0.01")])
                return [json.dumps({"code": "Forbidden.AccessDenied.QpsLimitForApi",
                                    "message": "调用该接口触发了限流，请稍后重试"}).encode()]
        return self.app(environ, start_response)
