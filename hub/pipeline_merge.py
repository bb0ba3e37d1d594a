"""One changed row merged into its golden record, its outcome collected as writes and outbox rows."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from hub import golden
from hub.echoes import WRITTEN, still_pending
from hub.merge import CAUGHT_UP, Incoming, MergeOutcome, create, merge
from hub.outbox import OutboxQueue
from hub.pipeline_types import BatchStats, StreamContext, _Item
from hub.pipeline_writes import _Writes
from hub.types import new_id


def _same_keys_as_golden(ctx: StreamContext, item: _Item, golden_values: dict[str, Any]) -> None:
    """An exact matching key written another way (`9131 0000 ma1f l4xq01` for `91310000MA1FL4XQ01`) is the
    golden value, not a change: it linked the record, so it must not then open a conflict or be written
    back in the other form. The row digest keeps the source's form, so the next read of it is unchanged."""
    from hub.normalize import exact_key
    for f in ctx.exact_keys:
        mine, theirs = item.values.get(f), golden_values.get(f)
        if mine is not None and theirs is not None and mine != theirs and exact_key(f, mine) == exact_key(f, theirs):
            item.values[f] = theirs


def _merge_one(ctx: StreamContext, item: _Item, rows: dict[str, golden.GoldenRow], open_manual: dict[str, set[str]],
               w: _Writes, outbox: OutboxQueue, stats: BatchStats) -> None:
    rid = item.record_id
    assert rid is not None
    incoming = Incoming(ctx.system, item.values, item.source_ts)
    is_new = getattr(item, "_new", False) and rid not in w.new_golden and rid not in rows
    if is_new:
        outcome = create(incoming, ctx.rules)
        w.new_golden[rid] = (dict(outcome.changes), outcome.provenance)
        stats.add("created")
    else:
        row = rows.get(rid) or _row_from_new(w, rid)
        if row is None:  # linked to a record that no longer exists: treat as new
            outcome = create(incoming, ctx.rules)
            w.new_golden[rid] = (dict(outcome.changes), outcome.provenance)
            stats.add("created")
        else:
            _same_keys_as_golden(ctx, item, row.values)
            outcome = merge(row.values, row.provenance, item.base if not item.linked_now else None, incoming,
                            ctx.rules, frozenset(open_manual.get(rid, ())), item.written,
                            created_by_us=item.state_hash == WRITTEN and not item.linked_now)
            if item.linked_now:
                stats.add("linked")
                if ctx.writes_back:   # the new system learns what the hub knows that it lacks
                    for f, g in row.values.items():
                        if g not in (None, [], "") and item.values.get(f) in (None, []) and f in item.values:
                            outcome.send_back.setdefault(f, g)
            if outcome.changes or outcome.provenance != row.provenance:
                row.values.update(outcome.changes)
                row.provenance = outcome.provenance
                if rid in w.new_golden:
                    w.new_golden[rid] = (row.values, row.provenance)
                else:
                    w.changed_golden[rid] = row
                    w.changed_fields.setdefault(rid, set()).update(outcome.changes)
                stats.add("updated" if outcome.changes else "unchanged")
            elif not item.linked_now:
                stats.add("unchanged")
        if item.xref_status == "deleted":
            w.xref_status.append({"_sid": item.source_id, "status": "active"})
        if item.xref_status != "active":   # read there again, or another record there linked to it
            _back_in(ctx, rid, rows, w)
    if item.xref_status is None:   # first time this source record is seen: link it
        w.xrefs[item.source_id] = {"id": new_id(), "entity": ctx.entity, "system": ctx.system,
                                   "source_id": item.source_id, "record_id": rid, "status": "active",
                                   "created_at": ctx.now, "updated_at": ctx.now}
    _record_outcome(ctx, item, rid, outcome, w, outbox, stats, created=is_new)
    for other, score, details in item.candidates:
        if other != rid:
            w.candidates.append({"id": new_id(), "entity": ctx.entity, "record_a": rid, "record_b": other,
                                 "score": float(score), "details": details, "status": "open",
                                 "created_at": ctx.now, "decided_at": None, "decided_by": None})
    w.keep_state(item, {"entity": ctx.entity, "system": ctx.system, "source_id": item.source_id,
                         "record_id": rid, "values": item.values, "row_hash": item.hash,
                         "raw_hash": item.raw_hash, "source_ts": _dt(item.source_ts), "seen_at": ctx.now,
                         "run_id": ctx.run_id, "written": still_pending(item.written, item.values)})


def _back_in(ctx: StreamContext, rid: str, rows: dict[str, golden.GoldenRow], w: _Writes) -> None:
    """The record is in ctx.system again: no longer deleted there (the counterpart of _mark_deleted_in);
    deleted nowhere any more, the deletes queued for it are dropped when the batch is written."""
    row = rows.get(rid)
    if row is None or not row.deleted_in or ctx.system not in row.deleted_in:
        return
    before = list(row.deleted_in)
    row.deleted_in = [s for s in row.deleted_in if s != ctx.system] or None
    w.deleted_in[rid] = row.deleted_in
    w.history.append({"entity": ctx.entity, "record_id": rid, "field": "deleted_in", "old": before,
                      "new": row.deleted_in, "system": ctx.system, "user": None, "run_id": ctx.run_id,
                      "reason": "undeleted", "at": ctx.now})
    if row.deleted_in is None:
        w.back.add(rid)


def _row_from_new(w: _Writes, rid: str) -> golden.GoldenRow | None:
    if rid in w.new_golden:
        values, prov = w.new_golden[rid]
        return golden.GoldenRow(rid, values, prov, None, None, 1)
    return None


def _record_outcome(ctx: StreamContext, item: _Item, rid: str, outcome: MergeOutcome, w: _Writes,
                    outbox: OutboxQueue, stats: BatchStats, *, created: bool) -> None:
    for h in outcome.history:
        w.history.append({"entity": ctx.entity, "record_id": rid, "field": h.field, "old": h.old, "new": h.new,
                          "system": ctx.system, "user": None, "run_id": ctx.run_id, "reason": h.reason,
                          "at": ctx.now})
    for c in outcome.conflicts:
        row = {"id": new_id(), "entity": ctx.entity, "record_id": rid, "field": c.field,
               "status": c.status, "rule": c.rule, "values": c.values, "timestamps": c.timestamps,
               "golden": c.golden, "winner": c.winner, "note": None, "run_id": ctx.run_id,
               "created_at": ctx.now, "resolved_at": None, "resolved_by": None}
        (w.caught_up.append if c.status == CAUGHT_UP else w.add_conflict)(row)
    stats.add("conflicts", sum(c.status != CAUGHT_UP for c in outcome.conflicts))
    if outcome.propagate:
        for target in ctx.out_systems:
            if target != ctx.system and _writes_any(ctx, target, outcome.propagate):
                outbox.queue(target, rid, outcome.propagate)
    if outcome.send_back and ctx.writes_back:
        outbox.queue(ctx.system, rid, outcome.send_back)


def _writes_any(ctx: StreamContext, target: str, changes: dict[str, Any]) -> bool:
    """Whether ``target``'s mapping writes one of the changed fields (a CRM's owner, say, means
    nothing to an ERP that does not keep it)."""
    wanted = ctx.out_fields.get(target)
    return wanted is None or not wanted.isdisjoint(changes)


def _dt(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None
