"""Steward merge and unmerge of two golden records (`triad matches merge A B`, `triad matches unmerge ID`).

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

unmerge(merge id) restores both rows, the xrefs, references, outbox rows,
candidates and conflicts as snapshotted when nothing changed the two records since
the merge (their versions, and the conflicts the merge left, are as it left them).
If either changed since, unmerge refuses and names the fields, unless ``force``:
then the loser and its xrefs are restored, and each winner field goes back to
its pre-merge value where it still holds the value the merge gave it or where its
later value came only from source records given back to the loser (other later
changes are kept). Either way a source record given back keeps its current values:
what its system changed after the merge by itself (not the echo of a hub write) is
applied to the restored loser as a sync would have applied it, and is not written
back over. Changes the merge queued and not yet sent are withdrawn. An unmerge that
cannot be faithful (the survivor merged again, a source record given back since
deleted, restored or linked elsewhere) is refused, also with ``force``.
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
from hub.errors import NotFound, TriadError, UsageError
from hub.matching import index_records
from hub.merge import ConflictNote, Incoming, Rules, merge as three_way, provenance_of
from hub.models import (Conflict, FieldHistory, MatchCandidate, MatchKey, MergeLog, Outbox, SourceState,
                        Xref)
from hub.open_conflicts import open_fields
from hub.outbox import OutboxQueue
from hub.sqlutil import chunks
from hub.types import new_id, utcnow
from hub.values import encode

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
    conn.execute(update(xt).where(xt.c.entity == entity, xt.c.record_id == loser_id)
                 .values(record_id=winner_id, updated_at=now))
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


# --- unmerge --------------------------------------------------------------------------------------

class UnmergeConflict(TriadError):
    """The merged records changed since the merge, or cannot be restored faithfully: undoing now would
    lose changes. A refusal, not a failure (exit 2)."""

    exit_code = 2


def unmerge(conn: Connection, merge_id: str, *, user: str, out_systems: tuple[str, ...], force: bool = False,
            note: str | None = None, rules: Rules | None = None) -> dict[str, Any]:
    """Undo a merge inside the caller's transaction (see the module docstring for ``force``).

    ``rules``: the entity's survivorship, which settles the edits source records given back made after
    the merge on the restored loser (as the sync would have).
    """
    mt = MergeLog.__table__
    log_row = conn.execute(select(mt).where(mt.c.id == merge_id)).mappings().first()
    if log_row is None:
        raise NotFound(f"no merge {merge_id} (see `triad matches list --merges`)")
    if log_row["status"] != "merged":
        raise UsageError(f"merge {merge_id} was undone already at {log_row['unmerged_at']}")
    snap = log_row["snapshot"]
    if snap.get("v") != SNAPSHOT_VERSION:
        raise TriadError(f"merge {merge_id} has a snapshot of version {snap.get('v')}; this Triad reads {SNAPSHOT_VERSION}")
    entity, winner_id, loser_id = log_row["entity"], log_row["winner_id"], log_row["loser_id"]
    t = golden.table_of(entity)
    now = utcnow()
    current = {r["id"]: r for r in _rows(conn, t, t.c.id.in_([winner_id, loser_id]), lock=True)}
    before = golden.load(conn, entity, [winner_id, loser_id])
    after = snap["after"]
    if current[loser_id]["merged_into"] != winner_id:
        raise UnmergeConflict(f"{entity} {loser_id} is no longer a tombstone of {winner_id}; cannot unmerge {merge_id}")
    if current[winner_id]["merged_into"]:
        raise UnmergeConflict(f"{entity} {winner_id} was merged into {current[winner_id]['merged_into']} after "
                              f"merge {merge_id}; undo that merge first (triad matches list --merges)")
    given = _given_back(conn, entity, snap, winner_id, loser_id, merge_id)
    conflicts_now, conflict_fields = _conflicts_since(conn, after.get("conflicts") or {})
    changed_since = (current[winner_id]["version"] != after["winner_version"]
                     or current[loser_id]["version"] != after["loser_version"] or bool(conflict_fields))
    if changed_since and not force:
        fields = sorted({*_fields_changed_since(conn, entity, winner_id, log_row["merged_at"]), *conflict_fields})
        raise UnmergeConflict(
            f"{entity} {winner_id} changed after merge {merge_id} (fields: {', '.join(fields) or 'metadata'}); "
            f"`triad matches unmerge {merge_id} --force` restores {loser_id} and the winner's fields the merge "
            f"changed, and keeps the later changes")
    edits = _source_edits(conn, entity, winner_id, given, after["winner_values"], log_row["merged_at"])
    winner_row = _load(t, snap["winner"])
    if changed_since:
        kept = [s for s in _states(conn, entity, [winner_id])
                if (s["system"], s["source_id"]) not in {(n["system"], n["source_id"]) for _, n in given}]
        _keep_later_changes(winner_row, current[winner_id], before[winner_id], after["winner_values"], edits, kept,
                            golden.scalar_fields(entity))
        winner_row.update(version=current[winner_id]["version"] + 1, updated_at=now)
    loser_row = _load(t, snap["loser"])
    for row in (winner_row, loser_row):
        conn.execute(update(t).where(t.c.id == row["id"]).values({k: v for k, v in row.items() if k != "id"}))
    _give_back(conn, snap, given, loser_id)
    history = _restore_refs(conn, snap["refs"], winner_id, loser_id, user, now)
    _restore_outbox(conn, snap, loser_id, merge_id, now)
    ct = MatchCandidate.__table__
    for c in snap["candidates"]:
        c = _load(ct, c)
        conn.execute(update(ct).where(ct.c.id == c["id"]).values({k: v for k, v in c.items() if k != "id"}))
    _restore_conflicts(conn, snap, conflicts_now, merge_id, user, now)
    if entity == "order":
        golden.replace_lines(conn, snap["lines"])
    replayed = _replay_edits(conn, entity, loser_id, given, edits, rules or Rules(), merge_id, user, now)
    history += replayed.history
    restored = golden.load(conn, entity, [winner_id, loser_id])
    rw, rl = restored[winner_id], restored[loser_id]
    was = before[winner_id].values
    back = {f: (was.get(f), rw.values.get(f)) for f in golden.scalar_fields(entity) if was.get(f) != rw.values.get(f)}
    history += [_hist(entity, winner_id, f, old, new, user, now, "unmerge") for f, (old, new) in back.items()]
    history.append(_hist(entity, loser_id, "merged_into", winner_id, None, user, now, "unmerge"))
    lock_history(conn)
    conn.execute(insert(FieldHistory.__table__), history)
    index_records(conn, entity, [(winner_id, {k: v for k, v in rw.values.items() if k != "lines"}),
                                 (loser_id, {k: v for k, v in rl.values.items() if k != "lines"})])
    queue = OutboxQueue(entity, None, now)
    loser_systems = {x["system"] for x in snap["xrefs"] if x["record_id"] == loser_id}
    for target in out_systems:
        if back:
            queue.queue(target, winner_id, {f: new for f, (_, new) in back.items()})
        if target in loser_systems:
            loser_back = _loser_back(target, rl.values, was, given, replayed.send_back.get(target, {}))
            if loser_back:
                queue.queue(target, loser_id, loser_back)
    queued = queue.flush(conn)
    conn.execute(update(mt).where(mt.c.id == merge_id).values(status="unmerged", unmerged_at=now))
    source_changes = {f"{s}:{sid}": e for (s, sid), e in edits.items()}
    audit.record(conn, user, "matches.unmerge", f"{entity}:{winner_id}",
                 before={"winner": was}, after={"merge_id": merge_id, "winner": rw.values, "loser": rl.values,
                                                 "forced": bool(changed_since), "source_changes": source_changes},
                 note=note)
    return {"merge_id": merge_id, "entity": entity, "winner": winner_id, "loser": loser_id, "forced": changed_since,
            "restored": {f: {"old": old, "new": new} for f, (old, new) in back.items()},
            "source_changes": source_changes, "queued": queued}


def _restore_outbox(conn: Connection, snap: dict[str, Any], loser_id: str, merge_id: str, now: datetime) -> None:
    """The loser's pending rows go back to it; what the merge queued and nothing sent yet is withdrawn
    (it describes records that are apart again: sent now, it would create the survivor where it never was)."""
    ot = Outbox.__table__
    if snap["outbox"]:
        conn.execute(update(ot).where(ot.c.id.in_(snap["outbox"]), ot.c.status == "pending")
                     .values(record_id=loser_id, updated_at=now))
    for part in chunks(snap["after"].get("outbox") or []):
        conn.execute(update(ot).where(ot.c.id.in_(part), ot.c.status == "pending").values(
            status="dropped", last_error=f"withdrawn: merge {merge_id} was undone", updated_at=now))


def _loser_back(system: str, loser: dict[str, Any], survivor: dict[str, Any],
                given: list[tuple[dict[str, Any], dict[str, Any]]], send_back: dict[str, Any]) -> dict[str, Any]:
    """The loser's values a system it gets back gets written: where they differ from the survivor's (which
    the system took while merged), except what the system holds already, its own later edits among them."""
    out = {f: v for f, v in loser.items() if f != "lines" and survivor.get(f) != v and not _holds(system, f, v, given)}
    return {**out, **send_back}


def _given_back(conn: Connection, entity: str, snap: dict[str, Any], winner_id: str, loser_id: str,
                merge_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(as merged, as now) source_state rows of the source records the loser gets back.

    Refused when one of them is no longer the survivor's, or was deleted or restored in its system since:
    giving it back as it was would lose that.
    """
    xt = Xref.__table__
    mine = [x for x in snap["xrefs"] if x["record_id"] == loser_id]
    now_x = {}
    for part in chunks([x["id"] for x in mine]):
        now_x.update((r["id"], r) for r in _rows(conn, xt, xt.c.id.in_(part)))
    for x in mine:
        cur = now_x.get(x["id"])
        where = f"{x['system']} {entity} {x['source_id']}"
        if cur is None or cur["record_id"] != winner_id:
            raise UnmergeConflict(f"{where} no longer belongs to {winner_id}; merge {merge_id} cannot be undone "
                                  f"without losing that")
        if cur["status"] != x["status"]:
            raise UnmergeConflict(f"{where} was {'deleted' if cur['status'] == 'deleted' else 'restored'} in "
                                  f"{x['system']} after merge {merge_id}; undoing the merge would lose that, so it "
                                  f"stays merged")
    now_states = {(s["system"], s["source_id"]): s for s in _states(conn, entity, [winner_id])}
    out = []
    for s in snap["source_state"]:
        if s["record_id"] != loser_id:
            continue
        cur = now_states.get((s["system"], s["source_id"]))
        if cur is None:
            raise UnmergeConflict(f"{s['system']} {entity} {s['source_id']} no longer belongs to {winner_id}; "
                                  f"merge {merge_id} cannot be undone without losing that")
        out.append((s, cur))
    return out


def _source_edits(conn: Connection, entity: str, winner_id: str, given: list[tuple[dict[str, Any], dict[str, Any]]],
                  merged_values: dict[str, Any], since: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """(system, source id) -> the fields a source record given back changed after the merge by itself.

    A value the survivor held since the merge, set by anyone but that system, reached the system from the hub:
    showing it is an echo of a hub write, not an edit.
    """
    ht = FieldHistory.__table__
    set_by: dict[str, list[tuple[Any, str | None]]] = {}
    for h in conn.execute(select(ht.c.field, ht.c.new, ht.c.system).where(
            ht.c.entity == entity, ht.c.record_id == winner_id, ht.c.at >= since)):
        set_by.setdefault(h.field, []).append((h.new, h.system))
    out = {}
    for then, now in given:
        system, base = now["system"], then["values"] or {}
        edits = {f: v for f, v in (now["values"] or {}).items()
                 if v != base.get(f) and v != merged_values.get(f)
                 and not any(v == new and by != system for new, by in set_by.get(f, ()))}
        if edits:
            out[(system, now["source_id"])] = edits
    return out


def _edited_by(system: str, f: str, v: Any, edits: dict[tuple[str, str], dict[str, Any]]) -> bool:
    return any(s == system and e.get(f, _ABSENT) == v for (s, _), e in edits.items())


_ABSENT = object()


def _holds(system: str, f: str, v: Any, given: list[tuple[dict[str, Any], dict[str, Any]]]) -> bool:
    """Whether every record given back in ``system`` shows ``v`` for ``f`` and no hub write of f is still
    on its way there (which would replace it)."""
    mine = [now for _, now in given if now["system"] == system]
    return bool(mine) and all((now["values"] or {}).get(f, _ABSENT) == v and f not in (now["written"] or {})
                              for now in mine)


def _keep_later_changes(winner_row: dict[str, Any], current: Any, live: golden.GoldenRow,
                        merged_values: dict[str, Any], edits: dict[tuple[str, str], dict[str, Any]],
                        kept: list[dict[str, Any]], fields: list[str]) -> None:
    """Forced: a winner field changed after the merge keeps its later value, unless that value came only
    from source records given back (their system set it, and none of the survivor's own records there
    holds it): the survivor must not keep what now belongs to the loser alone."""
    prov = dict(winner_row["provenance"] or {})
    now_prov = current["provenance"] or {}
    for f in fields:
        value = live.values.get(f)
        if value == merged_values.get(f):
            continue                        # as the merge left it: back to the pre-merge value
        system = provenance_of(now_prov, f, value)[0]
        if system is not None and _edited_by(system, f, value, edits) and not any(
                k["system"] == system and (k["values"] or {}).get(f) == value for k in kept):
            continue
        winner_row[f] = current[f]
        if f in now_prov:
            prov[f] = now_prov[f]
        else:
            prov.pop(f, None)
    winner_row["provenance"] = prov


def _give_back(conn: Connection, snap: dict[str, Any], given: list[tuple[dict[str, Any], dict[str, Any]]],
               loser_id: str) -> None:
    """The loser's xrefs as they were; its bases as they are now (a system's later values stay its base)."""
    xt, st = Xref.__table__, SourceState.__table__
    for x in snap["xrefs"]:
        if x["record_id"] == loser_id:
            x = _load(xt, x)
            conn.execute(update(xt).where(xt.c.id == x["id"]).values({k: v for k, v in x.items() if k != "id"}))
    for _, now in given:
        conn.execute(update(st).where(st.c.entity == now["entity"], st.c.system == now["system"],
                                      st.c.source_id == now["source_id"]).values(record_id=loser_id))


def _restore_refs(conn: Connection, refs: list[dict[str, Any]], winner_id: str, loser_id: str, user: str,
                  now: datetime) -> list[dict[str, Any]]:
    history = []
    for ref in refs:
        et = golden.table_of(ref["entity"])
        where = (et.c.id == ref["id"], et.c[ref["field"]] == winner_id)
        # untouched since the merge: back exactly as it was; otherwise only the reference goes back
        res = conn.execute(update(et).where(*where, et.c.version == ref["version"] + 1).values(
            {ref["field"]: loser_id, "updated_at": datetime.fromisoformat(ref["updated_at"]), "version": ref["version"]}))
        if not res.rowcount:
            res = conn.execute(update(et).where(*where).values(
                {ref["field"]: loser_id, "updated_at": now, "version": et.c.version + 1}))
        if res.rowcount:
            history.append(_hist(ref["entity"], ref["id"], ref["field"], winner_id, loser_id, user, now, "unmerge"))
    return history


def _conflicts_since(conn: Connection, left: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The conflicts a merge opened or changed as they are now, and the fields of those changed since."""
    ct = Conflict.__table__
    now: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(left)):
        now.update((r["id"], r) for r in _rows(conn, ct, ct.c.id.in_(part)))
    return now, sorted({c["field"] for cid, c in now.items() if _state_of(c) != left[cid]})


def _restore_conflicts(conn: Connection, snap: dict[str, Any], now_rows: dict[str, dict[str, Any]], merge_id: str,
                       user: str, now: datetime) -> None:
    """Conflicts as before the merge. One a steward decided since stays decided; values systems sent since
    stay in the conflict; one the merge opened is withdrawn (the records it weighed are apart again)."""
    ct = Conflict.__table__
    left = snap["after"].get("conflicts") or {}
    was = {c["id"]: c for c in snap.get("conflicts") or []}
    for cid, state in left.items():
        cur = now_rows.get(cid)
        if cur is None:
            continue
        if cid not in was:
            if cur["status"] == "open":
                conn.execute(update(ct).where(ct.c.id == cid).values(
                    status="resolved", resolved_at=now, resolved_by=user,
                    note=f"withdrawn: merge {merge_id} was undone"))
            continue
        if cur["status"] != "open" and state["status"] == "open":
            continue
        row = _load(ct, was[cid])
        if cur["status"] == "open" and _state_of(cur) != state:
            row["values"] = {**row["values"], **{k: v for k, v in (cur["values"] or {}).items()
                                                 if (state["values"] or {}).get(k, _ABSENT) != v}}
        conn.execute(update(ct).where(ct.c.id == cid).values({k: v for k, v in row.items() if k != "id"}))


@dataclass
class _Replayed:
    history: list[dict[str, Any]] = field(default_factory=list)
    send_back: dict[str, dict[str, Any]] = field(default_factory=dict)   # system -> loser values it gets back


def _replay_edits(conn: Connection, entity: str, loser_id: str, given: list[tuple[dict[str, Any], dict[str, Any]]],
                  edits: dict[tuple[str, str], dict[str, Any]], rules: Rules, merge_id: str, user: str,
                  now: datetime) -> _Replayed:
    """Apply to the restored loser what its source records changed after the merge, oldest first, each
    against the base it had when merged (:func:`hub.merge.merge`, as the sync would have)."""
    out = _Replayed()
    todo = [(then, cur) for then, cur in given if (cur["system"], cur["source_id"]) in edits]
    if not todo:
        return out
    row = golden.load(conn, entity, [loser_id])[loser_id]
    prov_before = dict(row.provenance)
    held = frozenset(open_fields(conn, entity, [loser_id]).get(loser_id, set()))
    changed: set[str] = set()
    notes: list[tuple[str, ConflictNote]] = []
    for then, cur in sorted(todo, key=lambda p: (encode(p[1]["source_ts"]) or "", p[1]["system"], p[1]["source_id"])):
        system = cur["system"]
        res = three_way(row.values, row.provenance, then["values"] or {},
                        Incoming(system, edits[(system, cur["source_id"])], encode(cur["source_ts"])), rules, held)
        row.values.update(res.changes)
        row.provenance = res.provenance
        changed |= set(res.changes)
        out.history += [_hist(entity, loser_id, h.field, h.old, h.new, user, now, h.reason, system)
                        for h in res.history]
        out.send_back.setdefault(system, {}).update(res.send_back)
        notes += [(system, c) for c in res.conflicts]
    if changed or row.provenance != prov_before:
        golden.update_changed(conn, entity, [(row, row.provenance)], now, {loser_id: changed})
    _record_replayed_conflicts(conn, entity, loser_id, notes, merge_id, now)
    return out


def _record_replayed_conflicts(conn: Connection, entity: str, loser_id: str, notes: list[tuple[str, ConflictNote]],
                               merge_id: str, now: datetime) -> None:
    """As the sync records them: an open one joins the record's open conflict on its field if there is one."""
    if not notes:
        return
    ct = Conflict.__table__
    opened = {c["field"]: c for c in reversed(_open_conflicts(conn, entity, [loser_id]))}
    for system, n in notes:
        cur = opened.get(n.field) if n.status == "open" else None
        if cur is not None:
            cur["values"] = {**(cur["values"] or {}), **n.values}
            cur["timestamps"] = {**(cur["timestamps"] or {}), **n.timestamps}
            conn.execute(update(ct).where(ct.c.id == cur["id"]).values(
                {"values": cur["values"], "timestamps": cur["timestamps"]}))
            continue
        row = {"id": new_id(), "entity": entity, "record_id": loser_id, "field": n.field, "status": n.status,
               "rule": n.rule, "values": n.values, "timestamps": n.timestamps, "golden": n.golden, "winner": n.winner,
               "note": f"unmerge {merge_id}: {system} changed it after the merge", "run_id": None, "created_at": now,
               "resolved_at": None, "resolved_by": None}
        conn.execute(insert(ct), [row])
        if n.status == "open":
            opened[n.field] = row


def _fields_changed_since(conn: Connection, entity: str, rid: str, since: datetime) -> list[str]:
    ht = FieldHistory.__table__
    q = select(ht.c.field).where(ht.c.entity == entity, ht.c.record_id == rid, ht.c.at > since).distinct()
    return sorted(r[0] for r in conn.execute(q))


__all__ = ["merge", "unmerge", "survive", "UnmergeConflict"]
