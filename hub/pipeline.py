"""One inbound batch: map -> validate -> resolve identity -> merge -> write, in one transaction.

Only the two ends do I/O: the lookups at the start (xref, bases, golden rows,
references) and the writes at the end, each one set-based statement. The
merge in between is the pure :mod:`hub.merge`.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Connection

from hub import golden, subscriptions
from hub.column_fit import SQLITE_EXACT_DIGITS
from hub.merge import CREATED
from hub.open_conflicts import open_fields
from hub.gc_pause import cyclic_gc_paused
from hub.outbox import OutboxQueue
from hub.pipeline_delete import _delete_by_id, _delete_one
from hub.pipeline_lookup import _attach_bases, _attach_state, _note_older, _older, _remember_raw
from hub.pipeline_map import _map, _skip_unread
from hub.pipeline_merge import _merge_one
from hub.pipeline_resolve import _resolve_identity, _resolve_refs, _validate
from hub.pipeline_types import STAT_KEYS, BatchStats, StreamContext
from hub.pipeline_writes import _Writes
from hub.quarantine import QuarantineWriter


def process_batch(conn: Connection, ctx: StreamContext, raws: Sequence[dict[str, Any]],
                  deleted_ids: Sequence[str] = (), *, from_quarantine: dict[str, str] | None = None) -> BatchStats:
    """Run one batch of raw source records through the pipeline on ``conn`` (inside a transaction).

    Args:
        raws: records as the system gave them.
        deleted_ids: source ids the system reports deleted.
        from_quarantine: source id -> quarantine id, when re-running parked rows.
    """
    with cyclic_gc_paused():
        return _process_batch(conn, ctx, raws, deleted_ids, from_quarantine)


def _process_batch(conn: Connection, ctx: StreamContext, raws: Sequence[dict[str, Any]],
                   deleted_ids: Sequence[str], from_quarantine: dict[str, str] | None) -> BatchStats:
    stats = BatchStats()
    stats.add("read", len(raws))
    quarantine = QuarantineWriter(conn, ctx.system, ctx.entity, ctx.run_id, ctx.now)
    outbox = OutboxQueue(ctx.entity, ctx.run_id, ctx.now)
    raws, digests = _skip_unread(conn, ctx, raws, from_quarantine or {}, stats)
    exact_digits = SQLITE_EXACT_DIGITS if conn.dialect.name == "sqlite" else None
    items = _map(ctx, raws, quarantine, from_quarantine or {}, digests, exact_digits)
    _attach_state(conn, ctx, items)
    deletes = [i for i in items.values() if i.deleted]
    changed, same = [], []
    for i in items.values():
        if i.deleted:
            continue
        if i.record_id is not None and i.xref_status != "deleted" and (i.hash == i.state_hash or _older(i)):
            same.append(i)
        else:
            changed.append(i)
    for i in same:
        stats.add("unchanged")
        if i.quarantine_id:
            stats.resolved_quarantine.append(i.quarantine_id)
    _note_older(ctx, [i for i in same if i.hash != i.state_hash], stats)
    _remember_raw(conn, ctx, [i for i in same if i.hash == i.state_hash])
    _attach_bases(changed + deletes)
    changed = _validate(ctx, changed, quarantine)
    changed = _resolve_refs(conn, ctx, changed, quarantine)
    _resolve_identity(conn, ctx, changed)
    rows = golden.load(conn, ctx.entity, [i.record_id for i in changed + deletes if i.record_id], lock=True)
    open_manual = open_fields(conn, ctx.entity, list(rows))
    writes = _Writes()
    for item in changed:
        _merge_one(ctx, item, rows, open_manual, writes, outbox, stats)
        if item.quarantine_id:
            stats.resolved_quarantine.append(item.quarantine_id)
    for item in deletes:
        _delete_one(ctx, item, rows, writes, stats)
    deleted_only = [sid for sid in deleted_ids if sid not in items]
    _delete_by_id(conn, ctx, deleted_only, writes, outbox, stats)
    writes.flush(conn, ctx)
    subscriptions.queue_changes(conn, ctx.entity, writes.history, ctx.run_id, ctx.now)
    stats.add("queued", outbox.flush(conn))
    stats.add("quarantined", quarantine.flush())
    # a parked row tried again and parked for the same reasons is still parked; a source row read again
    # exactly as it is parked already is unchanged
    stats.add("still_parked" if from_quarantine else "unchanged", quarantine.repeated)
    quarantine.supersede([i.source_id for i in changed + deletes], keep=set(stats.resolved_quarantine))
    writes.flush_history(conn)    # the change feed's lock is then held only until the commit
    if ctx.matcher is not None:    # golden records a record of the batch proved one: merged (on every path in)
        ctx.matcher.settle(conn, ctx.rules, ctx.out_systems)
    return stats


__all__ = ["StreamContext", "BatchStats", "process_batch", "CREATED", "STAT_KEYS"]
