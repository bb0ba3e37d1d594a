"""Past runs for `triad runs list | show`."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from hub.errors import NotFound
from hub.models import SyncRun


def _row(r: Any) -> dict[str, Any]:
    stats = r["stats"] or {}
    return {"id": r["id"], "kind": r["kind"], "connector": r["connector"], "entity": r["entity"],
            "status": r["status"], "dry_run": r["dry_run"], "user": r["user"], "started_at": r["started_at"],
            "finished_at": r["finished_at"], "cursor": r["cursor"], "error": r["error"], **stats}


def list_runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    t = SyncRun.__table__
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(t).order_by(t.c.started_at.desc(), t.c.id.desc()).limit(limit)).mappings()]


def show_run(engine: Engine, run_id: str) -> dict[str, Any]:
    t = SyncRun.__table__
    with engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.id == run_id)).mappings().first()
    if r is None:
        # a dry run reports run ids too, and keeps nothing: say so to whoever looks one up
        raise NotFound(f"no run {run_id} (see `triad runs list`; `sync run --dry-run` keeps no runs)")
    return _row(r)
