"""A tap killed mid-stream: the rerun starts from the last committed STATE, nothing lost, nothing twice.

The hub's own sync (hub.sync.run_sync, the code behind `triad sync run`) drives a scripted tap
(a real subprocess) that emits a STATE every 10 records; the tap is SIGKILLed after a few
batches were committed.
"""
from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from singer_helpers import CUSTOMER_MAPPING, FAKE_TAP, write_customers

from connectors.singer.connector import SingerConnector
from hub.config import load_config
from hub.store import make_engine, upgrade
from hub.streams import Parts
from hub.sync import run_sync

N = 120

MAPPING = CUSTOMER_MAPPING


def config(data: Path, pause: float) -> str:
    tap = {"streams": {"customers": str(data)}, "state_every": 10, "pause": pause}
    return json.dumps({
        "store": {"url": "sqlite:///hub.db"},
        "connectors": {"legacy": {"type": "singer", "direction": "in", "batch_size": 7,
                                  "command": [sys.executable, str(FAKE_TAP)], "config": tap,
                                  "streams": {"customers": "customer"},
                                  "entities": {"customer": {"mapping": "legacy_customer.yaml"}}}}})


def sync(root: Path, pause: float, kill_after: int | None = None) -> Any:
    (root / "triad.yaml").write_text(config(root / "customers.jsonl", pause), encoding="utf-8")
    cfg = load_config(str(root / "triad.yaml"))
    engine = make_engine(cfg.store.url)
    upgrade(engine)
    parts = Parts(cfg, registry={"singer": SingerConnector})

    def progress(name: str, entity: str, counts: dict[str, int]) -> None:
        tap = parts.connectors["legacy"].process
        if kill_after is not None and counts["read"] >= kill_after and tap.poll() is None:
            tap.kill()

    try:
        (report,) = run_sync(engine, parts, progress=progress)
    finally:
        parts.close()
        engine.dispose()
    return report


def store(root: Path) -> dict[str, Any]:
    db = sqlite3.connect(root / "hub.db")
    try:
        cursor = db.execute("select cursor from stream_state where connector='legacy'").fetchone()[0]
        return {"customers": sorted(r[0] for r in db.execute("select code from customer")),
                "xrefs": db.execute("select count(*), count(distinct source_id) from xref").fetchone(),
                "creates": db.execute("select count(*) from field_history where field='*'").fetchone()[0],
                "cursor": json.loads(cursor) if isinstance(cursor, str) else cursor}
    finally:
        db.close()


def test_killed_tap_resumes_from_the_last_committed_state(tmp_path: Path) -> None:
    (tmp_path / "legacy_customer.yaml").write_text(MAPPING, encoding="utf-8")
    data = write_customers(tmp_path / "customers.jsonl", N)

    first = sync(tmp_path, pause=0.15, kill_after=25)
    assert first.status == "error" and "was killed by signal 9" in first.error
    partial = store(tmp_path)
    committed = partial["cursor"]["bookmarks"]["customers"]["line"]
    assert 20 <= committed < N and len(partial["customers"]) >= committed
    assert partial["xrefs"][0] == partial["xrefs"][1] == len(partial["customers"])

    second = sync(tmp_path, pause=0)
    assert second.status == "ok", second.error
    starts = [json.loads(line) for line in Path(f"{data}.runs").read_text(encoding="utf-8").splitlines()]
    assert starts == [{}, {"bookmarks": {"customers": {"line": committed}}}]    # --state: the committed STATE
    assert second.counts["read"] == N - committed                               # only what was not covered
    done = store(tmp_path)
    assert done["customers"] == [f"C{i:05d}" for i in range(1, N + 1)]          # nothing lost
    assert done["xrefs"] == (N, N) and done["creates"] == N                     # nothing twice
    assert done["cursor"] == {"bookmarks": {"customers": {"line": N}}}
    # records handed out after the last committed STATE of the killed run came again, unchanged
    assert second.counts["unchanged"] == len(partial["customers"]) - committed
