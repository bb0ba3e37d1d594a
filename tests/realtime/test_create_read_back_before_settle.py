"""A record the hub creates in a system, read back from it before the push recorded the link (SPEC §5).

The push writes outside any transaction and links the new record afterwards. A read of that system in
between (a concurrent `sync run`; or, after a lost acknowledgement, the read that comes before the retried
create) finds a record with no link and, on a stream without an exact key, makes a second golden record
of it. When the push then links the system's record, that second record is the echo of the hub's own
create: it is merged into the record the hub created (undoable, in the merge log), never left behind
without a link while its own creates go out to the other systems.

Customers in a `file` ERP (both ways) and the Salesforce simulator (both ways), no matching rules: the
interleaving is driven by a WSGI middleware in front of the simulator that acts on its first write.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
from sqlalchemy import text

from connectors.salesforce.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub import outbox
from hub.config import load_config
from hub.push import push, push_stream
from hub.store import make_engine
from hub.streams import Parts
from hub.sync import run_stream

from .helpers import SF_AUTH, write_project

MAPPING = """source: customers.csv
key: id
updated_at: updated_at
fields:
  code: id
  name: name
  tax_id: tax_id
  city: city
"""
CONFIG = """connectors:
  erp: {{type: file, path: ./exports/erp, direction: both, entities: {{customer: {{mapping: mappings/erp.yaml}}}}}}
  crm: {{type: salesforce, base_url: '{sf}', auth: {auth}, retry: {{attempts: 1, backoff: 0.01, max_wait: 0.05}},
         entities: [customer]}}
survivorship: {{customer: {{default: priority, priority: [erp, crm]}}}}
"""


class OnFirstWrite:
    """WSGI middleware: once the simulator has applied its first write, run ``action`` before answering;
    ``lose_answer`` answers 503 instead (the write landed, its acknowledgement is lost)."""

    def __init__(self, app: Any) -> None:
        self.app, self.lock = app, threading.Lock()
        self.action: Callable[[], None] | None = None
        self.lose_answer = False

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        write = environ["REQUEST_METHOD"] in ("POST", "PATCH") and "/composite/sobjects" in environ["PATH_INFO"]
        with self.lock:
            action = self.action if write else None
            if action is not None:
                self.action = None
        if action is None:
            return self.app(environ, start_response)
        if not self.lose_answer:
            body = list(self.app(environ, start_response))
            action()
            return body
        list(self.app(environ, lambda *a, **k: None))
        action()
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'[{"errorCode": "SERVER_UNAVAILABLE", "message": "the caller is gone"}]']


@pytest.fixture
def crm() -> Iterable[tuple[Any, OnFirstWrite, str]]:
    app = create_app(SimOptions(seed=3, records=1))
    for account in app.sim.ids("Account"):      # an empty CRM: its customers come from the ERP
        app.sim.remove("Account", account)
    wire = OnFirstWrite(app)
    with SimServer(wire) as server:
        yield app.sim, wire, server.base_url


def hub(tmp_path: Path, store_url: str, sf_url: str):
    root = tmp_path / "p"
    (root / "mappings").mkdir(parents=True)
    (root / "mappings" / "erp.yaml").write_text(MAPPING, encoding="utf-8")
    (root / "exports" / "erp").mkdir(parents=True)
    (root / "exports" / "erp" / "customers.csv").write_text(
        "id,name,tax_id,city,updated_at\nE1,Acme Trading,91310000AB0001,Shanghai,2026-01-01 08:00:00\n",
        encoding="utf-8")
    cfg = load_config(str(write_project(root, CONFIG.format(sf=sf_url, auth=SF_AUTH), store_url)))
    return make_engine(cfg.store.url), Parts(cfg)


def q(engine, sql: str, **params: Any) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def sent(tmp_path: Path, system: str) -> list[dict]:
    out = []
    for path in sorted((tmp_path / "p" / "exports" / system / "outbox").glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def read(engine, parts: Parts, system: str) -> dict[str, int]:
    report = run_stream(engine, parts, system, "customer")
    assert report.status == "ok", report.error
    return report.counts


@pytest.mark.parametrize("interleave", ["concurrent_read", "lost_ack_then_read"])
def test_the_read_back_of_a_create_is_merged_into_the_record_created(tmp_path: Path, store_url: str, crm,
                                                                       interleave: str):
    sim, wire, sf_url = crm
    engine, parts = hub(tmp_path, store_url, sf_url)
    read(engine, parts, "erp")
    read(engine, parts, "crm")                              # its first read: the hub may create there now
    (a,) = [r.id for r in q(engine, "select id from customer")]
    wire.lose_answer = interleave == "lost_ack_then_read"
    reads: list[dict[str, int]] = []
    wire.action = lambda: reads.append(read(engine, parts, "crm"))
    first = push_stream(engine, parts, "crm", "customer")
    assert reads and reads[0]["created"] == 1
    (b,) = [r.id for r in q(engine, "select id from customer where id != :a", a=a)]
    if interleave == "lost_ack_then_read":
        assert first.counts["failed"] == 1
        (row,) = q(engine, "select id from outbox where connector = 'crm' and status = 'pending'")
        with engine.begin() as conn:
            outbox.retry(conn, row.id)
        push_stream(engine, parts, "crm", "customer")   # the retried create upserts the same account
    (sid,) = [r["Id"] for r in sim.records["Account"].values() if not r.get("IsDeleted")]
    assert q(engine, "select record_id, status from xref where system = 'crm'") == [(a, "active")]
    assert q(engine, "select id from customer g where merged_into is null and not exists "
                     "(select 1 from xref x where x.entity = 'customer' and x.record_id = g.id)") == []
    assert q(engine, "select id, merged_into from customer order by id = :a", a=a) == [(b, a), (a, None)]
    assert q(engine, "select source_id from xref where system = 'crm'") == [(sid,)]
    (log,) = q(engine, "select winner_id, loser_id, merged_by, status from merge_log")
    assert tuple(log) == (a, b, "triad", "merged")
    assert q(engine, "select count(*) from audit_log where action = 'matches.merge'")[0][0] == 1

    push(engine, parts)                                 # the ERP gets no second customer
    assert [c for c in sent(tmp_path, "erp") if c["__op__"] == "create"] == []
    assert q(engine, "select connector, record_id, status, last_error from outbox "
                     "where status != 'done' or record_id = :b", b=b) == []
    assert q(engine, "select system, source_id, record_id from xref order by system") == [
        ("crm", sid, a), ("erp", "E1", a)]
    erp_sent = q(engine, "select count(*) from outbox where connector = 'erp'")[0][0]

    before = q(engine, "select id, name, tax_id, city, version from customer order by id")
    again = {s: read(engine, parts, s) for s in ("crm", "erp")}
    assert all(c["created"] == 0 and c["updated"] == 0 for c in again.values()), again
    assert {p.connector: p.counts["written"] for p in push(engine, parts)} == {"erp": 0, "crm": 0}
    assert q(engine, "select id, name, tax_id, city, version from customer order by id") == before
    assert q(engine, "select count(*) from outbox where connector = 'erp'")[0][0] == erp_sent
