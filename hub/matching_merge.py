"""Steward merge of two golden records (`triad matches merge A B`); :mod:`hub.matching_unmerge` undoes one.

merge(winner, loser) keeps everything needed to undo it in ``merge_log``: both
golden rows (every column), their xrefs and source_state rows, the references
other records hold to the loser, the loser's pending outbox rows, open match
candidates and the open conflicts of both. Then: the loser's xrefs, bases,
references, pending outbox rows and open candidates move to the winner;
survivorship settles each field; field_history records it (reason ``merge``);
the loser stays as a tombstone (``merged_into`` = winner; golden rows are never
deleted); blocking keys follow; changed fields are queued to the systems; the
audit log records it.

Survivorship of a merge, for each field:
* only one record has a value, or both the same: that value;
* they differ: the loser's value meets the winner's as the value of a source record
  first linked to the winner would (:func:`hub.merge.merge`), so the field's rule
  decides (``owner``: the value that came from the owner, the winner's if both did;
  ``priority``; ``most_recent``), and the value that loses is kept in an auto conflict;
  under ``manual`` the winner's value stays and an open conflict holds both: the
  field is not sent to any system until a steward resolves it (SPEC section 5).
A value taken from the loser keeps the loser's provenance for that field.

Conflicts: the survivor has at most one open conflict per field. An open conflict
of the loser moves to the survivor when the survivor has none on its field (and
closes when every value it holds is the survivor's golden value); otherwise its
values join the survivor's open conflict and it closes as superseded, naming the
survivor. No open conflict is left pointing at the tombstone.

The snapshot helpers here (``_load``, ``_rows``, ``_states``, ...) are shared with
:mod:`hub.matching_unmerge`, which reads what a merge kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Numeric, insert, select, update

from hub import audit, golden
from hub.canonical import ENTITIES, entity as entity_def
from hub.changefeed import lock_history
from hub.errors import NotFound, UsageError
from hub.matching import index_records
from hub.merge import ConflictNote, Incoming, Rules, merge as three_way, provenance_of
from hub.models import (Conflict, FieldHistory, MatchCandidate, MatchKey, MergeLog, Outbox, SourceState,
                        Xref)
from hub.outbox import OutboxQueue
from hub.types import new_id, utcnow

SNAPSHOT_VERSION = 1   # later keys (conflicts, the outbox rows a merge queued) are optional: older snapshots still undo


# --- JSON snapshots of rows -----------------------------------------------------------------------

def _dump(row: Any) -> dict[str, Any]:
    out = {}
    for k, v in dict(row).items():
        if isinstance(v, Decimal):
            v = str(v)
        elif isinstance(v, (datetime, date)):
            v = v.isoformat()
        out[k] = v
    return out


def _load(table: Any, data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in data.items():
        col = table.c[k]
        if v is not None:
            t = col.type
            impl = getattr(t, "impl", t)
            if isinstance(impl, DateTime):
                v = datetime.fromisoformat(v)
            elif isinstance(impl, Date):
                v = date.fromisoformat(v)
            elif isinstance(impl, Numeric):
                v = Decimal(v)
        out[k] = v
    return out


def _rows(conn: Connection, table: Any, *where: Any, lock: bool = False) -> list[dict[str, Any]]:
    q = select(table).where(*where)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return [dict(r) for r in conn.execute(q).mappings()]


def _states(conn: Connection, entity: str, ids: list[str]) -> list[dict[str, Any]]:
    """The source_state rows of these golden records. Selected by record id alone (ids are unique
    across entities): with the entity in the WHERE clause SQLite walks every state of the entity."""
    st = SourceState.__table__
    return [r for r in _rows(conn, st, st.c.record_id.in_(ids)) if r["entity"] == entity]


def _open_conflicts(conn: Connection, entity: str, ids: list[str]) -> list[dict[str, Any]]:
    ct = Conflict.__table__
    rows = _rows(conn, ct, ct.c.entity == entity, ct.c.status == "open", ct.c.record_id.in_(ids))
    return sorted(rows, key=lambda c: (c["created_at"], c["id"]))


def _ref_fields(entity: str) -> list[tuple[str, str]]:
    """(other entity, field) pairs whose field references ``entity``."""
    return [(e, f) for e, d in ENTITIES.items() for f, target in d.refs.items() if target == entity]


# --- survivorship ---------------------------------------------------------------------------------

def _empty(v: Any) -> bool:
    return v is None or v == "" or v == []


def survive(entity: str, winner: golden.GoldenRow, loser: golden.GoldenRow, rules: Rules
            ) -> tuple[dict[str, Any], dict[str, list], dict[str, str], list[ConflictNote]]:
    """(values, provenance, reason per field taken from the loser, conflicts) of the merged record."""
    values, prov = dict(winner.values), dict(winner.provenance)
    taken: dict[str, str] = {}
    notes: list[ConflictNote] = []
    for f in golden.scalar_fields(entity) + (["lines"] if entity == "order" else []):
        vw, vl = winner.values.get(f), loser.values.get(f)
        if _empty(vl) or vw == vl:
            continue
        if _empty(vw):      # nothing is overwritten: no conflict
            take, why = True, "empty"
        else:
            take, why, note = _settle(f, winner, loser, rules)
            notes.append(note)
        if take:
            values[f] = vl
            if f != "lines":
                prov[f] = list(provenance_of(loser.provenance, f))
            taken[f] = why
    return values, prov, taken, notes


def _settle(f: str, winner: golden.GoldenRow, loser: golden.GoldenRow, rules: Rules) -> tuple[bool, str, ConflictNote]:
    """Whether the loser's differing value of ``f`` wins, why, and the conflict keeping both values.

    The loser's value meets the winner's as a source record first linked to the winner would meet it
    (every differing value is concurrent), so a merge settles a field as the sync does.
    """
    rule = rules.for_field(f)
    vw, vl = winner.values.get(f), loser.values.get(f)
    sw, tw = provenance_of(winner.provenance, f)
    sl, tl = provenance_of(loser.provenance, f)
    kw, kl = sw or winner.id, sl or loser.id
    if kl == kw:   # both values came from one system: each keeps its own entry
        kl = f"{kl}@{loser.id}"
    if rule.kind == "owner" and sw == rule.owner:    # the system of record's value stands
        take, why, status = False, "owner", "auto"
    else:
        out = three_way({f: vw}, winner.provenance, None, Incoming(sl or loser.id, {f: vl}, tl), rules)
        take = f in out.changes
        why = out.history[0].reason if take else rule.kind
        status = "open" if any(c.status == "open" for c in out.conflicts) else "auto"
    decided_by = None if status == "open" else (kl if take else kw)
    return take, why, ConflictNote(f, status, rule.kind, {kw: vw, kl: vl}, {kw: tw, kl: tl}, vw, decided_by)


# --- conflicts of a merge -------------------------------------------------------------------------

@dataclass
class _Settled:
    """The conflicts a merge opened or changed."""

    open_fields: set[str] = field(default_factory=set)              # the survivor's, held back from the systems
    after: dict[str, dict[str, Any]] = field(default_factory=dict)  # conflict id -> state the merge left
    report: list[dict[str, Any]] = field(default_factory=list)


def _state_of(c: dict[str, Any]) -> dict[str, Any]:
    return {"record_id": c["record_id"], "status": c["status"], "values": c["values"]}


def _join(target: dict[str, Any], values: dict[str, Any], stamps: dict[str, Any], loser_id: str) -> None:
    """Add values to an open conflict; a system's entry there already holding another value is kept,
    the other value gets its own entry (``system@loser id``)."""
    joined, times = dict(target["values"] or {}), dict(target["timestamps"] or {})
    for k, v in values.items():
        key, n = k, 1
        while joined.get(key, v) != v:
            n += 1
            key = f"{k}@{loser_id}" + (f".{n - 1}" if n > 2 else "")
        joined[key] = v
        times.setdefault(key, (stamps or {}).get(k))
    target["values"], target["timestamps"] = joined, times


def _settle_conflicts(conn: Connection, entity: str, merge_id: str, winner_id: str, loser_id: str,
                      notes: list[ConflictNote], before: list[dict[str, Any]], values: dict[str, Any],
                      user: str, now: datetime) -> _Settled:
    """Record the merge's conflicts and move or close the loser's open ones (see the module docstring)."""
    rows = [dict(c, values=dict(c["values"] or {}), timestamps=dict(c["timestamps"] or {})) for c in before]
    open_on = {c["field"]: c for c in reversed(rows) if c["record_id"] == winner_id}   # the oldest per field
    why = f"merge {merge_id}: {entity} {loser_id} merged into {winner_id}"
    new: dict[str, dict[str, Any]] = {}
    action: dict[str, str] = {}
    for n in notes:
        target = open_on.get(n.field) if n.status == "open" else None
        if target is not None:
            _join(target, n.values, n.timestamps, loser_id)
            action.setdefault(target["id"], "updated")
            continue
        row = {"id": new_id(), "entity": entity, "record_id": winner_id, "field": n.field, "status": n.status,
               "rule": n.rule, "values": n.values, "timestamps": n.timestamps, "golden": n.golden,
               "winner": n.winner, "note": why, "run_id": None, "created_at": now, "resolved_at": None,
               "resolved_by": None}
        new[row["id"]], action[row["id"]] = row, "opened"
        if n.status == "open":
            open_on[n.field] = row
    for c in (c for c in rows if c["record_id"] == loser_id):
        target = open_on.get(c["field"])
        if target is not None:
            _join(target, c["values"], c["timestamps"], loser_id)
            action.setdefault(target["id"], "updated")
            c.update(status="resolved", resolved_at=now, resolved_by=user,
                     note=f"superseded: {why}; its open conflict {target['id']} on {c['field']} holds these values")
            action[c["id"]] = "superseded"
            continue
        c["record_id"] = winner_id
        if all(v == values.get(c["field"]) for v in c["values"].values()):
            c.update(status="resolved", resolved_at=now, resolved_by=user,
                     note=f"settled by {why}: every value it held is the golden value of {winner_id}")
            action[c["id"]] = "settled"
        else:
            open_on[c["field"]] = c
            action[c["id"]] = "moved"
    _write_conflicts(conn, new, {c["id"]: c for c in rows if c["id"] in action})
    every = {**{c["id"]: c for c in rows}, **new}
    out = _Settled(open_fields=set(open_on))
    for cid, what in action.items():
        c = every[cid]
        out.after[cid] = _state_of(c)
        out.report.append({"id": cid, "field": c["field"], "status": c["status"], "rule": c["rule"],
                           "values": c["values"], "action": what})
    return out


def _write_conflicts(conn: Connection, new: dict[str, dict[str, Any]], changed: dict[str, dict[str, Any]]) -> None:
    ct = Conflict.__table__
    if new:
        conn.execute(insert(ct), list(new.values()))
    for c in changed.values():
        conn.execute(update(ct).where(ct.c.id == c["id"]).values(
            {"record_id": c["record_id"], "status": c["status"], "values": c["values"], "timestamps": c["timestamps"],
             "note": c["note"], "resolved_at": c["resolved_at"], "resolved_by": c["resolved_by"]}))


# --- merge ----------------------------------------------------------------------------------------

def merge(conn: Connection, entity: str, winner_id: str, loser_id: str, *, user: str, rules: Rules,
          out_systems: tuple[str, ...], candidate_id: str | None = None, note: str | None = None) -> dict[str, Any]:
    """Merge ``loser_id`` into ``winner_id`` inside the caller's transaction (see the module docstring).

    ``candidate_id``: the match candidate the merge decides; it must be open.
    """
    entity_def(entity)
    if winner_id == loser_id:
        raise UsageError(f"cannot merge {entity} {winner_id} with itself")
    t, xt, st = golden.table_of(entity), Xref.__table__, SourceState.__table__
    raw = {r["id"]: r for r in _rows(conn, t, t.c.id.in_([winner_id, loser_id]), lock=True)}
    for rid in (winner_id, loser_id):
        if rid not in raw:
            raise NotFound(f"no {entity} {rid} (see `triad records list {entity}`)")
        if raw[rid]["merged_into"]:
            raise UsageError(f"{entity} {rid} was merged into {raw[rid]['merged_into']} already; "
                             f"merge with that record instead")
    if candidate_id is not None:
        _require_open(conn, candidate_id, winner_id, loser_id)
    rows = golden.load(conn, entity, [winner_id, loser_id])
    w, lo = rows[winner_id], rows[loser_id]
    now, merge_id = utcnow(), new_id()
    ids = [winner_id, loser_id]
    xrefs = _rows(conn, xt, xt.c.entity == entity, xt.c.record_id.in_(ids))
    states = _states(conn, entity, ids)
    refs = []
    for e, f in _ref_fields(entity):
        et = golden.table_of(e)
        refs += [{"entity": e, "id": rid, "field": f, "updated_at": at.isoformat(), "version": v}
                 for rid, at, v in conn.execute(select(et.c.id, et.c.updated_at, et.c.version).where(et.c[f] == loser_id))]
    ot, ct = Outbox.__table__, MatchCandidate.__table__
    outbox_ids = [r[0] for r in conn.execute(select(ot.c.id).where(ot.c.entity == entity, ot.c.record_id == loser_id,
                                                                     ot.c.status == "pending"))]
    cands = _rows(conn, ct, ct.c.entity == entity, ct.c.status == "open",
                  (ct.c.record_a == loser_id) | (ct.c.record_b == loser_id))
    conflicts = _open_conflicts(conn, entity, ids)
    snapshot = {"v": SNAPSHOT_VERSION, "winner": _dump(raw[winner_id]), "loser": _dump(raw[loser_id]),
                "xrefs": [_dump(x) for x in xrefs], "source_state": [_dump(s) for s in states], "refs": refs,
                "outbox": outbox_ids, "candidates": [_dump(c) for c in cands],
                "conflicts": [_dump(c) for c in conflicts]}
    if entity == "order":
        snapshot["lines"] = {rid: rows[rid].values.get("lines") or [] for rid in ids}

    values, prov, taken, notes = survive(entity, w, lo, rules)
    changed = {f: (w.values.get(f), values[f]) for f in taken}
    merged = golden.GoldenRow(winner_id, values, prov, w.deleted_in, None, w.version)
    golden.update_changed(conn, entity, [(merged, prov)], now)
    conn.execute(update(t).where(t.c.id == loser_id).values(merged_into=winner_id, updated_at=now,
                                                           version=t.c.version + 1))
    # linked to the winner from now on: the winner's own link stays the first in each system, the one its
    # updates and the references to it go to (hub.push_rules._links, _ref_targets); unmerge restores the
    # loser's links as they were
    conn.execute(update(xt).where(xt.c.entity == entity, xt.c.record_id == loser_id)
                 .values(record_id=winner_id, created_at=now, updated_at=now))
    conn.execute(update(st).where(st.c.record_id == loser_id).values(record_id=winner_id))   # see _states
    history = [_hist(entity, winner_id, f, old, new, user, now, "merge") for f, (old, new) in changed.items()]
    history.append(_hist(entity, loser_id, "merged_into", None, winner_id, user, now, "merge"))
    for ref in refs:
        et = golden.table_of(ref["entity"])
        conn.execute(update(et).where(et.c.id == ref["id"], et.c[ref["field"]] == loser_id)
                     .values({ref["field"]: winner_id, "updated_at": now, "version": et.c.version + 1}))
        history.append(_hist(ref["entity"], ref["id"], ref["field"], loser_id, winner_id, user, now, "merge"))
    lock_history(conn)   # the change feed numbers history in commit order
    conn.execute(insert(FieldHistory.__table__), history)
    if outbox_ids:
        conn.execute(update(ot).where(ot.c.id.in_(outbox_ids)).values(record_id=winner_id, updated_at=now))
    _move_candidates(conn, entity, cands, winner_id, loser_id, user, now)
    settled = _settle_conflicts(conn, entity, merge_id, winner_id, loser_id, notes, conflicts, values, user, now)
    kt = MatchKey.__table__
    conn.execute(kt.delete().where(kt.c.entity == entity, kt.c.record_id == loser_id))
    index_records(conn, entity, [(winner_id, {k: v for k, v in values.items() if k != "lines"})])

    queue = OutboxQueue(entity, None, now)
    held = settled.open_fields      # a field a steward has to decide goes nowhere until then
    winner_changes = {f: new for f, (_, new) in changed.items() if f not in held}
    loser_systems = {x["system"] for x in xrefs if x["record_id"] == loser_id}
    catch_up = {f: v for f, v in values.items()
                if f != "lines" and f not in held and not _empty(v) and lo.values.get(f) != v}
    for target in out_systems:
        fields = dict(winner_changes)
        if target in loser_systems:   # its record now belongs to the winner: bring it up to the winner's values
            fields.update(catch_up)
        if fields:
            queue.queue(target, winner_id, fields)
    sent = [r["id"] for r in queue.rows.values()]
    queued = queue.flush(conn)
    snapshot["after"] = {"winner_version": w.version + 1, "loser_version": raw[loser_id]["version"] + 1,
                         "winner_values": values, "conflicts": settled.after, "outbox": sent}
    conn.execute(insert(MergeLog.__table__), [{"id": merge_id, "entity": entity, "winner_id": winner_id,
                                               "loser_id": loser_id, "snapshot": snapshot, "status": "merged",
                                               "merged_by": user, "merged_at": now, "unmerged_at": None}])
    moved = sum(1 for x in xrefs if x["record_id"] == loser_id)
    audit.record(conn, user, "matches.merge", f"{entity}:{winner_id}",
                 before={"winner": w.values, "loser": lo.values},
                 after={"merge_id": merge_id, "loser": loser_id, "changed": changed, "xrefs_moved": moved,
                        "candidate": candidate_id, "conflicts": settled.report}, note=note)
    return {"merge_id": merge_id, "entity": entity, "winner": winner_id, "loser": loser_id,
            "changed": {f: {"old": old, "new": new, "rule": taken[f]} for f, (old, new) in changed.items()},
            "conflicts": settled.report, "xrefs_moved": moved, "references_moved": len(refs), "queued": queued}


def _require_open(conn: Connection, candidate_id: str, winner_id: str, loser_id: str) -> None:
    """A candidate is merged only while it is open: a rejected (or merged) one was decided already."""
    ct = MatchCandidate.__table__
    c = conn.execute(select(ct).where(ct.c.id == candidate_id)).mappings().first()
    if c is None:
        raise NotFound(f"no match candidate {candidate_id} (see `triad matches list`)")
    if c["status"] != "open":
        raise UsageError(f"match candidate {candidate_id} is {c['status']} (by {c['decided_by']} at "
                         f"{c['decided_at']}); only an open candidate is merged. To merge the two records "
                         f"anyway, name them: triad matches merge {winner_id} {loser_id}")
    if {c["record_a"], c["record_b"]} != {winner_id, loser_id}:
        raise UsageError(f"match candidate {candidate_id} is about {c['record_a']} and {c['record_b']}, "
                         f"not {winner_id} and {loser_id}")


def _move_candidates(conn: Connection, entity: str, cands: list[dict[str, Any]], winner_id: str, loser_id: str,
                     user: str, now: datetime) -> None:
    ct = MatchCandidate.__table__
    for c in cands:
        a = winner_id if c["record_a"] == loser_id else c["record_a"]
        b = winner_id if c["record_b"] == loser_id else c["record_b"]
        if a == b:   # the pair this merge settles
            conn.execute(update(ct).where(ct.c.id == c["id"]).values(status="merged", decided_at=now,
                                                                     decided_by=user))
        else:
            conn.execute(update(ct).where(ct.c.id == c["id"]).values(record_a=a, record_b=b))


def _hist(entity: str, rid: str, f: str, old: Any, new: Any, user: str, now: datetime, reason: str,
          system: str | None = None) -> dict[str, Any]:
    return {"entity": entity, "record_id": rid, "field": f, "old": old, "new": new, "system": system, "user": user,
            "run_id": None, "reason": reason, "at": now}


__all__ = ["merge", "survive"]
