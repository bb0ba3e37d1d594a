"""Which fields of which records wait for a steward: open conflicts, looked up for a whole batch."""
from __future__ import annotations

from sqlalchemy import Connection, select

from hub.models import Conflict
from hub.sqlutil import chunks


def open_fields(conn: Connection, entity: str, record_ids: list[str]) -> dict[str, set[str]]:
    """Record id -> its fields with an open conflict (SPEC §5: such a field is neither overwritten by an
    automatic rule nor propagated until a steward resolves it). One query per chunk of ids."""
    ct = Conflict.__table__
    out: dict[str, set[str]] = {}
    for part in chunks(record_ids):
        for r in conn.execute(select(ct.c.record_id, ct.c.field).where(
                ct.c.entity == entity, ct.c.status == "open", ct.c.record_id.in_(part))):
            out.setdefault(r.record_id, set()).add(r.field)
    return out
