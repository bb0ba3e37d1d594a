"""Identity resolution by exact normalized keys (SPEC section 5, `matching.<entity>.exact`).

Keys are compared in the canonical form the mappings produce (tax ids upper
without spaces, emails lower, phones E.164); one indexed IN lookup per key
field per batch.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Connection, select

from hub.golden import table_of
from hub.sqlutil import chunks


def exact_matches(conn: Connection, entity: str, keys: Sequence[str],
                  records: Sequence[dict[str, Any]]) -> list[str | None]:
    """For each record, the golden record id sharing the first matching exact key (in ``keys`` order), else None.

    Tombstones (merged records) never match. When several golden records share
    a key, the oldest id wins so the answer does not depend on arrival order.
    """
    found: list[str | None] = [None] * len(records)
    if not keys or not records:
        return found
    t = table_of(entity)
    for key in keys:
        col = t.c[key]
        wanted = sorted({str(r[key]) for r, f in zip(records, found) if f is None and r.get(key) not in (None, "")})
        hits: dict[str, str] = {}
        for part in chunks(wanted):
            for value, rid in conn.execute(select(col, t.c.id).where(col.in_(part), t.c.merged_into.is_(None))):
                if value not in hits or rid < hits[value]:
                    hits[value] = rid
        for n, r in enumerate(records):
            if found[n] is None and r.get(key) not in (None, ""):
                found[n] = hits.get(str(r[key]))
    return found
