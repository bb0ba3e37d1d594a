"""Throughput of 1, 2 and 3 `triad worker` processes sharing one PostgreSQL store.

Several inbound streams (file connectors, N customers each) are loaded by k workers started
together with `triad worker --once`; streams are shared out through their leases, so k workers
run up to k streams at once. Prints one JSON line per k: wall time, records/s and the load average
(1 min) just before the run, since the machine may be shared.

    python benchmarks/workers_scaling.py --streams 4 --records 25000
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine

ADMIN = os.environ.get("TRIAD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

MAPPING = """
source: customers.csv
key: no
updated_at: ts
fields:
  code: no
  name: name
  email: {from: email, transform: lower}
  city: city
  credit_limit: {from: limit, type: decimal}
"""


def project(root: Path, streams: int, records: int, batch: int) -> None:
    lines = ["store: {url: 'sqlite:///unused.db'}", "connectors:"]
    for s in range(streams):
        folder = root / f"sys{s}"
        folder.mkdir(parents=True)
        with (folder / "customers.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["no", "name", "email", "city", "limit", "ts"])
            for i in range(records):
                w.writerow([f"S{s}-{i:07d}", f"公司 {s}-{i}", f"c{i}@sys{s}.example.cn", f"城市{i % 40}",
                            f"{i % 9000}.00", "2026-11-01T00:00:00Z"])
        lines += [f"  sys{s}:", "    type: file", f"    path: ./sys{s}", "    direction: in",
                  f"    batch_size: {batch}", "    entities: {customer: {mapping: customer.yaml}}"]
    (root / "triad.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "customer.yaml").write_text(MAPPING, encoding="utf-8")


def run(root: Path, url: str, workers: int) -> float:
    env = dict(os.environ, TRIAD_DATABASE_URL=url)
    env.pop("TRIAD_CONFIG", None)
    subprocess.run([sys.executable, "-m", "cli", "db", "upgrade"], cwd=root, env=env, check=True,
                   capture_output=True)
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "cli", "worker", "--once", "--no-inbox"], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(workers)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode not in (0, 1):
            raise SystemExit(err[-2000:])
    # a worker that found every stream taken exits early: the others may still be loading; wait for them all
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--records", type=int, default=25_000)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--workers", default="1,2,3")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="triad-workers-"))
    project(root, args.streams, args.records, args.batch_size)
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    total = args.streams * args.records
    for k in (int(x) for x in args.workers.split(",")):
        name = f"triad_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        load = os.getloadavg()[0]
        try:
            wall = run(root, ADMIN.rsplit("/", 1)[0] + f"/{name}", k)
        finally:
            with admin.connect() as c:
                c.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        print(json.dumps({"workers": k, "streams": args.streams, "records": total, "wall_s": round(wall, 1),
                          "records_per_s": round(total / wall), "load_before": round(load, 2)}), flush=True)


if __name__ == "__main__":
    main()
