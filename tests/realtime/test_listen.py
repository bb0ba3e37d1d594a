"""`triad serve` and `triad simulate` tell where they listen, and a port they cannot have is one clear error."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import requests

from .helpers import SECRET, write_project

ROOT = Path(__file__).resolve().parents[2]
CONFIG = f"""
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
"""


def triad(*args: str, **kw) -> subprocess.Popen:  # noqa: ANN003
    env = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_serve_on_port_zero_prints_its_address(tmp_path: Path, sqlite_url: str):
    write_project(tmp_path / "p", CONFIG, sqlite_url)
    proc = triad("--config", str(tmp_path / "p" / "triad.yaml"), "serve", "--port", "0")
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:"), (first, proc.stderr.read() if proc.poll() else "")
        health = requests.get(first.split(" ")[-1] + "/healthz", timeout=10)
        # said once the worker is ready: a delivery sent on seeing the line does not wait for its start-up
        assert health.status_code == 200 and health.json()["worker"] == "running", health.json()
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_port_in_use_is_a_usage_error(tmp_path: Path, sqlite_url: str):
    write_project(tmp_path / "p", CONFIG, sqlite_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        for args in (["--config", str(tmp_path / "p" / "triad.yaml"), "serve", "--port", port],
                     ["simulate", "sap", "--port", port]):
            proc = triad(*args)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 2, (args, out, err)
            assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err, err


def test_simulate_tls_prints_the_certificate_path_alone_and_takes_it_away_when_stopped():
    proc = triad("simulate", "salesforce", "--port", "0", "--tls")
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on https://127.0.0.1:"), (first, proc.stderr.read() if proc.poll() else "")
        cert = proc.stdout.readline().strip()
        # the second line is a client's `verify=` as it is
        r = requests.post(first.split(" ")[-1] + "/services/oauth2/token", verify=cert, timeout=10,
                          data={"grant_type": "client_credentials", "client_id": "triad-client",
                                "client_secret": "triad-secret"})
        assert r.status_code == 200, r.text
        folder = Path(cert).parent
        assert sorted(p.name for p in folder.iterdir()) == ["sim-cert.pem"], "the private key stays in memory only"
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0 and not folder.exists()
