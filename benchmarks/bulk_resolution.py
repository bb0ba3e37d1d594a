"""Resolving many conflicts at once: `triad conflicts resolve --all` after a first load of two systems
that disagree on a field a steward decides.

Makes a `triad init` project whose ERP and CRM exports hold the same N customers (linked by tax id)
with different e-mail addresses (``email: manual`` in the template: N open conflicts), syncs it, then
times, each on a fresh copy of the synced store, `resolve --all --take crm` and `resolve --all --value`
in fresh `triad` processes. Prints one JSON line.

    python benchmarks/bulk_resolution.py --conflicts 5000
    python benchmarks/bulk_resolution.py --conflicts 5000 --store postgresql+psycopg://postgres@127.0.0.1:5432/bench

With ``--store`` (an empty PostgreSQL database, dropped and made again for each phase from a dump)
the project runs on it; pg_dump and pg_restore must be on the PATH.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stdnum.cn import uscc

ERP_HEADER = ("customer_no,name,type,tax_id,email,phone,country,province,city,address,postal_code,currency,"
              "credit_limit,payment_terms,status,updated_at")
CRM_HEADER = "AccountId,AccountName,TaxNumber,Email,Phone,Country,City,Street,Tier,Owner,Active,LastModified"


def exports(project: Path, n: int) -> None:
    for stale in project.glob("exports/*/*.csv"):
        stale.unlink()
    with open(project / "exports/erp/customers.csv", "w", encoding="utf-8") as erp, \
            open(project / "exports/crm/accounts.csv", "w", encoding="utf-8") as crm:
        erp.write(ERP_HEADER + "\n")
        crm.write(CRM_HEADER + "\n")
        for i in range(n):
            base = f"91310000MA{i:07d}"
            tax_id = base + uscc.calc_check_digit(base)
            erp.write(f"C{i:06d},公司{i},company,{tax_id},a{i}@x.cn,021-5555 {i % 10000:04d},中国,上海,上海,路{i}号,"
                      f"200120,CNY,5000.00,NET30,active,2026-11-01 09:00:00\n")
            crm.write(f"A{i:06d},公司{i},{tax_id},b{i}@x.cn,021-5555 {i % 10000:04d},CN,上海,路{i}号,Gold,王丽,true,"
                      f"2026-11-06T02:00:00Z\n")


def triad(project: Path, env: dict[str, str], *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "cli", "--json", *args], cwd=project, env=env, check=True,
                         capture_output=True, text=True)
    return time.perf_counter() - started, json.loads(out.stdout)


class Store:
    """The synced store, restored before each phase."""

    def __init__(self, project: Path, url: str | None) -> None:
        self.project, self.url = project, url
        self.saved = project.parent / "synced.store"

    def save(self) -> None:
        if self.url is None:
            shutil.copy(self.project / "triad.db", self.saved)
        else:
            subprocess.run(["pg_dump", "-Fc", "-f", str(self.saved), self._libpq()], check=True)

    def restore(self) -> None:
        if self.url is None:
            for suffix in ("-wal", "-shm"):
                (self.project / f"triad.db{suffix}").unlink(missing_ok=True)
            shutil.copy(self.saved, self.project / "triad.db")
        else:
            self.recreate()
            subprocess.run(["pg_restore", "-d", self._libpq(), str(self.saved)], check=True)

    def recreate(self) -> None:
        if self.url is not None:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url
            url = make_url(self.url)
            admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}"'))
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
            admin.dispose()

    def _libpq(self) -> str:
        from sqlalchemy.engine import make_url
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conflicts", type=int, default=5000)
    ap.add_argument("--store", help="an empty PostgreSQL database URL (default: the project's SQLite file)")
    ap.add_argument("--workdir", help="keep the project here (default: a temp dir, removed)")
    args = ap.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="triad-resolve-"))
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    for var in ("TRIAD_CONFIG", "TRIAD_USER", "TRIAD_DATABASE_URL"):
        env.pop(var, None)
    if args.store:
        env["TRIAD_DATABASE_URL"] = args.store
    project = root / "p"
    store = Store(project, args.store)
    try:
        store.recreate()
        shutil.rmtree(project, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "cli", "init", str(project)], env=env, check=True, capture_output=True)
        exports(project, args.conflicts)
        sync_s, _ = triad(project, env, "sync", "run")
        store.save()
        result = {"conflicts": args.conflicts, "store": "postgresql" if args.store else "sqlite",
                  "sync_s": round(sync_s, 1)}
        for name, decision in (("take", ["--take", "crm"]), ("value", ["--value", "shared@x.cn"])):
            store.restore()
            took, data = triad(project, env, "conflicts", "resolve", "--all", "--yes", *decision)
            assert len(data["resolved"]) == args.conflicts and not data.get("failed"), data.get("failed")
            result[f"{name}_s"] = round(took, 2)
            result[f"{name}_per_conflict_ms"] = round(1000 * took / args.conflicts, 2)
        print(json.dumps(result))
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
