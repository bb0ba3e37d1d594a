"""An order whose customer's write to a system failed for good is shown blocked on that write, not as
waiting for a push: its last error names the dead outbox item, `triad status` points at the dead write,
and `triad outbox retry` of the customer write lets both go (SPEC §5 outbound)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from click.testing import CliRunner
from sqlalchemy import update

from cli import main
from hub.config import load_config
from hub.models import Outbox
from hub.push import push
from hub.store import make_engine
from hub.streams import Parts
from hub.sync import run_stream
from hub.types import utcnow

from .helpers import write_project

SHIPPED = Path(__file__).resolve().parents[2] / "mappings" / "file" / "customer.yaml"
CUSTOMERS = """customer_no,name,type,tax_id,status,updated_at
C0001,Acme Trading,company,91310000AB0001,blocked,2026-11-01 08:00:00
C0002,Beta Foods,company,91310000AB0002,active,2026-11-01 08:00:00
"""
ORDERS = """order_no,customer_no,order_date,status,currency,total_amount,tax_amount,updated_at
SO-1,C0001,2026-11-10,confirmed,CNY,113.00,13.00,2026-11-10 09:00:00
SO-2,C0002,2026-11-11,confirmed,CNY,56.50,6.50,2026-11-11 09:00:00
"""


def triad(cfg_path: Path, *args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--config", str(cfg_path), "--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout)


@dataclass
class Hub:
    root: Path
    crm_mapping: Path
    cfg_path: Path
    engine: Any
    parts: Parts
    dead: list[dict] = field(default_factory=list)   # the dead writes after the first push


@pytest.fixture
def hub(tmp_path: Path, store_url: str) -> Iterator[Hub]:
    """erp (in) holds customers and orders; crm (out) cannot write the status `blocked` (no value for it):
    after one push, Acme's customer write is dead and its order SO-1 waits."""
    root = tmp_path / "p"
    for s in ("erp", "crm"):
        (root / "exports" / s).mkdir(parents=True)
    (root / "exports" / "erp" / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (root / "exports" / "erp" / "orders.csv").write_text(ORDERS, encoding="utf-8")
    (root / "mappings").mkdir()
    crm_mapping = root / "mappings" / "crm_customer.yaml"
    crm_mapping.write_text(SHIPPED.read_text(encoding="utf-8").replace(
        "to: {active: active, inactive: inactive, blocked: blocked}", "to: {active: active, inactive: inactive}"),
        encoding="utf-8")
    cfg_path = write_project(root, """connectors:
  erp: {type: file, path: ./exports/erp, direction: in, entities: [customer, order]}
  crm: {type: file, path: ./exports/crm, direction: out,
        entities: {customer: {mapping: mappings/crm_customer.yaml}, order: {}}}
matching: {customer: {exact: [tax_id]}}
""", store_url)
    cfg = load_config(str(cfg_path))
    h = Hub(root, crm_mapping, cfg_path, make_engine(cfg.store.url), Parts(cfg))
    try:
        for entity in ("customer", "order"):
            assert run_stream(h.engine, h.parts, "erp", entity).status == "ok"
        push(h.engine, h.parts)
        h.dead = triad(cfg_path, "outbox", "list", "--status", "dead")["items"]
        yield h
    finally:
        h.parts.close()
        h.engine.dispose()


def test_an_order_waiting_for_a_dead_customer_write_is_shown_blocked(hub: Hub):
    cfg_path, engine, parts, dead = hub.cfg_path, hub.engine, hub.parts, hub.dead
    assert [(d["entity"], "blocked" in d["last_error"]) for d in dead] == [("customer", True)]   # cannot map
    pending = triad(cfg_path, "outbox", "list", "--status", "pending")["items"]
    assert [i["entity"] for i in pending] == ["order"]                # SO-2 went; SO-1 waits for Acme
    error = pending[0]["last_error"]
    assert dead[0]["id"] in error and "failed for good" in error and f"outbox retry {dead[0]['id']}" in error

    push(engine, parts)                                               # another push changes nothing
    assert triad(cfg_path, "outbox", "list", "--status", "pending")["items"][0]["last_error"] == error

    status = triad(cfg_path, "status")
    assert status["outbox"]["pending"] == 1 and status["outbox"]["blocked"] == 1
    assert not any("sync push" in h for h in status["hints"])         # a push would not help
    assert any("1 change" in h and "outbox list --status dead" in h for h in status["hints"])

    # the cause fixed and the dead write retried: the customer is created, then its order goes at once
    hub.crm_mapping.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    triad(cfg_path, "outbox", "retry", dead[0]["id"])
    parts.close()
    hub.parts = parts = Parts(load_config(str(cfg_path)))
    reports = {r.entity: r for r in push(engine, parts) if r.connector == "crm"}
    assert reports["customer"].counts["created"] == 1 and reports["order"].counts["written"] == 1
    assert triad(cfg_path, "outbox", "list", "--status", "pending")["items"] == []
    assert triad(cfg_path, "status")["outbox"]["blocked"] == 0


def test_a_retried_dead_write_no_longer_counts_what_waits_for_it_as_blocked(hub: Hub):
    cfg_path, [dead] = hub.cfg_path, hub.dead
    hub.crm_mapping.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    triad(cfg_path, "outbox", "retry", dead["id"])
    # before any push: the order waits for a write that may go now, it is no longer held by a dead one
    [order] = [i for i in triad(cfg_path, "outbox", "list", "--status", "pending")["items"] if i["entity"] == "order"]
    assert order["last_error"] == f"waiting for customer {dead['record_id']} to reach this system first"
    status = triad(cfg_path, "status")
    assert status["outbox"]["blocked"] == 0 and status["outbox"]["pending"] == 2
    assert not any("outbox retry" in h for h in status["hints"])
    assert any("2 changes waiting to be written: triad sync push" in h for h in status["hints"])


def test_an_order_waiting_for_a_dropped_customer_write_says_so(hub: Hub):
    cfg_path, engine, parts, [dead] = hub.cfg_path, hub.engine, hub.parts, hub.dead
    triad(cfg_path, "outbox", "drop", dead["id"])
    # at once, not only after the next push: the order names the dropped write and what would help
    order = triad(cfg_path, "outbox", "list", "--status", "pending")["items"][0]
    error = order["last_error"]
    assert dead["id"] in error and "dropped" in error and "later change" in error and "outbox retry" not in error
    status = triad(cfg_path, "status")
    assert status["outbox"]["pending"] == 1 and status["outbox"]["blocked"] == 1
    assert not any("sync push" in h or "outbox retry" in h for h in status["hints"])
    assert any("1 change" in h and "dropped" in h for h in status["hints"])

    push(engine, parts)                 # a push finds the same (its note and the one the drop wrote agree)
    assert triad(cfg_path, "outbox", "list", "--status", "pending")["items"][0]["last_error"] == error
    assert triad(cfg_path, "status")["outbox"]["blocked"] == 1
    with engine.begin() as conn:        # even when due: the row is deferred again with the same note
        conn.execute(update(Outbox.__table__).where(Outbox.__table__.c.id == order["id"])
                     .values(next_attempt_at=utcnow()))
    push(engine, parts)
    assert triad(cfg_path, "outbox", "list", "--status", "pending")["items"][0]["last_error"] == error

    # a later change to the customer queues its write again: the customer is created, its order goes with it
    (hub.root / "exports" / "erp" / "customers.csv").write_text(
        CUSTOMERS.replace("blocked,2026-11-01 08:00:00", "active,2026-11-02 08:00:00"), encoding="utf-8")
    assert run_stream(engine, parts, "erp", "customer").status == "ok"
    reports = {r.entity: r for r in push(engine, parts) if r.connector == "crm"}
    assert reports["customer"].counts["created"] == 1 and reports["order"].counts["written"] == 1
    assert triad(cfg_path, "outbox", "list", "--status", "pending")["items"] == []
    assert triad(cfg_path, "status")["outbox"]["blocked"] == 0
