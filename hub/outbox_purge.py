"""Deleting old delivered and dropped outbox rows, so the outbox does not grow for ever.

Every golden change queues one row per target system; ``done`` and ``dropped`` rows are history once
old enough. ``pending`` and ``dead`` rows are never deleted: one is still to be sent, the other waits
for a decision (`triad outbox retry` or `drop`).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Engine, and_, case, delete, exists, func, or_, select

from hub import audit
from hub.models import Outbox
from hub.sqlutil import chunks

log = logging.getLogger(__name__)

PURGEABLE = ("done", "dropped")
CHUNK = 5_000    # rows looked at per transaction: a large purge takes many short locks, not one long one


def _purgeable(cutoff: datetime, connector: str | None) -> list[Any]:
    """SQL conditions of the rows a purge deletes."""
    ot = Outbox.__table__
    newer = ot.alias("newer")
    # the newest write of a record to a system stays, whatever its status and age: hub.outbox.blocking_writes
    # reads that latest write to tell whether the record is blocked there, and with a newer done row gone an
    # older dead one would look latest (ordered by created_at, then id, as there)
    has_newer = exists().where(newer.c.connector == ot.c.connector, newer.c.entity == ot.c.entity,
                               newer.c.record_id == ot.c.record_id,
                               or_(newer.c.created_at > ot.c.created_at,
                                   and_(newer.c.created_at == ot.c.created_at, newer.c.id > ot.c.id)))
    conds = [ot.c.status.in_(PURGEABLE), ot.c.updated_at < cutoff, has_newer]
    if connector:
        conds.append(ot.c.connector == connector)
    return conds


def count(engine: Engine, cutoff: datetime, *, connector: str | None = None) -> int:
    """How many rows :func:`purge` would delete now (one statement; deletes nothing)."""
    q = select(func.count()).select_from(Outbox.__table__).where(*_purgeable(cutoff, connector))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def purge(engine: Engine, cutoff: datetime, *, user: str, connector: str | None = None, chunk: int = CHUNK,
          progress: Callable[[int], None] | None = None) -> int:
    """Delete done and dropped rows last changed before ``cutoff``, except each record's newest write to a
    system; one audit entry says how many and the cutoff.

    The table is walked in primary-key order, ``chunk`` rows per transaction, each row's fate decided in
    SQL: a filter in the WHERE clause would lead SQLite to the status index and a scan of every done row
    per chunk, quadratic on a large outbox.

    Args:
        engine: the hub store.
        cutoff: rows whose ``updated_at`` is before this go.
        user: who purges, for the audit entry.
        connector: only this system's rows.
        chunk: rows looked at (and at most deleted) per transaction.
        progress: called with the running total after each chunk.

    Returns:
        The number of rows deleted.
    """
    ot = Outbox.__table__
    doomed = case((and_(*_purgeable(cutoff, connector)), 1), else_=0)
    purged, after = 0, ""
    try:
        while True:
            n = 0
            with engine.begin() as conn:
                window = conn.execute(select(ot.c.id, doomed).where(ot.c.id > after).order_by(ot.c.id)
                                      .limit(chunk)).all()
                # done and dropped are final: a row found purgeable stays so until it is deleted
                for part in chunks([r[0] for r in window if r[1]]):
                    n += conn.execute(delete(ot).where(ot.c.id.in_(part))).rowcount
            purged += n    # counted once committed
            if progress is not None:
                progress(purged)
            if len(window) < chunk:
                break
            after = window[-1][0]
    except BaseException:
        try:   # the chunks committed so far are gone for good: the log says how many
            _audit(engine, user, cutoff, connector, purged, "failed")
        except Exception:
            log.exception("could not audit an outbox purge that failed after %d rows", purged)
        raise
    _audit(engine, user, cutoff, connector, purged, "ok")
    log.info("purged %d outbox rows last changed before %s", purged, cutoff.isoformat(),
             extra={"connector": connector})
    return purged


def _audit(engine: Engine, user: str, cutoff: datetime, connector: str | None, purged: int, outcome: str) -> None:
    with engine.begin() as conn:
        audit.record(conn, user, "outbox.purge", f"outbox:{connector}" if connector else "outbox",
                     before={"cutoff": cutoff.isoformat(), "statuses": list(PURGEABLE)},
                     after={"purged": purged}, outcome=outcome)
