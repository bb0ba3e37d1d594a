"""DingTalk callbacks through `triad serve`: a forged one is 401 and not stored; an authentic one whose
decrypted content is not a JSON object is not an authentication failure: it is stored, kept as an
``error`` inbox row with the reason, and answered with the encrypted ``success`` like any other."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import text

from connectors.dingtalk.crypto import DingTalkCrypto
from connectors.dingtalk.simulator import DEFAULT_AES_KEY, DEFAULT_TOKEN

APP_KEY = "triad-client"
CONFIG = f"""
connectors:
  oa:
    type: dingtalk
    base_url: http://127.0.0.1:9
    app_key: {APP_KEY}
    app_secret: triad-secret
    callback_token: {DEFAULT_TOKEN}
    callback_aes_key: {DEFAULT_AES_KEY}
    entities: {{approval: {{}}}}
serve: {{window_ms: 20}}
"""
CRYPTO = DingTalkCrypto(DEFAULT_TOKEN, DEFAULT_AES_KEY, APP_KEY)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The `triad serve` app in-process, its inbox worker running."""
    from fastapi.testclient import TestClient

    from hub.config import load_config
    from hub.context import Context
    from hub.server import create_app
    from hub.store import make_engine, upgrade
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    cfg = tmp_path / "triad.yaml"
    cfg.write_text(f"store: {{url: 'sqlite:///{tmp_path / 'hub.db'}'}}\n" + CONFIG, encoding="utf-8")
    engine = make_engine(load_config(str(cfg)).store.url)
    upgrade(engine)
    engine.dispose()
    ctx = Context(config_path=str(cfg))
    with TestClient(create_app(ctx)) as client:
        client.engine = ctx.engine()
        yield client
    ctx.close()


def deliver(client: Any, content: str, *, signature: str | None = None) -> Any:
    sealed = CRYPTO.seal(content)
    query = {"signature": signature or sealed["msg_signature"], "timestamp": sealed["timeStamp"],
             "nonce": sealed["nonce"]}
    return client.post("/webhooks/oa", params=query, content=json.dumps({"encrypt": sealed["encrypt"]}),
                       headers={"Content-Type": "application/json"})


def inbox(client: Any) -> list[Any]:
    with client.engine.connect() as conn:
        return list(conn.execute(text("select status, error from inbox order by received_at")))


def wait_for_error_rows(client: Any, n: int) -> list[Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = inbox(client)
        if len(rows) == n and all(r.status == "error" for r in rows):
            return rows
        time.sleep(0.02)
    raise AssertionError(f"expected {n} error rows, found {inbox(client)}")


def is_success(answer: Any) -> bool:
    reply = answer.json()
    return CRYPTO.open(reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]) == "success"


def test_authentic_callback_that_is_not_a_json_object_is_stored_as_an_error(served):
    answers = [deliver(served, content) for content in ('["not", "an", "object"]', '"a string"', "not json at all")]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(is_success(a) for a in answers), "DingTalk is answered as for every accepted callback"
    rows = wait_for_error_rows(served, 3)
    assert all("not a JSON object" in r.error for r in rows), rows


def test_a_forged_callback_is_still_401_and_not_stored(served):
    forged = deliver(served, '["not", "an", "object"]', signature="0" * 40)
    assert forged.status_code == 401 and "not authentic" in forged.json()["error"]
    also_forged = deliver(served, json.dumps({"EventType": "bpms_instance_change", "processInstanceId": "x"}),
                          signature="0" * 40)
    assert also_forged.status_code == 401
    assert inbox(served) == []
