"""Fixtures for the DingTalk tests: the simulator on 127.0.0.1, connectors, and a callback receiver."""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

import pytest
import requests

from connectors.dingtalk.connector import DingTalkConnector
from connectors.dingtalk.simulator import DEFAULT_AES_KEY, DEFAULT_TOKEN, create_app
from connectors.simkit import SimOptions, SimServer
from hub.connector import StreamSpec, WebhookRejected
from hub.inbox import call_hook
from hub.mapping import load_mapping, shipped_mappings_dir

MAPPING = shipped_mappings_dir() / "dingtalk" / "approval.yaml"


def serve(app: Any) -> SimServer:
    """SimServer with a short poll interval, so stopping it does not wait half a second."""
    server = SimServer(app)
    server.thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    server.thread.start()
    return server


class Sim:
    """A running simulator: options (mutable while it runs), app, URL and a raw session."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.app = create_app(options)
        self.sim = self.app.sim
        self.server = serve(self.app)
        self.url = self.server.base_url
        self.http = requests.Session()

    def token(self) -> str:
        r = self.http.post(f"{self.url}/v1.0/oauth2/accessToken",
                           json={"appKey": self.options.app_key, "appSecret": self.options.app_secret}, timeout=10)
        return r.json()["accessToken"]

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"x-acs-dingtalk-access-token": token} if token else {}
        return self.http.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def open_ids(self) -> list[str]:
        """Running instances, oldest first (deterministic for a seed)."""
        insts = self.sim.workflow.instances.values()
        return [i["id"] for i in sorted(insts, key=lambda i: i["createTime"]) if i["status"] == "RUNNING"]

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def make_sim(start_sims: Callable[..., Sim]) -> Callable[..., Sim]:
    return lambda **kwargs: start_sims(lambda **kw: Sim(SimOptions(**kw)), **{"records": 30, **kwargs})


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


def connector_options(sim: Sim, **overrides: Any) -> dict[str, Any]:
    options = {"base_url": sim.url, "app_key": "triad-client", "app_secret": "triad-secret", "backoff": 0.01,
               "callback_token": DEFAULT_TOKEN, "callback_aes_key": DEFAULT_AES_KEY}
    options.update(overrides)
    return options


@pytest.fixture
def make_connector() -> Iterator[Callable[..., DingTalkConnector]]:
    made: list[DingTalkConnector] = []

    def make(sim: Sim, **overrides: Any) -> DingTalkConnector:
        conn = DingTalkConnector("oa", connector_options(sim, **overrides))
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def stream() -> StreamSpec:
    """The approval stream as the hub builds it from the shipped mapping."""
    m = load_mapping(MAPPING, "approval")
    return StreamSpec(entity="approval", source=m.source, key=m.key, updated_at=m.updated_at, timezone=m.timezone,
                      batch_size=10, fields=tuple(m.source_paths()), options=dict(m.options))


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], SimServer]]:
    """Serve any WSGI app on 127.0.0.1 for one test."""
    servers: list[SimServer] = []

    def start(app: Any) -> SimServer:
        servers.append(serve(app))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class Receiver:
    """A callback endpoint that calls the connector's webhook hooks the way ``hub.webhooks`` does.

    Query parameters go to the hooks as ``query``; a handshake answer is sent as is; otherwise the
    delivery is kept (with its event key) and answered with ``webhook_ack``; a rejected one gets 401.
    """

    def __init__(self, connector: DingTalkConnector) -> None:
        self.connector = connector
        self.received: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.server = serve(self)
        self.url = self.server.base_url + "/webhooks/oa"

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            answer = call_hook(self.connector.verify_webhook, headers, body, query)
        except WebhookRejected as exc:
            self.rejected.append(str(exc))
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error": "rejected"}']
        if answer is not None:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(answer).encode()]
        key = call_hook(self.connector.webhook_event_key, headers, body, query)
        self.received.append({"headers": headers, "body": body, "query": query, "key": key})
        status, content, media_type = call_hook(self.connector.webhook_ack, headers, body, query)
        start_response(f"{status} OK", [("Content-Type", media_type)])
        return [content]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def make_receiver() -> Iterator[Callable[[DingTalkConnector], Receiver]]:
    made: list[Receiver] = []

    def make(connector: DingTalkConnector) -> Receiver:
        made.append(Receiver(connector))
        return made[-1]

    yield make
    for r in made:
        r.stop()
