"""Fixtures for the Feishu tests: the simulator on 127.0.0.1, connectors, and an event receiver."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from connectors.feishu.connector import FeishuConnector
from connectors.feishu.simulator import DEFAULT_VERIFICATION_TOKEN, create_app
from connectors.simkit import SimOptions, SimServer
from hub.connector import StreamSpec, WebhookRejected
from hub.inbox import call_hook
from hub.mapping import load_mapping, shipped_mappings_dir

MAPPING = shipped_mappings_dir() / "feishu" / "approval.yaml"
FIXTURES = Path("/work/shared/fixtures/feishu")
CONTRACT = "4E3F2A10-6C1B-4D8E-9A7F-1B2C3D4E5F01"


def _fixture_dir() -> Path:
    """shared/fixtures/feishu: beside the repository in CI, or at /work/shared on a workstation."""
    here = Path(__file__).resolve()
    for base in (here.parents[3] / "shared", here.parents[2] / "shared", Path("/work/shared")):
        if (base / "fixtures" / "feishu").is_dir():
            return base / "fixtures" / "feishu"
    return FIXTURES


@pytest.fixture
def fixture() -> Callable[[str], Any]:
    """Load a saved Feishu response body by file name."""
    folder = _fixture_dir()

    def load(name: str) -> Any:
        path = folder / name
        if not path.is_file():
            pytest.fail(f"fixture {path} is missing (shared/fixtures/feishu)")
        return json.loads(path.read_text(encoding="utf-8"))
    return load


def serve(app: Any) -> SimServer:
    server = SimServer(app)
    server.thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    server.thread.start()
    return server


class Sim:
    """A running simulator: options, app, URL and a raw session."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.app = create_app(options)
        self.sim = self.app.sim
        self.server = serve(self.app)
        self.url = self.server.base_url
        self.http = requests.Session()

    def token(self) -> str:
        r = self.http.post(f"{self.url}/open-apis/auth/v3/tenant_access_token/internal",
                           json={"app_id": self.options.app_key, "app_secret": self.options.app_secret}, timeout=10)
        return r.json()["tenant_access_token"]

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, f"{self.url}/open-apis/approval/v4{path}", headers=headers, timeout=10,
                                 **kwargs)

    def user(self, n: int = 0) -> str:
        return self.sim.state.data["users"][n]["user_id"]

    def pending(self) -> list[str]:
        insts = self.sim.approvals.instances.values()
        return [i["instance_code"] for i in sorted(insts, key=lambda i: i["start_time"]) if i["status"] == "PENDING"]

    def stop(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def make_sim(start_sims: Callable[..., Sim]) -> Callable[..., Sim]:
    return lambda **kwargs: start_sims(lambda **kw: Sim(SimOptions(**kw)), **{"records": 30, **kwargs})


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@pytest.fixture
def make_connector() -> Iterator[Callable[..., FeishuConnector]]:
    made: list[FeishuConnector] = []

    def make(sim: Sim, **overrides: Any) -> FeishuConnector:
        options = {"base_url": sim.url, "app_id": "triad-client", "app_secret": "triad-secret", "backoff": 0.01,
                   "verification_token": DEFAULT_VERIFICATION_TOKEN, **overrides}
        made.append(FeishuConnector("oa", options))
        return made[-1]

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def stream() -> StreamSpec:
    """The approval stream as the hub builds it from the shipped mapping."""
    m = load_mapping(MAPPING, "approval")
    return StreamSpec(entity="approval", source=m.source, key=m.key, updated_at=m.updated_at, timezone=m.timezone,
                      batch_size=10, fields=tuple(m.source_paths()), options=dict(m.options))


class Receiver:
    """An event endpoint that calls the connector's webhook hooks the way ``hub.webhooks`` does (401 when rejected)."""

    def __init__(self, connector: FeishuConnector) -> None:
        self.connector = connector
        self.received: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.server = serve(self)
        self.url = self.server.base_url + "/webhooks/oa"

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        try:
            answer = call_hook(self.connector.verify_webhook, headers, body, None)
        except WebhookRejected as exc:
            self.rejected.append(str(exc))
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"msg": "rejected"}']
        if answer is not None:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(answer).encode()]
        key = call_hook(self.connector.webhook_event_key, headers, body, None)
        self.received.append({"headers": headers, "body": body, "key": key})
        status, content, media_type = call_hook(self.connector.webhook_ack, headers, body, None)
        start_response(f"{status} OK", [("Content-Type", media_type)])
        return [content]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def make_receiver() -> Iterator[Callable[[FeishuConnector], Receiver]]:
    made: list[Receiver] = []

    def make(connector: FeishuConnector) -> Receiver:
        made.append(Receiver(connector))
        return made[-1]

    yield make
    for r in made:
        r.stop()


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
