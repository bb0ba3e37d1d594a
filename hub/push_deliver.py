"""Delivering one claimed batch of one stream (connector, entity) to its system.

Rows are grouped per record, each record becomes at most one write; what must wait, is held back or
cannot be sent is settled without a write (rules in :mod:`hub.push_rules`, outcomes in :mod:`hub.push_settle`).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from hub import golden
from hub.connector import WriteChange, WriteResult
from hub.echoes import held_by_source
from hub.errors import MappingError
from hub.open_conflicts import open_fields
from hub.push_claim import _create_attempts
from hub.push_rules import (_dead_writes, _first_read_pending, _links, _open_candidates, _ref_targets, _resolve_refs,
                            _unread_changes, _waiting_for)
from hub.push_settle import RECREATE, PushReport, _defer, _mark_done, _settle_failures, _settle_success, _skip
from hub.streams import Parts
from hub.values import decode_record


def _deliver(engine: Engine, parts: Parts, name: str, entity: str, rows: list[dict[str, Any]],
             report: PushReport) -> None:
    mapping = parts.mapping(name, entity)
    connector = parts.connector(name)
    spec = parts.stream_spec(name, entity, None)
    by_record: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_record.setdefault(r["record_id"], []).append(r)
    with engine.connect() as conn:
        links, gone = _links(conn, name, entity, list(by_record))
        creates = _create_attempts(conn, name, entity, {rid: g for rid, g in by_record.items() if rid not in links})
        held = open_fields(conn, entity, list(by_record))
        holds = held_by_source(conn, entity, name, [links[rid] for rid in by_record if rid in links])
        current = golden.load(conn, entity, list(by_record))
        ref_ids = _ref_targets(conn, name, entity, current, by_record)
        unread = _unread_changes(conn, connector, spec, mapping, name, entity,
                                 {rid: links[rid] for rid in by_record if rid in links})
        first_read = _first_read_pending(conn, parts, name, entity)
        undecided = _open_candidates(conn, entity, list(by_record))
    changes: list[WriteChange] = []
    change_rows: dict[str, list[dict[str, Any]]] = {}
    written: dict[str, dict[str, Any]] = {}     # change -> canonical values the system now holds
    deferred: list[tuple[dict[str, Any], str]] = []
    dead: list[tuple[dict[str, Any], str]] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    waits: list[tuple[dict[str, Any], tuple[str, str]]] = []     # rows held for a referenced record
    for rid, group in by_record.items():
        g = current.get(rid)
        delete = any(r["operation"] == "delete" for r in group)
        if g is None and not delete:
            dead += [(r, f"the golden {entity} {rid} no longer exists") for r in group]
            continue
        if g is not None and g.merged_into:     # its links and values went to the surviving record
            skipped += [(r, f"not sent: {entity} {rid} was merged into {g.merged_into}, which carries its values")
                        for r in group]
            continue
        source_id = links.get(rid)
        if delete:
            if source_id is None:    # never there: nothing to delete
                _mark_done(engine, [r["id"] for r in group])
                report.counts["unchanged"] += len(group)
                continue
            if g is not None and not g.deleted_in:     # back where it was deleted, after this row was claimed
                skipped += [(r, f"not sent: {entity} {rid} came back, it is deleted nowhere") for r in group]
                continue
            changes.append(WriteChange(group[-1]["idempotency_key"], rid, source_id, {}, delete=True))
            change_rows[group[-1]["idempotency_key"]] = group
            continue
        recreate = any(r["operation"] == RECREATE for r in group)   # the hub's own delete there went too far
        if source_id is None and rid in gone and not recreate:   # deleted there: creating it again would undo it
            skipped += [(r, f"not sent: {entity} {rid} is deleted in {name}") for r in group]
            continue
        if source_id is not None and rid in unread:   # writing now would overwrite a change the hub has not read
            deferred += [(r, unread[rid]) for r in group]
            continue
        if source_id is None and first_read:    # it may hold this record already: the read links it, then update
            deferred += [(r, first_read) for r in group]
            continue
        if source_id is None and rid in undecided:    # created now, a merge would leave two records there
            deferred += [(r, f"not created in {name} yet: {entity} {rid} may be the same as {undecided[rid]}, "
                              f"waiting for a steward (triad matches list)") for r in group]
            continue
        hold = held.get(rid, set())     # not propagated until resolved; the resolution is queued anew
        if source_id is None:    # unknown to this system: create it with the whole golden record
            values = {k: v for k, v in g.values.items() if v not in (None, []) and k not in hold}
        else:
            waiting = [r for r in group if r["fields"] and set(r["fields"]) <= hold]
            skipped += [(r, f"not sent: {', '.join(sorted(r['fields']))} of {entity} {rid} has an open manual "
                            f"conflict; its resolution is queued anew") for r in waiting]
            group = [r for r in group if r not in waiting]
            if not group:
                continue
            values = {}
            for r in group:
                values.update(r["fields"])
            # the latest golden value of each changed field, but not one the system holds already (the
            # winner of a concurrent change, say): such a row is settled without a write
            have = holds.get(source_id, {})
            values = {k: g.values.get(k) for k in values
                      if k not in hold and not (k in have and have[k] == g.values.get(k))}
        canonical = dict(values)          # before references become this system's ids
        missing = _resolve_refs(entity, values, ref_ids, frozenset(parts.cfg.connectors[name].entities))
        if missing:
            waits += [(r, missing) for r in group]
            continue
        try:
            payload = mapping.to_source(decode_record(entity, values))
        except (MappingError, ValueError) as exc:
            dead += [(r, f"cannot map to {name}: {exc}") for r in group]
            continue
        if not payload and source_id is not None:
            _mark_done(engine, [r["id"] for r in group])    # nothing this system holds has changed
            report.counts["unchanged"] += len(group)
            continue
        # an update goes under its newest row's key (new content, new key); a create under its first
        # attempt's, with whether that attempt may have reached the system (hub.push_claim._create_attempts)
        key, maybe_sent = creates[rid] if source_id is None else (group[-1]["idempotency_key"], None)
        changes.append(WriteChange(key, rid, source_id, payload, maybe_sent=maybe_sent))
        change_rows[key] = group
        written[key] = _as_read_back(mapping, canonical, payload)
    if waits:
        with engine.connect() as conn:
            blocking = _dead_writes(conn, name, {ref for _, ref in waits})
        deferred += [(r, _waiting_for(*ref) + (f", but {blocking[ref]}" if ref in blocking else ""))
                     for r, ref in waits]
    if dead:
        _settle_failures(engine, [(r, e, False, None) for r, e in dead], parts, report)
    if deferred:
        _defer(engine, deferred, report)
    if skipped:
        _skip(engine, skipped, report)
    if not changes:
        return
    results = connector.write(spec, changes)
    by_key = {r.change_id: r for r in results}
    ok: list[tuple[WriteChange, WriteResult]] = []
    failed: list[tuple[dict[str, Any], str, bool, float | None]] = []
    for ch in changes:
        res = by_key.get(ch.change_id) or WriteResult(ch.change_id, False, error="the connector returned no result",
                                                      retriable=True)
        if res.ok:
            ok.append((ch, res))
        else:
            failed += [(r, res.error or "write failed", res.retriable, res.retry_after) for r in change_rows[ch.change_id]]
    _settle_success(engine, parts, name, entity, ok, change_rows, report, written, connector.writes_visible)
    if failed:
        _settle_failures(engine, failed, parts, report)


def _as_read_back(mapping: Any, canonical: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The canonical values the system holds after this write, as its next read will show them: a lossy
    outbound value map (``blocked`` sent as ``Active__c=false``) reads back as ``inactive``; taking that
    for the system's own change would set the golden value back and forth on every cycle."""
    from hub.values import encode
    shown = mapping.read_back(payload)
    return {k: (encode(shown[k]) if shown.get(k) is not None or v is None else v) for k, v in canonical.items()
            if k in mapping.writable_fields}
