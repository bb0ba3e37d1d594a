"""`triad worker` with a long --interval still applies a webhook event within seconds: with
`serve: {worker: false}` it is the only process taking the inbox (SPEC 5: "within a second")."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from hub.config import load_config
from hub.inbox import store
from hub.store import make_engine
from hub.worker import run_worker

from .helpers import SECRET, customer_row, rows, signed, wait_for, write_customers, write_project

CONFIG = f"""
serve: {{worker: false}}
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
  out: {{type: file, path: ./exports, direction: out, outbox: ./outbox, entities: [customer]}}
"""


def test_an_event_stored_between_cycles_is_applied_within_seconds(tmp_path: Path, store_url: str):
    cfg = load_config(str(write_project(tmp_path / "p", CONFIG, store_url)))
    write_customers(tmp_path / "p" / "exports", [customer_row(1, "From The File")])
    engine = make_engine(cfg.store.url)
    stop = threading.Event()
    totals: dict = {}
    worker = threading.Thread(target=lambda: totals.update(run_worker(engine, cfg, interval=60, cancel=stop)),
                              daemon=True)
    worker.start()
    try:
        # the first cycle's sync and push are over: the loop now waits out its 60 s interval
        wait_for(lambda: rows(engine, "select 1 from sync_run where kind = 'sync' and finished_at is not null"),
                 30, "first cycle")
        wait_for(lambda: rows(engine, "select 1 from outbox where status = 'done'"), 30, "first push")
        body, _ = signed({"entity": "customer", "records": [customer_row(2, "From A Webhook")]})
        store(engine, "erp", {}, body)
        started = time.monotonic()
        wait_for(lambda: rows(engine, "select 1 from customer where name = 'From A Webhook'"), 10,
                 "the event applied before the next cycle")
        assert time.monotonic() - started < 10
        wait_for(lambda: rows(engine, "select 1 from outbox where status = 'done' and record_id = "
                                      "(select id from customer where name = 'From A Webhook')"), 10,
                 "its change pushed at once")
        assert rows(engine, "select status from inbox")[0].status == "done"
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive()
    assert totals["cycles"] == 1 and totals["inbox_rows"] == 1
    engine.dispose()


def test_once_still_takes_the_inbox_in_its_one_cycle(tmp_path: Path, sqlite_url: str):
    cfg = load_config(str(write_project(tmp_path / "p", CONFIG, sqlite_url)))
    engine = make_engine(cfg.store.url)
    body, _ = signed({"entity": "customer", "records": [customer_row(2, "From A Webhook")]})
    store(engine, "erp", {}, body)
    totals = run_worker(engine, cfg, once=True)
    assert totals["cycles"] == 1 and totals["inbox_rows"] == 1
    assert [r.name for r in rows(engine, "select name from customer")] == ["From A Webhook"]
    assert not any(t.name == "triad-inbox" for t in threading.enumerate())     # no thread for one cycle
    engine.dispose()
