"""The inbox worker: micro-batches per (connector, entity) with one validation call each, concurrent
workers that never apply a row twice, stale events, rows that wait for their system, poison rows."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from hub.config import load_config
from hub.inbox import store
from hub.inbox_processor import InboxProcessor
from hub.store import make_engine
from hub.streams import Parts

from .helpers import SECRET, SF_AUTH, customer_row, rows, write_project

CONFIG = f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
  ops: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
  out: {{type: file, path: ./exports, direction: out, outbox: ./outbox, entities: [customer]}}
matching: {{customer: {{exact: [tax_id]}}}}
"""


@pytest.fixture
def hub(tmp_path: Path, store_url: str):
    cfg = load_config(str(write_project(tmp_path / "p", CONFIG, store_url)))
    engine = make_engine(cfg.store.url)
    parts = Parts(cfg)
    yield engine, parts
    parts.close()
    engine.dispose()


def deliver(engine, connector: str, records: list[dict], **doc) -> str:
    body = json.dumps({"entity": "customer", "records": records, **doc}).encode()
    return store(engine, connector, {"content-type": "application/json"}, body).id


class CountingValidator:
    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, []

    def validate(self, batch):
        self.calls.append(len(batch))
        return self.inner.validate(batch)


def test_one_batch_per_stream_and_the_last_version_wins(hub):
    engine, parts = hub
    for i in range(20):
        deliver(engine, "erp", [customer_row(i, f"Erp {i}")])
    deliver(engine, "erp", [customer_row(3, "Erp 3 renamed", stamp="2026-11-01 09:00:00")])
    for i in range(100, 110):
        deliver(engine, "ops", [customer_row(i, f"Ops {i}")])
    proc = InboxProcessor(engine, parts, worker="t")
    counters = {}
    for name in ("erp", "ops"):
        ctx, _ = proc._context(name, "customer")
        ctx.validator = counters[name] = CountingValidator(ctx.validator)
    report = proc.run_once()
    assert (report.rows, report.done, report.errors) == (31, 31, 0)
    assert counters["erp"].calls == [20] and counters["ops"].calls == [10]    # one call per stream, not per event
    assert len(report.outbox_ids) == 30                                        # every new record goes out
    names = {r.name for r in rows(engine, "select name from customer")}
    assert "Erp 3 renamed" in names and "Erp 3" not in names and len(names) == 30
    assert rows(engine, "select count(*) n from inbox where status = 'done'")[0].n == 31
    proc.close()
    runs = rows(engine, "select kind, status, stats from sync_run order by connector")
    assert [(r.kind, r.status) for r in runs] == [("webhook", "ok"), ("webhook", "ok")]
    stats = runs[0].stats if isinstance(runs[0].stats, dict) else json.loads(runs[0].stats)
    assert stats["created"] == 20


def test_concurrent_workers_apply_each_row_once(hub):
    engine, parts = hub
    for i in range(40):
        deliver(engine, "erp", [customer_row(i, f"Erp {i}")])
    cfg = parts.cfg
    procs = [InboxProcessor(engine, Parts(cfg), worker=f"w{n}") for n in range(2)]
    for p in procs:
        p._context("erp", "customer")          # built up front, so both start reading at once
    barrier = threading.Barrier(2)

    def work(p: InboxProcessor) -> None:
        barrier.wait()
        p.run_once()
    threads = [threading.Thread(target=work, args=(p,)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for p in procs:
        p.run_once()
        p.close()
        p.parts.close()
    assert rows(engine, "select count(*) n from customer")[0].n == 40
    assert rows(engine, "select count(*) n from field_history where field = '*'")[0].n == 40
    assert rows(engine, "select count(*) n from outbox")[0].n == 40
    assert rows(engine, "select count(*) n from inbox where status = 'done' and attempts = 1")[0].n == 40


def test_an_event_older_than_what_the_hub_saw_is_skipped(hub):
    engine, parts = hub
    proc = InboxProcessor(engine, parts, worker="t")
    deliver(engine, "erp", [customer_row(1, "New name", stamp="2026-11-02 08:00:00")])
    proc.run_once()
    deliver(engine, "erp", [customer_row(1, "Old name", stamp="2026-11-01 08:00:00")])   # a late redelivery
    report = proc.run_once()
    assert report.stale == 1 and report.done == 1
    assert [r.name for r in rows(engine, "select name from customer")] == ["New name"]


def test_a_row_waits_while_its_system_is_away(tmp_path: Path, sqlite_url: str, make_sim):
    from connectors.salesforce.webhook import envelope
    org = make_sim("salesforce", records=2)
    cfg = load_config(str(write_project(tmp_path / "p", f"""
connectors:
  crm: {{type: salesforce, base_url: '{org.url}', auth: {SF_AUTH}, webhook_token: t,
         retry: {{attempts: 1, backoff: 0.01, max_wait: 0.01}}, entities: [customer]}}
""", sqlite_url)))
    engine = make_engine(cfg.store.url)
    account_id = org.sim.ids("Account")[0]
    store(engine, "crm", {}, envelope(org.sim.org_id, "Account", [org.sim.get("Account", account_id)]))
    org.app.options.fail_rate = 1.0
    parts = Parts(cfg)
    report = InboxProcessor(engine, parts, worker="t").run_once()
    assert (report.done, report.retry) == (0, 1)
    waiting = rows(engine, "select status, attempts, error from inbox")[0]
    assert waiting.status == "pending" and waiting.attempts == 1 and "cannot fetch customer" in waiting.error
    org.app.options.fail_rate = 0.0
    report = InboxProcessor(engine, parts, worker="t2").run_once()      # a restarted worker tries at once
    assert report.done == 1
    assert rows(engine, "select source_id from xref")[0].source_id == account_id
    parts.close()
    engine.dispose()


def test_a_poison_row_does_not_hold_up_the_others(tmp_path: Path, pg_url: str):
    cfg = load_config(str(write_project(tmp_path / "p", CONFIG, pg_url)))
    engine = make_engine(cfg.store.url)
    parts = Parts(cfg)
    # a row the store refuses every time (a trigger stands for a constraint a record breaks)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.source_id = 'C0009' "
                             "THEN RAISE EXCEPTION USING MESSAGE = 'poisoned row ' || NEW.source_id; END IF; "
                             "RETURN NEW; END $$ LANGUAGE plpgsql")
        conn.exec_driver_sql("CREATE TRIGGER poison BEFORE INSERT ON xref FOR EACH ROW EXECUTE FUNCTION poison()")
    good = [deliver(engine, "erp", [customer_row(i, f"Good {i}")]) for i in range(3)]
    bad = deliver(engine, "erp", [customer_row(9, "Nine")])
    proc = InboxProcessor(engine, parts, worker="t")
    report = proc.run_once()
    assert report.done == 3 and report.retry == 1
    status = {r.id: (r.status, r.attempts) for r in rows(engine, "select id, status, attempts from inbox")}
    assert all(status[g] == ("done", 1) for g in good) and status[bad] == ("pending", 1)
    for _ in range(4):
        proc._not_before.clear()
        proc.run_once()
    final = rows(engine, "select status, attempts, error from inbox where id = :i", i=bad)[0]
    assert final.status == "error" and final.attempts == 5 and "poisoned row C0009" in final.error
    parts.close()
    engine.dispose()


def test_a_deleted_id_no_store_can_hold_matches_nothing_and_the_rest_goes_through(hub):
    # a lone surrogate is valid JSON text ("\\ud800") that no UTF-8 encodes: looked up, it failed the
    # whole delivery five times; no record the hub holds can have that id
    engine, parts = hub
    deliver(engine, "erp", [customer_row(1, "One"), customer_row(2, "Two")])
    proc = InboxProcessor(engine, parts, worker="t")
    assert proc.run_once().done == 1
    gone = deliver(engine, "erp", [customer_row(3, "Three")], deleted=["C\ud800", "C0001", "C\x00"])
    report = proc.run_once()
    assert (report.done, report.retry) == (1, 0)
    assert rows(engine, "select status, attempts from inbox where id = :i", i=gone)[0] == ("done", 1)
    links = {r.source_id: r.status for r in rows(engine, "select source_id, status from xref")}
    assert links == {"C0001": "deleted", "C0002": "active", "C0003": "active"}


def test_rows_that_fail_are_parked_and_the_rest_goes_through(hub):
    engine, parts = hub
    deliver(engine, "erp", [customer_row(1, "Fine Ltd")])
    deliver(engine, "erp", [customer_row(2, "Negative Ltd", credit_limit="-5")])
    deliver(engine, "erp", [customer_row(3, "Bad Mail Ltd", email="not-an-email")])
    report = InboxProcessor(engine, parts, worker="t").run_once()
    assert report.done == 3
    assert [r.name for r in rows(engine, "select name from customer")] == ["Fine Ltd"]
    parked = {r.source_id: r for r in rows(engine, "select source_id, kind, reasons from quarantine")}
    assert {sid: p.kind for sid, p in parked.items()} == {"C0002": "validation", "C0003": "mapping"}
    reasons = parked["C0002"].reasons
    assert "credit_limit" in (reasons if isinstance(reasons, str) else json.dumps(reasons))
