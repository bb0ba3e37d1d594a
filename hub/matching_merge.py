"""Steward merge and unmerge of two golden records (`triad matches merge A B`, `triad matches unmerge ID`).

merge(winner, loser) keeps everything needed to undo it in ``merge_log``: both
golden rows (every column), their xrefs and source_state rows, the references
other records hold to the loser, the loser's pending outbox rows and open
match candidates. Then: the loser's xrefs, bases, references, pending outbox
rows and open candidates move to the winner; survivorship is recomputed field
by field; field_history records it (reason ``merge``); the loser stays as a
tombstone (``merged_into`` = winner; golden rows are never deleted); blocking
keys follow; changed fields are queued to the systems; the audit log records it.

Survivorship of a merge, for each field:
* only one record has a value: that value;
* both have the same value, or the field's rule is ``manual``: the winner's value;
* ``owner: X``: the value that came from X (provenance), else the winner's;
* ``priority``: the value from the higher-priority system (provenance), ties to the winner;
* ``most_recent``: the value with the later source timestamp, else as ``priority``.
A value taken from the loser keeps the loser's provenance for that field.

unmerge(merge id) restores both rows, the xrefs, source_state rows, references,
outbox rows and candidates exactly as snapshotted, when nothing changed the
two records since the merge (their versions are still the ones the merge
left). If either changed since, unmerge refuses and names the fields, unless
``force``: then the loser, xrefs and bases are restored from the snapshot,
and each winner field goes back to its pre-merge value only where it still
holds the value the merge gave it (later changes are kept).
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Numeric, insert, select, update

from hub import audit, golden
from hub.canonical import ENTITIES, entity as entity_def
from hub.changefeed import lock_history
from hub.errors import NotFound, TriadError, UsageError
from hub.matching import index_records
from hub.merge import Rules, provenance_of
from hub.models import FieldHistory, MatchCandidate, MatchKey, MergeLog, Outbox, SourceState, Xref
from hub.outbox import OutboxQueue
from hub.sqlutil import upsert
from hub.types import new_id, utcnow

SNAPSHOT_VERSION = 1


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


def _ref_fields(entity: str) -> list[tuple[str, str]]:
    """(other entity, field) pairs whose field references ``entity``."""
    return [(e, f) for e, d in ENTITIES.items() for f, target in d.refs.items() if target == entity]


# --- survivorship ---------------------------------------------------------------------------------

def _empty(v: Any) -> bool:
    return v is None or v == "" or v == []


def survive(entity: str, winner: golden.GoldenRow, loser: golden.GoldenRow,
            rules: Rules) -> tuple[dict[str, Any], dict[str, list], dict[str, str]]:
    """(values, provenance, reason per field taken from the loser) of the merged record."""
    values, prov = dict(winner.values), dict(winner.provenance)
    taken: dict[str, str] = {}
    for f in golden.scalar_fields(entity) + (["lines"] if entity == "order" else []):
        vw, vl = winner.values.get(f), loser.values.get(f)
        if _empty(vl) or vw == vl:
            continue
        take, why = _empty(vw), "empty"
        if not take:
            rule = rules.for_field(f)
            sw, tw = provenance_of(winner.provenance, f)
            sl, tl = provenance_of(loser.provenance, f)
            if rule.kind == "owner":
                take, why = sl == rule.owner and sw != rule.owner, "owner"
            elif rule.kind == "most_recent" and tw and tl and tw != tl:
                take, why = tl > tw, "most_recent"
            elif rule.kind in ("priority", "most_recent"):
                take, why = rules.rank(sl) < rules.rank(sw), "priority"
        if take:
            values[f] = vl
            if f != "lines":
                prov[f] = list(provenance_of(loser.provenance, f))
            taken[f] = why
    return values, prov, taken


# --- merge ----------------------------------------------------------------------------------------

def merge(conn: Connection, entity: str, winner_id: str, loser_id: str, *, user: str, rules: Rules,
          out_systems: tuple[str, ...], candidate_id: str | None = None, note: str | None = None) -> dict[str, Any]:
    """Merge ``loser_id`` into ``winner_id`` inside the caller's transaction (see the module docstring)."""
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
    rows = golden.load(conn, entity, [winner_id, loser_id])
    w, lo = rows[winner_id], rows[loser_id]
    now = utcnow()
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
    snapshot = {"v": SNAPSHOT_VERSION, "winner": _dump(raw[winner_id]), "loser": _dump(raw[loser_id]),
                "xrefs": [_dump(x) for x in xrefs], "source_state": [_dump(s) for s in states], "refs": refs,
                "outbox": outbox_ids, "candidates": [_dump(c) for c in cands]}
    if entity == "order":
        snapshot["lines"] = {rid: rows[rid].values.get("lines") or [] for rid in ids}

    values, prov, taken = survive(entity, w, lo, rules)
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
    kt = MatchKey.__table__
    conn.execute(kt.delete().where(kt.c.entity == entity, kt.c.record_id == loser_id))
    index_records(conn, entity, [(winner_id, {k: v for k, v in values.items() if k != "lines"})])

    queue = OutboxQueue(entity, None, now)
    winner_changes = {f: new for f, (_, new) in changed.items()}
    loser_systems = {x["system"] for x in xrefs if x["record_id"] == loser_id}
    catch_up = {f: v for f, v in values.items() if f != "lines" and not _empty(v) and lo.values.get(f) != v}
    for target in out_systems:
        fields = dict(winner_changes)
        if target in loser_systems:   # its record now belongs to the winner: bring it up to the winner's values
            fields.update(catch_up)
        if fields:
            queue.queue(target, winner_id, fields)
    queued = queue.flush(conn)
    merge_id = new_id()
    snapshot["after"] = {"winner_version": w.version + 1, "loser_version": raw[loser_id]["version"] + 1,
                         "winner_values": values}
    conn.execute(insert(MergeLog.__table__), [{"id": merge_id, "entity": entity, "winner_id": winner_id,
                                               "loser_id": loser_id, "snapshot": snapshot, "status": "merged",
                                               "merged_by": user, "merged_at": now, "unmerged_at": None}])
    moved = sum(1 for x in xrefs if x["record_id"] == loser_id)
    audit.record(conn, user, "matches.merge", f"{entity}:{winner_id}",
                 before={"winner": w.values, "loser": lo.values},
                 after={"merge_id": merge_id, "loser": loser_id, "changed": changed, "xrefs_moved": moved,
                        "candidate": candidate_id}, note=note)
    return {"merge_id": merge_id, "entity": entity, "winner": winner_id, "loser": loser_id,
            "changed": {f: {"old": old, "new": new, "rule": taken[f]} for f, (old, new) in changed.items()},
            "xrefs_moved": moved, "references_moved": len(refs), "queued": queued}


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


def _hist(entity: str, rid: str, f: str, old: Any, new: Any, user: str, now: datetime, reason: str) -> dict[str, Any]:
    return {"entity": entity, "record_id": rid, "field": f, "old": old, "new": new, "system": None, "user": user,
            "run_id": None, "reason": reason, "at": now}


# --- unmerge --------------------------------------------------------------------------------------

class UnmergeConflict(TriadError):
    """The merged records changed since the merge; an exact restore would lose those changes."""


def unmerge(conn: Connection, merge_id: str, *, user: str, out_systems: tuple[str, ...], force: bool = False,
            note: str | None = None) -> dict[str, Any]:
    """Undo a merge inside the caller's transaction (see the module docstring for ``force``)."""
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
    t, xt, st = golden.table_of(entity), Xref.__table__, SourceState.__table__
    now = utcnow()
    current = {r["id"]: r for r in _rows(conn, t, t.c.id.in_([winner_id, loser_id]), lock=True)}
    before = golden.load(conn, entity, [winner_id, loser_id])
    after = snap["after"]
    if current[loser_id]["merged_into"] != winner_id:
        raise UnmergeConflict(f"{entity} {loser_id} is no longer a tombstone of {winner_id}; cannot unmerge {merge_id}")
    changed_since = (current[winner_id]["version"] != after["winner_version"]
                     or current[loser_id]["version"] != after["loser_version"])
    winner_row = _load(t, snap["winner"])
    if changed_since:
        fields = _fields_changed_since(conn, entity, winner_id, log_row["merged_at"])
        if not force:
            raise UnmergeConflict(
                f"{entity} {winner_id} changed after merge {merge_id} (fields: {', '.join(fields) or 'metadata'}); "
                f"`triad matches unmerge {merge_id} --force` restores {loser_id} and the winner's fields the merge "
                f"changed, and keeps the later changes")
        cur = before[winner_id]
        for f in golden.scalar_fields(entity):
            if cur.values.get(f) != after["winner_values"].get(f):   # changed after the merge: keep it
                winner_row[f] = current[winner_id][f]
                prov = dict(winner_row["provenance"] or {})
                now_prov = current[winner_id]["provenance"] or {}
                if f in now_prov:
                    prov[f] = now_prov[f]
                else:
                    prov.pop(f, None)
                winner_row["provenance"] = prov
        winner_row.update(version=current[winner_id]["version"] + 1, updated_at=now)
    loser_row = _load(t, snap["loser"])
    for row in (winner_row, loser_row):
        conn.execute(update(t).where(t.c.id == row["id"]).values({k: v for k, v in row.items() if k != "id"}))
    for x in snap["xrefs"]:
        x = _load(xt, x)
        conn.execute(update(xt).where(xt.c.id == x["id"]).values({k: v for k, v in x.items() if k != "id"}))
    upsert(conn, st, [_load(st, s) for s in snap["source_state"]], ["entity", "system", "source_id"])
    history = []
    for ref in snap["refs"]:
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
    ot, ct = Outbox.__table__, MatchCandidate.__table__
    if snap["outbox"]:
        conn.execute(update(ot).where(ot.c.id.in_(snap["outbox"]), ot.c.status == "pending")
                     .values(record_id=loser_id, updated_at=now))
    for c in snap["candidates"]:
        c = _load(ct, c)
        conn.execute(update(ct).where(ct.c.id == c["id"]).values({k: v for k, v in c.items() if k != "id"}))
    if entity == "order":
        golden.replace_lines(conn, snap["lines"])
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
    loser_back = {f: v for f, v in rl.values.items() if f != "lines" and was.get(f) != v}
    for target in out_systems:
        if back:
            queue.queue(target, winner_id, {f: new for f, (_, new) in back.items()})
        if target in loser_systems and loser_back:
            queue.queue(target, loser_id, loser_back)
    queued = queue.flush(conn)
    conn.execute(update(mt).where(mt.c.id == merge_id).values(status="unmerged", unmerged_at=now))
    audit.record(conn, user, "matches.unmerge", f"{entity}:{winner_id}",
                 before={"winner": was}, after={"merge_id": merge_id, "winner": rw.values, "loser": rl.values,
                                                 "forced": bool(changed_since)}, note=note)
    return {"merge_id": merge_id, "entity": entity, "winner": winner_id, "loser": loser_id, "forced": changed_since,
            "restored": {f: {"old": old, "new": new} for f, (old, new) in back.items()}, "queued": queued}


def _fields_changed_since(conn: Connection, entity: str, rid: str, since: datetime) -> list[str]:
    ht = FieldHistory.__table__
    q = select(ht.c.field).where(ht.c.entity == entity, ht.c.record_id == rid, ht.c.at > since).distinct()
    return sorted(r[0] for r in conn.execute(q))


__all__ = ["merge", "unmerge", "survive", "UnmergeConflict"]
