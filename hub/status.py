"""`triad status`: one set-based look at streams, records and open work."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from hub.config import TriadConfig
from hub.conflicts import merged_away
from hub.models import GOLDEN_MODELS, Conflict, Inbox, MatchCandidate, Outbox, Quarantine, StreamState, SyncRun
from hub.outbox import DROPPED_MARK, is_blocked


def hub_status(engine: Engine, cfg: TriadConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"records": {}, "streams": [], "hints": []}
    with engine.connect() as conn:
        for name, model in GOLDEN_MODELS.items():
            t = model.__table__
            count = conn.scalar(select(func.count()).select_from(t).where(t.c.merged_into.is_(None)))
            deleted = conn.scalar(select(func.count()).select_from(t).where(t.c.deleted_in.is_not(None),
                                                                            t.c.merged_into.is_(None)))
            out["records"][name] = {"count": count or 0, "deleted": deleted or 0}
        # rows named __...__ are the hub's own bookkeeping (flow history, the audit head), not streams
        states = {(r.connector, r.entity): r for r in conn.execute(select(StreamState.__table__))
                  if not r.connector.startswith("__")}
        last_runs: dict[tuple[str, str], Any] = {}
        sr = SyncRun.__table__
        latest = (select(sr.c.connector, sr.c.entity, func.max(sr.c.started_at).label("at"))
                  .where(sr.c.kind == "sync").group_by(sr.c.connector, sr.c.entity).subquery())
        for r in conn.execute(select(sr).join(latest, (sr.c.connector == latest.c.connector)
                                              & (sr.c.entity == latest.c.entity) & (sr.c.started_at == latest.c.at))):
            last_runs[(r.connector, r.entity)] = r
        streams = set(states) | set(last_runs)
        for name, c in cfg.connectors.items():
            if c.direction != "out":
                streams |= {(name, e) for e in c.entities}
        for key in sorted(streams):
            st, run = states.get(key), last_runs.get(key)
            out["streams"].append({
                "connector": key[0], "entity": key[1], "cursor": st.cursor if st else None,
                "last_run_id": run.id if run else None, "last_run_at": run.started_at if run else None,
                "last_status": run.status if run else None,
            })

        def count(table, *where) -> int:  # noqa: ANN001
            return conn.scalar(select(func.count()).select_from(table).where(*where)) or 0

        ct, qt, ot, mt = Conflict.__table__, Quarantine.__table__, Outbox.__table__, MatchCandidate.__table__
        out["conflicts"] = {"open": count(ct, ct.c.status == "open", ~merged_away(sorted(GOLDEN_MODELS))),
                            "auto": count(ct, ct.c.status == "auto"),
                            "resolved": count(ct, ct.c.status == "resolved")}
        out["quarantine"] = {"parked": count(qt, qt.c.status == "parked")}
        out["outbox"] = {"pending": count(ot, ot.c.status == "pending"), "dead": count(ot, ot.c.status == "dead"),
                         "done": count(ot, ot.c.status == "done"),
                         # pending, but held for a record whose own write failed for good or was dropped:
                         # no push helps
                         "blocked": count(ot, ot.c.status == "pending", is_blocked(ot.c.last_error))}
        held_by_dropped = count(ot, ot.c.status == "pending", ot.c.last_error.like(f"%{DROPPED_MARK}%"))
        out["matches"] = {"open": count(mt, mt.c.status == "open")}
        it = Inbox.__table__
        out["inbox"] = {"pending": count(it, it.c.status == "pending"), "error": count(it, it.c.status == "error")}
    if out["conflicts"]["open"]:
        out["hints"].append(f"{out['conflicts']['open']} open conflicts: triad conflicts list")
    if out["quarantine"]["parked"]:
        out["hints"].append(f"{out['quarantine']['parked']} records parked: triad quarantine list")
    if out["matches"]["open"]:
        out["hints"].append(f"{out['matches']['open']} possible duplicates: triad matches list")
    waiting = out["outbox"]["pending"] - out["outbox"]["blocked"]
    if waiting:
        out["hints"].append(f"{waiting} changes waiting to be written: triad sync push")
    if out["outbox"]["blocked"] - held_by_dropped:
        out["hints"].append(f"{out['outbox']['blocked'] - held_by_dropped} change(s) held for a write that failed "
                            "for good: triad outbox list --status dead, fix the cause, then triad outbox retry ID")
    if held_by_dropped:     # a dropped write cannot be retried: the record goes again with its next change
        out["hints"].append(f"{held_by_dropped} change(s) held for a record whose write was dropped: "
                            "triad outbox list --status pending; they go once a later change to that record "
                            "is written, or drop them")
    if out["inbox"]["error"]:    # answered 202 and stored, but never applied: only a person can act on them
        out["hints"].append(f"{out['inbox']['error']} webhook event(s) could not be read and were not applied: "
                            "triad inbox list --status error, then triad inbox show ID")
    if out["outbox"]["dead"]:
        out["hints"].append(f"{out['outbox']['dead']} writes failed for good: triad outbox list --status dead")
    if not out["streams"]:
        out["hints"].append("no streams yet: add connectors to triad.yaml, then triad sync run")
    return out
