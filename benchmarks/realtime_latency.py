"""Real-time latency: webhook events posted to `triad serve` until the change is written to a Salesforce org.

Sets up a project with a file ERP (``erp``, the webhook source: Triad's generic
signed JSON webhook) and the Salesforce simulator (``crm``, the target), loads N
customers and pushes them to the org, then starts `triad serve` as its own process
and posts N events at a fixed rate, each renaming one customer. A WSGI wrapper
around the simulator notes when each new name arrives in an sObject Collections
call; latency is that moment minus the moment the event was posted. Prints
p50/p95/p99 and one JSON line, with the p99 of each stage (post -> stored, stored ->
committed, committed -> in the org), the server's CPU time per event and the load average.

    python benchmarks/realtime_latency.py --events 1000 --rate 50
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = b"bench-secret"
HEADER = ["customer_no", "name", "type", "tax_id", "email", "phone", "country", "province", "city", "address",
          "postal_code", "currency", "credit_limit", "payment_terms", "status", "tier", "owner", "updated_at"]
CONFIG = """
store: {{url: '{store}'}}
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {secret}, entities: [customer]}}
  crm:
    type: salesforce
    direction: out
    base_url: '{sf_url}'
    auth: {{client_id: triad-client, client_secret: triad-secret, username: demo@triad.local, password: triad-pass}}
    entities: [customer]
matching: {{customer: {{exact: [tax_id]}}}}
serve: {{window_ms: {window_ms}, push_interval_seconds: 30}}
"""
_NAME = re.compile(r"^Bench (\d+)$")


def row(i: int, name: str, stamp: str) -> dict[str, str]:
    return {"customer_no": f"B{i:06d}", "name": name, "type": "company", "tax_id": f"91310000BENCH{i:05d}",
            "email": f"c{i}@bench.example.cn", "phone": f"+86 21 {55500000 + i}", "country": "CN",
            "province": "上海市", "city": "上海", "address": f"{i} Bench Road", "postal_code": "200000",
            "currency": "CNY", "credit_limit": str(1000 + i), "payment_terms": "Net 30", "status": "active",
            "tier": "", "owner": "Bench", "updated_at": stamp}


class Arrivals:
    """WSGI wrapper: the time each "Bench <i>" name reaches the org in a Collections call."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app, self.seen, self.lock = app, {}, threading.Lock()

    def __call__(self, environ, start_response):  # noqa: ANN001, ANN204
        body = b""
        if "/composite/sobjects" in environ.get("PATH_INFO", "") and environ["REQUEST_METHOD"] in ("PATCH", "POST"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
        out = list(self.app(environ, start_response))
        if body:
            now = time.perf_counter()
            for rec in json.loads(body).get("records", []):
                m = _NAME.match(str(rec.get("Name", "")))
                if m:
                    with self.lock:
                        self.seen.setdefault(int(m.group(1)), now)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def stages(url: str, sent: dict[int, float], seen: dict[int, float]) -> dict[str, float]:
    """p99 of each stage: post -> stored (received_at), stored -> committed (processed_at), -> in the org."""
    from sqlalchemy import select

    from hub.models import Inbox
    from hub.store import make_engine
    engine = make_engine(url)
    it = Inbox.__table__
    with engine.connect() as conn:
        rows = {int(r.event_key.rsplit("-", 1)[1]): r for r in conn.execute(
            select(it.c.event_key, it.c.received_at, it.c.processed_at).where(it.c.event_key.like("erp:bench-%")))}
    engine.dispose()
    store, process, push = [], [], []
    for i, r in rows.items():
        if i in seen and r.processed_at is not None:
            store.append(r.received_at.timestamp() - sent[i])
            process.append((r.processed_at - r.received_at).total_seconds())
            push.append(seen[i] - r.processed_at.timestamp())
    if not store:
        return {}
    return {"stage_p99_ms": {"store": round(percentile(store, 99) * 1000, 1),
                             "process": round(percentile(process, 99) * 1000, 1),
                             "push": round(percentile(push, 99) * 1000, 1)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=50.0, help="events per second")
    ap.add_argument("--window-ms", type=int, default=150, help="the worker's gathering window")
    ap.add_argument("--store", help="store URL (default: SQLite in the temp project)")
    ap.add_argument("--keep", action="store_true", help="keep the temp project")
    args = ap.parse_args()

    import requests

    from connectors.salesforce.simulator import create_app
    from connectors.simkit import SimOptions, SimServer
    from hub.config import load_config
    from hub.push import push
    from hub.store import make_engine, upgrade
    from hub.streams import Parts
    from hub.sync import run_sync

    work = Path(tempfile.mkdtemp(prefix="triad-latency-"))
    sf = create_app(SimOptions(records=1))
    arrivals = Arrivals(sf)
    sim = SimServer(arrivals).start()
    (work / "exports").mkdir()
    stamp = "2026-01-01 08:00:00"
    with (work / "exports" / "customers.csv").open("w", encoding="utf-8") as fh:
        fh.write(",".join(HEADER) + "\n")
        for i in range(args.events):
            fh.write(",".join(row(i, f"Customer {i}", stamp).values()) + "\n")
    store = args.store or "sqlite:///hub.db"
    (work / "triad.yaml").write_text(CONFIG.format(store=store, secret=SECRET.decode(), sf_url=sim.base_url,
                                                   window_ms=args.window_ms), encoding="utf-8")
    cfg = load_config(str(work / "triad.yaml"))
    engine = make_engine(cfg.store.url)
    upgrade(engine)
    parts = Parts(cfg)
    t = time.perf_counter()
    run_sync(engine, parts)
    push(engine, parts)
    parts.close()
    engine.dispose()
    print(f"loaded {args.events} customers into the hub and the org in {time.perf_counter() - t:.1f}s",
          file=sys.stderr)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}
    log = open(work / "serve.log", "w") if args.keep else None
    serve = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(work / "triad.yaml"),
                              *(["-vv"] if args.keep else []), "serve", "--port", str(port)], cwd=ROOT, env=env,
                             stderr=log)
    base = f"http://127.0.0.1:{port}"
    http = requests.Session()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http.get(f"{base}/healthz", timeout=1).json().get("worker") == "running":
                    break
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit("triad serve did not come up")
            time.sleep(0.1)

        sent: dict[int, float] = {}
        sent_wall: dict[int, float] = {}
        answers: list[float] = []
        errors: list[str] = []
        local = threading.local()

        def post(i: int) -> None:
            s = getattr(local, "s", None) or requests.Session()
            local.s = s
            now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
            body = json.dumps({"entity": "customer", "event_id": f"bench-{i}",
                               "records": [row(i, f"Bench {i}", now)]}).encode()
            sig = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
            t0 = time.perf_counter()
            sent[i], sent_wall[i] = t0, time.time()
            r = s.post(f"{base}/webhooks/erp", data=body, timeout=10,
                       headers={"Content-Type": "application/json", "X-Triad-Signature": sig})
            answers.append(time.perf_counter() - t0)
            if r.status_code != 202:
                errors.append(f"{i}: {r.status_code} {r.text[:200]}")

        cpu0 = cpu_seconds(serve.pid)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            for i in range(args.events):
                delay = start + i / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(post, i)
        posted = time.perf_counter() - start
        deadline = time.monotonic() + 60
        while len(arrivals.seen) < args.events and time.monotonic() < deadline:
            time.sleep(0.05)
        cpu = cpu_seconds(serve.pid) - cpu0
        lat = [arrivals.seen[i] - sent[i] for i in sent if i in arrivals.seen]
        result = {"events": args.events, "rate": args.rate, "window_ms": args.window_ms,
                  "store": "sqlite" if store.startswith("sqlite") else store.split(":")[0],
                  "posted_in_s": round(posted, 2), "arrived": len(lat), "post_errors": len(errors),
                  "p50_ms": round(percentile(lat, 50) * 1000, 1), "p95_ms": round(percentile(lat, 95) * 1000, 1),
                  "p99_ms": round(percentile(lat, 99) * 1000, 1), "max_ms": round(max(lat) * 1000, 1),
                  "post_p99_ms": round(percentile(answers, 99) * 1000, 1),
                  "server_cpu_ms_per_event": round(cpu / args.events * 1000, 2),
                  "load": round(os.getloadavg()[0], 2)}
        result.update(stages(cfg.store.url, sent_wall, {i: sent_wall[i] + arrivals.seen[i] - sent[i]
                                                        for i in sent if i in arrivals.seen}))
        for e in errors[:5]:
            print(e, file=sys.stderr)
        print(f"p50 {result['p50_ms']} ms  p95 {result['p95_ms']} ms  p99 {result['p99_ms']} ms  "
              f"(max {result['max_ms']} ms; {result['arrived']}/{args.events} arrived)", file=sys.stderr)
        print(json.dumps(result))
    finally:
        serve.terminate()
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
        sim.stop()
        if not args.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"project kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
