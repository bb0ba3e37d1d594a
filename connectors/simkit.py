"""Shared plumbing for the vendor simulators: options, fault injection, serving.

Each ``connectors/<type>/simulator.py`` exposes ``create_app(options: SimOptions)``
returning a WSGI app that speaks the vendor's wire format. This module adds
what all of them share: deterministic fault injection (error rate, 429 with
Retry-After, latency, truncated bodies), a threaded server (HTTP or HTTPS with
a self-signed certificate made at start), and ``--state`` persistence.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import socketserver
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

WSGIApp = Callable[..., Iterable[bytes]]


@dataclass
class SimOptions:
    seed: int = 42
    records: int = 100
    fail_rate: float = 0.0           # share of requests answered 500/503
    rate_limit_rate: float = 0.0     # share of requests answered 429 with Retry-After
    truncate_rate: float = 0.0       # share of successful bodies cut in half
    latency_ms: int = 0
    request_budget: int | None = None   # after this many API calls: the vendor's limit error
    token_ttl: float | None = None      # seconds before an issued token expires
    state: str | None = None            # JSON file that keeps data across restarts
    client_id: str = "triad-client"
    client_secret: str = "triad-secret"
    user: str = "demo@triad.local"
    password: str = "triad-pass"
    acct_id: str = "triad-acct"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def app_key(self) -> str:
        return self.client_id

    @property
    def app_secret(self) -> str:
        return self.client_secret


class FaultInjector:
    """WSGI middleware: injects faults before the app sees the request.

    Deterministic for a given seed and request sequence. Paths in ``exempt``
    (token endpoints, say) are never failed, so a test can aim at data calls.
    """

    def __init__(self, app: WSGIApp, options: SimOptions, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.options = options
        self.exempt = exempt
        self.rng = random.Random(options.seed * 7919 + 1)
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "failed": 0, "throttled": 0, "truncated": 0}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        o = self.options
        path = environ.get("PATH_INFO", "")
        with self.lock:
            self.stats["requests"] += 1
            roll_fail, roll_429, roll_cut = self.rng.random(), self.rng.random(), self.rng.random()
        if o.latency_ms:
            time.sleep(o.latency_ms / 1000.0)
        if not any(path.startswith(p) for p in self.exempt):
            if roll_fail < o.fail_rate:
                self.stats["failed"] += 1
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"injected failure"]
            if roll_429 < o.rate_limit_rate:
                self.stats["throttled"] += 1
                start_response("429 Too Many Requests", [("Content-Type", "text/plain"), ("Retry-After", "1")])
                return [b"injected throttling"]
        body_parts: list[bytes] = []
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return body_parts.append

        for chunk in self.app(environ, capture):
            body_parts.append(chunk)
        body = b"".join(body_parts)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        if roll_cut < o.truncate_rate and captured["status"].startswith("200") and len(body) > 2:
            self.stats["truncated"] += 1
            body = body[: len(body) // 2]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]


class JsonState:
    """A simulator's data set, optionally kept in a JSON file across restarts."""

    def __init__(self, path: str | None, generate: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self.lock = threading.RLock()
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                self.data = json.load(fh)
        else:
            self.data = generate()
            self.save()

    def save(self) -> None:
        if not self.path:
            return
        with self.lock:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(self.path)) or ".")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.data, fh, ensure_ascii=False, default=str)
            os.replace(tmp, self.path)  # atomic: a kill never leaves half a file


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def self_signed_cert(directory: str) -> tuple[str, str]:
    """Write a self-signed certificate for 127.0.0.1/localhost; returns (cert path, key path)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "sim-cert.pem"), os.path.join(directory, "sim-key.pem")
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption()))
    return cert_path, key_path


class SimServer:
    """A simulator served on 127.0.0.1 in a background thread (tests, the demo) or forever (CLI).

    Attributes:
        base_url: e.g. ``http://127.0.0.1:54321``.
        cert_path: the self-signed certificate when ``tls`` is on, for the client's ``verify``.
    """

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 0, tls: bool = False) -> None:
        self.httpd = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self.cert_path: str | None = None
        scheme = "http"
        if tls:
            self._tmp = tempfile.mkdtemp(prefix="triad-sim-")
            self.cert_path, key_path = self_signed_cert(self._tmp)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert_path, key_path)
            os.remove(key_path)     # held in memory from here on: no private key left lying in /tmp
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.base_url = f"{scheme}://{host}:{self.port}"
        self.thread: threading.Thread | None = None

    def start(self) -> "SimServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"sim-{self.port}", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.close()

    def close(self) -> None:
        """Close the socket and remove the certificate (after :meth:`serve_forever` returned)."""
        self.httpd.server_close()
        if self.cert_path:
            shutil.rmtree(os.path.dirname(self.cert_path), ignore_errors=True)

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


SIMULATORS = {
    # system -> "module:function" returning a WSGI app from SimOptions
    "salesforce": "connectors.salesforce.simulator:create_app",
    "sap": "connectors.sap.simulator:create_app",
    "kingdee": "connectors.kingdee.simulator:create_app",
    "yonyou": "connectors.yonyou.simulator:create_app",
    "dingtalk": "connectors.dingtalk.simulator:create_app",
    "feishu": "connectors.feishu.simulator:create_app",
    "rest": "connectors.rest.simulator:create_app",
}


def load_simulator(system: str) -> Callable[[SimOptions], WSGIApp]:
    import importlib

    from hub.errors import UsageError
    target = SIMULATORS.get(system)
    if not target:
        raise UsageError(f"no simulator for '{system}'; known: {', '.join(SIMULATORS)}")
    module, func = target.split(":")
    try:
        return getattr(importlib.import_module(module), func)
    except ImportError as exc:
        raise UsageError(f"the {system} simulator is not available: {exc}") from exc
