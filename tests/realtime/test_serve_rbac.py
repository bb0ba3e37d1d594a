"""`triad serve` needs the admin permission, as `triad worker` and `triad scheduler start` do (SPEC 8): its
worker threads write golden records and drain the outbox. A refusal is exit 2, audited, and serves nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from hub.inbox import store
from hub.store import make_engine

from .helpers import ADMIN_AND_VIEWER, customer_row, rows, signed, wait_for, write_project

ROOT = Path(__file__).resolve().parents[2]


def serve(cfg: Path, user: str) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), "--config", str(cfg), "--user", user, "serve", "--port", "0"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("TRIAD_CONFIG", "TRIAD_USER", "TRIAD_DATABASE_URL")}


def test_a_user_without_admin_is_refused_and_nothing_is_served(tmp_path: Path, sqlite_url: str):
    cfg = write_project(tmp_path / "p", ADMIN_AND_VIEWER, sqlite_url)
    engine = make_engine(sqlite_url)
    body, _ = signed({"entity": "customer", "records": [customer_row(1, "Waiting")]})
    store(engine, "erp", {}, body)
    r = subprocess.run(serve(cfg, "bob"), cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "permission denied" in r.stderr and "missing permission 'admin'" in r.stderr, r.stderr
    assert "listening on" not in r.stdout
    assert rows(engine, "select status from inbox")[0].status == "pending"      # no worker thread took it
    denied = rows(engine, "select \"user\", action, target, outcome from audit_log where outcome = 'denied'")
    assert [(d.user, d.action, d.target) for d in denied] == [("bob", "denied:admin", "serve")]
    engine.dispose()


def test_an_admin_serves(tmp_path: Path, sqlite_url: str):
    cfg = write_project(tmp_path / "p", ADMIN_AND_VIEWER, sqlite_url)
    proc = subprocess.Popen(serve(cfg, "alice"), cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening on "), (first, proc.stderr.read() if proc.poll() is not None else "")
        url = first.split()[-1]
        health = wait_for(lambda: _get(f"{url}/healthz"), 30, "healthz")
        assert health.status_code == 200 and json.loads(health.text)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None
