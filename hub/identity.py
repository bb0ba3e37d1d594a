"""Identity resolution by exact normalized keys (SPEC section 5, `matching.<entity>.exact`).

Keys are compared in normalized form (:func:`hub.normalize.exact_key`): a tax
id typed with spaces or in lower case, an e-mail in capitals or a phone
written the national way all match their canonical spelling. Two indexed
lookups per key field per batch: the golden column (raw and normalized
spellings), and, for tax ids, e-mails and phones, the blocking keys the fuzzy
matcher keeps (which also hold each system's own spelling of the record).
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Connection, select

from hub.golden import table_of
from hub.normalize import exact_key
from hub.sqlutil import among, chunks, key_parts


KEY_LOCKS = 32                  # locks the exact keys of new records are spread over
KEY_LOCK_BASE = 0x7472696164000  # their advisory lock numbers start here (apart from the change feed's)


def lock_exact_keys(conn: Connection, entity: str, keys: Sequence[str], records: Sequence[dict[str, Any]]) -> None:
    """Hold, until the transaction ends, a lock on each normalized exact key of ``records`` (PostgreSQL).

    Two workers bringing the same new company at once would each find no golden record
    with its tax id and create one; with the key locked, the second waits for the first
    to commit and then finds its record. One statement per batch, keys in one order
    (no deadlocks); SQLite serializes writers already. Keys share KEY_LOCKS locks (by
    hash), so a batch of any size holds a bounded number of them: PostgreSQL's lock table
    is small (64 per connection by default).
    """
    if conn.dialect.name != "postgresql" or not keys or not records:
        return
    import hashlib
    ids = set()
    for r in records:
        for key in keys:
            value = exact_key(key, r.get(key))
            if value:
                digest = hashlib.blake2b(f"{entity}|{key}|{value}".encode(), digest_size=8).digest()
                ids.add(KEY_LOCK_BASE + int.from_bytes(digest, "big") % KEY_LOCKS)
    if ids:
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(%(ids)s::bigint[]) AS k "
                             "ORDER BY k) AS keys", {"ids": sorted(ids)})


def exact_matches(conn: Connection, entity: str, keys: Sequence[str],
                  records: Sequence[dict[str, Any]]) -> list[str | None]:
    """For each record, the golden record id sharing the first matching exact key (in ``keys`` order), else None.

    Tombstones (merged records) never match. When several golden records share
    a key, the oldest id wins so the answer does not depend on arrival order.
    """
    return [next((hit[k] for k in keys if k in hit), None) for hit in exact_hits(conn, entity, keys, records)]


def exact_hits(conn: Connection, entity: str, keys: Sequence[str],
               records: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """For each record, {key: golden record id} for every exact key that finds a live golden record.

    Every key is looked up for every record (still one query per key and batch), so a
    record whose keys point at two golden records shows it (:func:`split_keys`).
    """
    from hub.matching import lookup_keys
    from hub.matching_blocking import EXACT_KEY_TYPES
    found: list[dict[str, str]] = [{} for _ in records]
    if not keys or not records:
        return found
    t = table_of(entity)
    for key in keys:
        col = t.c[key]
        wanted = {n: exact_key(key, r.get(key)) for n, r in enumerate(records)}
        wanted = {n: v for n, v in wanted.items() if v}
        if not wanted:
            continue
        spellings = sorted({str(records[n][key]) for n in wanted} | set(wanted.values()))
        hits: dict[str, str] = {}

        def hit(value: str | None, rid: str) -> None:
            if value and (value not in hits or rid < hits[value]):
                hits[value] = rid
        for part in key_parts(conn, spellings):
            q = select(col, t.c.id, t.c.merged_into).where(among(conn, col, part))
            for value, rid, merged_into in conn.execute(q):
                if merged_into is None:   # tombstones never match (filtered here: SQLite would scan that index)
                    hit(exact_key(key, value), rid)
        key_type = EXACT_KEY_TYPES.get(key)
        if key_type:
            for part in chunks(sorted(set(wanted.values()))):
                for value, rid in lookup_keys(conn, entity, key_type, part):
                    hit(value, rid)
        for n, v in wanted.items():
            if v in hits:
                found[n][key] = hits[v]
    return found


def split_keys(keys: Sequence[str], hit: dict[str, str],
               values: dict[str, Any]) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The golden record a record links to (its first key in ``keys`` order that hits) and the other
    golden records its keys point at, each with the key values that point at it or at the linked one.

    Two live golden records sharing an exact key value must not both stay: the
    pair goes to a steward (an exact key two companies share may be a data error).
    """
    linked = next((hit[k] for k in keys if k in hit), None)
    others: dict[str, dict[str, Any]] = {}
    for k in keys:
        rid = hit.get(k)
        if rid is not None and rid != linked:
            others.setdefault(rid, {})
    for rid, shared in others.items():
        for k in keys:
            if hit.get(k) in (rid, linked):
                shared[k] = exact_key(k, values.get(k))
    return linked, others
