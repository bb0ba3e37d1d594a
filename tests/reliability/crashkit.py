"""Helpers for the reliability tests: a CRM and an ERP simulator with a tripwire in front of each (it
SIGKILLs a hub process at a chosen request), a project on them, `python -m cli` subprocesses, and an
in-process settle (sync + push until quiet)."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "crash-token"
# many small batches (each its own transaction); validation by an empty suite: it does not change what
# a crash does, and every subprocess would spend seconds importing great-expectations
OVERRIDES = {
    "connectors": {"crm": {"batch_size": 5, "webhook_token": TOKEN}, "erp": {"batch_size": 5}},
    "validation": {"customer": "no_expectations.yaml"},
    "outbox": {"batch_size": 5},
    "serve": {"window_ms": "${SOAK_WINDOW_MS:-50}", "poll_seconds": 0.2, "push_interval_seconds": 0},
}


def request_kind(system: str, environ: dict[str, Any]) -> str:
    """auth | read | write | other, from the path and method of a simulator request."""
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
    if system == "crm":
        if "/oauth2/" in path or "/Soap/" in path:
            return "auth"
        if "/query" in path:
            return "read"
        if method in ("POST", "PATCH", "PUT", "DELETE"):
            return "write"
        return "other"
    if "AuthService" in path:
        return "auth"
    if "Query" in path or path.endswith("View.common.kdsvc"):
        return "read"
    if "Save" in path:
        return "write"
    return "other"


@dataclass
class _Plan:
    kind: str
    n: int
    when: str                       # before: the app never sees the request; after: it has answered
    action: Callable[[], None]
    count: int = 0


class Tripwire:
    """WSGI middleware: runs an action (a SIGKILL, say) on the n-th request of a kind."""

    def __init__(self, system: str, app: Any) -> None:
        self.system, self.app = system, app
        self.lock = threading.Lock()
        self.plan: _Plan | None = None
        self.seen: Counter[str] = Counter()
        self.fired = threading.Event()

    def arm(self, kind: str, n: int, when: str, action: Callable[[], None]) -> None:
        with self.lock:
            self.plan = _Plan(kind, n, when, action)
            self.fired.clear()

    def disarm(self) -> None:
        with self.lock:
            self.plan = None

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        kind = request_kind(self.system, environ)
        fire = None
        with self.lock:
            self.seen[kind] += 1
            p = self.plan
            if p is not None and p.kind == kind:
                p.count += 1
                if p.count >= p.n:
                    fire, self.plan = p, None
        if fire is not None and fire.when == "before":
            fire.action()
            self.fired.set()
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"the caller is gone"]
        body = list(self.app(environ, start_response))
        if fire is not None:
            fire.action()
            self.fired.set()
        return body


class Proc:
    """One `python -m cli` subprocess of the project, and a way to kill it from a simulator thread."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}
        full.update(env or {})
        self.in_tx = False
        self.p = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config), *args], cwd=ROOT,
                                  env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def kill(self) -> None:
        try:
            os.kill(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def later(self, seconds: float) -> Callable[[], None]:
        """An action that kills the process ``seconds`` from when it runs."""
        return lambda: threading.Timer(seconds, self.kill).start()

    def in_transaction(self, db: Path, nth: int) -> Callable[[], None]:
        """An action that watches the SQLite store from when it runs and kills the process the moment it
        holds its ``nth`` write transaction open (each batch is one; so are the run's bookkeeping writes)."""
        def watch() -> None:
            conn = sqlite3.connect(str(db), timeout=0, isolation_level=None)
            seen, locked = 0, False
            try:
                while self.p.poll() is None:
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        conn.execute("ROLLBACK")
                        locked = False
                    except sqlite3.OperationalError:      # locked: the hub is inside a transaction
                        if not locked:
                            seen, locked = seen + 1, True
                        if seen >= nth:
                            self.kill()
                            self.in_tx = True
                            return
                    time.sleep(0.001)
            finally:
                conn.close()
        return lambda: threading.Thread(target=watch, daemon=True).start()

    def wait(self, timeout: float = 120) -> int:
        try:
            self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.p.communicate()
        return self.p.returncode

    @property
    def killed(self) -> bool:
        return self.p.returncode == -signal.SIGKILL


@dataclass
class World:
    """Two simulators behind tripwires, a migrated project on them, users and their ledger."""

    systems: Any
    wires: dict[str, "Tripwire"]
    config: Path
    engine: Any
    users: Any
    rng: random.Random

    def close(self) -> None:
        self.engine.dispose()
        self.systems.stop()


def make_world(root: Path, seed: int, records: int) -> World:
    """Start the simulators, write the project, mirror some companies and run the initial load."""
    from benchmarks.soak import Systems, Users, mirror, write_project
    from hub.config import load_config
    from hub.store import make_engine
    wires: dict[str, Tripwire] = {}

    def wrap(name: str, app: Any) -> Tripwire:
        wires[name] = Tripwire(name, app)
        return wires[name]
    systems = Systems.start(records, seed, wrap=wrap)
    try:
        root.mkdir(parents=True)
        (root / "no_expectations.yaml").write_text("[]\n", encoding="utf-8")
        config = write_project(root, systems, overrides=OVERRIDES)
        engine = make_engine(load_config(str(config)).store.url)
        rng = random.Random(seed)
        mirror(systems, rng, 0.25)
        settle(engine, config)                   # the initial load: both sides know everyone
    except BaseException:
        systems.stop()
        raise
    return World(systems, wires, config, engine, Users(systems, rng), rng)


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.time() + seconds
    while time.time() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def settle(engine: Any, config: Path, rounds: int = 8) -> None:
    """The restart: sync and push in this process until a round queues nothing and nothing is pending."""
    from benchmarks.soak import settle as soak_settle
    tally: dict[str, int] = {}
    assert soak_settle(engine, config, rounds, tally) is not None, f"the hub did not settle in {rounds} rounds: {tally}"


def stranded_claims(engine: Any) -> dict[str, str]:
    """Pending outbox rows still claimed, with their holder (``host:pid`` of a push that may be gone)."""
    from sqlalchemy import select

    from hub.models import Outbox
    from hub.types import utcnow
    ot = Outbox.__table__
    with engine.connect() as conn:
        return dict(conn.execute(select(ot.c.id, ot.c.claimed_by).where(ot.c.status == "pending",
                                                                        ot.c.claimed_until > utcnow())).all())
