"""`triad demo` at its edges: someone else's project folder, work left pending, the config it writes, --keep."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.config import parse_config
from hub.demo import MARKER, demo_config


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRIAD_")}


def demo(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "demo", *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=300)


def test_demo_refuses_a_folder_with_a_project_it_did_not_write(tmp_path: Path):
    project = tmp_path / "p6"
    project.mkdir()
    mine = "store: {url: 'sqlite:///hub.db'}\n"
    (project / "triad.yaml").write_text(mine, encoding="utf-8")
    p = demo(tmp_path, "--dir", str(project))
    assert p.returncode == 2, p.stdout + p.stderr
    assert str(project / "triad.yaml") in p.stderr
    assert "pick an empty folder" in p.stderr and "remove that triad.yaml" in p.stderr
    assert (project / "triad.yaml").read_text(encoding="utf-8") == mine
    assert sorted(f.name for f in project.iterdir()) == ["triad.yaml"]


@pytest.mark.slow
def test_demo_leaves_nothing_pending_and_runs_again_in_its_own_folder(tmp_path: Path):
    folder = tmp_path / "d"
    for _ in range(2):                 # the second run finds the demo's own triad.yaml and goes ahead
        p = demo(tmp_path, "--dir", str(folder))
        assert p.returncode == 0, p.stderr[-3000:]
        with sqlite3.connect(folder / "triad-demo.db") as db:
            inbox = db.execute("select status, count(*) from inbox group by status").fetchall()
            outbox = db.execute("select status, count(*) from outbox group by status").fetchall()
        assert dict(inbox).get("pending", 0) == 0 and dict(inbox).get("error", 0) == 0, inbox
        assert dict(outbox).get("pending", 0) == 0, outbox
        assert dict(inbox)["done"] >= 3            # start and finish of the budget approval, start of the review
    assert "(while the simulators run, use --keep)" in p.stdout
    assert "still pending" not in p.stdout
    text = (folder / "triad.yaml").read_text(encoding="utf-8")
    assert text.startswith(MARKER + "\n")


@pytest.mark.slow
def test_demo_finishes_the_events_its_server_had_not_taken_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from hub import worker
    from hub.demo import run_demo
    # a long gathering window: the review's start callback is stored but not yet taken when the story ends
    slow = worker.RealtimeOptions(window=3.0)
    monkeypatch.setattr(worker.RealtimeOptions, "from_config", classmethod(lambda cls, serve: slow))
    for name in [k for k in os.environ if k.startswith("TRIAD_")]:
        monkeypatch.delenv(name)
    summary = run_demo(tmp_path / "d", lambda _text: None)
    assert summary["pending"] == {"inbox": 0, "outbox": 0}
    with sqlite3.connect(tmp_path / "d" / "triad-demo.db") as db:
        assert db.execute("select status, count(*) from inbox group by status").fetchall() == [("done", 3)]


def test_the_written_config_reads_its_addresses_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    values = {"TRIAD_DEMO_CRM_URL": "http://127.0.0.1:40001", "TRIAD_DEMO_ERP_URL": "http://127.0.0.1:40002",
              "TRIAD_DEMO_OA_URL": "http://127.0.0.1:40003", "TRIAD_DEMO_OA_TOKEN": "tok",
              "TRIAD_DEMO_OA_AES_KEY": "k" * 43, "TRIAD_DEMO_OA_USER": "user7"}
    text = demo_config(values)
    assert "addresses come from the environment" in text
    assert "${TRIAD_DEMO_CRM_URL:-http://127.0.0.1:40001}" in text
    for name in values:
        monkeypatch.delenv(name, raising=False)
    cfg = parse_config(text, "triad.yaml")
    assert cfg.connectors["crm"].options["base_url"] == "http://127.0.0.1:40001"
    monkeypatch.setenv("TRIAD_DEMO_CRM_URL", "https://crm.example.com")
    cfg = parse_config(text, "triad.yaml")
    assert cfg.connectors["crm"].options["base_url"] == "https://crm.example.com"


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_keep_does_not_tell_to_use_keep(tmp_path: Path, stop: signal.Signals):
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        # SIGINT as a terminal delivers it: a shell's background job (a CI script run with &) ignores it, and
        # so would the demo started from it, waiting for a Ctrl-C that never comes
        proc = subprocess.Popen([sys.executable, "-m", "cli", "demo", "--keep", "--dir", str(tmp_path / "d")],
                                cwd=tmp_path, env=clean_env(), stdout=f, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.time() + 240
            while "Ctrl-C stops them" not in out.read_text(encoding="utf-8") and time.time() < deadline:
                assert proc.poll() is None, out.read_text(encoding="utf-8")
                time.sleep(0.2)
            proc.send_signal(stop)
            assert proc.wait(timeout=120) == 0, out.read_text(encoding="utf-8")
        finally:
            if proc.poll() is None:
                proc.kill()
    text = out.read_text(encoding="utf-8")
    assert "Explore further:" in text and "use --keep" not in text
    assert ("Ctrl-C: finishing the demo's pending work" in text) == (stop == signal.SIGINT)
    with sqlite3.connect(tmp_path / "d" / "triad-demo.db") as db:
        assert db.execute("select count(*) from inbox where status = 'pending'").fetchone() == (0,)
        assert db.execute("select count(*) from outbox where status = 'pending'").fetchone() == (0,)
