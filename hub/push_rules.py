"""What a delivery reads before it writes: links, reference resolution, and why a write must wait.

A create waits for the system's first read, for a steward's match decision, or for the records it
references to reach the system; an update waits while the system may hold an edit the hub has not read.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, or_, select

from hub import golden
from hub.canonical import ENTITIES
from hub.models import SourceState, Xref
from hub.outbox import blocking_writes, held_note, waiting_for
from hub.sqlutil import chunks
from hub.streams import Parts

log = logging.getLogger(__name__)
NOT_READ_YET = "has not been read yet"


def _links(conn: Connection, name: str, entity: str, record_ids: list[str]) -> tuple[dict[str, str], set[str]]:
    """Record id -> the system's id (its first active link there: see :func:`_ref_targets`), and the records
    whose only links there are deleted."""
    xt = Xref.__table__
    links: dict[str, str] = {}
    deleted: set[str] = set()
    for part in chunks(record_ids):
        for x in conn.execute(select(xt.c.record_id, xt.c.source_id, xt.c.status).where(
                xt.c.entity == entity, xt.c.system == name, xt.c.status.in_(("active", "deleted")),
                xt.c.record_id.in_(part)).order_by(xt.c.created_at, xt.c.id)):
            if x.status == "active":
                links.setdefault(x.record_id, x.source_id)
            else:
                deleted.add(x.record_id)
    return links, deleted - set(links)


def _ref_targets(conn: Connection, name: str, entity: str, current: dict[str, golden.GoldenRow],
                 by_record: dict[str, list]) -> dict[tuple[str, str], str]:
    refs = ENTITIES[entity].refs
    wanted: dict[str, set[str]] = {}
    for row in current.values():
        for f, ref_entity in refs.items():
            if row.values.get(f):
                wanted.setdefault(ref_entity, set()).add(row.values[f])
    xt = Xref.__table__
    out: dict[tuple[str, str], str] = {}
    for ref_entity, ids in wanted.items():
        for part in chunks(sorted(ids)):
            # a record with two links in one system (a merge moved the loser's there) is referred to by its
            # first: the one it had before, not a merged-away record's row there
            for x in conn.execute(select(xt.c.record_id, xt.c.source_id).where(
                    xt.c.entity == ref_entity, xt.c.system == name, xt.c.status == "active",
                    xt.c.record_id.in_(part)).order_by(xt.c.created_at, xt.c.id)):
                out.setdefault((ref_entity, x.record_id), x.source_id)
    return out


def _resolve_refs(entity: str, values: dict[str, Any], ref_ids: dict[tuple[str, str], str],
                  synced: frozenset[str]) -> tuple[str, str] | None:
    """Canonical ids in reference fields become this system's ids; None when all are known, else the
    (entity, id) of a referenced record the system does not hold yet.

    A reference to an entity this system does not sync is left out of the write: it could never resolve.
    """
    for f, ref_entity in ENTITIES[entity].refs.items():
        if f in values and ref_entity not in synced:
            del values[f]
            continue
        rid = values.get(f)
        if rid:
            sid = ref_ids.get((ref_entity, rid))
            if sid is None:
                return ref_entity, rid
            values[f] = sid
    return None


def _open_candidates(conn: Connection, entity: str, record_ids: list[str]) -> dict[str, str]:
    """Record id -> another record it may be the same as (an open match candidate a steward has not decided)."""
    from hub.models import MatchCandidate
    mt = MatchCandidate.__table__
    out: dict[str, str] = {}
    for part in chunks(record_ids):
        for a, b in conn.execute(select(mt.c.record_a, mt.c.record_b).where(
                mt.c.status == "open", mt.c.entity == entity, or_(mt.c.record_a.in_(part), mt.c.record_b.in_(part)))):
            out.setdefault(a, b)
            out.setdefault(b, a)
    return out


def _first_read_pending(conn: Connection, parts: Parts, name: str, entity: str) -> str | None:
    """Why a create must wait, or None: a system the hub also reads is not sent new records before its
    first complete read, which links the records it holds already (a create would make a second one)."""
    if parts.cfg.connectors[name].direction == "out":
        return None
    from hub.models import SyncRun
    sr = SyncRun.__table__
    read = conn.execute(select(sr.c.id).where(sr.c.connector == name, sr.c.entity == entity, sr.c.kind == "sync",
                                              sr.c.status == "ok", sr.c.dry_run.is_(False)).limit(1)).first()
    if read is not None:
        return None
    return (f"{name}/{entity} {NOT_READ_YET} and may hold this {entity} already "
            f"(`triad sync run --connector {name} --entity {entity}`): waiting for a read")


def _unread_changes(conn: Connection, connector: Any, spec: Any, mapping: Any, name: str, entity: str,
                    links: dict[str, str]) -> dict[str, str]:
    """Records whose system may hold a change the hub has not read yet: record id -> why.

    An update is held back (1) while the stream's last read failed -- the system's own edits are
    unknown -- and (2) for connectors that can fetch by id, when the record as the system holds it now
    differs from the base the hub last saw. The next read brings the change in and the merge rules
    decide; the write then carries the outcome instead of overwriting the edit.
    """
    if not links:
        return {}
    from hub.models import SyncRun
    sr = SyncRun.__table__
    last = conn.execute(select(sr.c.status, sr.c.error).where(sr.c.connector == name, sr.c.entity == entity,
                                                                sr.c.kind == "sync", sr.c.dry_run.is_(False),
                                                                sr.c.status != "skipped")
                        .order_by(sr.c.started_at.desc()).limit(1)).first()
    if last is not None and last.status in ("error", "stopped"):
        why = f"the last read of {name}/{entity} failed ({(last.error or last.status)[:120]}): waiting for a read"
        return {rid: why for rid in links}
    try:
        raws = connector.fetch(spec, sorted(set(links.values())))
    except NotImplementedError:
        return {}
    except Exception as exc:  # the check is a precaution: a failing fetch leaves the write to its own retries
        log.info("cannot fetch %s/%s before writing: %s", name, entity, exc)
        return {}
    st = SourceState.__table__
    bases: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(set(links.values()))):
        for r in conn.execute(select(st.c.source_id, st.c["values"]).where(
                st.c.entity == entity, st.c.system == name, st.c.source_id.in_(part))):
            bases[r.source_id] = r[1] or {}
    by_source = {sid: rid for rid, sid in links.items()}
    refs = set(ENTITIES[entity].refs)
    out: dict[str, str] = {}
    from hub.values import encode_record
    for raw in raws:
        try:
            rec = mapping.to_canonical(raw)
        except Exception:  # an unreadable record is left to the next read to park
            continue
        base = bases.get(rec.source_id)
        rid = by_source.get(rec.source_id)
        if base is None or rid is None:
            continue
        now = encode_record(rec.values)
        changed = [f for f, v in now.items() if f not in refs and f in mapping.writable_fields and v != base.get(f)]
        if changed:
            out[rid] = f"{name} changed {', '.join(sorted(changed))} since the last read: waiting for a read"
    return out


def _dead_writes(conn: Connection, name: str, refs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(entity, id) -> why it will not reach ``name`` by itself: its latest write there is dead or dropped.
    Without this, what waits for it would wait silently for ever."""
    return {ref: held_note(*ref, r.id, r.status) for ref, r in blocking_writes(conn, name, refs).items()}


def _waiting_for(ref_entity: str, rid: str) -> str:
    return waiting_for(ref_entity, rid)
