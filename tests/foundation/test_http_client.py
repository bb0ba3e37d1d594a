"""hub.http.HttpClient against a real local HTTP server: what is sent again, and what stops a run."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from hub.errors import LimitExceeded, RetriableError
from hub.http import HttpClient, RetryPolicy


class Script:
    """Answers scripted per call: ("sleep", seconds) | (status, retry_after or None)."""

    def __init__(self) -> None:
        self.answers: list[tuple] = []
        self.calls = 0


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            script.calls += 1
            kind, arg = script.answers.pop(0) if script.answers else (200, None)
            if kind == "sleep":
                time.sleep(arg)
                kind, arg = 200, None
            try:
                self.send_response(kind)
                if arg is not None:
                    self.send_header("Retry-After", str(arg))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except (BrokenPipeError, ConnectionResetError):
                pass        # the client gave up waiting (a timeout test): nothing to answer to

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        block_on_close = True      # shutdown waits for a handler still sleeping

        def handle_error(self, request: object, client_address: object) -> None:
            pass                   # never a traceback on stderr, where another test may be reading

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", script
    srv.shutdown()
    srv.server_close()


def client(url: str, **policy: float) -> HttpClient:
    c = HttpClient(url, policy=RetryPolicy(**{"attempts": 4, "backoff": 0.001, "max_wait": 0.01, **policy}))
    c.sleep = lambda s: None
    return c


def test_a_create_that_timed_out_is_not_sent_again(server):
    url, script = server
    script.answers = [("sleep", 0.6)]
    with pytest.raises(RetriableError):
        client(url, timeout=0.2).request("POST", "/create", json={"a": 1}, idempotent=False)
    assert script.calls == 1                        # it may have been carried out: the caller looks first


def test_an_idempotent_request_that_timed_out_is_sent_again(server):
    url, script = server
    script.answers = [("sleep", 0.6)]
    assert client(url, timeout=0.2).request("POST", "/query", json={"a": 1}).status_code == 200
    assert script.calls == 2


@pytest.mark.parametrize("status, calls", [(503, 1), (429, 2)])
def test_a_create_is_sent_again_only_when_the_system_refused_it(server, status: int, calls: int):
    url, script = server
    script.answers = [(status, 0)]
    if calls == 1:
        with pytest.raises(RetriableError, match=str(status)):
            client(url).request("POST", "/create", json={}, idempotent=False)
    else:
        assert client(url).request("POST", "/create", json={}, idempotent=False).status_code == 200
    assert script.calls == calls


def test_a_retry_after_longer_than_a_run_waits_stops_the_run(server):
    url, script = server
    script.answers = [(429, 120)]
    slept: list[float] = []
    c = client(url)
    c.sleep = slept.append
    with pytest.raises(LimitExceeded, match="wait 120 s") as exc:
        c.request("POST", "/query", json={})
    assert exc.value.retry_after == 120 and slept == [] and script.calls == 1
    script.answers = [(429, 2)]                    # a short one is waited (up to max_wait) and retried
    assert c.request("POST", "/query", json={}).status_code == 200 and slept == [0.01]


def _closed_port_url() -> str:
    import socket
    with socket.socket() as s:           # a port nothing listens on (bound, then released)
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_refused_connection_says_so_and_a_check_asks_twice_a_second_apart(server):
    from hub.http import answering_quickly
    slept: list[float] = []
    c = client(_closed_port_url(), attempts=5, backoff=4, max_wait=30)
    c.sleep = slept.append
    with answering_quickly(), pytest.raises(RetriableError, match=r"ConnectionError \(Connection refused\)"):
        c.request("POST", "/query", json={})
    assert len(slept) == 1 and slept[0] <= 1.0
    url, script = server                 # a throttled answer: also one wait of at most a second
    script.answers = [(429, 20), (429, 20)]
    c = client(url, attempts=5, max_wait=30)
    c.sleep = slept.append
    with answering_quickly(), pytest.raises(RetriableError, match="429"):
        c.request("POST", "/query", json={})
    assert script.calls == 2 and slept[1:] == [1.0]
    slept.clear()                        # outside the block: the run's patience again (three sends, two waits)
    c = client(_closed_port_url(), attempts=3)
    c.sleep = slept.append
    with pytest.raises(RetriableError, match="Connection refused"):
        c.request("POST", "/query", json={})
    assert slept == [pytest.approx(0.01, abs=0.01)] * 2


def test_the_connectors_check_command_gives_its_verdict_in_seconds(tmp_path, monkeypatch):
    """SAP's check against a system that is down took 42 s (five sends, backoff); now two sends, a second apart."""
    from click.testing import CliRunner

    from cli import main
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    (tmp_path / "triad.yaml").write_text(f"""
store: {{url: 'sqlite:///{tmp_path / "hub.db"}'}}
connectors:
  sap: {{type: sap, base_url: {_closed_port_url()}, auth: {{user: u, password: p}}, entities: {{customer: {{}}}}}}
""", encoding="utf-8")
    began = time.monotonic()
    r = CliRunner().invoke(main, ["--config", str(tmp_path / "triad.yaml"), "connectors", "check", "sap"])
    assert r.exit_code == 1 and "Connection refused" in r.output, r.output
    assert time.monotonic() - began < 15
