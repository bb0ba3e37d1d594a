"""Inbound sync throughput on SQLite (or PostgreSQL): initial load, no-op re-sync, 1% incremental; peak RSS.

Generates N deterministic customers as a CSV file source, runs each phase in a
fresh process through the real pipeline (map, validate with great-expectations,
identity, merge, set-based writes), the incremental phase also in a warm process
(imports done, as in a long-running worker), and measures references on the same
rows: a raw sqlite3 executemany into one table, the store floor (raw sqlite3 writes
of exactly what an initial load stores per record, in Triad's own tables, with the
store's settings), great-expectations alone (the shipped customer suite, batch by
batch), the bound those two set together, and dlt's merge load when dlt is
installed (here, or in the interpreter ``--dlt-python`` names). Prints one JSON line.

    python benchmarks/sync_throughput.py --records 1000000
    python -m venv /tmp/dlt && /tmp/dlt/bin/pip install 'dlt[sqlalchemy]'
    python benchmarks/sync_throughput.py --records 1000000 --dlt-python /tmp/dlt/bin/python
    python benchmarks/sync_throughput.py --records 100000 --store postgresql+psycopg://postgres@127.0.0.1:5432/bench

With ``--store`` the phases run on that (empty) store; the references stay what they are (SQLite), and the
store floor, measured in SQLite's own files, is left out.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

HEADER = ["customer_no", "name", "tax_id", "email", "phone", "country", "province", "city", "address",
          "postal_code", "currency", "credit_limit", "payment_terms", "status", "updated_at"]
CITIES = [("上海", "上海"), ("北京", "北京"), ("广东", "深圳"), ("浙江", "杭州"), ("江苏", "南京"), ("四川", "成都")]

CONFIG = """
store: {{url: '{store}'}}
connectors:
  erp:
    type: file
    path: ./exports
    direction: in
    batch_size: {batch}
    entities: {{customer: {{mapping: customer.yaml}}}}
matching:
  customer: {{exact: [tax_id]}}
"""

MAPPING = """
source: "customers*.csv"
key: customer_no
updated_at: updated_at
timezone: Asia/Shanghai
fields:
  code: customer_no
  name: name
  tax_id: {from: tax_id, transform: upper}
  email: {from: email, transform: lower}
  phone: phone
  country: country
  province: province
  city: city
  address: address
  postal_code: postal_code
  currency: currency
  credit_limit: {from: credit_limit, type: decimal}
  payment_terms: payment_terms
  status: status
"""


def row(i: int, version: int = 0) -> list[str]:
    prov, city = CITIES[i % len(CITIES)]
    # one day later per version (past the month's end too: a run with --repeat makes many versions)
    day = date(2026, 10, 1) + timedelta(days=version)
    stamp = f"{day.isoformat()} {(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}"
    return [f"C{i:08d}", f"{city}测试贸易有限公司{i}", f"91310000MA{i:08d}", f"buyer{i}@example{i % 97}.cn",
            f"+8613{i % 1000000000:09d}", "CN", prov, city, f"{city}市测试路{i % 999}号", f"{200000 + i % 9999}",
            "CNY", f"{(i % 5000) * 100}.{i % 100:02d}" if version == 0 else f"{(i % 5000) * 100 + 7}.00",
            "NET30", "active", stamp]


def write_csv(path: Path, rows) -> None:  # noqa: ANN001
    import csv
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)


def phase(workdir: Path, name: str, args: list[str], warm: bool = False) -> dict:
    """Run one `triad` command in a fresh process; wall time and that process's peak RSS.

    ``warm``: the clock starts after the imports a long-running worker or scheduler has already
    done (the CLI, SQLAlchemy, great-expectations), so the figure is the CLI command without them.
    """
    start = ("import cli; from hub.validation_suites import gx_module; gx_module(); t=time.perf_counter()\n"
             if warm else "t=time.perf_counter(); import cli\n") + "cli.skip_final_collection_at_exit()\n"
    # VmHWM, this process's own peak: ru_maxrss would carry the parent's peak over the exec
    code = ("import sys, time, json\n"
            "def peak_rss_mb():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            return int(line.split()[1]) / 1024\n" + start +
            "try:\n    cli.main(sys.argv[1:], standalone_mode=False)\n"
            "finally:\n    print(json.dumps({'wall': time.perf_counter()-t, 'rss_mb': peak_rss_mb()}), file=sys.stderr)\n")
    env = dict(os.environ)
    env.pop("TRIAD_DATABASE_URL", None)
    began = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, "--json", *args], cwd=workdir, env=env, capture_output=True,
                       text=True)
    process_s = time.perf_counter() - began    # what an admin waits for: start-up and exit included
    if p.returncode != 0:
        raise SystemExit(f"{name} failed:\n{p.stderr[-3000:]}")
    stats = json.loads(p.stderr.strip().splitlines()[-1])
    stats["process"] = process_s
    runs = json.loads(p.stdout).get("runs", []) if p.stdout.strip() else []
    stats["runs"] = [{k: r[k] for k in ("read", "created", "updated", "unchanged", "quarantined")} for r in runs]
    return stats


def worker_phase(workdir: Path, delta: str, n: int, first: int, version: int, step: int) -> dict:
    """One sync cycle as `triad worker` runs it, in a process that has run one cycle already: imports,
    config, the store's engine, the connectors and the validation suite are there (a worker keeps them
    from cycle to cycle), and so is the engine's checkpoint thread, which copies the log back while the
    worker waits for its next cycle. The process writes the delta file itself between the two cycles;
    the clock runs around the second cycle's `run_sync` alone."""
    code = ("import sys, json, time, importlib.util\n"
            "from pathlib import Path\n"
            "spec = importlib.util.spec_from_file_location('bench', sys.argv[1])\n"
            "bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)\n"
            "import cli; cli.skip_final_collection_at_exit()\n"
            "from hub.context import Context\n"
            "from hub.streams import Parts\n"
            "from hub.sync import run_sync\n"
            "ctx = Context()\n"
            "engine, parts = ctx.engine(), Parts(ctx.config())\n"
            "run_sync(engine, parts, user='bench')    # the cycle before\n"
            "from hub.validation_suites import gx_module; gx_module()   # imported by an earlier cycle that validated\n"
            "n, first, version, step = (int(a) for a in sys.argv[3:7])\n"
            "bench.write_csv(Path('exports') / sys.argv[2], (bench.row(i, version=version) for i in range(first, n, step)))\n"
            "t = time.perf_counter()\n"
            "runs = run_sync(engine, parts, user='bench')\n"
            "wall = time.perf_counter() - t\n"
            "ctx.close()\n"
            "print(json.dumps({'wall': wall, 'runs': [r.as_dict() for r in runs]}))\n")
    env = dict(os.environ)
    env.pop("TRIAD_DATABASE_URL", None)
    p = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve()), delta, str(n), str(first),
                        str(version), str(step)], cwd=workdir, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"incremental (worker) failed:\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["runs"] = [{k: r[k] for k in ("read", "created", "updated", "unchanged", "quarantined")} for r in out["runs"]]
    return out


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one of an even number)."""
    return sorted(runs, key=lambda r: r["wall"])[(len(runs) - 1) // 2]


def raw_sqlite_rate(rows: list[list[str]], workdir: Path) -> float:
    db = sqlite3.connect(workdir / "raw.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"CREATE TABLE customer ({', '.join(h + ' TEXT' for h in HEADER)})")
    t = time.perf_counter()
    db.executemany(f"INSERT INTO customer VALUES ({', '.join('?' * len(HEADER))})", rows)
    db.commit()
    dt = time.perf_counter() - t
    db.close()
    return len(rows) / dt


def store_floor_rate(rows: list[list[str]], workdir: Path) -> float:
    """The physical floor of Triad's own store: raw sqlite3 executemany of what an initial load writes
    per customer (golden row, xref, source_state with its values, one history row, one match key) into
    a copy of the migrated hub database, with every value, id and JSON text prepared beforehand."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from hub.sqlite_checkpoint import BACKSTOP_PAGES
    from hub.store import compact_json
    from hub.types import new_id
    shutil.copy(workdir / "hub.db", workdir / "floor.db")
    db = sqlite3.connect(workdir / "floor.db", isolation_level=None)
    # the store's own settings (hub.store, hub.sqlite_checkpoint): WAL copied back by a second thread
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "cache_size=-65536",
                   f"wal_autocheckpoint={BACKSTOP_PAGES}"):
        db.execute(f"PRAGMA {pragma}")
    stop = threading.Event()

    def checkpoints() -> None:
        other = sqlite3.connect(workdir / "floor.db", isolation_level=None, check_same_thread=False)
        while not stop.wait(1.0):
            other.execute("PRAGMA wal_checkpoint(PASSIVE)")
        other.close()

    copier = threading.Thread(target=checkpoints, daemon=True)
    copier.start()
    fields = ["code", "name", "tax_id", "email", "phone", "country", "province", "city", "address", "postal_code",
              "currency", "credit_limit", "payment_terms", "status"]
    now = "2026-11-29 10:00:00.000000"
    prepared = []
    for r in rows:
        values = dict(zip(fields, r[:14]))
        rid = new_id()
        text = compact_json(values)      # as the store encodes JSON
        prov = compact_json({"*": ["erp", "2026-10-01T00:00:00+00:00"]})
        prepared.append((rid, values, text, prov, new_id()))
    golden_sql = (f"INSERT INTO customer ({', '.join(fields)}, id, updated_at, provenance, version) "
                  f"VALUES ({', '.join('?' * len(fields))}, ?, ?, ?, 1)")
    t = time.perf_counter()
    for start in range(0, len(prepared), 10_000):
        part = prepared[start:start + 10_000]
        db.execute("BEGIN")
        db.executemany(golden_sql, [(*v.values(), rid, now, prov) for rid, v, _, prov, _ in part])
        db.executemany("INSERT INTO xref VALUES (?, 'customer', 'erp', ?, ?, 'active', ?, ?)",
                       [(xid, v["code"], rid, now, now) for rid, v, _, _, xid in part])
        db.executemany("INSERT INTO source_state (entity, system, source_id, record_id, \"values\", row_hash, "
                       "raw_hash, source_ts, seen_at, run_id) VALUES ('customer', 'erp', ?, ?, ?, "
                       "'0123456789abcdef0123456789abcdef', '0123456789abcdef0123456789abcdef', ?, ?, 'RUN')",
                       [(v["code"], rid, text, now, now) for rid, v, text, _, _ in part])
        db.executemany("INSERT INTO field_history (entity, record_id, field, old, new, system, run_id, reason, at) "
                       "VALUES ('customer', ?, '*', NULL, ?, 'erp', 'RUN', 'create', ?)",
                       [(rid, text, now) for rid, _, text, _, _ in part])
        db.executemany("INSERT INTO match_key VALUES ('customer', ?, 'tax_id', ?)",
                       [(rid, v["tax_id"]) for rid, v, _, _, _ in part])
        db.execute("COMMIT")
    dt = time.perf_counter() - t
    stop.set()
    copier.join()
    db.close()
    return len(rows) / dt


def validation_rate(rows: list[list[str]], batch_size: int) -> float:
    """great-expectations alone: the shipped customer suite on the same rows, as canonical values,
    in batches of the pipeline's size, the way the pipeline calls it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from decimal import Decimal

    from hub.validation import DeferredValidator
    fields = [f for f in HEADER if f != "updated_at"]
    fields[0] = "code"
    validator = DeferredValidator("customer", None, frozenset(fields))
    validator.prepare()
    batches = []
    for start in range(0, len(rows), batch_size):
        batch = [dict(zip(fields, r)) for r in rows[start:start + batch_size]]
        for values in batch:
            values["credit_limit"] = Decimal(values["credit_limit"])
        batches.append(batch)
    t = time.perf_counter()
    for batch in batches:
        validator.validate(batch)
    return len(rows) / (time.perf_counter() - t)


def dlt_rate(rows: list[list[str]], workdir: Path, python: str | None = None) -> float | None:
    """dlt's merge load of the same records into SQLite; with ``python``, in that interpreter (dlt pins
    libraries of its own, so it usually lives in a virtualenv of its own), else here if dlt imports."""
    if python:
        p = subprocess.run([python, __file__, "--dlt-only", "--records", str(len(rows)), "--workdir", str(workdir)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"dlt reference failed:\n{p.stderr[-3000:]}")
        return float(p.stdout.strip().splitlines()[-1])
    try:
        import dlt
    except ImportError:
        return None
    records = [dict(zip(HEADER, r)) for r in rows]
    pipeline = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.sqlalchemy(
        f"sqlite:///{workdir / 'dlt.db'}"), dataset_name="main", pipelines_dir=str(workdir / "dlt"))
    t = time.perf_counter()
    pipeline.run(records, table_name="customer", write_disposition="merge", primary_key="customer_no")
    return len(records) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--changed", type=float, default=0.01, help="share changed for the incremental phase")
    ap.add_argument("--repeat", type=int, default=1,
                    help="incremental runs of each kind (fresh, warm), each on other changed records; the figures "
                         "are their medians (on a store the page cache does not hold, one run varies by a second)")
    ap.add_argument("--workdir", help="keep the project here (default: a temp dir, removed)")
    ap.add_argument("--store", default="sqlite:///hub.db",
                    help="the store the phases run on: an empty database (default: SQLite in the workdir)")
    ap.add_argument("--dlt-python", metavar="PYTHON",
                    help="measure dlt's merge load with this interpreter (one with dlt[sqlalchemy] installed)")
    ap.add_argument("--dlt-only", action="store_true", help=argparse.SUPPRESS)   # the child of --dlt-python
    args = ap.parse_args()
    if args.dlt_only:
        print(dlt_rate([row(i) for i in range(args.records)], Path(args.workdir)))
        return
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="triad-bench-"))
    if workdir.exists() and args.workdir:
        shutil.rmtree(workdir)
    (workdir / "exports").mkdir(parents=True)
    (workdir / "triad.yaml").write_text(CONFIG.format(batch=args.batch_size, store=args.store), encoding="utf-8")
    (workdir / "customer.yaml").write_text(MAPPING, encoding="utf-8")
    n = args.records
    rows = [row(i) for i in range(n)]
    write_csv(workdir / "exports" / "customers.csv", rows)
    raw = raw_sqlite_rate(rows, workdir)
    peer = dlt_rate(rows, workdir, args.dlt_python)
    phase(workdir, "migrate", ["db", "upgrade"])
    on_sqlite = args.store.startswith("sqlite")
    floor = store_floor_rate(rows, workdir) if on_sqlite else None
    checks = validation_rate(rows, args.batch_size)
    del rows

    initial = phase(workdir, "initial", ["sync", "run"])
    noop = phase(workdir, "noop", ["sync", "run", "--full"])
    k = max(1, int(n * args.changed))
    step = max(1, n // k)
    if not 1 <= args.repeat <= max(1, step // 3):
        raise SystemExit(f"--repeat: 1 to {max(1, step // 3)} at --changed {args.changed} (each run changes other records)")
    fresh_runs, warm_runs, worker_runs = [], [], []
    for r in range(args.repeat):   # run r changes the records at offsets 3r (fresh), 3r+1 (warm), 3r+2 (worker), a newer version each
        suffix = "" if r == 0 else f"_{r + 1}"
        write_csv(workdir / "exports" / f"customers_delta{suffix}.csv",
                  (row(i, version=3 * r + 1) for i in range(3 * r, n, step)))
        # the file connector reads a file written in the 2 s before a read again the next time: the runs
        # after the first wait, so that they too read only their own file (the first runs are as they always were)
        time.sleep(2.1 if r else 0)
        fresh_runs.append(phase(workdir, "incremental", ["sync", "run"]))
        write_csv(workdir / "exports" / f"customers_delta2{suffix}.csv",
                  (row(i, version=3 * r + 2) for i in range(3 * r + 1, n, step)))
        time.sleep(2.1 if r else 0)
        warm_runs.append(phase(workdir, "incremental (warm)", ["sync", "run"], warm=True))
        time.sleep(2.1)    # the worker's cycle before then skips the warm run's file
        worker_runs.append(worker_phase(workdir, f"customers_delta3{suffix}.csv", n, 3 * r + 2, 3 * r + 3, step))
    incr = {**_median_run(fresh_runs), "rss_mb": max(r["rss_mb"] for r in fresh_runs)}
    warm = _median_run(warm_runs)
    worker = _median_run(worker_runs)

    bound = 1 / (1 / floor + 1 / checks) if floor else None
    result = {
        "records": n, "batch_size": args.batch_size, "store": args.store.split(":", 1)[0],
        "initial_rps": round(n / initial["wall"]), "initial_s": round(initial["wall"], 1),
        "initial_rss_mb": round(initial["rss_mb"]),
        "noop_full_resync_s": round(noop["wall"], 1), "noop_rss_mb": round(noop["rss_mb"]),
        "incremental_changed": k, "incremental_s": round(incr["wall"], 2), "incremental_rss_mb": round(incr["rss_mb"]),
        # the whole process, as `triad sync run` runs it: interpreter start-up and exit included
        "incremental_process_s": round(incr["process"], 2), "noop_process_s": round(noop["process"], 1),
        "incremental_warm_s": round(warm["wall"], 2),
        "incremental_runs_s": [round(r["wall"], 2) for r in fresh_runs],
        "incremental_warm_runs_s": [round(r["wall"], 2) for r in warm_runs],
        # the same sync as one cycle of a running `triad worker` (engine, connectors and suite kept)
        "incremental_worker_s": round(worker["wall"], 2),
        "incremental_worker_runs_s": [round(r["wall"], 2) for r in worker_runs],
        "raw_sqlite_rps": round(raw), "ratio_to_raw": round(n / initial["wall"] / raw, 3),
        "store_floor_rps": round(floor) if floor else None,
        "ratio_to_floor": round(n / initial["wall"] / floor, 3) if floor else None,
        # the most any pipeline storing and validating these rows could reach: store floor and
        # great-expectations back to back, mapping, identity and merge taken as free
        "validation_rps": round(checks), "bound_rps": round(bound) if bound else None,
        "bound_ratio_to_raw": round(bound / raw, 3) if bound else None,
        "dlt_rps": round(peer) if peer else None,
        "ratio_to_dlt": round(n / initial["wall"] / peer, 2) if peer else None,
        "runs": {"initial": initial["runs"], "noop": noop["runs"], "incremental": incr["runs"],
                 "incremental_warm": warm["runs"], "incremental_worker": worker["runs"]},
    }
    print(json.dumps(result, ensure_ascii=False))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
