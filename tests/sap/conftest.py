"""Fixtures for the SAP tests: the simulator served on 127.0.0.1, connectors and streams against it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pytest

from connectors.sap.connector import SapConnector
from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub.connector import StreamSpec
from hub.mapping import Mapping, load_mapping, shipped_mappings_dir

USER, PASSWORD = "demo@triad.local", "triad-pass"
BP_ROOT = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
SO_ROOT = "/sap/opu/odata/sap/API_SALES_ORDER_SRV"
FAST_RETRY = {"attempts": 6, "backoff": 0.001, "max_wait": 0.01}


@pytest.fixture
def sim_options() -> SimOptions:
    """40 partners and 40 orders; the server pages every 7 records."""
    return SimOptions(seed=7, records=40, extra={"page_size": 7})


@pytest.fixture
def app(sim_options: SimOptions):
    return create_app(sim_options)


@pytest.fixture
def server(app) -> Iterator[SimServer]:
    with SimServer(app) as srv:
        yield srv


@pytest.fixture
def make_connector(server: SimServer) -> Iterator[Callable[..., SapConnector]]:
    made: list[SapConnector] = []

    def make(**options: Any) -> SapConnector:
        opts = {"base_url": server.base_url, "auth": {"user": USER, "password": PASSWORD}, "retry": FAST_RETRY,
                **options}
        conn = SapConnector("erp", opts)
        made.append(conn)
        return conn
    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def connector(make_connector) -> SapConnector:
    return make_connector(page_size=10)


def mapping(entity: str) -> Mapping:
    return load_mapping(shipped_mappings_dir() / "sap" / f"{entity}.yaml", entity)


def stream_of(entity: str, run_started_at: datetime | None = None, **kw: Any) -> StreamSpec:
    """The stream the pipeline builds from the shipped mapping (fields = the paths the mapping reads)."""
    m = mapping(entity)
    options = {**m.options, **kw.pop("options", {})}
    return StreamSpec(entity=entity, source=m.source, key=m.key, updated_at=m.updated_at, timezone=m.timezone,
                      fields=tuple(m.source_paths()), options=options,
                      run_started_at=run_started_at or datetime.now(timezone.utc), **kw)
