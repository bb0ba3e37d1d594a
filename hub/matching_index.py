"""The blocking keys in ``match_key``: lookups, and keeping them in step with golden records.

A golden record's keys come from its golden values and from every version a
source system sent (``source_state``): a new record resembling any of them
finds the record. Keys are replaced whenever the pipeline writes a new or
changed golden record; a steward's reject whose record changed materially is
forgotten at the same time (:func:`fingerprint`).
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Sequence

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, text

from hub import normalize as norm
from hub.golden import table_of
from hub.matching_blocking import key_fields, key_rows
from hub.models import MatchKey, MatchReject, SourceState
from hub.sqlutil import chunks

log = logging.getLogger(__name__)

MAX_BLOCK = 200          # a non-identifying key shared by more golden records than this says too little
MATERIAL = {"customer": ("name", "customer_type", "tax_id", "email", "phone", "country", "province", "city",
                         "address", "postal_code")}


def material_fields(entity: str) -> tuple[str, ...]:
    return MATERIAL.get(entity) or key_fields(entity)


def fingerprint(entity: str, values: dict[str, Any]) -> str:
    """A digest of a record's material fields in normalized form: formatting changes keep it."""
    parts = []
    for f in material_fields(entity):
        v = values.get(f)
        if f == "name":
            n = norm.name(v, "person" if values.get("customer_type") == "person" else None)
            parts.append(f"{n.full}|{n.branch}" if n else None)
        elif f == "address":
            a = norm.address(v)
            parts.append(a.full if a else None)
        elif f in ("tax_id", "email", "phone", "postal_code"):
            parts.append(norm.exact_key(f, v))
        else:
            parts.append(norm.text(v) or None)
    payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


_SQLITE_LOOKUP = text("SELECT key_value, record_id FROM match_key INDEXED BY ix_match_key_lookup "
                      "WHERE entity = :entity AND key_type = :key_type AND key_value IN :values"
                      ).bindparams(bindparam("values", expanding=True))


def lookup_keys(conn: Connection, entity: str, key_type: str, values: Sequence[str]) -> list[tuple[str, str]]:
    """(key value, record id) of golden records holding any of ``values`` as a ``key_type`` key.

    SQLite without statistics prefers the primary key (a covering index on
    entity alone) and scans every key of the entity; the lookup index is named.
    """
    if not values:
        return []
    if conn.dialect.name == "sqlite":
        return [tuple(r) for r in conn.execute(_SQLITE_LOOKUP, {"entity": entity, "key_type": key_type,
                                                                "values": list(values)})]
    kt = MatchKey.__table__.c
    q = select(kt.key_value, kt.record_id).where(kt.entity == entity, kt.key_type == key_type,
                                                   kt.key_value.in_(list(values)))
    return [tuple(r) for r in conn.execute(q)]


def small_blocks(conn: Connection, entity: str, key_type: str, values: Sequence[str]) -> list[str]:
    """The values that are a key of at least one and at most MAX_BLOCK golden records."""
    hint = " INDEXED BY ix_match_key_lookup" if conn.dialect.name == "sqlite" else ""
    rows = ", ".join(f"(:v{i})" for i in range(len(values)))
    probe = f"SELECT 1 FROM match_key{hint} WHERE entity = :entity AND key_type = :key_type AND key_value = w.k"
    sql = text(f"WITH w(k) AS (VALUES {rows}) SELECT k FROM w WHERE EXISTS ({probe}) "
               f"AND NOT EXISTS ({probe} LIMIT 1 OFFSET {int(MAX_BLOCK)})")
    params = {"entity": entity, "key_type": key_type, **{f"v{i}": v for i, v in enumerate(values)}}
    return [r[0] for r in conn.execute(sql, params)]


def index_records(conn: Connection, entity: str, records: Sequence[tuple[str, dict[str, Any]]],
                  *, fresh: bool = False) -> int:
    """Set-based: delete the old keys of these ids, insert the new ones, drop stale rejects."""
    if not records:
        return 0
    kt = MatchKey.__table__
    ids = [rid for rid, _ in records]
    if not fresh:
        for part in chunks(ids):
            conn.execute(delete(kt).where(kt.c.entity == entity, kt.c.record_id.in_(part)))
    rows = _dedupe(key_rows(entity, list(records) + _source_versions(conn, entity, ids)))
    if rows:
        conn.execute(insert(kt), rows)
    if not fresh:
        _forget_stale_rejects(conn, entity, dict(records))
    return len(rows)


def _source_versions(conn: Connection, entity: str, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The values each system last sent for these golden records (their keys find the record too)."""
    st = SourceState.__table__
    out = []
    for part in chunks(ids):
        for rid, values in conn.execute(select(st.c.record_id, st.c["values"]).where(
                st.c.entity == entity, st.c.record_id.in_(part))):
            if isinstance(values, dict):
                out.append((rid, values))
    return out


def _dedupe(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return list({(r["record_id"], r["key_type"], r["key_value"]): r for r in rows}.values())


def _forget_stale_rejects(conn: Connection, entity: str, values: dict[str, dict[str, Any]]) -> None:
    rt = MatchReject.__table__
    stale = []
    for part in chunks(sorted(values)):
        q = select(rt.c.record_a, rt.c.record_b, rt.c.fingerprint_a, rt.c.fingerprint_b).where(
            rt.c.entity == entity, or_(rt.c.record_a.in_(part), rt.c.record_b.in_(part)))
        for a, b, fa, fb in conn.execute(q):
            if (a in values and fingerprint(entity, values[a]) != fa) or \
               (b in values and fingerprint(entity, values[b]) != fb):
                stale.append({"_a": a, "_b": b})
    if stale:
        conn.execute(delete(rt).where(rt.c.entity == entity, rt.c.record_a == bindparam("_a"),
                                      rt.c.record_b == bindparam("_b")), stale)
        log.info("forgot %d rejected %s pair(s): a record changed materially", len(stale), entity)


def index_all(conn: Connection, entity: str, *, page: int = 5000) -> int:
    """Rebuild the blocking keys of every live golden record of ``entity``; returns the number of keys."""
    from hub.values import encode
    kt = MatchKey.__table__
    conn.execute(delete(kt).where(kt.c.entity == entity))
    t = table_of(entity)
    fields = key_fields(entity)
    cols = [t.c.id] + [t.c[f] for f in fields]
    last, total = "", 0
    while True:
        rows = conn.execute(select(*cols).where(t.c.id > last, t.c.merged_into.is_(None))
                            .order_by(t.c.id).limit(page)).all()
        if not rows:
            return total
        total += index_records(conn, entity, [(r[0], {f: encode(v) for f, v in zip(fields, r[1:])}) for r in rows],
                               fresh=True)
        last = rows[-1][0]
