"""Fixtures for the Yonyou tests: a simulator served on 127.0.0.1 and connectors pointed at it."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
import requests

from connectors.simkit import SimOptions, SimServer
from connectors.yonyou import signing
from connectors.yonyou.connector import YonyouConnector
from connectors.yonyou.simulator import create_app


def serve(app: Any) -> SimServer:
    """SimServer started with a short poll interval, so stopping it does not wait half a second."""
    server = SimServer(app)
    server.thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                     daemon=True)
    server.thread.start()
    return server


class Sim:
    """A running simulator: its options (mutable while it runs), app, and base URL."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.app = create_app(options)
        self.server: SimServer | None = serve(self.app)
        self.url = self.server.base_url
        self.http = requests.Session()

    @property
    def state(self) -> dict[str, Any]:
        return self.app.sim.state.data

    def token(self, app_key: str = "triad-client", secret: str = "triad-secret") -> dict[str, Any]:
        params = {"appKey": app_key, "timestamp": str(int(time.time() * 1000))}
        params["signature"] = signing.token_signature(params, secret)
        return self.http.get(f"{self.url}/iuap-api-auth/open-auth/selfAppAuth/base/v1/getAccessToken",
                             params=params, timeout=10).json()

    def api(self, method: str, path: str, body: Any = None, token: str | None = None,
            **params: Any) -> requests.Response:
        if token is None:
            token = self.token()["data"]["access_token"]
        if token:
            params["access_token"] = token
        return self.http.request(method, f"{self.url}/iuap-api-gateway{path}", params=params, json=body, timeout=10)

    def stop(self) -> None:
        if self.server is not None:
            self.http.close()
            self.server.stop()
            self.server = None


@pytest.fixture
def make_sim(start_sims: Callable[..., Sim]) -> Callable[..., Sim]:
    return lambda **kwargs: start_sims(lambda **kw: Sim(SimOptions(**kw)), **{"records": 40, **kwargs})


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@pytest.fixture
def make_connector() -> Iterator[Callable[..., YonyouConnector]]:
    made: list[YonyouConnector] = []

    def make(sim: Sim, **overrides: Any) -> YonyouConnector:
        options = {"base_url": sim.url, "tenant_id": "triad-tenant", "app_key": "triad-client",
                   "app_secret": "triad-secret", "backoff": 0.01}
        options.update(overrides)
        conn = YonyouConnector("bip", options)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()
