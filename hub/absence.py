"""Deletes seen by absence (``deleted_when_missing: true`` on a connector's entity).

Some systems never report a deletion: an OData list just lacks the deleted
order, a full export the deleted row, a table the row. For such a stream a
read that starts without a cursor (``sync run --full``, or its first run) and
ends ``ok`` has returned every record the system holds; every active link of
the stream it did not return is then deleted there, and goes through the
pipeline's delete path like a delete the connector reported.

"Returned" is noted in the store as it is read: each batch stamps
``source_state.seen_at`` of every key it holds (one statement a chunk, in the
batch's transaction), so rows skipped as unchanged, parked for a mapping or
validation error or for an unresolved reference all count as present. A link
whose ``source_state`` no read ever wrote (a record the hub created there and
has not read back: ``run_id`` is null, as after a push) is never flagged: its
absence may only mean the system has not taken it in yet (a file outbox). A read
that returned no rows at all flags nothing: a renamed export reads as an empty system.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, and_, func, select, update

from hub.models import SourceState, Xref
from hub.sqlutil import chunks

log = logging.getLogger(__name__)

# flag at most max(50, 10%) of the stream's active links, and never more than half of them, unless a limit
# is set: a renamed export, a changed filter or a lost permission returns far fewer rows, not a few less
FLOOR, SHARE, HALF = 50, 10, 50


class Absence:
    """What one complete read of (system, entity) returned, and what it did not."""

    def __init__(self, system: str, entity: str, mapping: Any, limit: int | None) -> None:
        self.system, self.entity, self.mapping, self.limit = system, entity, mapping, limit
        self.unkeyed = 0    # rows without a key: they may be any record, so none is flagged
        self.rows = 0       # rows the read returned, in any form

    def seen(self, conn: Connection, raws: Sequence[Any], now: datetime) -> None:
        """Stamp the records of a batch as present (call in the batch's transaction, after it is written)."""
        source_id_of = self.mapping.source_id_of
        sids: set[str] = set()
        self.rows += len(raws)
        for raw in raws:
            sid = source_id_of(raw) if isinstance(raw, dict) and "__error__" not in raw else None
            if sid is None:
                self.unkeyed += 1
            else:
                sids.add(sid)
        st = SourceState.__table__
        for part in chunks(sorted(sids)):
            conn.execute(update(st).where(st.c.entity == self.entity, st.c.system == self.system,
                                          st.c.source_id.in_(part)).values(seen_at=now))

    def missing(self, conn: Connection, started: datetime) -> tuple[list[str], str | None]:
        """The source ids to flag deleted, or [] and why none is flagged."""
        if self.unkeyed:
            why = (f"{self.unkeyed} row(s) of this read have no readable key: records missing from it are not "
                   f"flagged deleted (deleted_when_missing), since those rows may be any of them")
            log.warning("%s/%s: %s", self.system, self.entity, why)
            return [], why
        xt, st = Xref.__table__, SourceState.__table__
        active = and_(xt.c.entity == self.entity, xt.c.system == self.system, xt.c.status == "active")
        gone = (select(xt.c.source_id)
                .select_from(xt.join(st, and_(st.c.entity == xt.c.entity, st.c.system == xt.c.system,
                                              st.c.source_id == xt.c.source_id)))
                .where(active, st.c.run_id.is_not(None), st.c.seen_at < started))
        n = conn.scalar(select(func.count()).select_from(gone.subquery())) or 0
        if not n:
            return [], None
        linked = conn.scalar(select(func.count()).select_from(xt).where(active)) or 0
        if not self.rows:
            why = (f"this complete read returned no rows at all: none of the {n} linked {self.entity} record(s) "
                   f"flagged deleted (a missing or renamed export, a wrong path or an empty "
                   f"answer look the same)")
            log.warning("%s/%s: %s", self.system, self.entity, why)
            return [], why
        limit = self.limit if self.limit is not None else min(max(FLOOR, linked * SHARE // 100),
                                                              linked * HALF // 100)
        if n > limit:
            why = (f"{n} of {linked} linked {self.entity} record(s) were not in this complete read, more than "
                   f"the {limit} it may flag at once: none flagged deleted (a changed filter or a lost permission "
                   f"looks the same). If they are gone, set connectors.{self.system}.entities.{self.entity}."
                   f"deleted_when_missing_limit and run `triad sync run --full` again")
            log.warning("%s/%s: %s", self.system, self.entity, why)
            return [], why
        return sorted(conn.scalars(gone)), None
