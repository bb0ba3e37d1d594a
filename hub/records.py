"""Reading golden records for stewards: lists, one record with provenance, sources and history."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, false, select

from hub.canonical import ENTITIES, entity as entity_def
from hub.errors import NotFound, UsageError
from hub.golden import load_lines, scalar_fields, table_of
from hub.merge import CREATED, provenance_of
from hub.models import Conflict, FieldHistory, Quarantine, SourceState, Xref
from hub.sqlutil import chunks
from hub.values import decode, encode


def _xrefs(conn, entity: str, ids: list[str]) -> dict[str, dict[str, list[str]]]:  # noqa: ANN001
    xt = Xref.__table__
    out: dict[str, dict[str, list[str]]] = {}
    for part in chunks(ids):    # a page of 100,000 records has more ids than PostgreSQL takes parameters
        for r in conn.execute(select(xt.c.record_id, xt.c.system, xt.c.source_id).where(
                xt.c.entity == entity, xt.c.record_id.in_(part), xt.c.status != "merged").order_by(xt.c.system)):
            out.setdefault(r.record_id, {}).setdefault(r.system, []).append(r.source_id)
    return out


def parse_where(entity: str, where: tuple[str, ...]) -> list[tuple[str, Any]]:
    """``FIELD=VALUE`` filters as (field, typed value); an empty VALUE matches an empty field."""
    fields = ENTITIES[entity].fields
    out = []
    for w in where:
        if "=" not in w:
            raise UsageError(f"--where {w!r}: expected FIELD=VALUE")
        f, v = w.split("=", 1)
        f = f.strip()
        if f not in fields and f != "id":
            raise UsageError(f"--where {w!r}: {entity} has no field '{f}'; fields: {', '.join(fields)}")
        out.append((f, _where_value(entity, f, fields.get(f, "string"), v, w) if v != "" else None))
    return out


NO_ROW = object()   # a filter value no row can hold (beyond the column's digits or range): matches nothing


def _where_value(entity: str, field: str, type_name: str, text: str, where: str) -> Any:
    """The typed value of one filter (as written: ``1,5`` is not a number), or NO_ROW for a value
    the column cannot hold, which is never sent to the store (an overflow error there)."""
    if type_name in ("string", "list"):
        return text
    from hub.steward_values import TYPE_NOUNS, column_problem
    try:
        typed = decode(text, type_name)
        if isinstance(typed, Decimal) and not typed.is_finite():
            raise ValueError("NaN and infinity are no amounts")
    except (ValueError, ArithmeticError):
        raise UsageError(f"--where {where}: {text!r} is not {TYPE_NOUNS.get(type_name, type_name)}") from None
    return NO_ROW if column_problem(entity, field, typed) is not None else typed


def list_records(engine: Engine, entity: str, where: tuple[str, ...] = (), limit: int = 50,
                 offset: int = 0, denied: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    entity_def(entity)
    t = table_of(entity)
    q = select(t).where(t.c.merged_into.is_(None)).order_by(t.c.id).limit(limit).offset(offset)
    for f, v in parse_where(entity, where):
        q = q.where(t.c[f].is_(None) if v is None else false() if v is NO_ROW else t.c[f] == v)
    fields = [f for f in scalar_fields(entity) if f not in denied]
    with engine.connect() as conn:
        rows = list(conn.execute(q).mappings())
        xrefs = _xrefs(conn, entity, [r["id"] for r in rows])
    return [{"id": r["id"], "entity": entity, "fields": {f: encode(r[f]) for f in fields},
             "xrefs": xrefs.get(r["id"], {}), "deleted_in": r["deleted_in"], "updated_at": r["updated_at"]}
            for r in rows]


def show_record(engine: Engine, entity: str, record_id: str, denied: frozenset[str] = frozenset(),
                history_limit: int = 200) -> dict[str, Any]:
    """One golden record: fields, xrefs, per-field provenance, every system's last values, history, open items."""
    entity_def(entity)
    t = table_of(entity)
    with engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.id == record_id)).mappings().first()
        if r is None:
            xt = Xref.__table__
            hit = conn.execute(select(xt.c.record_id).where(xt.c.entity == entity, xt.c.source_id == record_id)).first()
            hint = f" (it is a source id of {hit[0]})" if hit else ""
            raise NotFound(f"no {entity} {record_id}{hint}; see `triad records list {entity}`")
        fields = [f for f in scalar_fields(entity) if f not in denied]
        values = {f: encode(r[f]) for f in fields}
        if entity == "order":
            values["lines"] = load_lines(conn, [record_id]).get(record_id, [])
        prov = r["provenance"] or {}
        provenance = {}
        for f in values:
            system, at = provenance_of(prov, f, values[f])
            if system and (values[f] is not None or f in prov):
                provenance[f] = {"system": system, "at": at}
        st = SourceState.__table__
        sources = {}
        for s in conn.execute(select(st).where(st.c.entity == entity, st.c.record_id == record_id)).mappings():
            if s["row_hash"] == "written" and not s["values"]:
                continue     # only written to (hub.echoes): nothing read from that system yet
            sources.setdefault(s["system"], {})[s["source_id"]] = {
                "values": {k: v for k, v in (s["values"] or {}).items() if k not in denied},
                "source_ts": s["source_ts"], "seen_at": s["seen_at"]}
        ht = FieldHistory.__table__
        history = [{"seq": h.seq, "field": h.field, "old": _without(h.old, denied), "new": _without(h.new, denied),
                    "system": h.system, "user": h.user, "reason": h.reason, "run_id": h.run_id, "at": h.at}
                   for h in conn.execute(select(ht).where(ht.c.entity == entity, ht.c.record_id == record_id)
                                         .order_by(ht.c.seq.desc()).limit(history_limit))
                   if h.field not in denied]
        ct = Conflict.__table__
        conflicts = [{"id": c.id, "field": c.field, "status": c.status, "rule": c.rule, "values": c._mapping["values"],
                      "golden": c.golden, "winner": c.winner, "created_at": c.created_at}
                     for c in conn.execute(select(ct).where(ct.c.entity == entity, ct.c.record_id == record_id)
                                           .order_by(ct.c.created_at.desc()))
                     if c.field not in denied]
        xrefs = _xrefs(conn, entity, [record_id]).get(record_id, {})
        qt = Quarantine.__table__
        sids = [sid for ids in xrefs.values() for sid in ids]
        parked = [{"id": q.id, "connector": q.connector, "source_id": q.source_id, "kind": q.kind,
                   "reasons": q.reasons, "status": q.status}
                  for q in conn.execute(select(qt).where(qt.c.entity == entity, qt.c.source_id.in_(sids)))] if sids else []
    return {"id": record_id, "entity": entity, "fields": values, "xrefs": xrefs, "provenance": provenance,
            "sources": sources, "history": history, "conflicts": conflicts, "quarantine": parked,
            "deleted_in": r["deleted_in"], "merged_into": r["merged_into"], "updated_at": r["updated_at"],
            "created": {"system": (prov.get(CREATED) or [None])[0]}}


def _without(value: Any, denied: frozenset[str]) -> Any:
    """A creation row holds every field: denied ones are taken out of it too."""
    if denied and isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in denied}
    return value


def history(engine: Engine, entity: str, record_id: str, field: str | None = None,
            limit: int = 500, denied: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    entity_def(entity)
    ht = FieldHistory.__table__
    q = select(ht).where(ht.c.entity == entity, ht.c.record_id == record_id).order_by(ht.c.seq).limit(limit)
    if field:
        if field not in ENTITIES[entity].fields and field not in ("deleted_in", "*"):
            raise UsageError(f"{entity} has no field '{field}'")
        q = q.where(ht.c.field.in_([field, CREATED]))
    with engine.connect() as conn:
        rows = list(conn.execute(q))
        if not rows:
            t = table_of(entity)
            if conn.execute(select(t.c.id).where(t.c.id == record_id)).first() is None:
                raise NotFound(f"no {entity} {record_id}; see `triad records list {entity}`")
    out = []
    for h in rows:
        old, new = h.old, h.new
        if h.field == CREATED and field:
            new = (h.new or {}).get(field)
            if new is None:
                continue
        out.append({"seq": h.seq, "field": field if h.field == CREATED and field else h.field,
                    "old": _without(old, denied), "new": _without(new, denied), "system": h.system, "user": h.user, "reason": h.reason, "run_id": h.run_id,
                    "at": h.at})
    return out
