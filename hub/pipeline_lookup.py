"""What the store already holds for a batch's rows: xref links, stored digests, merge bases."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import Connection, Text, and_, bindparam, select, type_coerce, update

from hub import store_json
from hub.bulk import execute_many
from hub.models import SourceState, Xref
from hub.pipeline_types import BatchStats, StreamContext, _Item
from hub.sqlutil import among, key_parts

log = logging.getLogger("hub.pipeline")   # the batch's log lines keep one logger name


def _attach_state(conn: Connection, ctx: StreamContext, items: dict[str, _Item]) -> None:
    """Bulk lookup of the batch's xref links, stored row digests and merge bases (the bases as
    stored text on SQLite: only the changed rows' are decoded, see _attach_bases)."""
    xt, st = Xref.__table__, SourceState.__table__
    base = type_coerce(st.c["values"], Text).label("base")
    for part in key_parts(conn, sorted(items)):
        q = (select(xt.c.source_id, xt.c.record_id, xt.c.status, st.c.row_hash, st.c.raw_hash, st.c.source_ts,
                    base, st.c.written, st.c.record_id.label("state_record_id"))
             .select_from(xt.outerjoin(st, and_(st.c.entity == xt.c.entity, st.c.system == xt.c.system,
                                                st.c.source_id == xt.c.source_id)))
             .where(xt.c.entity == ctx.entity, xt.c.system == ctx.system,
                    among(conn, xt.c.source_id, part)))
        for r in conn.execute(q):
            item = items[r.source_id]
            item.record_id, item.xref_status = r.record_id, r.status
            item.state_hash, item.state_raw_hash, item.state_ts = r.row_hash, r.raw_hash, r.source_ts
            item.stored_base, item.written, item.state_record_id = r.base, r.written, r.state_record_id


def _note_older(ctx: StreamContext, older: list[_Item], stats: BatchStats) -> None:
    """Rows not taken because their time is older than the version already taken: counted and said, since
    a source whose clock or mapping timezone was corrected sends real edits that look like this."""
    if not older:
        return
    stats.add("older", len(older))
    first = older[0]
    # once a run: a superseded export read again has such rows in every batch (the run's total is in its report)
    again = "older" in ctx.said
    ctx.said.add("older")
    log.log(logging.INFO if again else logging.WARNING,
            "%s/%s: %d row(s) differ from the version taken in but are older, so not taken (%s: %s < %s): "
            "a superseded export read again, or the source's clock or the mapping's timezone changed%s",
            ctx.system, ctx.entity, len(older), first.source_id, first.source_ts,
            first.state_ts.isoformat() if first.state_ts else None,
            "" if again else " (later batches of this run: counted in its report; each named with -v)")


def _older(item: _Item) -> bool:
    """A version older than the one already taken in (a superseded export read again, a replay):
    taking it would turn the golden record back and forth."""
    if item.source_ts is None or item.state_ts is None:
        return False
    stored = item.state_ts if item.state_ts.tzinfo else item.state_ts.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(item.source_ts) < stored


def _attach_bases(items: list[_Item]) -> None:
    """The merge bases (values last seen from this system) of the linked records that changed."""
    for item in items:
        if item.record_id is not None:
            stored = item.stored_base     # text on SQLite; PostgreSQL's driver hands jsonb over decoded
            item.base = (store_json.loads(stored) if isinstance(stored, str) else stored) or {}


def _remember_raw(conn: Connection, ctx: StreamContext, same: list[_Item]) -> None:
    """Rows that map to what is stored but were read in another form (a first run with this mapping,
    spaces, a reordered payload): note their digest, so the next read skips them unmapped."""
    rows = [{"_entity": ctx.entity, "_system": ctx.system, "_sid": i.source_id, "raw_hash": i.raw_hash}
            for i in same if i.raw_hash is not None and i.raw_hash != i.state_raw_hash]
    if rows:
        st = SourceState.__table__
        stmt = update(st).where(st.c.entity == bindparam("_entity"), st.c.system == bindparam("_system"),
                                st.c.source_id == bindparam("_sid")).values(raw_hash=bindparam("raw_hash"))
        execute_many(conn, stmt, rows, "source-state-raw-hash")
