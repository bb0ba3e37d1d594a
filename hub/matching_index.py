"""The blocking keys in ``match_key``: lookups, and keeping them in step with golden records.

A golden record's keys come from its golden values and from every version a
source system sent (``source_state``): a new record resembling any of them
finds the record. A new golden record gets its keys; a changed one has them
replaced (a steward's reject whose record changed materially is forgotten at
the same time, :func:`fingerprint`); a record linked to an existing golden
record adds its own keys to it (:class:`hub.matching.FuzzyMatcher`).

The lookups here are the hottest queries of matching: they go to the driver
as plain SQL on ``match_key``'s primary key (entity, key_type, key_value,
record_id) and return plain tuples.
"""
from __future__ import annotations

import hashlib
import json
import logging
from operator import itemgetter
from typing import Any, Sequence

from sqlalchemy import Connection, bindparam, delete, func, or_, select

from hub import normalize as norm
from hub.golden import table_of
from hub.matching_blocking import key_fields, key_rows
from hub.models import MatchKey, MatchReject, SourceState, Xref
from hub.sqlutil import chunks

log = logging.getLogger(__name__)

MAX_BLOCK = 200          # a non-identifying key shared by more golden records than this says too little
KEY_COLUMNS = ["entity", "key_type", "key_value", "record_id"]   # match_key's primary key
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


_primary_key = itemgetter(*KEY_COLUMNS)


def _marks(conn: Connection, n: int) -> str:
    """``n`` positional placeholders in the driver's own style."""
    return ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * n)


def lookup_keys(conn: Connection, entity: str, key_type: str, values: Sequence[str]) -> list[tuple[str, str]]:
    """(key value, record id) of golden records holding any of ``values`` as a ``key_type`` key."""
    if not values:
        return []
    ph = _marks(conn, 1)
    sql = (f"SELECT key_value, record_id FROM match_key WHERE entity = {ph} AND key_type = {ph} "
           f"AND key_value IN ({_marks(conn, len(values))})")
    return conn.exec_driver_sql(sql, (entity, key_type, *values)).fetchall()


def golden_rows(conn: Connection, entity: str, fields: Sequence[str],
                ids: Sequence[str]) -> list[tuple[str, str | None, int, tuple]]:
    """(id, merged_into, number of xrefs, encoded values of ``fields``) of these golden records.

    String fields (all a customer is matched on) go to the driver as plain SQL; any
    other type goes through SQLAlchemy for its result processing.
    """
    from hub.canonical import ENTITIES
    from hub.values import encode
    t, xt = table_of(entity), Xref.__table__
    out = []
    types = ENTITIES[entity].fields
    if all(types.get(f) == "string" for f in fields):
        q = conn.dialect.identifier_preparer.quote
        ph = _marks(conn, 1)
        links = f"(SELECT count(*) FROM xref x WHERE x.entity = {ph} AND x.record_id = t.id)"
        head = (f"SELECT t.id, t.merged_into, {links}, " + ", ".join(f"t.{q(f)}" for f in fields)
                + f" FROM {q(t.name)} t WHERE t.id IN ")
        for part in chunks(list(ids)):
            for r in conn.exec_driver_sql(f"{head}({_marks(conn, len(part))})", (entity, *part)).fetchall():
                out.append((r[0], r[1], r[2], tuple(r[3:])))
        return out
    links = select(func.count()).where(xt.c.entity == entity, xt.c.record_id == t.c.id).correlate(t).scalar_subquery()
    cols = [t.c.id, t.c.merged_into, links] + [t.c[f] for f in fields]
    for part in chunks(list(ids)):
        for r in conn.execute(select(*cols).where(t.c.id.in_(part))).all():
            out.append((r[0], r[1], r[2], tuple(encode(v) for v in r[3:])))
    return out


def small_blocks(conn: Connection, entity: str, key_type: str, values: Sequence[str]) -> list[str]:
    """The values that are a key of at least one and at most MAX_BLOCK golden records."""
    ph = _marks(conn, 1)
    probe = f"SELECT 1 FROM match_key WHERE entity = {ph} AND key_type = {ph} AND key_value = w.k"
    rows = ", ".join([f"({ph})"] * len(values))
    sql = (f"WITH w(k) AS (VALUES {rows}) SELECT k FROM w WHERE EXISTS ({probe}) "
           f"AND NOT EXISTS ({probe} LIMIT 1 OFFSET {int(MAX_BLOCK)})")
    return [r[0] for r in conn.exec_driver_sql(sql, (*values, entity, key_type, entity, key_type)).fetchall()]


def insert_keys(conn: Connection, rows: list[dict[str, str]], *, upsert: bool = False) -> None:
    """Insert ``match_key`` rows in one executemany (``upsert``: rows that exist already are left alone)."""
    if not rows:
        return
    from hub.bulk import execute_many, insert_many
    kt = MatchKey.__table__
    rows = sorted(rows, key=_primary_key)   # in key order: each insert lands next to the one before
    dialect = conn.dialect.name
    if not upsert:
        insert_many(conn, kt, rows, "match-key-insert")
    elif dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        stmt = dialect_insert(kt).on_conflict_do_nothing(index_elements=KEY_COLUMNS)
        execute_many(conn, stmt, rows, "match-key-upsert")
    else:
        from hub.sqlutil import upsert as upsert_rows
        upsert_rows(conn, kt, rows, KEY_COLUMNS, [])


def index_records(conn: Connection, entity: str, records: Sequence[tuple[str, dict[str, Any]]],
                  *, fresh: bool = False) -> int:
    """Set-based: delete the old keys of these ids, insert the new ones, drop stale rejects.

    ``fresh``: the records have no keys yet (new records): nothing to delete or forget.
    """
    if not records:
        return 0
    kt = MatchKey.__table__
    ids = [rid for rid, _ in records]
    if not fresh:
        for part in chunks(ids):
            conn.execute(delete(kt).where(kt.c.entity == entity, kt.c.record_id.in_(part)))
    rows = _dedupe(key_rows(entity, list(records) + source_versions(conn, entity, ids)))
    insert_keys(conn, rows)
    if not fresh:
        _forget_stale_rejects(conn, entity, dict(records))
    return len(rows)


def source_versions(conn: Connection, entity: str, ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(record id, values) of what each system last sent for these golden records."""
    st = SourceState.__table__
    out = []
    for part in chunks(list(ids)):
        # by record id alone (ids are unique across entities): with the entity in the WHERE clause,
        # SQLite walks the primary key's entity prefix, every state of the entity, once per chunk
        for rid, ent, values in conn.execute(select(st.c.record_id, st.c.entity, st.c["values"]).where(
                st.c.record_id.in_(part))).all():
            if ent == entity and isinstance(values, dict) and values:   # (none: only written to, hub.echoes)
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
