"""An event accepted by `triad serve` and then the server killed (SIGKILL) before processing it:
the row is durable and the restarted server processes it. SIGTERM ends the server cleanly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from .helpers import SECRET, customer_row, free_port, rows, signed, wait_for, write_project

ROOT = Path(__file__).resolve().parents[2]
CONFIG = f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
serve: {{window_ms: {{window}}}}
"""


def serve(project: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}
    return subprocess.Popen([sys.executable, "-m", "cli", "--config", str(project / "triad.yaml"), "serve",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def health(port: int) -> dict | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()
    except (requests.RequestException, ValueError):
        return None


@pytest.mark.slow
def test_an_accepted_event_survives_a_kill(tmp_path: Path, sqlite_url: str):
    project = tmp_path / "p"
    # a gathering window of a minute: the event is accepted, then the process dies before its batch runs
    write_project(project, CONFIG.replace("{window}", "60000"), sqlite_url)
    port = free_port()
    first = serve(project, port)
    try:
        wait_for(lambda: health(port) or first.poll() is not None, 30, "serve to answer")
        assert first.poll() is None, first.stderr.read() if first.stderr else ""
        body, headers = signed({"entity": "customer", "records": [customer_row(5, "Durable Ltd")], "event_id": "d5"})
        r = requests.post(f"http://127.0.0.1:{port}/webhooks/erp", data=body, headers=headers, timeout=10)
        assert r.status_code == 202
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    from hub.store import make_engine
    engine = make_engine(sqlite_url)
    assert [x.status for x in rows(engine, "select status from inbox")] == ["pending"]
    assert rows(engine, "select count(*) n from customer")[0].n == 0

    (project / "triad.yaml").write_text((project / "triad.yaml").read_text().replace("60000", "50"))
    second = serve(project, port)
    try:
        wait_for(lambda: rows(engine, "select status from inbox")[0].status == "done" or second.poll() is not None,
                 60, "the restarted server to process the event")
        assert [c.name for c in rows(engine, "select name from customer")] == ["Durable Ltd"]
        again = requests.post(f"http://127.0.0.1:{port}/webhooks/erp", data=body, headers=headers, timeout=10)
        assert again.status_code == 202 and again.json()["duplicate"] is True      # the sender's retry
        second.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells it was SIGTERM
        assert second.wait(20) in (0, -signal.SIGTERM)
        assert "Traceback" not in second.stderr.read()
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(10)
    assert len(rows(engine, "select id from inbox")) == 1
    # the worker closed its run on the way out (it would stay `running` after a kill)
    assert [(r.status, r.finished_at is not None) for r in rows(
        engine, "select status, finished_at from sync_run where kind = 'webhook'")] == [("ok", True)]
    engine.dispose()
