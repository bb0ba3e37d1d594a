"""Fixtures for the Salesforce tests: the org simulator served over HTTPS on 127.0.0.1,
raw sessions holding a token, and connectors pointed at it with fast retries."""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest
import requests

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.org import Org
from connectors.salesforce.simulator import create_app
from connectors.simkit import SimOptions, SimServer

VERSION = "60.0"
FAST_RETRY = {"attempts": 6, "backoff": 0.01, "max_wait": 0.05, "timeout": 5}
CREDENTIALS = {"client_id": "triad-client", "client_secret": "triad-secret",
               "username": "demo@triad.local", "password": "triad-pass"}


class Sim:
    """A running simulator: options (mutable while it runs), the WSGI app, its org, URL and certificate."""

    def __init__(self, options: SimOptions, tls: bool = True, wrap: Callable[[Any], Any] | None = None) -> None:
        self.options = options
        self.app = create_app(options)
        self.server = SimServer(wrap(self.app) if wrap else self.app, tls=tls)
        # a short poll interval, so stopping the server does not wait half a second
        self.server.thread = threading.Thread(target=self.server.httpd.serve_forever,
                                              kwargs={"poll_interval": 0.01}, daemon=True)
        self.server.thread.start()
        self.base_url = self.server.base_url
        self.cert = self.server.cert_path
        self.sessions: list[requests.Session] = []

    @property
    def org(self) -> Org:
        return self.app.sim

    def session(self, token: bool = True) -> requests.Session:
        """A plain requests session trusting the simulator's certificate (and holding a token)."""
        s = requests.Session()
        s.trust_env = False          # REQUESTS_CA_BUNDLE would otherwise replace `verify`
        s.verify = self.cert if self.cert else True
        self.sessions.append(s)
        if token:
            s.headers["Authorization"] = f"Bearer {self.token(s)}"
        return s

    def token(self, s: requests.Session | None = None, **form: str) -> str:
        s = s or self.session(token=False)
        resp = s.post(f"{self.base_url}/services/oauth2/token",
                      data={"grant_type": "password", **CREDENTIALS, **form})
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def data(self, path: str) -> str:
        return f"{self.base_url}/services/data/v{VERSION}/{path}"

    def stop(self) -> None:
        for s in self.sessions:
            s.close()
        self.server.stop()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    sims: list[Sim] = []

    def make(tls: bool = True, wrap: Callable[[Any], Any] | None = None, **options: Any) -> Sim:
        sim = Sim(SimOptions(**{"records": 40, **options}), tls=tls, wrap=wrap)
        sims.append(sim)
        return sim
    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@pytest.fixture
def make_connector() -> Iterator[Callable[..., SalesforceConnector]]:
    made: list[SalesforceConnector] = []

    def make(sim: Sim, auth: dict | None = None, **options: Any) -> SalesforceConnector:
        opts = {"base_url": sim.base_url, "verify": sim.cert if sim.cert else True,
                "auth": auth or dict(CREDENTIALS), "retry": dict(FAST_RETRY), **options}
        conn = SalesforceConnector("crm", opts)
        made.append(conn)
        return conn
    yield make
    for conn in made:
        conn.close()
