"""`triad demo` finishes its own pushes before it stops the simulators it started."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.demo import Hub, finish, prepare, start_server
from hub.demo_systems import free_port, start_systems
from hub.models import Outbox


@pytest.fixture
def demo_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name in [k for k in os.environ if k.startswith("TRIAD_")]:
        monkeypatch.delenv(name)
    port = free_port()
    systems = start_systems(42, 10, f"http://127.0.0.1:{port}/webhooks/oa")
    ctx = prepare(tmp_path / "d", systems)
    server, thread = start_server(ctx, port)
    hub = Hub(ctx)
    try:
        yield hub, systems, server, thread
    finally:
        server.should_exit = True
        thread.join(10)
        hub.close()
        systems.stop()


def pending(hub: Hub, connector: str) -> int:
    ot = Outbox.__table__
    with hub.engine.connect() as conn:
        return conn.scalar(select(func.count()).where(ot.c.status == "pending", ot.c.connector == connector))


@pytest.mark.slow
def test_finish_waits_for_writes_backing_off_after_a_failure(demo_hub):
    hub, systems, server, thread = demo_hub
    hub.sync()                          # each system's records queued for the others
    assert pending(hub, "erp") > 0
    http = hub.parts.connector("erp").client.http
    http.policy = replace(http.policy, attempts=1)   # a throttled call fails at once (each retry waits 1 s)
    systems.erp.options.rate_limit_rate = 1.0
    hub.push()                          # the ERP throttles every call: its rows wait for a retry
    assert pending(hub, "erp") > 0
    systems.erp.options.rate_limit_rate = 0.0
    left = finish(hub, systems, server, thread, set(systems.oa.sim.workflow.instances))
    assert left == {"inbox": 0, "outbox": 0}
    assert pending(hub, "erp") == 0
