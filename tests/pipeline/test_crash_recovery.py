"""SIGKILL a multi-batch `triad sync run`, run it again: nothing lost, nothing duplicated,
and the store equals the one an uninterrupted run produces."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

N = 4000

CONFIG = """
store: {url: 'sqlite:///hub.db'}
connectors:
  erp:
    type: file
    path: ./exports
    direction: in
    batch_size: 100
    entities: {customer: {mapping: customer.yaml}}
matching:
  customer: {exact: [tax_id]}
"""

MAPPING = """
source: customers.csv
key: customer_no
updated_at: updated_at
timezone: Asia/Shanghai
fields:
  code: customer_no
  name: name
  email: {from: email, transform: email}
  city: city
  credit_limit: {from: credit_limit, type: decimal}
  status: status
"""


def make_project(root: Path, batch_size: int = 100, n: int = N) -> Path:
    (root / "exports").mkdir(parents=True)
    (root / "triad.yaml").write_text(CONFIG.replace("batch_size: 100", f"batch_size: {batch_size}"), encoding="utf-8")
    (root / "customer.yaml").write_text(MAPPING, encoding="utf-8")
    lines = ["customer_no,name,email,city,credit_limit,status,updated_at"]
    for i in range(n):
        lines.append(f"C{i:06d},公司{i},c{i}@example.cn,城市{i % 50},{i * 10}.50,active,2026-11-01 08:{i % 60:02d}:00")
    (root / "exports" / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def triad(root: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("TRIAD_DATABASE_URL", None)
    env.pop("TRIAD_CONFIG", None)
    # SIGINT as a terminal delivers it: a shell's background job (a CI script run with &) ignores it, and so
    # would the child
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run_ok(root: Path, *args: str) -> None:
    p = triad(root, *args)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err


def snapshot(root: Path) -> dict:
    db = sqlite3.connect(root / "hub.db")
    try:
        return {
            "golden": sorted(db.execute("select code, name, email, city, credit_limit, status from customer")),
            "xref": sorted(db.execute("select system, source_id from xref")),
            "xref_per_record": db.execute("select max(c) from (select count(*) c from xref group by record_id)").fetchone(),
            "creates": db.execute("select count(*), count(distinct record_id) from field_history where field='*'").fetchone(),
            "states": db.execute("select count(*) from source_state").fetchone(),
        }
    finally:
        db.close()


def count(root: Path) -> int:
    try:
        db = sqlite3.connect(root / "hub.db", timeout=1)
        try:
            return db.execute("select count(*) from customer").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path):
    clean = make_project(tmp_path / "clean")
    run_ok(clean, "db", "upgrade")
    run_ok(clean, "sync", "run")
    expected = snapshot(clean)
    assert len(expected["golden"]) == N and expected["creates"] == (N, N)

    crashed = make_project(tmp_path / "crashed")
    run_ok(crashed, "db", "upgrade")
    kills = 0
    for target in (300, 1800):          # two kills at different points of the run
        p = triad(crashed, "sync", "run")
        deadline = time.time() + 120
        while count(crashed) < target and p.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
        else:
            p.communicate()
        partial = count(crashed)
        assert partial % 100 == 0, "a batch is committed whole or not at all"
    assert kills >= 1, "the run finished before it could be killed; raise N"
    run_ok(crashed, "sync", "run")
    got = snapshot(crashed)
    assert got == expected


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_mid_run_records_the_run_as_stopped_and_says_so(tmp_path: Path, stop: signal.Signals):
    """SIGINT (Ctrl-C) or SIGTERM (kill) during a run: the batch in progress commits, one line says how to
    resume, exit 128 + the signal, and the run row ends as stopped (it stayed "running" for good); the next
    run completes the load."""
    # small batches: a run of many short steps, so that the signal (sent after the first 300 records, from a
    # test process that may be slow to get the CPU beside others) still finds it running, not exiting
    n = 1500     # the signal comes after 300: 60 batches left to find it running
    root = make_project(tmp_path / "p", batch_size=20, n=n)
    run_ok(root, "db", "upgrade")
    p = triad(root, "sync", "run")
    deadline = time.time() + 120
    while count(root) < 300 and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert p.poll() is None, "the run finished before it could be interrupted; raise n"
    p.send_signal(stop)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + stop, (err, out[-1000:], count(root))
    assert "finishing the current batch" in err and "resumes after the last committed batch" in err
    assert "Traceback" not in err
    stopped_at = count(root)
    assert 300 <= stopped_at < n and stopped_at % 20 == 0, "the batch in progress committed whole"
    with sqlite3.connect(root / "hub.db") as db:
        (status, error, finished), = db.execute("SELECT status, error, finished_at FROM sync_run").fetchall()
    assert status == "stopped" and "resumes after the last committed batch" in error and finished
    run_ok(root, "sync", "run")
    assert count(root) == n
