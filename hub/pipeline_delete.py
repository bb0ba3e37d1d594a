"""The delete path: rows flagged deleted in the batch, and source ids reported deleted.

A source record's xref is marked deleted at once; its golden record is flagged deleted in the system
(``deleted_in``, deletes queued where propagated) only when no other record of that system is linked
to it and active: two rows of one system can hold one golden record (an exact key, a changed key)."""
from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from hub import golden
from hub.models import Xref
from hub.outbox import OutboxQueue
from hub.pipeline_map import _bad_char
from hub.pipeline_merge import _dt
from hub.pipeline_types import BatchStats, StreamContext, _Item
from hub.pipeline_writes import _Writes
from hub.sqlutil import chunks

log = logging.getLogger("hub.pipeline")   # the batch's log lines keep one logger name


def _delete_one(ctx: StreamContext, item: _Item, rows: dict[str, golden.GoldenRow], w: _Writes,
                stats: BatchStats) -> None:
    if item.record_id is None:   # never seen alive: nothing to flag
        stats.add("unchanged")
        return
    w.keep_state(item, {"entity": ctx.entity, "system": ctx.system, "source_id": item.source_id,
                        "record_id": item.record_id, "values": item.base or item.values,
                        "row_hash": item.hash, "raw_hash": item.raw_hash, "source_ts": _dt(item.source_ts),
                        "seen_at": ctx.now, "run_id": ctx.run_id, "written": item.written})
    _flag_deleted(ctx, item.source_id, item.record_id, item.xref_status, rows, w, stats)


def _delete_by_id(conn: Connection, ctx: StreamContext, source_ids: list[str], w: _Writes,
                  outbox: OutboxQueue, stats: BatchStats) -> None:
    """The source ids reported deleted; then the golden records of every source record this batch flagged
    deleted (here and in _delete_one) are flagged in the system where it has none active left."""
    xt = Xref.__table__
    bad = {sid for sid in source_ids if _bad_char(sid) is not None}
    if bad:
        # no record the hub holds has such an id (it keeps only text every store can): nothing to flag,
        # as for any unknown id; looked up, the id would fail the whole batch in the driver, every time
        log.warning("%s/%s: %d deleted id(s) hold a NUL byte or a lone surrogate, so match no record (%s): "
                    "ignored", ctx.system, ctx.entity, len(bad), ascii(min(bad)))
        source_ids = [sid for sid in source_ids if sid not in bad]
    found = []
    for part in chunks(source_ids):
        found += list(conn.execute(select(xt.c.source_id, xt.c.record_id, xt.c.status).where(
            xt.c.entity == ctx.entity, xt.c.system == ctx.system, xt.c.source_id.in_(part))))
    rows = golden.load(conn, ctx.entity, [r.record_id for r in found], lock=True) if found else {}
    for r in found:
        _flag_deleted(ctx, r.source_id, r.record_id, r.status, rows, w, stats)
    _mark_deleted_in(conn, ctx, w, outbox)


def _flag_deleted(ctx: StreamContext, source_id: str, rid: str, xref_status: str | None,
                  rows: dict[str, golden.GoldenRow], w: _Writes, stats: BatchStats) -> None:
    if xref_status == "deleted":
        return
    w.xref_status.append({"_sid": source_id, "status": "deleted"})
    row = rows.get(rid)
    if row is None:
        return
    stats.add("deleted")
    w.gone.setdefault(rid, set()).add(source_id)
    w.gone_rows[rid] = row


def _mark_deleted_in(conn: Connection, ctx: StreamContext, w: _Writes, outbox: OutboxQueue) -> None:
    """Flag deleted in ctx.system the golden records of the batch's deleted source records that have no
    other record there still active (stored, linked or read again in this batch): one query a chunk."""
    if not w.gone:
        return
    xt = Xref.__table__
    back = {x["_sid"] for x in w.xref_status if x["status"] == "active"}
    alive = {x["record_id"] for x in w.xrefs.values() if x["status"] == "active"}
    for part in chunks(sorted(w.gone)):
        for r in conn.execute(select(xt.c.record_id, xt.c.source_id, xt.c.status).where(
                xt.c.entity == ctx.entity, xt.c.system == ctx.system, xt.c.record_id.in_(part))):
            if (r.status == "active" or r.source_id in back) and r.source_id not in w.gone[r.record_id]:
                alive.add(r.record_id)
    for rid in sorted(w.gone):
        row = w.gone_rows[rid]
        if rid in alive or ctx.system in (row.deleted_in or ()):
            continue
        before = list(row.deleted_in or [])
        row.deleted_in = sorted(set(before) | {ctx.system})
        w.deleted_in[rid] = row.deleted_in
        w.back.discard(rid)
        w.history.append({"entity": ctx.entity, "record_id": rid, "field": "deleted_in", "old": before or None,
                          "new": row.deleted_in, "system": ctx.system, "user": None, "run_id": ctx.run_id,
                          "reason": "deleted", "at": ctx.now})
        for target in ctx.delete_targets:
            if target != ctx.system:
                outbox.queue(target, rid, {}, operation="delete")
