"""Helpers for the real-time tests: projects on disk, `triad serve` in a thread, signed webhooks."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable

import requests

SECRET = "rt-secret"
# alice may do anything, bob only read customers; erp takes signed file-connector webhooks
ADMIN_AND_VIEWER = f"""
roles:
  viewer: {{entities: [customer], can: [read]}}
users: {{alice: [admin], bob: [viewer]}}
connectors:
  erp: {{type: file, path: ./exports, direction: in, webhook_secret: {SECRET}, entities: [customer]}}
"""
SF_AUTH = ("{client_id: triad-client, client_secret: triad-secret, username: demo@triad.local, "
           "password: triad-pass}")


def write_project(root: Path, config: str, store_url: str) -> Path:
    """triad.yaml (with ``store_url``) and an exports folder; the store migrated to head."""
    from hub.config import load_config
    from hub.store import make_engine, upgrade
    root.mkdir(parents=True, exist_ok=True)
    (root / "exports").mkdir(exist_ok=True)
    (root / "triad.yaml").write_text(f"store: {{url: '{store_url}'}}\n" + config, encoding="utf-8")
    engine = make_engine(load_config(str(root / "triad.yaml")).store.url)
    upgrade(engine)
    engine.dispose()
    return root / "triad.yaml"


def two_file_systems(tmp_path: Path, store_url: str, a_mapping: str, b_mapping: str) -> tuple[Path, Any, Any]:
    """Customers in two `file` systems a and b (both ways, exact match on tax_id, most_recent by a then b)
    with the given mappings: (project root, engine, Parts)."""
    from hub.config import load_config
    from hub.store import make_engine
    from hub.streams import Parts
    root = tmp_path / "p"
    (root / "mappings").mkdir(parents=True)
    for s, text in (("a", a_mapping), ("b", b_mapping)):
        (root / "exports" / s).mkdir(parents=True)
        (root / "mappings" / f"{s}.yaml").write_text(text, encoding="utf-8")
    cfg_path = write_project(root, """connectors:
  a: {type: file, path: ./exports/a, direction: both, entities: {customer: {mapping: mappings/a.yaml}}}
  b: {type: file, path: ./exports/b, direction: both, entities: {customer: {mapping: mappings/b.yaml}}}
survivorship: {customer: {default: most_recent, priority: [a, b]}}
matching: {customer: {exact: [tax_id]}}
""", store_url)
    cfg = load_config(str(cfg_path))
    return root, make_engine(cfg.store.url), Parts(cfg)


def signed(doc: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Triad-Signature": sig}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`triad serve` (the real app, lifespan and worker threads) under uvicorn in a thread."""

    def __init__(self, config_path: Path, *, worker: bool = True) -> None:
        import uvicorn

        from hub.context import Context
        from hub.server import create_app
        self.ctx = Context(config_path=str(config_path))
        self.app = create_app(self.ctx, worker=worker)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()

    def __enter__(self) -> "Served":
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "uvicorn did not start")
        if getattr(self.app.state, "triad_realtime", None) and self.app.state.triad_realtime.worker:
            wait_for(lambda: self.app.state.triad_realtime.worker.state == "running", 60, "worker not ready")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.http.close()
        self.ctx.close()

    @property
    def engine(self):  # noqa: ANN201
        return self.ctx.engine()

    def post(self, connector: str, body: bytes, headers: dict[str, str] | None = None,
             params: dict[str, str] | None = None) -> requests.Response:
        return self.http.post(f"{self.url}/webhooks/{connector}", data=body, headers=headers or {}, params=params,
                              timeout=10)


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what}")
        time.sleep(0.02)


def rows(engine: Any, sql: str, **params: Any) -> list[Any]:
    from sqlalchemy import text
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def customer_row(i: int, name: str, stamp: str = "2026-11-01 08:00:00", **extra: str) -> dict[str, str]:
    """One customers.csv row of the shipped file mapping, complete (a webhook carries whole records)."""
    row = {"customer_no": f"C{i:04d}", "name": name, "type": "company", "tax_id": f"91310000RT{i:06d}",
           "email": f"c{i}@rt.example.cn", "phone": f"+86 21 {55500000 + i}", "country": "CN",
           "province": "上海市", "city": "上海", "address": f"{i} Realtime Road", "postal_code": "200000",
           "currency": "CNY", "credit_limit": str(1000 + i), "payment_terms": "Net 30", "status": "active",
           "tier": "", "owner": "Li", "updated_at": stamp}
    row.update(extra)
    return row


def write_customers(folder: Path, records: list[dict[str, str]]) -> None:
    header = list(records[0])
    lines = [",".join(header)] + [",".join(r[h] for h in header) for r in records]
    (folder / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
