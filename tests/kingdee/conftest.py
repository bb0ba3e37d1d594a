"""Fixtures for the Kingdee tests: a simulator served on 127.0.0.1 and connectors pointed at it."""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterator

import pytest
import requests

from connectors.kingdee.connector import KingdeeConnector
from connectors.kingdee.simulator import create_app
from connectors.simkit import SimOptions, SimServer

STUB = "/k3cloud/Kingdee.BOS.WebApi.ServicesStub."


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
        self.server = serve(self.app)
        self.url = self.server.base_url + "/k3cloud"
        self.http = requests.Session()

    @property
    def state(self) -> dict[str, Any]:
        return self.app.sim.state.data

    def post(self, service: str, body: Any, session: requests.Session | None = None,
             **kwargs: Any) -> requests.Response:
        """POST raw JSON to ``Kingdee.BOS.WebApi.ServicesStub.<service>.common.kdsvc``."""
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return (session or self.http).post(f"{self.server.base_url}{STUB}{service}.common.kdsvc",
                                           data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                                           headers=headers, timeout=10, **kwargs)

    def login(self) -> requests.Session:
        """A requests session logged in with ValidateUser (cookies kept)."""
        session = requests.Session()
        resp = self.post("AuthService.ValidateUser", {"acctid": self.options.acct_id, "username": self.options.user,
                                                      "password": self.options.password, "lcid": 2052}, session)
        assert resp.json()["LoginResultType"] == 1
        return session

    def stop(self) -> None:
        if self.server is not None:
            self.http.close()
            self.server.stop()
            self.server = None  # type: ignore[assignment]


@pytest.fixture
def make_sim(start_sims: Callable[..., Sim]) -> Callable[..., Sim]:
    return lambda **kwargs: start_sims(lambda **kw: Sim(SimOptions(**kw)), **{"records": 40, **kwargs})


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


def connector_options(sim: Sim, **overrides: Any) -> dict[str, Any]:
    options = {"base_url": sim.url, "acct_id": "triad-acct", "username": "demo@triad.local",
               "password": "triad-pass", "backoff": 0.01}
    options.update(overrides)
    return options


@pytest.fixture
def make_connector() -> Iterator[Callable[..., KingdeeConnector]]:
    made: list[KingdeeConnector] = []

    def make(sim: Sim, **overrides: Any) -> KingdeeConnector:
        conn = KingdeeConnector("erp", connector_options(sim, **overrides))
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()
