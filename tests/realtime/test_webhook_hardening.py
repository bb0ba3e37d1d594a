"""The webhook path of `triad serve` keeps no secret and gives no traceback.

Feishu's Verification Token travels in the event body: the inbox keeps the event without it, and the
worker still applies it. Malformed bodies and parameters from an unauthenticated caller answer 401
``not authentic`` with nothing stored, and so does a connector that fails checking a delivery."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import inspect, text

from connectors.feishu import crypto
from connectors.simkit import SimOptions, SimServer

from .helpers import Served, rows, wait_for, write_project

TOKEN = "feishu-verif-SECRET-123"
ENCRYPT_KEY = "feishu-encrypt-KEY-456"
DT_TOKEN = "dt-callback-token"
DT_AES_KEY = "a" * 43


def config(sim_url: str) -> str:
    feishu = (f"type: feishu, base_url: '{sim_url}', app_id: triad-client, app_secret: triad-secret, "
              f"backoff: 0.01, verification_token: '${{FS_VT:-{TOKEN}}}', entities: {{approval: {{}}}}")
    return f"""
connectors:
  fs: {{{feishu}}}
  fsk: {{{feishu}, encrypt_key: {ENCRYPT_KEY}}}
  dt: {{type: dingtalk, base_url: 'http://127.0.0.1:9', app_key: triad-client, app_secret: triad-secret,
        callback_token: {DT_TOKEN}, callback_aes_key: {DT_AES_KEY}, entities: {{approval: {{}}}}}}
serve: {{window_ms: 20}}
"""


@pytest.fixture
def feishu_sim() -> Iterator[Any]:
    from connectors.feishu.simulator import create_app
    app = create_app(SimOptions(records=30, extra={"verification_token": TOKEN}))
    server = SimServer(app).start()
    server.sim = app.sim
    yield server
    server.stop()


@pytest.fixture
def served(tmp_path: Path, store_url: str, feishu_sim: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.delenv("FS_VT", raising=False)
    with Served(write_project(tmp_path / "p", config(feishu_sim.base_url), store_url)) as s:
        yield s


def database_text(engine: Any) -> str:
    """Every value of every table, as text."""
    out = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            out += [repr(tuple(r)) for r in conn.execute(text(f'select * from "{table}"'))]
    return "\n".join(out)


def pending_instance(sim: Any) -> str:
    insts = sim.approvals.instances.values()
    return next(i["instance_code"] for i in sorted(insts, key=lambda i: i["start_time"]) if i["status"] == "PENDING")


@pytest.mark.parametrize("connector, schema", [("fs", "2.0"), ("fs", "1.0"), ("fsk", "2.0")])
def test_the_verification_token_is_not_stored(served: Served, feishu_sim: Any, connector: str, schema: str) -> None:
    sim = feishu_sim.sim
    sim.schema, sim.encrypt_key = schema, ENCRYPT_KEY if connector == "fsk" else None
    sim.callback_url = f"{served.url}/webhooks/{connector}"
    code = pending_instance(sim)
    delivery = sim.decide(code, "APPROVED")
    assert delivery.status == 200, delivery
    done = wait_for(lambda: rows(served.engine, "select status, error from inbox where status != 'pending'"),
                    20, "the delivery to be processed")
    assert [(r.status, r.error) for r in done] == [("done", None)]
    applied = rows(served.engine, "select source_id from xref where system = :s and entity = 'approval'", s=connector)
    assert [r.source_id for r in applied] == [code]
    assert TOKEN not in database_text(served.engine)


def test_a_replayed_event_is_still_stored_once(served: Served) -> None:
    """The event id is read from the body as received, before the token is taken out."""
    body = json.dumps({"schema": "2.0", "header": {"event_id": "fe-1", "token": TOKEN, "event_type": "x"},
                       "event": {}}).encode()
    answers = [served.post("fs", body, {"Content-Type": "application/json"}).status_code for _ in range(2)]
    assert answers == [200, 200]
    [row] = rows(served.engine, "select event_key, body from inbox")
    assert row.event_key == "fs:fe-1" and TOKEN not in row.body and json.loads(row.body)["header"]["event_id"] == "fe-1"


def _deep(n: int = 5000) -> bytes:
    return ('{"a":' * n).encode()


def _lark_headers(body: bytes, signature: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Lark-Request-Timestamp": "1", "X-Lark-Request-Nonce": "n",
            "X-Lark-Signature": signature}


def _lark_event(token: str = TOKEN) -> bytes:
    return json.dumps({"schema": "2.0", "header": {"event_id": "e", "token": token, "event_type": "x"}}).encode()


MALFORMED = {
    "dt encrypt not a string": ("dt", b'{"encrypt":5}', {}, {"signature": "a", "timestamp": "1", "nonce": "n"}),
    "dt signature not ascii": ("dt", b'{"encrypt":"abc"}', {}, {"signature": "\u00e9", "timestamp": "1", "nonce": "n"}),
    "dt deeply nested": ("dt", _deep(), {}, {"signature": "a", "timestamp": "1", "nonce": "n"}),
    "fs deeply nested": ("fs", _deep(), {}, None),
    "fs header not an object": ("fs", b'{"schema":"2.0","header":[1]}', {}, None),
    "fs token not ascii": ("fs", _lark_event("\u00e9"), {}, None),
    "fsk signature not ascii": (
        "fsk", json.dumps({"encrypt": crypto.encrypt(ENCRYPT_KEY, _lark_event().decode())}).encode(),
        "\u00e9", None),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_unauthenticated_deliveries_are_401(served: Served, case: str) -> None:
    name, body, headers, query = MALFORMED[case]
    if isinstance(headers, str):
        headers = _lark_headers(body, headers)
    r = served.post(name, body, {"Content-Type": "application/json", **headers}, params=query)
    assert r.status_code == 401, (r.status_code, r.text)
    assert r.json()["error"].startswith("not authentic"), r.text
    assert rows(served.engine, "select id from inbox") == []


def test_a_connector_failing_to_check_a_delivery_answers_401(served: Served, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    from connectors.feishu.connector import FeishuConnector

    def broken(self: Any, headers: Any, body: bytes, query: Any = None) -> None:
        raise KeyError(body.decode())
    monkeypatch.setattr(FeishuConnector, "verify_webhook", broken)
    with caplog.at_level(logging.WARNING, logger="hub.webhooks"):
        r = served.post("fs", b'{"body-marker": 1}', {"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (401, {"error": "not authentic"})
    assert "Traceback" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "hub.webhooks"]
    assert logged and all(rec.levelno == logging.WARNING and rec.exc_info is None for rec in logged)
    assert "KeyError" in caplog.text and "body-marker" not in caplog.text
    assert rows(served.engine, "select id from inbox") == []


def test_a_body_whose_credentials_cannot_be_taken_out_is_not_stored(served: Served,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.feishu.connector import FeishuConnector

    def broken(self: Any, headers: Any, body: bytes, query: Any = None) -> bytes:
        raise RuntimeError("boom")
    monkeypatch.setattr(FeishuConnector, "redact_webhook", broken)
    r = served.post("fs", _lark_event(), {"Content-Type": "application/json"})
    assert r.status_code == 503
    assert rows(served.engine, "select id from inbox") == []


def test_a_sender_that_disconnects_mid_body_leaves_no_traceback_and_nothing_stored(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    import socket
    import time
    with caplog.at_level(logging.INFO):
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(b"POST /webhooks/fs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\nabc")
            time.sleep(0.3)
        time.sleep(0.5)      # the server notices the closed connection
        assert served.http.get(f"{served.url}/healthz", timeout=5).status_code == 200
    assert "Exception in ASGI application" not in caplog.text and "Traceback" not in caplog.text, caplog.text
    assert "disconnected before the whole body arrived" in caplog.text
    assert rows(served.engine, "SELECT id FROM inbox") == []
