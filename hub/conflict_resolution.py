"""Resolving conflicts: a decision becomes golden, goes to history, the audit log and every system.

One conflict (`triad conflicts resolve ID`, the API) and many (`--all`, several ids) take one path:
the conflicts of a chunk are settled together in the caller's transaction with set-based statements
(one golden load, one source-state read, one history insert, one outbox insert, one conflict update,
one audit append), so thousands of decisions take seconds. A conflict that cannot be resolved is
named with its reason; the others of its chunk go on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from sqlalchemy import Connection, Engine, and_, bindparam, insert, or_, select, update

from hub import audit, golden, subscriptions
from hub.changefeed import lock_history
from hub.column_fit import SQLITE_EXACT_DIGITS
from hub.conflicts import get_conflicts, merged_note, no_conflict
from hub.echoes import known_held
from hub.errors import NotFound, TriadError, UsageError
from hub.models import Conflict, FieldHistory, SourceState
from hub.outbox import OutboxQueue
from hub.sqlutil import chunks
from hub.steward_values import prepare as prepare_checks, steward_values
from hub.types import utcnow

if TYPE_CHECKING:
    from hub.rbac import Principal

CHUNK = 500   # conflicts settled per transaction by `resolve --all`: one lock window, one commit


@dataclass(frozen=True)
class Decision:
    """What a steward decided for every conflict of a call: exactly one of take, value and keep."""

    user: str
    take: str | None = None
    value: str | None = None
    keep: bool = False
    note: str | None = None

    def check(self) -> None:
        if sum((self.take is not None, self.value is not None, self.keep)) != 1:
            raise UsageError("give exactly one of --take SYSTEM, --value VALUE, --keep")

    @property
    def winner(self) -> str:
        return self.take or ("golden" if self.keep else f"user:{self.user}")


Failed = list[tuple[str, TriadError]]


def resolve_many(engine: Engine, conflict_ids: Sequence[str], decision: Decision, who: Principal, *,
                 out_systems: Callable[[str], tuple[str, ...]], suite_override: Callable[[str], str | None],
                 progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Resolve conflicts chunk by chunk, each chunk committed alone (those done stay done if a later
    chunk fails). Returns (the resolutions, in the order given; ``{"id", "error"}`` of each conflict
    not resolved: unknown, not the caller's to resolve, resolved already ...).

    ``progress`` is called with the number of conflicts settled or failed so far, after each chunk.
    """
    from hub.rbac import require
    decision.check()
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for part in chunks(list(conflict_ids), CHUNK):
        with engine.connect() as conn:
            found = get_conflicts(conn, part)
        allowed = []
        for cid in part:
            c = found.get(cid)
            try:
                if c is None:
                    raise no_conflict(cid)
                # a refusal is audited in a transaction of its own, before the chunk's
                require(engine, who, "resolve", c["entity"], c["field"], target=f"conflict:{cid}")
                allowed.append(cid)
            except TriadError as exc:
                failed.append({"id": cid, "error": str(exc)})
        with engine.begin() as conn:   # read again in the transaction: what was resolved meanwhile is seen
            rows = get_conflicts(conn, allowed)
            gone = [cid for cid in allowed if cid not in rows]
            d, f = resolve_set(conn, [rows[cid] for cid in allowed if cid in rows], decision,
                               out_systems=out_systems, suite_override=suite_override)
        done += d
        failed += [{"id": cid, "error": str(no_conflict(cid))} for cid in gone]
        failed += [{"id": cid, "error": str(exc)} for cid, exc in f]
        if progress is not None:
            progress(len(done) + len(failed))
    order = {cid: i for i, cid in enumerate(conflict_ids)}
    failed.sort(key=lambda f: order[f["id"]])
    return done, failed


def resolve_set(conn: Connection, conflicts: Sequence[dict[str, Any]], decision: Decision, *,
                out_systems: Callable[[str], tuple[str, ...]],
                suite_override: Callable[[str], str | None]) -> tuple[list[dict[str, Any]], Failed]:
    """Resolve ``conflicts`` (rows of :func:`hub.conflicts.get_conflict` or the like, read before)
    in the caller's transaction. Returns (the resolutions, as before/after for the report; the
    conflicts not resolved, each with its error). Nothing of a failed conflict is written.

    ``out_systems(entity)``: the systems that take the entity; ``suite_override(entity)``: the
    deployment's expectation suite file a typed-in value must pass (None: the shipped suite).
    """
    decision.check()
    if decision.value is not None:   # build the checks before the row locks, not under them
        for entity, field in sorted({(c["entity"], c["field"]) for c in conflicts}):
            prepare_checks(entity, field, suite_override(entity))
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for c in conflicts:
        by_entity.setdefault(c["entity"], []).append(c)
    now = utcnow()
    done: list[dict[str, Any]] = []
    failed: Failed = []
    for entity, items in by_entity.items():
        d, f = _resolve_entity(conn, entity, items, decision, now, out_systems(entity), suite_override(entity))
        done += d
        failed += f
    order = {c["id"]: i for i, c in enumerate(conflicts)}
    done.sort(key=lambda d: order[d["id"]])
    failed.sort(key=lambda f: order[f[0]])
    return done, failed


def _resolve_entity(conn: Connection, entity: str, items: list[dict[str, Any]], decision: Decision, now: Any,
                    targets: tuple[str, ...], suite: str | None) -> tuple[list[dict[str, Any]], Failed]:
    rows = golden.load(conn, entity, [c["record_id"] for c in items], lock=True)
    states = _source_states(conn, entity, list(rows))
    exact_digits = SQLITE_EXACT_DIGITS if conn.dialect.name == "sqlite" else None
    typed_in = _typed_in(entity, items, rows, decision.value, suite, exact_digits) if decision.value is not None else {}
    who = f"user:{decision.user}"
    done: list[dict[str, Any]] = []
    failed: Failed = []
    settled: set[tuple[str, str]] = set()       # (record, field) decided earlier in this set
    changed: dict[str, set[str]] = {}
    history: list[dict[str, Any]] = []
    queue = OutboxQueue(entity, None, now)
    closing: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for c in items:
        cid, rid, f = c["id"], c["record_id"], c["field"]
        try:
            if c["status"] == "resolved" or (rid, f) in settled:
                by, at = (c["resolved_by"], c["resolved_at"]) if c["status"] == "resolved" else (decision.user, now)
                raise UsageError(f"conflict {cid} was resolved already by {by} at {at}")
            row = rows.get(rid)
            if row is None:
                raise NotFound(f"the {entity} {rid} of conflict {cid} no longer exists")
            if row.merged_into:   # its writes would re-create the merged-away record in every system
                raise UsageError(f"conflict {cid} cannot be resolved: {merged_note(conn, entity, rid)}")
            if decision.value is not None:
                chosen = typed_in[cid]
                if isinstance(chosen, TriadError):
                    raise chosen
            elif decision.keep:
                chosen = row.values.get(f)
            else:
                chosen = _taken(c, decision.take, states.get(rid, []))
        except TriadError as exc:
            failed.append((cid, exc))
            continue
        settled.add((rid, f))
        old = row.values.get(f)
        if chosen != old:
            row.values[f] = chosen
            row.provenance = dict(row.provenance, **{f: [who, now.isoformat()]})
            changed.setdefault(rid, set()).add(f)
            history.append({"entity": entity, "record_id": rid, "field": f, "old": old, "new": chosen,
                            "system": None, "user": decision.user, "run_id": None, "reason": "resolve", "at": now})
        has_it = _holding(states.get(rid, []), f, chosen)
        queued = 0
        for target in targets:   # every system takes the decision, also the one whose value lost,
            if target not in has_it:   # but the one whose value was taken holds it already
                queue.queue(target, rid, {f: chosen})
                queued += 1
        closing.append({"_entity": entity, "_record": rid, "_field": f, "_id": cid})
        entries.append({"action": "conflict.resolve", "target": f"conflict:{cid}",
                        "before": {"field": f, "golden": old, "values": c["values"]}, "after": {"golden": chosen},
                        "note": decision.note})
        done.append({"id": cid, "entity": entity, "record_id": rid, "field": f, "old": old, "new": chosen,
                     "queued": queued})
    if changed:
        golden.update_changed(conn, entity, [(rows[rid], rows[rid].provenance) for rid in sorted(changed)], now,
                              changed=changed)
    if history:
        lock_history(conn)
        conn.execute(insert(FieldHistory.__table__), history)
        subscriptions.queue_changes(conn, entity, history, None, now)
    queue.flush(conn)
    if closing:
        ct = Conflict.__table__   # the conflict, and any other open one of the same field, is settled
        conn.execute(update(ct).where(ct.c.entity == bindparam("_entity"), ct.c.record_id == bindparam("_record"),
                                      ct.c.field == bindparam("_field"),
                                      or_(ct.c.status == "open", ct.c.id == bindparam("_id")))
                     .values(status="resolved", resolved_at=now, resolved_by=decision.user, note=decision.note,
                             winner=decision.winner), closing)
        audit.record_many(conn, decision.user, entries)
    return done, failed


def _typed_in(entity: str, items: list[dict[str, Any]], rows: dict[str, golden.GoldenRow], text: str,
              suite: str | None, exact_digits: int | None) -> dict[str, Any]:
    """conflict id -> the typed-in value checked on its record (encoded) or the error refusing it there:
    the records of one field are checked in one expectation run (:func:`hub.steward_values.steward_values`)."""
    by_field: dict[str, list[dict[str, Any]]] = {}
    for c in items:
        row = rows.get(c["record_id"])
        if row is not None and not row.merged_into:
            by_field.setdefault(c["field"], []).append(c)
    out: dict[str, Any] = {}
    for f, cs in by_field.items():
        try:
            values = steward_values(entity, f, text, [rows[c["record_id"]].values for c in cs], suite, exact_digits)
        except UsageError as exc:   # the field cannot be typed in: each of its conflicts says so
            values = [exc] * len(cs)
        out.update((c["id"], v) for c, v in zip(cs, values))
    return out


def _source_states(conn: Connection, entity: str, record_ids: list[str]) -> dict[str, list[Any]]:
    """record id -> its source_state rows (system, values, written), the latest seen first."""
    st = SourceState.__table__
    out: dict[str, list[Any]] = {}
    for part in chunks(sorted(record_ids)):
        for r in conn.execute(select(st.c.record_id, st.c.system, st.c["values"], st.c.written, st.c.seen_at)
                              .where(and_(st.c.entity == entity, st.c.record_id.in_(part)))).mappings():
            out.setdefault(r["record_id"], []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r["seen_at"], reverse=True)
    return out


def _taken(c: dict[str, Any], system: str, states: list[Any]) -> Any:
    """``--take S``: S's current value when it has sent another one since the conflict opened, else the
    value the conflict holds."""
    values = c["values"] or {}
    if system not in values:
        raise UsageError(f"conflict {c['id']} has no value from '{system}'; it has: {', '.join(values)}")
    return _sent(states, c["field"]).get(system, values[system])


def _sent(states: list[Any], field: str) -> dict[str, Any]:
    """system -> the value it last sent for ``field`` of the record (its merge base; of several source
    records of one system, the latest seen that has the field)."""
    out: dict[str, Any] = {}
    for r in states:
        values = r["values"] or {}
        if field in values:
            out.setdefault(r["system"], values[field])
    return out


def _holding(states: list[Any], field: str, value: Any) -> set[str]:
    """Systems each of whose records surely holds ``value`` in ``field`` already
    (:func:`hub.echoes.known_held`): a decision for that value need not be written to them."""
    agree: dict[str, bool] = {}
    for r in states:
        held = known_held(r["values"], r["written"])
        agree[r["system"]] = agree.get(r["system"], True) and field in held and held[field] == value
    return {s for s, ok in agree.items() if ok}
