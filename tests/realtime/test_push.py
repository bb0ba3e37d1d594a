"""Outbound delivery against a Salesforce org that fails: exponential backoff with jitter, Retry-After,
dead after max_attempts with the last error, `triad outbox retry`, and a re-delivery that never writes twice."""
from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from cli import main
from hub.config import load_config
from hub.push import push
from hub.store import make_engine
from hub.streams import Parts
from hub.sync import run_stream

from .helpers import SF_AUTH, customer_row, rows, write_customers, write_project


def make_hub(tmp_path: Path, url: str, org_url: str, outbox: str = "{}"):
    cfg_path = write_project(tmp_path / "p", f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, entities: [customer]}}
  crm: {{type: salesforce, direction: out, base_url: '{org_url}', auth: {SF_AUTH},
         retry: {{attempts: 1, backoff: 0.01, max_wait: 0.01}}, entities: [customer]}}
matching: {{customer: {{exact: [tax_id]}}}}
outbox: {outbox}
""", url)
    write_customers(tmp_path / "p" / "exports", [customer_row(1, "Acme Trading"), customer_row(2, "Beta Foods")])
    cfg = load_config(str(cfg_path))
    engine = make_engine(cfg.store.url)
    parts = Parts(cfg)
    assert run_stream(engine, parts, "erp", "customer").counts["queued"] == 2
    return cfg_path, engine, parts


def outbox(engine) -> list:
    from sqlalchemy import select

    from hub.models import Outbox
    ot = Outbox.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(ot.c.id, ot.c.status, ot.c.attempts, ot.c.last_error, ot.c.next_attempt_at,
                                        ot.c.updated_at).order_by(ot.c.id)))


def accounts(org, name: str) -> list[dict]:
    return [a for a in org.sim.records["Account"].values() if a["Name"] == name and not a["IsDeleted"]]


def test_backoff_then_dead_then_retry(tmp_path: Path, sqlite_url: str, make_sim):
    org = make_sim("salesforce", records=1, fail_rate=1.0)
    cfg_path, engine, parts = make_hub(tmp_path, sqlite_url, org.url,
                                       "{max_attempts: 3, backoff_seconds: 0.2, max_backoff_seconds: 5}")
    waits = []
    for attempt in (1, 2, 3):
        report = push(engine, parts, ("crm",))[0]
        items = outbox(engine)
        assert all(i.attempts == attempt for i in items), items
        assert "503" in items[0].last_error
        if attempt < 3:
            assert report.counts["failed"] == 2 and all(i.status == "pending" for i in items)
            waits += [(i.next_attempt_at - i.updated_at).total_seconds() for i in items]
            assert push(engine, parts, ("crm",))[0].counts["failed"] == 0     # not due yet: nothing is sent
            time.sleep(max(waits[-2:]) + 0.05)
        else:
            assert report.counts["dead"] == 2 and all(i.status == "dead" for i in items)
    # exponential with jitter: 0.2 s x 2^(n-1) x [0.5, 1.5)
    assert all(0.1 <= w < 0.3 for w in waits[:2]) and all(0.2 <= w < 0.6 for w in waits[2:])
    assert len(set(waits)) == len(waits)                                    # jittered, not in step

    runner = CliRunner()
    listed = runner.invoke(main, ["--config", str(cfg_path), "--json", "outbox", "list", "--status", "dead"])
    assert listed.exit_code == 0, listed.output
    dead = json.loads(listed.stdout)["items"]
    assert len(dead) == 2 and all("503" in d["last_error"] and d["attempts"] == 3 for d in dead)
    org.app.options.fail_rate = 0.0
    r = runner.invoke(main, ["--config", str(cfg_path), "outbox", "retry", dead[0]["id"]])
    assert r.exit_code == 0, r.output
    report = push(engine, parts, ("crm",))[0]
    assert report.counts["written"] == 1 and report.counts["created"] == 1
    assert {i.id: i.status for i in outbox(engine)}[dead[0]["id"]] == "done"
    r = runner.invoke(main, ["--config", str(cfg_path), "outbox", "drop", dead[1]["id"], "--note", "test"])
    assert r.exit_code == 0, r.output
    assert {i.id: i.status for i in outbox(engine)}[dead[1]["id"]] == "dropped"
    parts.close()
    engine.dispose()


def test_retry_after_is_honoured(tmp_path: Path, sqlite_url: str, make_sim):
    # Salesforce throttles with a 403 and no Retry-After; a gateway in front of it answers 429 with one
    org = make_sim("salesforce", records=1)
    gateway = {"busy": True}

    def throttle(environ, start_response):
        if gateway["busy"] and environ["PATH_INFO"].startswith("/services/data/"):
            start_response("429 Too Many Requests", [("Content-Type", "text/plain"), ("Retry-After", "1")])
            return [b"busy"]
        return org.app(environ, start_response)
    org.server.httpd.set_app(throttle)
    _, engine, parts = make_hub(tmp_path, sqlite_url, org.url, "{backoff_seconds: 30}")
    push(engine, parts, ("crm",))
    for item in outbox(engine):
        assert item.status == "pending" and item.attempts == 1 and "429" in item.last_error
        assert abs((item.next_attempt_at - item.updated_at).total_seconds() - 1.0) < 0.05
    gateway["busy"] = False
    time.sleep(1.05)
    assert push(engine, parts, ("crm",))[0].counts["written"] == 2
    parts.close()
    engine.dispose()


def test_redelivery_after_a_lost_acknowledgement_writes_once(tmp_path: Path, store_url: str, make_sim):
    org = make_sim("salesforce", records=1)
    _, engine, parts = make_hub(tmp_path, store_url, org.url)
    assert push(engine, parts, ("crm",))[0].counts["created"] == 2
    first = accounts(org, "Acme Trading")
    assert len(first) == 1
    # the org wrote, then the hub died before committing: the rows are pending again and unlinked
    from sqlalchemy import text
    with engine.begin() as conn:
        conn.execute(text("update outbox set status = 'pending', claimed_by = null, claimed_until = null"))
        conn.execute(text("delete from xref where system = 'crm'"))
    report = push(engine, parts, ("crm",))[0]
    assert report.counts["written"] == 2 and report.counts["dead"] == 0
    again = accounts(org, "Acme Trading")
    assert [a["Id"] for a in again] == [first[0]["Id"]]                      # upserted on Triad_Id__c: no twin
    links = rows(engine, "select source_id from xref where system = 'crm' order by source_id")
    assert sorted(a["Id"] for n in ("Acme Trading", "Beta Foods") for a in accounts(org, n)) == \
        [x.source_id for x in links]
    parts.close()
    engine.dispose()


def test_push_ids_delivers_only_the_given_rows(tmp_path: Path, sqlite_url: str, make_sim):
    from hub.push import push_ids
    org = make_sim("salesforce", records=1)
    _, engine, parts = make_hub(tmp_path, sqlite_url, org.url)
    ids = [i.id for i in outbox(engine)]
    reports = push_ids(engine, parts, ids[:1] + ["no-such-id"])
    assert [r.counts["written"] for r in reports] == [1]
    assert [i.status for i in outbox(engine)] == ["done", "pending"]
    assert push_ids(engine, parts, ids[:1]) == []                            # done rows are not sent again
    parts.close()
    engine.dispose()
