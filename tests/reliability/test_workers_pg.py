"""Three `triad worker` processes share one PostgreSQL store; one is SIGKILLed in the middle of a stream.

The project: three file systems, each exporting customers of its own, and a Salesforce CRM (its
simulator, served by this process), all read in batches of 40, and a file export every golden
customer is pushed to. Three workers start together (`triad worker --interval 0.3`, so they keep
cycling); the first one seen in a file stream run that has committed a batch is killed. The others
finish, take the dead worker's lease over at once (its process is gone: no waiting for the lease to
run out) and push everything. (Killed pushes: test_crash_points.py and test_takeover.py.)

Then: every value each system held is in the store (the ledger check); the runs of each stream follow
one another in `sync_run` (the killed run counts until its process was reaped); nothing is duplicated
(xref, outbox, golden records, creates in the export); and the golden store equals the one a single
process builds from the same systems in another database.

The last test has two streams of the same new companies read at once: each must become one golden
record (the exact keys of a batch's new records are locked until it commits).
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from sqlalchemy import text

from hub.config import load_config
from hub.ledger import Change, check, read_back
from hub.streams import Parts

from .crashkit import ROOT, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WORKERS = 3
BATCH = 40
# system -> (first company, last company + 1, the fields its export holds besides its key and tax id)
FILES = {"f1": (0, 900, ("code", "name", "email")),
         "f2": (900, 1800, ("code", "name", "city")),
         "f3": (1800, 2700, ("code", "name", "credit_limit"))}
CRM_ACCOUNTS = 300
COLUMNS = {"code": "code", "name": "name", "email": "email", "city": "city", "credit_limit": "limit"}


def company(i: int) -> dict[str, str]:
    """Company i as every file that knows it holds it."""
    return {"tax": f"91WORK{i:08d}", "code": f"C{i:06d}", "name": f"公司{i}", "email": f"buyer{i}@c{i % 97}.example.cn",
            "city": f"城市{i % 40}", "limit": f"{(i * 37) % 9000}.00"}


def write_files(root: Path, files: dict[str, tuple] = FILES) -> None:
    """Each system's folder with its customers.csv, its mapping, the export's mapping, an empty suite."""
    for system, (first, last, fields) in files.items():
        folder = root / system
        folder.mkdir(parents=True)
        with (folder / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["no", "tax", *(COLUMNS[f] for f in fields), "ts"])
            for i in range(first, last):
                c = company(i)
                stamp = datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(seconds=i)   # a rerun reads the last
                w.writerow([f"{system}-{i}", c["tax"], *(c[COLUMNS[f]] for f in fields), stamp.isoformat()])
        mapping = {"source": "customers.csv", "key": "no", "updated_at": "ts", "timezone": "UTC",
                   "fields": {"tax_id": "tax", **{f: COLUMNS[f] for f in fields}}}
        if "credit_limit" in fields:
            mapping["fields"]["credit_limit"] = {"from": "limit", "type": "decimal"}
        (root / f"{system}.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    (root / "export.yaml").write_text(yaml.safe_dump({
        "source": "customers.csv", "key": "no",
        "fields": {"tax_id": "tax", **{f: f for f in ("code", "name", "email", "city", "credit_limit")}}},
        allow_unicode=True), encoding="utf-8")
    (root / "no_expectations.yaml").write_text("[]\n", encoding="utf-8")


def write_config(root: Path, name: str, store: str, crm_url: str | None, files: dict[str, tuple] = FILES,
                 batch: int = BATCH) -> Path:
    """A triad.yaml on ``store``; its export goes to ``<name>-out`` (one folder per project)."""
    connectors: dict[str, Any] = {
        system: {"type": "file", "path": f"./{system}", "direction": "in", "batch_size": batch,
                 "entities": {"customer": {"mapping": f"{system}.yaml"}}} for system in files}
    if crm_url:
        connectors["crm"] = {
            "type": "salesforce", "base_url": crm_url, "direction": "in", "batch_size": 200,
            "auth": {"grant": "password", "client_id": "triad-client", "client_secret": "triad-secret",
                     "username": "demo@triad.local", "password": "triad-pass"},
            "entities": {"customer": {}}}
    (root / "export").mkdir(exist_ok=True)
    connectors["export"] = {"type": "file", "path": "./export", "outbox": f"./{name}-out", "direction": "out",
                            "entities": {"customer": {"mapping": "export.yaml"}}}
    cfg = {"store": {"url": store}, "connectors": connectors, "matching": {"customer": {"exact": ["tax_id"]}},
           # validation does not change what a kill does; great-expectations would cost each worker seconds
           "validation": {"customer": "no_expectations.yaml"}, "outbox": {"batch_size": 150}}
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Project:
    root: Path
    crm_url: str
    store: str
    engine: Any

    def config(self, name: str, store: str | None = None, batch: int = BATCH) -> Path:
        return write_config(self.root, name, store or self.store, self.crm_url, batch=batch)


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Iterator[Project]:
    from connectors.salesforce.simulator import create_app
    from connectors.simkit import SimOptions, SimServer
    from hub.store import make_engine, upgrade
    server = SimServer(create_app(SimOptions(seed=3, records=CRM_ACCOUNTS))).start()
    engine = make_engine(pg_url)
    upgrade(engine)
    write_files(tmp_path)
    try:
        yield Project(tmp_path, server.base_url, pg_url, engine)
    finally:
        engine.dispose()
        server.stop()


# --- the workers ----------------------------------------------------------------------------------

class Worker:
    """One `triad worker` subprocess; its log goes to a file (a pipe nobody reads would stall it)."""

    def __init__(self, config: Path, n: int) -> None:
        self.name = f"worker-{n}"
        self.log = config.parent / f"{self.name}.log"
        env = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}
        env["TRIAD_USER"] = self.name          # recorded on each sync_run it opens
        with self.log.open("w") as out:
            self.p = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config), "worker",
                                       "--interval", "0.3", "--no-inbox"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=out)
        self.dead_at: datetime | None = None

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()                     # reaped: from now on the pid names no process
        self.dead_at = datetime.now(timezone.utc)

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)     # finishes the batch in progress
        try:
            return self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def sql(engine: Any, query: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(query), params))


def mid_stream(engine: Any) -> tuple[str, str] | None:
    """(stream, worker) of a running file stream run that has committed at least one batch."""
    for connector, user, stats in sql(engine, "select connector, \"user\", stats from sync_run "
                                              "where status = 'running' and kind = 'sync'"):
        if connector in FILES and (stats or {}).get("read", 0) > 0:
            return connector, user
    return None


def settled(engine: Any, dead_at: datetime) -> bool:
    """Every stream has run to the end since the kill, no other run is going on, and nothing waits to be pushed."""
    streams = {*FILES, "crm"}
    done = {r[0] for r in sql(engine, "select connector from sync_run where kind = 'sync' and status = 'ok' "
                                      "and started_at > :t", t=dead_at)}
    if done != streams:
        return False
    running = sql(engine, "select count(*) from sync_run where status = 'running' and started_at > :t",
                  t=dead_at)[0][0]
    pending = sql(engine, "select count(*) from outbox where status = 'pending'")[0][0]
    return running == 0 and pending == 0


# --- the checks -----------------------------------------------------------------------------------

def system_values(config: Path) -> list[Change]:
    """Every value every system holds, as changes made before the run (the ledger)."""
    at = datetime.now(timezone.utc)
    parts = Parts(load_config(str(config)))
    try:
        changes = []
        for system in (*FILES, "crm"):
            held, bad = read_back(parts, system, "customer")
            assert not bad, bad
            changes += [Change(system, sid, f, v, at) for sid, values in held.items() for f, v in values.items()
                        if v is not None]
        return changes
    finally:
        parts.close()


def overlaps(engine: Any, workers: list[Worker]) -> tuple[list[str], dict[str, list[tuple]]]:
    """Pairs of runs of one stream whose intervals overlap; and every stream's runs in order."""
    dead = {w.name: w.dead_at for w in workers if w.dead_at}
    runs = defaultdict(list)
    for connector, user, status, started, finished in sql(
            engine, "select connector, \"user\", status, started_at, finished_at from sync_run "
                    "where kind = 'sync' order by started_at"):
        if finished is None:       # only the killed worker's run never finished: it ran until the kill
            assert status == "running" and user in dead, (connector, user, status)
            finished = dead[user]
        runs[connector].append((started, finished, user, status))
    bad = [f"{c}: {a[2]} {a[0]}..{a[1]} and {b[2]} {b[0]}..{b[1]}"
           for c, rs in runs.items() for a, b in zip(rs, rs[1:]) if b[0] < a[1]]
    return bad, runs


def golden_store(engine: Any) -> dict[frozenset, dict[str, Any]]:
    """Each live golden customer by the source records linked to it (ids differ between stores)."""
    from hub import golden
    links = defaultdict(set)
    for system, sid, rid in sql(engine, "select system, source_id, record_id from xref "
                                        "where entity = 'customer' and status = 'active' and system != 'export'"):
        links[rid].add((system, sid))
    with engine.connect() as conn:
        rows = golden.load(conn, "customer", list(links))
    assert len(rows) == len(links)
    return {frozenset(links[rid]): row.values for rid, row in rows.items() if row.merged_into is None}


def exported_creates(folder: Path) -> Counter:
    """How many different changes created each record in the export (a re-delivered change counts once)."""
    changes = defaultdict(set)
    for f in folder.glob("*.jsonl"):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["__op__"] == "create":
                changes[row["no"]].add(row["__change_id__"])
    return Counter({no: len(ids) for no, ids in changes.items()})


def reference(project: Project, store: str) -> dict[frozenset, dict[str, Any]]:
    """The golden store one process builds from the same systems."""
    from hub.push import push
    from hub.store import make_engine, upgrade
    from hub.sync import run_sync
    engine = make_engine(store)
    try:
        upgrade(engine)
        parts = Parts(load_config(str(project.config("single", store, batch=1000))))
        try:
            assert {r.status for r in run_sync(engine, parts)} == {"ok"}
            push(engine, parts)
        finally:
            parts.close()
        return golden_store(engine)
    finally:
        engine.dispose()


def test_three_workers_one_killed_mid_stream(project: Project, second_pg_url: str):
    config = project.config("triad")
    ledger = system_values(config)
    started = time.monotonic()
    workers = [Worker(config, n) for n in range(1, WORKERS + 1)]
    try:
        stream, name = wait_for(lambda: mid_stream(project.engine), 90, "a worker to commit a batch of a file stream")
        victim = next(w for w in workers if w.name == name)
        victim.kill()
        assert victim.dead_at is not None
        wait_for(lambda: settled(project.engine, victim.dead_at), 90, "the other workers to finish")
    finally:
        codes = {w.name: w.stop() for w in workers if w.dead_at is None}
    logs = {w.name: w.log.read_text(encoding="utf-8")[-3000:] for w in workers}
    assert codes == {w.name: 0 for w in workers if w is not victim}, logs
    took = time.monotonic() - started

    # (b) one run of a stream at a time; the killed run was taken over by another worker
    bad, runs = overlaps(project.engine, workers)
    assert bad == [], bad
    killed = [r for r in runs[stream] if r[2] == victim.name and r[3] != "ok"]
    assert len(killed) == 1 and killed[0][3] == "error", killed     # the taker closed the dead run
    (error,) = [e for (e,) in sql(project.engine, "select error from sync_run where \"user\" = :u and "
                                  "status = 'error'", u=victim.name)]
    assert "went away" in error, error
    after = [r for r in runs[stream] if r[0] >= killed[0][1]]
    assert after and after[0][2] != victim.name and after[0][3] == "ok", runs[stream]
    assert (after[0][0] - victim.dead_at).total_seconds() < 30, "the dead worker's lease was not taken over at once"

    # (a) nothing lost, nothing duplicated, every system agrees with the store
    parts = Parts(load_config(str(config)))
    try:
        report = check(project.engine, parts, "customer", ledger, systems=(*FILES, "crm"), exact_keys=("tax_id",))
    finally:
        parts.close()
    assert report.lost == [] and report.duplicates == [] and report.disagreements == [], report.as_dict()
    assert report.counts["golden"] == len(ledger), report.counts

    # (c) no duplicated xref, outbox or golden rows, no record created twice in the export
    assert sql(project.engine, "select system, source_id from xref group by entity, system, source_id "
                               "having count(*) > 1") == []
    assert sql(project.engine, "select connector, record_id, operation, fields::text from outbox "
                               "group by connector, record_id, operation, fields::text having count(*) > 1") == []
    assert {r[0] for r in sql(project.engine, "select distinct status from outbox")} == {"done"}
    creates = exported_creates(project.root / "triad-out")
    assert max(creates.values()) == 1, [k for k, n in creates.items() if n > 1][:10]

    # (d) the same golden store as one process builds
    mine = golden_store(project.engine)
    companies = len({i for first, last, _ in FILES.values() for i in range(first, last)})
    assert len(mine) > companies and len(creates) == len(mine)
    single = reference(project, second_pg_url)
    assert mine == single, [k for k in set(mine) ^ set(single)][:5]
    print(f"3 workers, one killed in {stream}: settled in {took:.1f} s")


SHARED = {"a": (0, 1200, ("code", "name")), "b": (0, 1200, ("code", "name"))}


def test_two_streams_bringing_the_same_new_companies_at_once_create_each_once(tmp_path: Path, pg_url: str):
    from hub.store import make_engine, upgrade
    from hub.sync import run_sync
    write_files(tmp_path, SHARED)
    config = write_config(tmp_path, "triad", pg_url, None, SHARED)
    engine = make_engine(pg_url)
    upgrade(engine)
    start = threading.Barrier(len(SHARED))
    statuses: list[str] = []

    def read(system: str) -> None:      # two workers, one stream each (threads: no start-up skew)
        parts = Parts(load_config(str(config)))
        try:
            start.wait()
            statuses.extend(r.status for r in run_sync(engine, parts, connectors=(system,)))
        finally:
            parts.close()
    try:
        threads = [threading.Thread(target=read, args=(s,)) for s in SHARED]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert statuses == ["ok", "ok"]
        twice = sql(engine, "select tax_id, count(*) from customer group by tax_id having count(*) > 1")
        assert len(twice) == 0, f"{len(twice)} of 1200 companies have two golden records, e.g. {twice[:3]}"
    finally:
        engine.dispose()
