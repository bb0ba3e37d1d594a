"""Parking rows that cannot pass: bad reads, mapping errors, failed expectations, unresolved references.

The raw payload is kept so `triad quarantine retry` can re-run it after a fix.
The same bad row read again updates its parked entry instead of parking it twice.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from hub.models import Quarantine
from hub.sqlutil import among, chunks, key_parts
from hub.types import new_id
from hub.values import record_hash


def _visible(text: str) -> str:
    """NUL (PostgreSQL's JSON cannot hold it) and lone surrogates (no UTF-8 encodes them) as escape text,
    so the row is parked and shown instead of failing the whole batch's write."""
    text = text.replace("\x00", "\\x00")
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _jsonable(raw: Any) -> Any:
    from hub.values import encode
    if isinstance(raw, dict):
        return {_visible(str(k)): _jsonable(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_jsonable(v) for v in raw]
    value = encode(raw)
    return _visible(value) if isinstance(value, str) else value


class QuarantineWriter:
    def __init__(self, conn: Connection, connector: str, entity: str, run_id: str, now: datetime) -> None:
        self.conn, self.connector, self.entity, self.run_id, self.now = conn, connector, entity, run_id, now
        self.pending: list[dict[str, Any]] = []
        self.repeated = 0      # rows read again exactly as they are parked already

    def park(self, raw: dict[str, Any], source_id: str | None, kind: str, reasons: list[dict[str, Any]]) -> None:
        raw = _jsonable(raw)
        if source_id is not None:
            source_id = _visible(str(source_id))[:255]
        self.pending.append({"source_id": source_id, "raw": raw, "raw_hash": record_hash(raw), "kind": kind,
                             "reasons": _jsonable(reasons)})

    def flush(self) -> int:
        """Write parked rows; returns how many this batch parks: new ones, and newer versions of parked rows
        (which take their place). A row read again exactly as it is parked does not count (``repeated``)."""
        if not self.pending:
            return 0
        qt = Quarantine.__table__
        sids = sorted({p["source_id"] for p in self.pending if p["source_id"]})
        hashes = sorted({p["raw_hash"] for p in self.pending})
        existing: dict[tuple[str, str], tuple[str, str]] = {}
        dropped: set[tuple[str, str]] = set()    # (source id, raw hash) a steward gave up on: not parked again
        for part in chunks(sids):
            for r in self.conn.execute(select(qt.c.id, qt.c.source_id, qt.c.raw_hash, qt.c.kind, qt.c.status).where(
                    qt.c.connector == self.connector, qt.c.entity == self.entity,
                    qt.c.status.in_(["parked", "dropped"]), qt.c.source_id.in_(part))):
                if r.status == "dropped":
                    dropped.add((r.source_id, r.raw_hash))
                else:
                    existing[("sid", r.source_id)] = (r.id, f"{r.raw_hash}:{r.kind}")
        for part in chunks(hashes):
            for r in self.conn.execute(select(qt.c.id, qt.c.raw_hash, qt.c.kind).where(
                    qt.c.connector == self.connector, qt.c.entity == self.entity, qt.c.status == "parked",
                    qt.c.source_id.is_(None), qt.c.raw_hash.in_(part))):
                existing[("hash", r.raw_hash)] = (r.id, f"{r.raw_hash}:{r.kind}")
        inserts, updates = [], []
        for p in self.pending:
            if p["source_id"] and (p["source_id"], p["raw_hash"]) in dropped and ("sid", p["source_id"]) not in existing:
                self.repeated += 1     # the same row read again: it stays dropped (a newer version is parked)
                continue
            key = ("sid", p["source_id"]) if p["source_id"] else ("hash", p["raw_hash"])
            if key in existing:
                qid, old_hash = existing[key]
                if old_hash == f"{p['raw_hash']}:{p['kind']}":
                    self.repeated += 1
                    continue
                updates.append({"_id": qid, "raw": p["raw"], "raw_hash": p["raw_hash"], "kind": p["kind"],
                                "reasons": p["reasons"], "updated_at": self.now, "run_id": self.run_id})
                continue
            qid = new_id()
            existing[key] = (qid, f"{p['raw_hash']}:{p['kind']}")
            inserts.append({"id": qid, "connector": self.connector, "entity": self.entity, "status": "parked",
                            "attempts": 0, "run_id": self.run_id, "created_at": self.now, "updated_at": self.now,
                            **p})
        if inserts:
            self.conn.execute(insert(qt), inserts)
        if updates:
            self.conn.execute(update(qt).where(qt.c.id == bindparam("_id")).values(
                raw=bindparam("raw"), raw_hash=bindparam("raw_hash"), kind=bindparam("kind"),
                reasons=bindparam("reasons"), updated_at=bindparam("updated_at"), run_id=bindparam("run_id"),
                attempts=qt.c.attempts + 1), updates)
        self.pending = []
        return len(inserts) + len(updates)

    def supersede(self, source_ids: Sequence[str], keep: set[str]) -> None:
        """Parked rows of source records that have now gone through are resolved (a newer version won)."""
        qt = Quarantine.__table__
        conn = self.conn
        for part in key_parts(conn, sorted(set(source_ids))):
            conn.execute(update(qt).where(
                qt.c.connector == self.connector, qt.c.entity == self.entity, qt.c.status == "parked",
                among(conn, qt.c.source_id, part), qt.c.run_id != self.run_id)
                .values(status="resolved", updated_at=self.now))
        for part in key_parts(conn, sorted(keep)):
            conn.execute(update(qt).where(among(conn, qt.c.id, part), qt.c.status == "parked",
                                          or_(qt.c.run_id != self.run_id, qt.c.run_id.is_(None)))
                         .values(status="resolved", updated_at=self.now))
