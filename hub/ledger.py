"""Proof that nothing was lost or duplicated: the ledger, duplicate and agreement checks.

A driver (the fault soak, the crash tests) records every change it makes in a system as a
:class:`Change`. After the hub has settled, :func:`classify` finds each change in the store:

- ``golden``: the golden record holds the value (``pending`` while an outbox row still
  carries the field to the other systems);
- ``open_conflict``: an open conflict holds the value for a steward;
- ``superseded``: the same system changed the field again later, or the value was golden
  and a later golden change (in ``field_history``) replaced it;
- ``auto``: a rule settled a concurrent change against it and recorded an auto conflict;
- ``quarantined``: the source record is parked in quarantine with a reason;
- ``lost``: none of the above -- the change is nowhere in the hub.

:func:`duplicates` finds xref rows, links and pending outbox rows that exist twice, and
golden records that share an exact matching key. :func:`agreement` reads every linked
record back through its connector and mapping and compares it with the golden record,
except fields with an open conflict and fields the mapping does not write.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from sqlalchemy import Engine, func, select

from hub import golden
from hub.errors import MappingError
from hub.models import Conflict, FieldHistory, GOLDEN_MODELS, Outbox, Quarantine, Xref
from hub.sqlutil import chunks
from hub.types import utcnow
from hub.values import encode, encode_record

log = logging.getLogger(__name__)

CATEGORIES = ("golden", "pending", "open_conflict", "superseded", "auto", "quarantined", "lost")


@dataclass(frozen=True)
class Change:
    """One change a driver made directly in a system.

    Attributes:
        system: the connector name.
        source_id: the record's id in that system (the xref source id).
        field: the canonical field.
        value: the encoded canonical value (:func:`hub.values.encode`).
        at: when the change was made (aware UTC).
    """

    system: str
    source_id: str
    field: str
    value: Any
    at: datetime


@dataclass
class LedgerReport:
    """What :func:`check` found; ``ok`` when nothing is lost, duplicated or in disagreement."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    lost: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    failed_writes: list[dict[str, Any]] = field(default_factory=list)   # disagreements a dead row explains
    unreadable: list[dict[str, Any]] = field(default_factory=list)      # records parked in quarantine
    dead: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.disagreements)

    def as_dict(self, limit: int = 20) -> dict[str, Any]:
        """Counts, and the first ``limit`` items of every list (all dead rows: each is a failed write)."""
        return {**self.counts, "duplicates": len(self.duplicates), "disagreements": len(self.disagreements),
                "failed_writes": len(self.failed_writes), "unreadable": len(self.unreadable), "dead": len(self.dead),
                "lost_items": self.lost[:limit], "unreadable_items": self.unreadable[:limit],
                "quarantine_reasons": self.quarantined[:limit], "duplicate_items": self.duplicates[:limit],
                "disagreement_items": self.disagreements[:limit], "failed_write_items": self.failed_writes[:limit],
                "dead_items": self.dead}


def check(engine: Engine, parts: Any, entity: str, changes: Sequence[Change],
          systems: Iterable[str] | None = None, exact_keys: Sequence[str] = ()) -> LedgerReport:
    """Run the three checks and list dead outbox rows (failed writes, each with its error).

    A disagreement on a field a dead outbox row was to write to that system is a failed
    write, explained by the row's error (``failed_writes``), not an unexplained disagreement;
    so is a record the mapping cannot read that is parked in quarantine (``unreadable``).

    Args:
        engine: the hub store.
        parts: a :class:`hub.streams.Parts` for reading the systems back.
        entity: the canonical entity the changes were made to.
        changes: every change the driver made, in any order.
        systems: connectors to read back (default: every connector syncing ``entity``).
        exact_keys: fields no two golden records may share (the exact matching keys).
    """
    report = LedgerReport()
    classify(engine, entity, changes, report)
    report.duplicates = duplicates(engine, entity, exact_keys)
    report.dead = dead_rows(engine, entity)
    last = _last_writes(engine, entity)
    for item in agreement(engine, parts, entity, systems):
        if item.get("why") == "unreadable" and item.get("parked"):
            report.unreadable.append(item)       # the hub cannot read it and says why, in quarantine
            continue
        row = last.get((item["system"], item["record_id"], item["field"]))
        if row is not None and row["status"] == "dead":   # the last write of the field failed for good
            report.failed_writes.append({**item, "dead_row": row["id"], "error": row["error"]})
        else:
            report.disagreements.append(item)
    log.info("ledger check of %d %s changes: %s; %d duplicates, %d disagreements, %d failed writes",
             len(changes), entity, report.counts, len(report.duplicates), len(report.disagreements),
             len(report.failed_writes))
    return report


def _last_writes(engine: Engine, entity: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(system, record, field) -> the newest delivered or dead outbox row that wrote the field."""
    ot = Outbox.__table__
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(ot.c.id, ot.c.connector, ot.c.record_id, ot.c.status, ot.c["fields"],
                                     ot.c.last_error).where(ot.c.entity == entity, ot.c.status.in_(("done", "dead")))
                              .order_by(ot.c.created_at, ot.c.id)):
            for f in r[4] or {}:
                out[(r.connector, r.record_id, f)] = {"id": r.id, "status": r.status, "error": r.last_error}
    return out


# --- the ledger -----------------------------------------------------------------------------------

def classify(engine: Engine, entity: str, changes: Sequence[Change], report: LedgerReport | None = None
             ) -> LedgerReport:
    """Find every change in the store (see the module docstring for the categories)."""
    report = report or LedgerReport()
    ordered = sorted(changes, key=lambda c: c.at)
    last_at: dict[tuple[str, str, str], datetime] = {}
    for c in ordered:
        last_at[(c.system, c.source_id, c.field)] = c.at
    facts = _Facts.load(engine, entity, ordered)
    for c in ordered:
        kind, detail = facts.place(c, last_at[(c.system, c.source_id, c.field)] > c.at)
        report.counts[kind] += 1
        if kind == "lost":
            report.lost.append(detail)
        elif kind == "quarantined":
            report.quarantined.append(detail)
    return report


@dataclass
class _Facts:
    """Everything the ledger needs from the store, loaded set-based once."""

    links: dict[tuple[str, str], str]
    rows: dict[str, golden.GoldenRow]
    conflicts: dict[tuple[str, str], list[dict[str, Any]]]
    history: dict[tuple[str, str], list[dict[str, Any]]]
    pending: dict[str, set[str]]
    parked: dict[tuple[str, str], list[dict[str, Any]]]
    written: dict[tuple[str, str], list[dict[str, Any]]]     # (record, system) -> delivered outbox rows

    @classmethod
    def load(cls, engine: Engine, entity: str, changes: Sequence[Change]) -> "_Facts":
        xt, ct, ht, ot, qt = (Xref.__table__, Conflict.__table__, FieldHistory.__table__, Outbox.__table__,
                              Quarantine.__table__)
        links: dict[tuple[str, str], str] = {}
        conflicts: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        history: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        pending: dict[str, set[str]] = defaultdict(set)
        parked: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        written: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        with engine.connect() as conn:
            by_system: dict[str, set[str]] = defaultdict(set)
            for c in changes:
                by_system[c.system].add(c.source_id)
            for system, sids in by_system.items():
                for part in chunks(sorted(sids)):
                    for r in conn.execute(select(xt.c.source_id, xt.c.record_id).where(
                            xt.c.entity == entity, xt.c.system == system, xt.c.source_id.in_(part))):
                        links[(system, r.source_id)] = r.record_id
                    for r in conn.execute(select(qt.c.source_id, qt.c.kind, qt.c.status, qt.c.reasons,
                                                 qt.c.updated_at).where(
                            qt.c.entity == entity, qt.c.connector == system, qt.c.source_id.in_(part))):
                        parked[(system, r.source_id)].append({"kind": r.kind, "status": r.status,
                                                              "reasons": r.reasons, "at": _aware(r.updated_at)})
            ids = sorted(set(links.values()))
            rows = golden.load(conn, entity, ids)
            for part in chunks(ids):
                for r in conn.execute(select(ct.c.record_id, ct.c.field, ct.c.status, ct.c["values"], ct.c.created_at)
                                      .where(ct.c.entity == entity, ct.c.record_id.in_(part))):
                    conflicts[(r.record_id, r.field)].append({"status": r.status, "values": r[3] or {},
                                                              "at": _aware(r.created_at)})
                for r in conn.execute(select(ht.c.record_id, ht.c.field, ht.c.new, ht.c.system, ht.c.seq, ht.c.at)
                                      .where(ht.c.entity == entity, ht.c.record_id.in_(part)).order_by(ht.c.seq)):
                    if r.field == "*":       # a creation sets every field it names
                        for f, v in (r.new or {}).items():
                            history[(r.record_id, f)].append({"new": v, "system": r.system, "seq": r.seq,
                                                              "at": _aware(r.at)})
                    else:
                        history[(r.record_id, r.field)].append({"new": r.new, "system": r.system, "seq": r.seq,
                                                                "at": _aware(r.at)})
                for r in conn.execute(select(ot.c.id, ot.c.record_id, ot.c.connector, ot.c.status, ot.c["fields"],
                                             ot.c.updated_at).where(
                        ot.c.entity == entity, ot.c.status.in_(("pending", "done")), ot.c.record_id.in_(part))):
                    if r.status == "pending":
                        pending[r.record_id] |= set(r[4] or {})
                    else:
                        written[(r.record_id, r.connector)].append({"id": r.id, "fields": set(r[4] or {}),
                                                                    "at": _aware(r.updated_at)})
        return cls(links, rows, conflicts, history, pending, parked, written)

    def place(self, c: Change, changed_again: bool) -> tuple[str, dict[str, Any]]:
        detail = {"system": c.system, "source_id": c.source_id, "field": c.field, "value": c.value,
                  "at": c.at.isoformat()}
        rid = self.links.get((c.system, c.source_id))
        row = self.rows.get(rid) if rid else None
        parked = [{k: v for k, v in q.items() if k != "at"} for q in self.parked.get((c.system, c.source_id), [])
                  if q["status"] == "parked" and q["at"] >= c.at]
        if row is None:
            if parked:
                return "quarantined", {**detail, "quarantine": parked}
            if changed_again:     # a record changed twice before the hub read it: the later value counts
                return "superseded", detail
            return "lost", {**detail, "record_id": rid, "why": "the source record is not linked to a golden record"}
        if row.values.get(c.field) == c.value:
            return ("pending" if c.field in self.pending.get(row.id, ()) else "golden"), detail
        mine = [k for k in self.conflicts.get((row.id, c.field), []) if k["values"].get(c.system) == c.value]
        if any(k["status"] == "open" for k in mine):
            return "open_conflict", detail
        if changed_again:
            return "superseded", detail
        if any(k["status"] in ("auto", "resolved") and k["at"] >= c.at for k in mine):
            return "auto", detail
        if self._replaced_later(row.id, c):
            return "superseded", detail
        if parked:
            return "quarantined", {**detail, "quarantine": parked}
        lost = {**detail, "record_id": row.id, "golden": row.values.get(c.field),
                "history": [h["new"] for h in self.history.get((row.id, c.field), [])][-5:]}
        over = [w for w in self.written.get((row.id, c.system), []) if c.field in w["fields"] and w["at"] > c.at]
        if over:     # the hub wrote this field to the system after the change, and never read the change
            lost["why"] = (f"overwritten in {c.system} by outbox row {over[0]['id']} at {over[0]['at'].isoformat()} "
                           "before the hub read the change")
            lost["overwritten_unread"] = True
        else:
            lost["why"] = "the value is not golden, in no conflict, history or quarantine"
        return "lost", lost

    def _replaced_later(self, rid: str, c: Change) -> bool:
        """The value became golden from this system after the change, and a later golden change replaced it."""
        entries = self.history.get((rid, c.field), [])
        took = [h["seq"] for h in entries if h["system"] == c.system and h["new"] == c.value and h["at"] >= c.at]
        return bool(took) and any(h["seq"] > took[0] for h in entries)


def _aware(at: datetime | None) -> datetime:
    if at is None:
        return datetime.min.replace(tzinfo=timezone.utc)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


# --- duplicates -----------------------------------------------------------------------------------

def duplicates(engine: Engine, entity: str, exact_keys: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Everything that exists twice and must not.

    - two xref rows for one (entity, system, source id): two golden records for one source record;
    - one golden record linked to two live records of the same system (a duplicate made in that system);
    - two pending outbox rows with one idempotency key;
    - two live golden records sharing a value of an exact matching key.
    """
    xt, ot = Xref.__table__, Outbox.__table__
    out: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for r in conn.execute(select(xt.c.system, xt.c.source_id, func.count().label("n"),
                                     func.count(xt.c.record_id.distinct()).label("records"))
                              .where(xt.c.entity == entity).group_by(xt.c.system, xt.c.source_id)
                              .having(func.count() > 1)):
            out.append({"kind": "xref", "system": r.system, "source_id": r.source_id, "rows": r.n,
                        "records": r.records})
        for r in conn.execute(select(xt.c.system, xt.c.record_id, func.count().label("n"))
                              .where(xt.c.entity == entity, xt.c.status == "active")
                              .group_by(xt.c.system, xt.c.record_id).having(func.count() > 1)):
            sids = list(conn.scalars(select(xt.c.source_id).where(
                xt.c.entity == entity, xt.c.system == r.system, xt.c.record_id == r.record_id, xt.c.status == "active")))
            out.append({"kind": "linked_twice", "system": r.system, "record_id": r.record_id, "source_ids": sids})
        for r in conn.execute(select(ot.c.idempotency_key, func.count().label("n"))
                              .where(ot.c.status == "pending").group_by(ot.c.idempotency_key)
                              .having(func.count() > 1)):
            out.append({"kind": "outbox", "idempotency_key": r.idempotency_key, "rows": r.n})
        gt = GOLDEN_MODELS[entity].__table__
        for key in exact_keys:
            col = gt.c[key]
            for r in conn.execute(select(col, func.count().label("n")).where(
                    col.is_not(None), col != "", gt.c.merged_into.is_(None)).group_by(col).having(func.count() > 1)):
                out.append({"kind": "golden", "field": key, "value": encode(r[0]), "records": r.n})
    return out


# --- agreement ------------------------------------------------------------------------------------

def agreement(engine: Engine, parts: Any, entity: str, systems: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Each linked record as its system holds it now (read through the connector and mapping) against
    the golden record: every written field must be equal, except fields with an open conflict.

    Linked records the system no longer returns are reported too (``missing``), and so are records
    the mapping cannot read (``unreadable``, with ``parked`` when quarantine holds them with a reason).
    """
    names = list(systems) if systems is not None else [
        n for n, c in parts.cfg.connectors.items() if entity in c.entities]
    xt, ct = Xref.__table__, Conflict.__table__
    with engine.connect() as conn:
        links = [(r.system, r.source_id, r.record_id) for r in conn.execute(
            select(xt.c.system, xt.c.source_id, xt.c.record_id).where(
                xt.c.entity == entity, xt.c.status == "active", xt.c.system.in_(names)))]
        rows = golden.load(conn, entity, sorted({rid for _, _, rid in links}))
        open_fields: dict[str, set[str]] = defaultdict(set)
        for r in conn.execute(select(ct.c.record_id, ct.c.field).where(ct.c.entity == entity, ct.c.status == "open")):
            open_fields[r.record_id].add(r.field)
    out: list[dict[str, Any]] = []
    for name in names:
        mapping = parts.mapping(name, entity)
        held, bad = read_back(parts, name, entity)
        parked = _parked(engine, name, entity, list(bad))
        for system, sid, rid in links:
            if system != name:
                continue
            row = rows.get(rid)
            if row is None or row.merged_into:
                continue
            values = held.get(sid)
            if sid in bad:
                out.append({"system": name, "source_id": sid, "record_id": rid, "field": None, "why": "unreadable",
                            "error": bad[sid], "parked": parked.get(sid)})
                continue
            if values is None:
                out.append({"system": name, "source_id": sid, "record_id": rid, "field": None, "why": "missing"})
                continue
            for f in mapping.writable_fields:
                if f in open_fields.get(rid, ()) or f not in row.values:
                    continue
                if values.get(f) != row.values.get(f):
                    out.append({"system": name, "source_id": sid, "record_id": rid, "field": f,
                                "golden": row.values.get(f), "system_value": values.get(f)})
    return out


def read_back(parts: Any, name: str, entity: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every live record of one system stream, mapped to encoded canonical values, by source id; and the
    records the mapping cannot read, with the reason."""
    mapping = parts.mapping(name, entity)
    spec = parts.stream_spec(name, entity, utcnow())
    out: dict[str, dict[str, Any]] = {}
    bad: dict[str, str] = {}
    for batch in parts.connector(name).read(spec, None):
        for raw in batch.records:
            try:
                rec = mapping.to_canonical(raw)
            except (MappingError, ValueError) as exc:
                bad[str(raw.get(mapping.key))] = str(exc)
                continue
            if not rec.deleted:
                out[rec.source_id] = encode_record(rec.values)
        for sid in batch.deleted:
            out.pop(sid, None)
    return out, bad


def _parked(engine: Engine, name: str, entity: str, source_ids: list[str]) -> dict[str, list[Any]]:
    qt = Quarantine.__table__
    out: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for part in chunks(source_ids):
            for r in conn.execute(select(qt.c.source_id, qt.c.reasons).where(
                    qt.c.connector == name, qt.c.entity == entity, qt.c.status == "parked",
                    qt.c.source_id.in_(part))):
                out[r.source_id] = r.reasons
    return out


def dead_rows(engine: Engine, entity: str | None = None) -> list[dict[str, Any]]:
    """Outbox rows that gave up (failed writes), each with its last error."""
    ot = Outbox.__table__
    q = select(ot.c.id, ot.c.connector, ot.c.entity, ot.c.record_id, ot.c["fields"], ot.c.attempts,
               ot.c.last_error).where(ot.c.status == "dead").order_by(ot.c.created_at, ot.c.id)
    if entity:
        q = q.where(ot.c.entity == entity)
    with engine.connect() as conn:
        return [{"id": r.id, "connector": r.connector, "entity": r.entity, "record_id": r.record_id,
                 "fields": sorted(r[4] or {}), "attempts": r.attempts, "error": r.last_error} for r in conn.execute(q)]


def outbox_depth(engine: Engine) -> dict[str, int]:
    """Outbox rows by status."""
    ot = Outbox.__table__
    with engine.connect() as conn:
        return {s: n for s, n in conn.execute(select(ot.c.status, func.count()).group_by(ot.c.status))}
