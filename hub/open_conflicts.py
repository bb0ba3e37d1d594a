"""Which fields of which records wait for a steward: open conflicts, looked up for a whole batch."""
from __future__ import annotations

from sqlalchemy import Connection, select

from hub.models import Conflict
from hub.sqlutil import among, key_parts


def open_fields(conn: Connection, entity: str, record_ids: list[str]) -> dict[str, set[str]]:
    """Record id -> its fields with an open conflict (SPEC §5: such a field is neither overwritten by an
    automatic rule nor propagated until a steward resolves it). One query per part of ids
    (:func:`hub.sqlutil.key_parts`: all of them on PostgreSQL)."""
    ct = Conflict.__table__
    out: dict[str, set[str]] = {}
    for part in key_parts(conn, record_ids):
        for r in conn.execute(select(ct.c.record_id, ct.c.field).where(
                ct.c.entity == entity, ct.c.status == "open", among(conn, ct.c.record_id, part))):
            out.setdefault(r.record_id, set()).add(r.field)
    return out
