"""Steward unmerge (`triad matches unmerge ID`): undo a merge of :mod:`hub.matching_merge`, keeping the
edits made since.

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
back over. Changes the merge queued and not yet sent are withdrawn; a system written a reference to
either record while they were merged (an order's customer) is written the golden one again, and the
loser is queued again to a system its pending writes reached only as the survivor. An unmerge that
cannot be faithful (the survivor merged again, a source record given back since
deleted, restored or linked elsewhere) is refused, also with ``force``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from hub import audit, golden
from hub.changefeed import lock_history
from hub.errors import NotFound, TriadError, UsageError
from hub.matching import index_records
from hub.echoes import WRITTEN
from hub.matching_merge import (SNAPSHOT_VERSION, _hist, _load, _open_conflicts, _ref_fields, _rows, _state_of,
                                _states)
from hub.merge import CAUGHT_UP, ConflictNote, Incoming, Rules, merge as three_way, provenance_of
from hub.models import Conflict, FieldHistory, MatchCandidate, MergeLog, Outbox, SourceState, Xref
from hub.open_conflicts import open_fields
from hub.outbox import OutboxQueue
from hub.sqlutil import chunks
from hub.types import new_id, utcnow
from hub.values import encode


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
    unreached = _sent_for_loser(conn, snap, loser_id)
    for target in out_systems:
        if back:
            queue.queue(target, winner_id, {f: new for f, (_, new) in back.items()})
        if target in loser_systems:
            loser_back = _loser_back(target, rl.values, was, given, replayed.send_back.get(target, {}))
            if loser_back:
                queue.queue(target, loser_id, loser_back)
        elif target in unreached:
            queue.queue(target, loser_id, {f: v for f, v in rl.values.items() if v not in (None, "", [])})
    queued = queue.flush(conn) + _correct_refs(conn, entity, winner_id, loser_id, loser_systems, now)
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


def _sent_for_loser(conn: Connection, snap: dict[str, Any], loser_id: str) -> set[str]:
    """Systems the loser's pending writes went to while merged, as writes of the survivor: the loser itself
    has still not reached them (its create there was spent on the survivor's record)."""
    ot, xt = Outbox.__table__, Xref.__table__
    sent: set[str] = set()
    for part in chunks(snap["outbox"]):
        sent |= set(conn.scalars(select(ot.c.connector).where(ot.c.id.in_(part), ot.c.status == "done")))
    held = set(conn.scalars(select(xt.c.system).where(xt.c.record_id == loser_id, xt.c.status == "active")))
    return sent - held


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


def _correct_refs(conn: Connection, entity: str, winner_id: str, loser_id: str, loser_systems: set[str],
                  now: datetime) -> int:
    """Queue the golden reference to each system the hub wrote another reference of a record referring
    to the two (an order's customer): while merged, a write there named whichever record of that system
    held the survivor, and may now name the other one. Returns the writes queued.

    In a system where the survivor has no record of its own any more, every reference to it that the hub
    wrote went to a record given back: what was written there now means the loser, so the system showing
    it again is the echo of that write, not an edit."""
    xt, st = Xref.__table__, SourceState.__table__
    own = set(conn.scalars(select(xt.c.system).where(xt.c.entity == entity, xt.c.record_id == winner_id,
                                                      xt.c.status == "active")))
    given_away = loser_systems - own
    queued = 0
    for ref_entity, f in _ref_fields(entity):
        et = golden.table_of(ref_entity)
        refs = dict(conn.execute(select(et.c.id, et.c[f]).where(et.c[f].in_([winner_id, loser_id]))).all())
        queue = OutboxQueue(ref_entity, None, now)
        for part in chunks(sorted(refs)):
            for s in _states(conn, ref_entity, part):
                means = _meaning(winner_id, loser_id) if s["system"] in given_away else (lambda v: v)
                written, values, held = _written_ref(s, f, means)
                if held is _ABSENT:
                    continue          # the system holds only what it showed itself: its own choice
                if held != refs[s["record_id"]]:
                    queue.queue(s["system"], s["record_id"], {f: refs[s["record_id"]]})
                if written != s["written"] or values != s["values"]:
                    conn.execute(update(st).where(st.c.entity == ref_entity, st.c.system == s["system"],
                                                  st.c.source_id == s["source_id"])
                                 .values({"written": written, "values": values}))
        queued += queue.flush(conn)
    return queued


def _meaning(winner_id: str, loser_id: str) -> Any:
    return lambda v: loser_id if v == winner_id else v


def _written_ref(state: dict[str, Any], f: str, means: Any) -> tuple[Any, Any, Any]:
    """(written, values) of a source_state row with the hub's writes of ``f`` read as they mean now, and
    the value those writes leave the system holding (``_ABSENT`` when the hub wrote it none)."""
    written, values = state["written"], state["values"]
    pending = [means(v) for v in (written or {}).get(f) or []]
    if pending:
        pending = [v for i, v in enumerate(pending) if v not in pending[i + 1:]]   # oldest first, once each
        written = {**written, f: pending}
    if state["row_hash"] == WRITTEN and f in (values or {}):
        values = {**values, f: means(values[f])}
    held = pending[-1] if pending else values[f] if state["row_hash"] == WRITTEN and f in (values or {}) else _ABSENT
    return written, values, held


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
    stay in the conflict; an open one the merge opened is withdrawn (the records it weighed are apart again)
    and an automatic one it made and nothing changed since is removed."""
    ct = Conflict.__table__
    left = snap["after"].get("conflicts") or {}
    was = {c["id"]: c for c in snap.get("conflicts") or []}
    for cid, state in left.items():
        cur = now_rows.get(cid)
        if cur is None:
            continue
        if cid not in was:
            if cur["status"] == "open":     # a steward may have seen it: withdrawn, not erased
                conn.execute(update(ct).where(ct.c.id == cid).values(
                    status="resolved", resolved_at=now, resolved_by=user,
                    note=f"withdrawn: merge {merge_id} was undone"))
            elif cur["status"] == "auto" and _state_of(cur) == state:
                conn.execute(ct.delete().where(ct.c.id == cid))   # the merge's own record of a choice it undoes
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
        cur = opened.get(n.field) if n.status in ("open", CAUGHT_UP) else None
        if n.status == CAUGHT_UP and (cur is None or not set(n.values) <= set(cur["values"] or {})):
            continue       # only a system in the open conflict has its entry there brought up to date
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


__all__ = ["unmerge", "UnmergeConflict"]
