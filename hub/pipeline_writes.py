"""A batch's writes, collected in memory and flushed set-based at the end of :mod:`hub.pipeline`."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from hub import golden
from hub.bulk import execute_many, insert_many
from hub.changefeed import lock_history
from hub.models import Conflict, Outbox, SourceState, Xref
from hub.pipeline_types import StreamContext, _Item
from hub.sqlutil import chunks, upsert


class _Writes:
    """Everything a batch writes, collected in memory and flushed set-based at the end."""

    def __init__(self) -> None:
        self.new_golden: dict[str, tuple[dict[str, Any], dict[str, list]]] = {}
        self.changed_golden: dict[str, golden.GoldenRow] = {}
        self.changed_fields: dict[str, set[str]] = {}    # only these columns are rewritten
        self.xrefs: dict[str, dict[str, Any]] = {}
        self.xref_status: list[dict[str, Any]] = []
        self.states: dict[str, dict[str, Any]] = {}
        # source ids whose stored source_state row names the same record: updated in place, so the
        # record_id index is not rewritten (an upsert rewrites every index of the columns it sets)
        self.states_in_place: set[str] = set()
        self.history: list[dict[str, Any]] = []
        self.conflicts: list[dict[str, Any]] = []
        self.open_conflicts: dict[tuple[str, str], dict[str, Any]] = {}   # (record, field) -> its open row
        # systems of an open conflict that now hold the golden value: their entry in it is updated
        self.caught_up: list[dict[str, Any]] = []
        self.deleted_in: dict[str, list[str] | None] = {}
        self.gone: dict[str, set[str]] = {}     # record -> its source ids of this system flagged deleted here
        self.gone_rows: dict[str, golden.GoldenRow] = {}
        self.back: set[str] = set()             # records deleted nowhere any more: their queued deletes go
        self.candidates: list[dict[str, Any]] = []

    def keep_state(self, item: _Item, row: dict[str, Any]) -> None:
        """The source_state row the batch leaves for ``item``."""
        self.states[item.source_id] = row
        if item.state_record_id is not None and item.state_record_id == row["record_id"]:
            self.states_in_place.add(item.source_id)
        else:
            self.states_in_place.discard(item.source_id)

    def add_conflict(self, row: dict[str, Any]) -> None:
        """Keep one open conflict per (record, field): a later value for it updates that system's entry."""
        if row["status"] == "open":
            pending = self.open_conflicts.get((row["record_id"], row["field"]))
            if pending is not None:
                self.conflicts += _superseded(pending["values"], pending["timestamps"], row)
                pending["values"] = {**pending["values"], **row["values"]}
                pending["timestamps"] = {**pending["timestamps"], **row["timestamps"]}
                return
            self.open_conflicts[(row["record_id"], row["field"])] = row
        self.conflicts.append(row)

    def _update_open_conflicts(self, conn: Connection, entity: str) -> None:
        """Open conflicts of this batch whose (record, field) has one open already update the stored
        one (the system's value there) instead of opening a second; the rest are inserted. A system
        that caught up updates its entry in a stored open conflict it is part of."""
        if not self.open_conflicts and not self.caught_up:
            return
        caught_up = {(c["record_id"], c["field"]): c for c in self.caught_up}
        ct = Conflict.__table__
        updates, stored, superseded = [], set(), []
        for part in chunks(sorted({rid for rid, _ in self.open_conflicts} | {rid for rid, _ in caught_up})):
            for r in conn.execute(select(ct.c.id, ct.c.record_id, ct.c.field, ct.c["values"], ct.c.timestamps)
                                  .where(ct.c.entity == entity, ct.c.status == "open", ct.c.record_id.in_(part))
                                  ).mappings():
                held = r["values"] or {}
                new = self.open_conflicts.get((r["record_id"], r["field"]))
                if new is not None:
                    stored.add(new["id"])
                else:
                    new = caught_up.get((r["record_id"], r["field"]))
                    if new is None or not set(new["values"]) <= set(held):
                        continue
                superseded += _superseded(held, r["timestamps"] or {}, new)
                updates.append({"_id": r["id"], "_values": {**held, **new["values"]},
                                "_ts": {**(r["timestamps"] or {}), **new["timestamps"]}})
        if updates:
            conn.execute(update(ct).where(ct.c.id == bindparam("_id"))
                         .values({"values": bindparam("_values"), "timestamps": bindparam("_ts")}), updates)
            self.conflicts = [c for c in self.conflicts if c["id"] not in stored] + superseded

    def _drop_queued_deletes(self, conn: Connection, ctx: StreamContext) -> None:
        """A record that came back is deleted nowhere: the deletes queued for it must not reach any system.
        A write already being sent may still land (a push settles it as it went)."""
        if not self.back:
            return
        ot = Outbox.__table__
        why = f"not sent: the record came back in {ctx.system} (read or linked there again), so it is deleted nowhere"
        for part in chunks(sorted(self.back)):
            conn.execute(update(ot).where(ot.c.entity == ctx.entity, ot.c.record_id.in_(part),
                                          ot.c.operation == "delete", ot.c.status == "pending")
                         .values(status="dropped", last_error=why, updated_at=ctx.now))

    def _write_states(self, conn: Connection) -> None:
        """Rows known to exist under the same record are updated (their keys and record_id left alone);
        the rest, and any of those that another transaction removed meanwhile, are upserted."""
        st = SourceState.__table__
        keys = ["entity", "system", "source_id"]
        in_place = [row for sid, row in self.states.items() if sid in self.states_in_place]
        rest = [row for sid, row in self.states.items() if sid not in self.states_in_place]
        if in_place:
            columns = [c for c in in_place[0] if c not in keys and c != "record_id"]
            stmt = update(st).where(st.c.entity == bindparam("_entity"), st.c.system == bindparam("_system"),
                                    st.c.source_id == bindparam("_sid")
                                    ).values({c: bindparam(c) for c in columns})
            params = [{"_entity": r["entity"], "_system": r["system"], "_sid": r["source_id"],
                       **{c: r[c] for c in columns}} for r in in_place]
            if execute_many(conn, stmt, params, f"source-state-update:{','.join(columns)}") != len(params):
                rest += in_place
        upsert(conn, st, rest, keys)

    def flush_history(self, conn: Connection) -> None:
        from hub.models import FieldHistory
        if self.history:
            lock_history(conn)   # the change feed hands out history numbers in commit order
            insert_many(conn, FieldHistory.__table__, self.history, "history-insert")

    def flush(self, conn: Connection, ctx: StreamContext) -> None:
        from sqlalchemy import bindparam, insert
        from hub.models import GOLDEN_MODELS
        now = ctx.now
        golden.insert_new(conn, ctx.entity, [(rid, v, p) for rid, (v, p) in self.new_golden.items()], now)
        golden.update_changed(conn, ctx.entity, [(row, row.provenance) for row in self.changed_golden.values()], now,
                              self.changed_fields)
        if self.deleted_in:
            t = GOLDEN_MODELS[ctx.entity].__table__
            conn.execute(update(t).where(t.c.id == bindparam("_id")).values(
                deleted_in=bindparam("deleted_in"), updated_at=now),
                [{"_id": rid, "deleted_in": v} for rid, v in self.deleted_in.items()])
        self._drop_queued_deletes(conn, ctx)
        insert_many(conn, Xref.__table__, list(self.xrefs.values()), "xref-insert")
        if self.xref_status:
            xt = Xref.__table__
            conn.execute(update(xt).where(xt.c.entity == ctx.entity, xt.c.system == ctx.system,
                                          xt.c.source_id == bindparam("_sid"))
                         .values(status=bindparam("status"), updated_at=now), self.xref_status)
            gone = [{"_sid": x["_sid"]} for x in self.xref_status if x["status"] == "deleted"]
            if gone:   # the record's next appearance is a change, whatever its raw form
                st = SourceState.__table__
                conn.execute(update(st).where(st.c.entity == ctx.entity, st.c.system == ctx.system,
                                              st.c.source_id == bindparam("_sid")).values(raw_hash=None), gone)
        self._write_states(conn)
        self._update_open_conflicts(conn, ctx.entity)
        insert_many(conn, Conflict.__table__, self.conflicts, "conflict-insert")
        if self.candidates:
            from hub.models import MatchCandidate
            execute_many(conn, insert(MatchCandidate.__table__), self.candidates, "candidate-insert")
        if ctx.matcher is not None:   # keep blocking keys in step with golden values
            touched = [(rid, v) for rid, (v, _) in self.new_golden.items()]
            touched += [(rid, row.values) for rid, row in self.changed_golden.items()]
            ctx.matcher.index(conn, touched)


def _superseded(held: dict[str, Any], held_ts: dict[str, Any], row: dict[str, Any]) -> list[dict[str, Any]]:
    """A system's value an open conflict holds, which ``row`` (the same system's newer value, a conflict
    row of this batch) replaces:
    kept as an automatic conflict the system's later value won, so the earlier value can still be found
    (SPEC 5: nothing is silently dropped)."""
    from hub.types import new_id
    return [{**row, "id": new_id(), "status": "auto", "values": {system: held[system]},
             "timestamps": {system: held_ts.get(system)}, "winner": system,
             "note": f"{system} replaced this value while the conflict was open"}
            for system, value in row["values"].items() if system in held and held[system] != value]
