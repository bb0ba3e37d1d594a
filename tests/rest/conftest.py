"""Fixtures for the rest connector tests: the generic simulator on 127.0.0.1 and connectors pointed at it."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest

from connectors.rest.connector import RestConnector
from connectors.rest.simulator import create_app
from connectors.simkit import SimOptions, SimServer


class Sim:
    """A running simulator: options, the app's state (``sim``) and the base URL."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.app = create_app(options)
        self.sim = self.app.sim
        self.server = SimServer(self.app)
        # a short poll interval: stopping does not wait half a second
        self.server.thread = threading.Thread(target=self.server.httpd.serve_forever,
                                              kwargs={"poll_interval": 0.01}, daemon=True)
        self.server.thread.start()
        self.url = self.server.base_url

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    started: list[Sim] = []

    def make(**kwargs: Any) -> Sim:
        kwargs.setdefault("records", 40)
        s = Sim(SimOptions(**kwargs))
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    return make_sim()


@pytest.fixture
def make_connector() -> Iterator[Callable[..., RestConnector]]:
    made: list[RestConnector] = []

    def make(sim: Sim, api: Any = "simulator", **options: Any) -> RestConnector:
        options.setdefault("backoff", 0.01)
        conn = RestConnector("api", {"api": api, "base_url": sim.url, **options})
        conn.http.sleep = lambda seconds: time.sleep(min(seconds, 0.05))   # retries without the real backoff
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()
