"""Values the hub wrote to a system that cannot read its own writes back at once.

A file connector's writes land in an outbox folder; the system imports them on
its own schedule and exports the records again later, stamped with the time of
that export. Such a value coming back is the hub's own write, not an edit of the
system: it must not vouch for the golden value's time (under ``most_recent`` it
would then beat a real edit made before the export). ``source_state.written``
keeps, per field, the values written and not yet shown back, oldest first.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from hub.models import SourceState
from hub.sqlutil import chunks

WRITTEN = "written"   # source_state.row_hash of a state the hub wrote (hub.push), not one it read
KEEP = 8    # writes remembered per field: a system more than this many writes behind is a lost cause anyway


def add_written(pending: dict[str, list] | None, values: dict[str, Any]) -> dict[str, list]:
    """``pending`` after ``values`` were written (each value becomes the newest of its field)."""
    out = {f: list(vs) for f, vs in (pending or {}).items()}
    for f, v in values.items():
        out[f] = ([x for x in out.get(f, []) if x != v] + [v])[-KEEP:]
    return out


def still_pending(pending: dict[str, list] | None, shown: dict[str, Any]) -> dict[str, list] | None:
    """``pending`` after the system showed ``shown``: a written value it shows has arrived there, and so
    have the ones written before it; the later ones are still on their way."""
    if not pending:
        return None
    out = {}
    for f, vs in pending.items():
        if f in shown and shown[f] in vs:
            vs = vs[vs.index(shown[f]) + 1:]
        if vs:
            out[f] = vs
    return out or None


def known_held(values: dict[str, Any] | None, pending: dict[str, list] | None) -> dict[str, Any]:
    """The fields a system surely holds, and their values: what it last showed (or was written, where
    writes show at once), less any field with a write still on its way there, whose outcome is unknown."""
    return {f: v for f, v in (values or {}).items() if not (pending or {}).get(f)}


def held_by_source(conn: Connection, entity: str, system: str, source_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Source id -> :func:`known_held` of the system's records, one query per chunk of ids."""
    st = SourceState.__table__
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(set(source_ids))):
        for r in conn.execute(select(st.c.source_id, st.c["values"], st.c.written).where(
                st.c.entity == entity, st.c.system == system, st.c.source_id.in_(part))):
            out[r.source_id] = known_held(r[1], r.written)
    return out
