"""Conflict review: list and show (resolving one or many conflicts is :mod:`hub.conflict_resolution`)."""
from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import Connection, Engine, and_, or_, select

from hub import durations, golden
from hub.canonical import ENTITIES
from hub.errors import NotFound, UsageError
from hub.models import Conflict, FieldHistory
from hub.sqlutil import chunks
from hub.types import utcnow
from hub.values import encode

if TYPE_CHECKING:
    from hub.rbac import Principal


def _row(c: Any) -> dict[str, Any]:
    """A conflict row; ``golden`` is filled in by :func:`_with_current_golden` (the stored column is the
    value when the conflict opened, kept as ``golden_at_open``)."""
    m = c._mapping if hasattr(c, "_mapping") else c
    return {"id": m["id"], "entity": m["entity"], "record_id": m["record_id"], "field": m["field"],
            "status": m["status"], "values": m["values"], "timestamps": m["timestamps"], "golden": None,
            "golden_at_open": m["golden"], "rule": m["rule"], "winner": m["winner"], "note": m["note"],
            "created_at": m["created_at"], "resolved_at": m["resolved_at"], "resolved_by": m["resolved_by"]}


def _with_current_golden(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each conflict's ``golden`` to its record's value now (None if the record is gone) and
    ``merged_into`` to the record it was merged into (None while it lives): one query per entity
    for the fields the conflicts are about, not one per conflict."""
    by_entity: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_entity.setdefault(r["entity"], []).append(r)
    for entity, items in by_entity.items():
        current, merged = _current_values(conn, entity, sorted({r["record_id"] for r in items}),
                                          sorted({r["field"] for r in items}))
        for r in items:
            r["golden"] = current.get(r["record_id"], {}).get(r["field"])
            r["merged_into"] = survivor(conn, entity, r["record_id"]) if merged.get(r["record_id"]) else None
    return rows


def _current_values(conn: Connection, entity: str, ids: list[str],
                    fields: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str | None]]:
    """(record id -> {field: encoded golden value} for the given fields, record id -> merged_into)."""
    types = ENTITIES[entity].fields
    scalar = [f for f in fields if types.get(f) not in (None, "list")]
    t = golden.table_of(entity)
    out: dict[str, dict[str, Any]] = {}
    merged: dict[str, str | None] = {}
    for part in chunks(ids):
        for r in conn.execute(select(t.c.id, t.c.merged_into, *[t.c[f] for f in scalar])
                              .where(t.c.id.in_(part))).mappings():
            out[r["id"]] = {f: encode(r[f]) for f in scalar}
            merged[r["id"]] = r["merged_into"]
    if "lines" in fields and types.get("lines") == "list":   # order lines live in their own table
        lines = golden.load_lines(conn, list(out))
        for rid, values in out.items():
            values["lines"] = lines.get(rid, [])
    return out, merged


MAX_MERGE_CHAIN = 1000   # a bound for a corrupt store whose merges point in a circle


def survivor(conn: Connection, entity: str, record_id: str) -> str | None:
    """The live record ``record_id`` was merged into, following merges of merges; None if it was not merged."""
    t = golden.table_of(entity)
    current, seen = record_id, {record_id}
    for _ in range(MAX_MERGE_CHAIN):
        into = conn.scalar(select(t.c.merged_into).where(t.c.id == current))
        if into is None or into in seen:
            break
        current = into
        seen.add(into)
    return None if current == record_id else current


def merged_away(entities: list[str]):  # noqa: ANN202 - a SQL condition
    """Open conflicts of records merged into another one: no longer work (the record is a tombstone)."""
    ct = Conflict.__table__
    parts = []
    for e in entities:
        t = golden.table_of(e)
        parts.append(and_(ct.c.entity == e, ct.c.record_id.in_(select(t.c.id).where(t.c.merged_into.is_not(None)))))
    return and_(ct.c.status == "open", or_(*parts))


def _query(status: str | None, entity: str | None, field: str | None, system: str | None,
           older_than: timedelta | None, entities: frozenset[str] | None,
           denied: dict[str, frozenset[str]], include_merged: bool = False):  # noqa: ANN202
    ct = Conflict.__table__
    q = select(ct).order_by(ct.c.created_at, ct.c.id)
    if status:
        q = q.where(ct.c.status == status)
    if entity:
        q = q.where(ct.c.entity == entity)
    if entities is not None:
        q = q.where(ct.c.entity.in_(sorted(entities)))
    if field:
        q = q.where(ct.c.field == field)
    for e, fields in sorted(denied.items()):   # the caller's hidden fields, entity by entity, in the query:
        if fields:                               # a page is never cut short by rows dropped afterwards
            q = q.where(~and_(ct.c.entity == e, ct.c.field.in_(sorted(fields))))
    if older_than:
        q = q.where(ct.c.created_at <= utcnow() - older_than)
    scope = [entity] if entity else sorted(entities if entities is not None else ENTITIES)
    if not include_merged and status in (None, "open") and scope:   # in the query too: pages stay full
        q = q.where(~merged_away(scope))
    return q, system


def list_conflicts(engine: Engine, *, status: str | None = None, entity: str | None = None,
                   field: str | None = None, system: str | None = None, older_than: timedelta | None = None,
                   limit: int = 100, offset: int = 0, entities: frozenset[str] | None = None,
                   denied: dict[str, frozenset[str]] | None = None,
                   after: tuple[datetime, str] | None = None, include_merged: bool = False) -> list[dict[str, Any]]:
    """Conflicts oldest first; ``after`` (created_at, id) starts after that row (keyset paging);
    ``denied``: entity -> fields the caller may not see (their conflicts are left out).

    Open conflicts of a record merged into another are left out unless ``include_merged``: they
    cannot be resolved (see :func:`resolve`); each row's ``merged_into`` names the surviving record.
    """
    q, system = _query(status, entity, field, system, older_than, entities, denied or {}, include_merged)
    if after is not None:
        ct = Conflict.__table__
        q = q.where(or_(ct.c.created_at > after[0], and_(ct.c.created_at == after[0], ct.c.id > after[1])))
    with engine.connect() as conn:
        if not system:   # the page only: auto conflicts pile up for good, a page must not read them all
            rows = [_row(c) for c in conn.execute(q.limit(limit).offset(offset))]
        else:            # a JSON key test is dialect-specific: rows stream in order until the page is full
            with conn.execution_options(stream_results=True, yield_per=1000).execute(q) as result:
                rows = list(islice((r for r in map(_row, result) if system in (r["values"] or {})),
                                   offset, offset + limit))
        return _with_current_golden(conn, rows)


def get_conflict(conn: Connection, conflict_id: str) -> dict[str, Any]:
    ct = Conflict.__table__
    c = conn.execute(select(ct).where(ct.c.id == conflict_id)).first()
    if c is None:
        raise no_conflict(conflict_id)
    return _with_current_golden(conn, [_row(c)])[0]


def show_conflict(engine: Engine, conflict_id: str) -> dict[str, Any]:
    """The conflict with its record's context: the golden record now and the field's recent history."""
    with engine.connect() as conn:
        c = get_conflict(conn, conflict_id)
        rows = golden.load(conn, c["entity"], [c["record_id"]])
        row = rows.get(c["record_id"])
        ht = FieldHistory.__table__
        hist = [{"at": h.at, "old": h.old, "new": h.new, "system": h.system, "user": h.user, "reason": h.reason}
                for h in conn.execute(select(ht).where(ht.c.entity == c["entity"], ht.c.record_id == c["record_id"],
                                                       ht.c.field == c["field"]).order_by(ht.c.seq.desc()).limit(10))]
    c["golden"] = c["current_golden"] = row.values.get(c["field"]) if row else None
    c["record"] = row.values if row else None
    c["field_history"] = hist
    return c


def without_denied(c: dict[str, Any], denied: frozenset[str]) -> dict[str, Any]:
    """A shown conflict without the caller's hidden fields in its record (as `records show` leaves them out)."""
    if denied and c.get("record") is not None:
        c = dict(c, record={k: v for k, v in c["record"].items() if k not in denied})
    return c


def resolve(conn: Connection, conflict_id: str, *, user: str, out_systems: tuple[str, ...], take: str | None = None,
            value: str | None = None, keep: bool = False, note: str | None = None,
            suite_override: str | None = None) -> dict[str, Any]:
    """Resolve one conflict inside the caller's transaction; returns before/after for the report.

    ``suite_override`` is the deployment's expectation suite file for the entity (config
    ``validation``), which a typed-in ``value`` must pass; else the shipped suite.
    """
    from hub.conflict_resolution import Decision, resolve_set
    c = get_conflict(conn, conflict_id)
    done, failed = resolve_set(conn, [c], Decision(user, take, value, keep, note),
                               out_systems=lambda _: out_systems, suite_override=lambda _: suite_override)
    if failed:
        raise failed[0][1]
    return done[0]


def get_conflicts(conn: Connection, conflict_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> conflict row (without the current golden value) for those of ``conflict_ids`` that exist."""
    ct = Conflict.__table__
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(set(conflict_ids))):
        for c in conn.execute(select(ct).where(ct.c.id.in_(part))):
            out[c.id] = _row(c)
    return out


def no_conflict(conflict_id: str) -> NotFound:
    return NotFound(f"no conflict {conflict_id} (see `triad conflicts list`)")


def merged_note(conn: Connection, entity: str, record_id: str) -> str:
    """Where the conflicts of a merged-away record are to be found."""
    into = survivor(conn, entity, record_id)
    return f"{entity} {record_id} was merged into {entity} {into}; its conflicts are there"


def resolvable(engine: Engine, who: Principal, *, entity: str | None = None, field: str | None = None,
               system: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What ``conflicts resolve --all`` settles: (the open conflicts the caller may see and resolve,
    oldest first; those of them whose record was merged away, which are left out).

    The caller's visibility applies before the selection, so the count asked for confirmation
    is the number resolved: a conflict on a field denied to the caller is not selected.
    """
    entities = None if who.single_user else who.allowed_entities("resolve")
    denied = {e: who.denied_fields(e) for e in (ENTITIES if entities is None else entities)}
    rows = list_conflicts(engine, status="open", entity=entity, field=field, system=system, limit=MAX_SELECTION,
                          entities=entities, denied=denied, include_merged=True)
    rows = [r for r in rows if who.single_user or who.can("resolve", r["entity"], r["field"])]
    return [r for r in rows if not r["merged_into"]], [r for r in rows if r["merged_into"]]


MAX_SELECTION = 100_000   # conflicts one `resolve --all` takes on


def select_all(engine: Engine, who: Principal, *, entity: str | None = None, field: str | None = None,
               system: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`conflicts resolve --all`: (the conflicts to resolve, see :func:`resolvable`; the conflicts of
    merged-away records left out, briefly). Refused (exit 2) when the caller may not resolve what
    the filters name, or when merged-away records' conflicts are all that match."""
    from hub.rbac import require
    require(engine, who, "resolve", entity, field, target="conflicts resolve --all")
    targets, merged = resolvable(engine, who, entity=entity, field=field, system=system)
    left_out = [{"id": c["id"], "entity": c["entity"], "record_id": c["record_id"], "field": c["field"],
                 "merged_into": c["merged_into"]} for c in merged]
    if left_out and not targets:
        raise UsageError(f"no open conflict matching can be resolved: {left_out_note(left_out)}")
    return targets, left_out


def left_out_note(left_out: list[dict[str, Any]], shown: int = 5) -> str:
    """One line naming the conflicts of merged-away records and where their records went."""
    named = "; ".join(f"conflict {c['id']}: {c['entity']} {c['record_id']} was merged into {c['entity']} "
                      f"{c['merged_into']}; its conflicts are there" for c in left_out[:shown])
    more = f" (and {len(left_out) - shown} more)" if len(left_out) > shown else ""
    return f"{len(left_out)} conflict(s) of merged-away records left out: {named}{more}"


MAX_AGE = timedelta(days=36500)   # a bound far beyond any store, well inside what datetime arithmetic can take


def parse_age(text: str | None, option: str = "--older-than") -> timedelta | None:
    """A positive age like ``30m``, ``12h``, ``7d``, ``2w`` (see :func:`hub.durations.parse`); None when not given."""
    return durations.parse(text, name=option, maximum=MAX_AGE, beyond="too far back") if text else None
