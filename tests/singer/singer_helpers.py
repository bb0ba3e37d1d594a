"""Helpers of the singer tests (this folder is on sys.path: no package on purpose)."""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FAKE_TAP = HERE / "fake_tap.py"
# the customer mapping of the tests' Singer streams (fake tap and tap-jsonl rows: id, name, email, city)
CUSTOMER_MAPPING = """
source: customers
key: id
updated_at: updated_at
fields:
  code: id
  name: name
  email: {from: email, transform: email}
  city: city
"""
sys.path.insert(0, str(HERE.parent / "rest"))           # rest_helpers: entry points for subprocesses


def write_customers(path: Path, n: int, start: int = 1, suffix: str = "") -> Path:
    """n customer rows as JSON Lines (what a legacy export or the scripted tap reads)."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(start, start + n):
            fh.write(json.dumps({"id": f"C{i:05d}", "name": f"Kunde {i}{suffix}", "email": f"c{i}@example.de",
                                 "city": ["Berlin", "Hamburg", "Köln"][i % 3],
                                 "updated_at": f"2026-01-{1 + i % 28:02d}T08:00:00Z"}) + "\n")
    return path


def find_tap_postgres() -> str | None:
    """tap-postgres lives in its own virtualenv (it pins SQLAlchemy): $TRIAD_TAP_POSTGRES, <venv>/taps, PATH."""
    candidates = [os.environ.get("TRIAD_TAP_POSTGRES"),
                  str(Path(sys.prefix) / "taps" / "tap-postgres" / "bin" / "tap-postgres"),
                  str(Path(sys.executable).parent / "tap-postgres")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def sync_here(root: Path) -> Any:
    """`triad sync run` of the project in ``root`` in this process (the same hub.sync code), its one report."""
    from connectors.singer.connector import SingerConnector
    from hub.config import load_config
    from hub.store import make_engine, upgrade
    from hub.streams import Parts
    from hub.sync import run_sync
    cfg = load_config(str(root / "triad.yaml"))
    engine = make_engine(cfg.store.url)
    upgrade(engine)
    parts = Parts(cfg, registry={"singer": SingerConnector})
    try:
        (report,) = run_sync(engine, parts)
    finally:
        parts.close()
        engine.dispose()
    return report


def query(root: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the project's SQLite store (``root``/hub.db)."""
    db = sqlite3.connect(root / "hub.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()
