"""SIGKILL the hub at chosen points, restart, settle: every change a user made is still found (golden, in
a conflict, superseded or quarantined), nothing is duplicated, and both systems agree with the store.

A Salesforce CRM and a Kingdee ERP run in this process behind a tripwire that kills `python -m cli`
subprocesses on a chosen request or moment: `sync run` during a read and inside one of the many small
batch transactions of a run; `sync push` after `sync run` committed but before any write, and right after
a system applied a write but before its answer reached the hub; `serve` while its webhook worker holds
stored events. The restart is the next `sync run` + `sync push` (run in this process, until a round
changes nothing); a killed server is restarted as a subprocess. The project validates with an empty
expectation suite: validation does not change what a crash does, and every subprocess would otherwise
spend seconds importing it.
"""
from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
import requests
from sqlalchemy import text

from benchmarks.soak import linked_pairs
from hub.config import load_config
from hub.ledger import check, classify
from hub.liveness import dead_here
from hub.streams import Parts

from .crashkit import TOKEN, Proc, World, make_world, settle, stranded_claims, wait_for

pytestmark = pytest.mark.slow
RECORDS = 30


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "p", 11, RECORDS)
    try:
        yield w
    finally:
        w.close()


def verify(w: World, where: str) -> None:
    """The ledger, duplicate and agreement checks, and no account created twice in the CRM."""
    parts = Parts(load_config(str(w.config)))
    try:
        report = check(w.engine, parts, "customer", w.users.ledger, exact_keys=("tax_id",))
    finally:
        parts.close()
    assert not report.lost, f"{where}: changes lost: {report.lost}"
    assert not report.duplicates, f"{where}: duplicated: {report.duplicates}"
    assert not report.disagreements, f"{where}: systems disagree with the store: {report.disagreements}"
    assert all(d["error"] for d in report.dead), report.dead
    ids = Counter(a["Triad_Id__c"] for a in w.systems.crm.sim.records["Account"].values()
                  if a.get("Triad_Id__c") and not a.get("IsDeleted"))
    assert [k for k, n in ids.items() if n > 1] == [], f"{where}: accounts created twice"


def running_runs(w: World) -> int:
    with w.engine.connect() as conn:
        return conn.execute(text("select count(*) from sync_run where status = 'running'")).scalar_one()


def calm(w: World) -> None:
    for wire in w.wires.values():
        wire.disarm()
    w.systems.faults(w.rng, False)


# --- the crash points -----------------------------------------------------------------------------

def during_read(w: World) -> Proc:
    """Reads are slow; the run dies on its n-th read request, before or after the system answered."""
    target = w.rng.choice(("crm", "erp"))
    getattr(w.systems, target).sim.options.latency_ms = 150
    proc = Proc(w.config, "sync", "run")
    w.wires[target].arm("read", 1 if target == "crm" else w.rng.randint(1, 3), w.rng.choice(("before", "after")),
                        proc.kill)
    return proc


def during_batch(w: World) -> Proc:
    """A user mass-updates ERP customers: the ERP stream reads them in many batches of five, each its own
    transaction; the run dies while it holds one of its first write transactions open."""
    city = w.users.value("city")
    for sid in w.rng.sample(w.systems.live_ids("erp"), 20):
        w.users.change("erp", sid, {"city": city})
    proc = Proc(w.config, "sync", "run")
    w.wires["erp"].arm("read", 1, "after", proc.in_transaction(w.config.parent / "hub.db", w.rng.randint(1, 4)))
    return proc


def between_commit_and_push(w: World) -> Proc:
    """`sync run` commits everything; `sync push` dies before its first write reaches a system."""
    assert Proc(w.config, "sync", "run").wait() in (0, 1)
    proc = Proc(w.config, "sync", "push")
    for wire in w.wires.values():
        wire.arm("write", 1, "before", proc.kill)
    return proc


def during_push(w: World) -> Proc:
    """Writes are slow; the push dies right after a system applied a write, before the hub heard of it."""
    assert Proc(w.config, "sync", "run").wait() in (0, 1)
    for s in (w.systems.crm, w.systems.erp):
        s.sim.options.latency_ms = 80
    proc = Proc(w.config, "sync", "push")
    w.wires[w.rng.choice(("crm", "erp"))].arm("write", w.rng.randint(1, 2), "after", proc.kill)
    return proc


POINTS = {"read": during_read, "batch": during_batch, "commit_push": between_commit_and_push, "push": during_push}
PLAN = ["read", "batch", "commit_push", "push", "batch", "read", "push", "batch", "commit_push", "push"]


def test_sigkill_at_chosen_points_then_restart(world: World):
    w = world
    verify(w, "after the initial load")
    kills: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for n, point in enumerate(PLAN):
        w.users.cycle(linked_pairs(w.engine), edits=5, concurrent=0.3, inserts=1)
        stale = running_runs(w)
        proc = POINTS[point](w)
        proc.wait()
        calm(w)
        if proc.killed:
            kills[point] += 1
            if point in ("read", "batch"):      # killed mid-run: its run never finished
                assert running_runs(w) > stale, f"{point}: the run was not interrupted"
            if point == "batch":
                assert proc.in_tx, "killed outside a transaction"
        stranded = stranded_claims(w.engine)
        if stranded:
            # a killed push leaves the rows it claimed claimed in its name (host:pid); the restart takes
            # them over at once, the process being gone, instead of waiting for the claim to run out
            assert point in ("commit_push", "push") and proc.killed, f"{point}: rows claimed by nobody"
            assert all(dead_here(by) for by in stranded.values()), f"{point}: claimed by {set(stranded.values())}"
            assert classify(w.engine, "customer", w.users.ledger).counts["lost"] == 0
            held[point] += 1
        settle(w.engine, w.config)
        assert stranded_claims(w.engine) == {}, f"{point}: claims not taken over"
        verify(w, f"iteration {n} ({point}, {'killed' if proc.killed else 'finished first'})")
    assert sum(kills.values()) >= len(PLAN) - 1, (kills, held)
    assert set(kills) == set(POINTS), (kills, held)


# --- the webhook worker ---------------------------------------------------------------------------

def serve(w: World, port: int, window_ms: int, started: list[Proc]) -> Proc:
    proc = Proc(w.config, "serve", "--port", str(port), env={"SOAK_WINDOW_MS": str(window_ms)})
    started.append(proc)
    wait_for(lambda: health(port) or proc.p.poll() is not None, 60, "serve to answer")
    assert proc.p.poll() is None, proc.p.stderr.read() if proc.p.stderr else ""
    return proc


def health(port: int) -> dict | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
    except (requests.RequestException, ValueError):
        return None


def inbox(w: World) -> list[str]:
    with w.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("select status from inbox order by received_at"))]


def crm_edits(w: World, count: int) -> list[str]:
    """Users change CRM accounts; the org sends one outbound message naming them."""
    sids = w.rng.sample(w.systems.live_ids("crm"), count)
    for sid in sids:
        w.users.change("crm", sid, {f: w.users.value(f) for f in w.rng.sample(("phone", "name", "city"), 2)})
    return sids


def post(w: World, port: int, sids: list[str]) -> None:
    from connectors.salesforce.webhook import envelope
    org = w.systems.crm.sim
    body = envelope(org.org_id, "Account", [org.get("Account", s) for s in sids])
    r = requests.post(f"http://127.0.0.1:{port}/webhooks/crm", params={"token": TOKEN}, data=body,
                      headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code == 200 and b"<Ack>true</Ack>" in r.content, r.text


def test_webhook_events_survive_a_killed_server(world: World, unused_port: int):
    servers: list[Proc] = []   # killed at the end whatever happened: a failed check must not leave one running
    try:
        w = world
        since = len(w.users.ledger)
        # 1. the worker holds the events for a minute (its gathering window): killed before it runs them
        sids = crm_edits(w, 4)
        first = serve(w, unused_port, 60_000, servers)
        post(w, unused_port, sids)
        wait_for(lambda: inbox(w) == ["pending"], 10, "the event to be stored")
        first.kill()
        first.wait()
        assert first.killed
        fresh = w.users.ledger[since:]
        assert classify(w.engine, "customer", fresh).counts["lost"] == len(fresh), "processed before the kill"
        # 2. restarted, the worker runs the stored event: the changes are golden before any `sync run`
        second = serve(w, unused_port, 50, servers)
        wait_for(lambda: inbox(w) == ["done"], 30, "the stored event to be processed")
        # 3. another message, the server killed at a random moment while it stores, runs or pushes it
        sids = crm_edits(w, 4)
        post(w, unused_port, sids)
        second.later(w.rng.uniform(0.0, 0.4))()
        second.wait()
        assert second.killed
        third = serve(w, unused_port, 50, servers)
        wait_for(lambda: inbox(w) == ["done", "done"], 30, "the second event to be processed")
        third.p.send_signal(signal.SIGTERM)
        third.wait(30)
        got = classify(w.engine, "customer", w.users.ledger[since:]).counts
        found = got["golden"] + got["pending"] + got["superseded"]
        assert got["lost"] == 0 and found == len(w.users.ledger) - since, got
        settle(w.engine, w.config)
        verify(w, "after the webhook kills")
    finally:
        for proc in servers:
            if proc.p.poll() is None:
                proc.p.kill()
                proc.p.wait()


@pytest.fixture
def unused_port() -> int:
    from hub.demo_systems import free_port
    return free_port()
