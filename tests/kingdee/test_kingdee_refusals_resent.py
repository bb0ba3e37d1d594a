"""K3Cloud refusals that say nothing was done (MsgCode 13 network-control conflict, MsgCode 14 call
limit) are sent again within the call, a create too; a failed database operation (MsgCode 6) may
hide a done create, so that create is not sent again.

The simulator answers over real HTTP; a thin WSGI layer in front of it refuses the first BatchSave
calls in K3Cloud's own answer shape before they reach the simulator (which has no MsgCode 13 of its own).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import pytest

from connectors.kingdee.simulator import THROTTLED, status_body
from hub.connector import StreamSpec, WriteChange

NETWORK_CONTROL = "单据正在被其他用户编辑，网络互斥冲突"     # the text is illustrative; the code decides


class RefuseSaves:
    """WSGI layer: answers the first ``times`` BatchSave calls with MsgCode ``code`` without passing them on."""

    def __init__(self, app: Callable, code: int, message: str, times: int) -> None:
        self.app, self.code, self.message, self.left = app, code, message, times
        self.refused = 0
        self.passed = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if "DynamicFormService.BatchSave" not in environ.get("PATH_INFO", ""):
            return self.app(environ, start_response)
        if self.left > 0:
            self.left -= 1
            self.refused += 1
            body = json.dumps(status_body(self.code, self.message), ensure_ascii=False).encode("utf-8")
            start_response("200 OK", [("Content-Type", "application/json; charset=utf-8"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        self.passed += 1
        return self.app(environ, start_response)


def refuse_saves(sim, code: int, message: str, times: int) -> RefuseSaves:
    layer = RefuseSaves(sim.app, code, message, times)
    sim.server.httpd.set_app(layer)
    return layer


def customers() -> StreamSpec:
    return StreamSpec(entity="customer", source="BD_Customer", key="FCUSTID", updated_at="FModifyDate",
                      timezone="Asia/Shanghai", run_started_at=datetime.now(timezone.utc))


def named(sim, name: str) -> list[dict]:
    return [c for c in sim.state["forms"]["BD_Customer"] if c["FName"] == name]


def create(conn, name: str):
    (result,) = conn.write(customers(), [WriteChange(f"chg-{name}", "r", None, {"FName": name})])
    return result


@pytest.mark.parametrize("code, message", [(13, NETWORK_CONTROL), (14, THROTTLED)],
                         ids=["msgcode13-network-control", "msgcode14-call-limit"])
def test_a_create_refused_before_acting_is_sent_again_within_the_call(sim, make_connector, code, message) -> None:
    conn = make_connector(sim, retries=4)
    waits: list[float] = []
    conn.client.http.sleep = waits.append
    layer = refuse_saves(sim, code, message, times=2)
    result = create(conn, f"拒绝后重发{code}有限公司")
    assert result.ok, result.error
    assert layer.refused == 2 and layer.passed == 1 and len(waits) == 2
    (saved,) = named(sim, f"拒绝后重发{code}有限公司")
    assert result.source_id == str(saved["FCUSTID"])


def test_a_create_refused_on_every_attempt_is_left_for_the_outbox(sim, make_connector) -> None:
    conn = make_connector(sim, retries=3)
    conn.client.http.sleep = lambda s: None
    layer = refuse_saves(sim, 13, NETWORK_CONTROL, times=10)
    result = create(conn, "一直被锁有限公司")
    assert not result.ok and result.retriable and "网络互斥冲突" in result.error
    assert layer.refused == 3 and not named(sim, "一直被锁有限公司")


def test_a_create_after_a_failed_database_operation_is_not_sent_again(sim, make_connector) -> None:
    conn = make_connector(sim, retries=4)
    conn.client.http.sleep = lambda s: None
    layer = refuse_saves(sim, 6, "数据库操作失败", times=1)
    result = create(conn, "数据库失败有限公司")
    assert not result.ok and result.retriable
    assert layer.refused == 1 and layer.passed == 0
