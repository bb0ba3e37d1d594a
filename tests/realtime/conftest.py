"""Fixtures for the real-time tests: simulators served on 127.0.0.1 (plain HTTP, short poll interval)."""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from connectors.simkit import SimOptions, SimServer


class Sim:
    def __init__(self, create_app: Callable[[SimOptions], Any], **options: Any) -> None:
        self.options = SimOptions(**options)
        self.app = create_app(self.options)
        self.server = SimServer(self.app)
        self.server.thread = threading.Thread(target=self.server.httpd.serve_forever,
                                              kwargs={"poll_interval": 0.01}, daemon=True)
        self.server.thread.start()
        self.url = self.server.base_url

    @property
    def sim(self) -> Any:
        return self.app.sim

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    sims: list[Sim] = []

    def make(system: str, **options: Any) -> Sim:
        if system == "salesforce":
            from connectors.salesforce.simulator import create_app
        else:
            from connectors.kingdee.simulator import create_app
        sim = Sim(create_app, **{"records": 3, **options})
        sims.append(sim)
        return sim
    yield make
    for sim in sims:
        sim.stop()
