"""Data API latency under load: GET-by-id and xref lookups against a store of N customers.

Builds the store set-based (SQLAlchemy Core executemany into ``customer`` and
``xref``, not through the pipeline; every customer is linked in two systems),
starts `triad serve` (uvicorn) on 127.0.0.1, and drives it with an open-loop
load generator: requests are scheduled at a fixed rate and each latency is
measured from its scheduled start, so a slow answer also delays (and counts
against) the requests queued behind it. Prints one JSON document.

    python benchmarks/api_load.py --records 1000000 --rate 200 --duration 30
    python benchmarks/api_load.py --store postgresql+psycopg://postgres@127.0.0.1:5432/triad_bench --records 1000000
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITIES = [("上海", "上海"), ("北京", "北京"), ("广东", "深圳"), ("浙江", "杭州"), ("江苏", "南京"), ("四川", "成都")]
CHUNK = 20_000


def record_id(i: int) -> str:
    return f"01BENCH{i:019d}"          # 26 characters, like a ULID; deterministic so the load needs no sampling


def build(url: str, n: int) -> dict[str, Any]:
    """Create (or reuse) a store with ``n`` customers, each linked to erp (C...) and crm (001B...) ids."""
    from sqlalchemy import func, insert, select

    from hub.models import Customer, Xref
    from hub.store import make_engine, upgrade
    engine = make_engine(url)
    upgrade(engine)
    ct, xt = Customer.__table__, Xref.__table__
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(ct))
    if have == n:
        engine.dispose()
        return {"built": False, "seconds": 0.0}
    if have:
        raise SystemExit(f"{url} holds {have} customers, not {n}: use an empty store")
    rng = random.Random(42)
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    for start in range(0, n, CHUNK):
        customers, xrefs = [], []
        for i in range(start, min(n, start + CHUNK)):
            province, city = CITIES[i % len(CITIES)]
            rid = record_id(i)
            at = now - timedelta(seconds=n - i)
            customers.append({
                "id": rid, "code": f"C{i:07d}", "name": f"客户 {i} 有限公司", "customer_type": "company",
                "tax_id": f"9131{i:014d}", "email": f"ap{i}@example.cn", "phone": f"+8621{rng.randrange(10**8):08d}",
                "country": "CN", "province": province, "city": city, "address": f"{city}路{i % 999}号",
                "postal_code": f"{200000 + i % 99999}", "currency": "CNY", "credit_limit": rng.randrange(1, 500) * 1000,
                "payment_terms": "NET30", "status": "active", "tier": None, "owner": None, "created_at": None,
                "updated_at": at, "provenance": {"*": ["erp", at.isoformat()]}, "deleted_in": None,
                "merged_into": None, "version": 1})
            for system, sid in (("erp", f"C{i:07d}"), ("crm", f"001B{i:07d}")):
                xrefs.append({"id": f"01XREF{system[0].upper()}{i:019d}", "entity": "customer",
                              "system": system, "source_id": sid, "record_id": rid, "status": "active",
                              "created_at": at, "updated_at": at})
        with engine.begin() as conn:
            conn.execute(insert(ct), customers)
            conn.execute(insert(xt), xrefs)
        print(f"  {min(n, start + CHUNK):>9,} customers", file=sys.stderr, end="\r")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE customer")
            conn.exec_driver_sql("VACUUM ANALYZE xref")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return {"built": True, "seconds": round(time.perf_counter() - t0, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config), "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import requests
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"triad serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("triad serve did not answer within 60 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(base: str, token: str, paths: list[str], rate: float, seconds: float, threads: int) -> dict[str, Any]:
    """Open loop: request k is due at start + k/rate; its latency counts from that moment."""
    import requests
    due: queue.Queue = queue.Queue()
    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    total = int(rate * seconds)

    def worker() -> None:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {token}"
        while True:
            item = due.get()
            if item is None:
                return
            at, path = item
            wait = at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                r = s.get(base + path, timeout=10)
                ok = r.status_code == 200
                err = None if ok else f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                err = type(exc).__name__
            took = time.perf_counter() - at
            with lock:
                lat.append(took)
                if err:
                    errors[err] = errors.get(err, 0) + 1

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    start = time.perf_counter() + 0.2
    for k in range(total):
        due.put((start + k / rate, paths[k % len(paths)]))
    for _ in pool:
        due.put(None)
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)
    return {"requests": len(lat), "rate_achieved": round(len(lat) / elapsed, 1), "p50_ms": pct(0.50),
            "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000, 2), "errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=None, help="store URL (default: SQLite in --workdir)")
    ap.add_argument("--workdir", default="/tmp/triad-api-bench")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per measured phase")
    ap.add_argument("--threads", type=int, default=32, help="load generator threads")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    url = args.store or f"sqlite:///{work / 'hub.db'}"
    config = work / "triad.yaml"
    config.write_text(f"store: {{url: '{url}'}}\n", encoding="utf-8")
    built = build(url, args.records)

    from hub import tokens
    from hub.store import make_engine
    engine = make_engine(url)
    token = tokens.create(engine, "bench", by="bench", name="api_load")["token"]
    engine.dispose()

    env = dict(os.environ)
    env.pop("TRIAD_DATABASE_URL", None)
    port = free_port()
    server = start_server(config, port, env)
    rng = random.Random(args.seed)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        picks = [rng.randrange(args.records) for _ in range(20_000)]
        by_id = [f"/records/customer/{record_id(i)}" for i in picks]
        by_xref = [f"/xref/{'erp' if i % 2 else 'crm'}/customer/{'C%07d' % i if i % 2 else '001B%07d' % i}"
                   for i in picks]
        load(base, token, by_id[:1000], args.rate, 5, args.threads)        # warm up caches and connections
        results = {}
        for name, paths in (("get_by_id", by_id), ("xref", by_xref)):
            cpu0 = cpu_seconds(server.pid)
            results[name] = load(base, token, paths, args.rate, args.duration, args.threads)
            # the server's own CPU per request: comparable across machines and background load
            results[name]["server_cpu_ms_per_request"] = round(
                (cpu_seconds(server.pid) - cpu0) * 1000 / results[name]["requests"], 2)
        results["load_average"] = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps({"store": url.split("://")[0], "records": args.records, "build": built, "rate": args.rate,
                      "duration_s": args.duration, **results}, indent=2))


if __name__ == "__main__":
    main()
