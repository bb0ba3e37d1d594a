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
