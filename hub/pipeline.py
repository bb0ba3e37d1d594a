"""One inbound batch: map -> validate -> resolve identity -> merge -> write, in one transaction.

Only the two ends do I/O: the lookups at the start (xref, bases, golden rows,
references) and the writes at the end, each one set-based statement. The
merge in between is the pure :mod:`hub.merge`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import Connection, Text, and_, bindparam, select, type_coerce, update

from hub import golden, subscriptions
from hub.changefeed import lock_history
from hub.column_fit import SQLITE_EXACT_DIGITS, check_fits
from hub.mapping import Mapping
from hub.merge import CREATED, Incoming, MergeOutcome, Rules, create, merge
from hub.models import Conflict, SourceState, Xref
from hub.open_conflicts import open_fields
from hub.echoes import WRITTEN, still_pending
from hub.errors import MappingError
from hub.gc_pause import cyclic_gc_paused
from hub.outbox import OutboxQueue
from hub.quarantine import QuarantineWriter
from hub.bulk import execute_many
from hub.sqlutil import chunks, upsert
from hub.types import new_id
from hub.values import encode, encode_record, record_hash

log = logging.getLogger(__name__)


@dataclass
class StreamContext:
    """Everything a batch needs to know about its stream, built once per run."""

    system: str                       # the connector's name
    entity: str
    mapping: Mapping
    rules: Rules
    exact_keys: tuple[str, ...]
    out_systems: tuple[str, ...]      # connectors with direction out/both for this entity
    delete_targets: tuple[str, ...]   # connectors with propagate_deletes for this entity
    run_id: str
    now: datetime
    synced: frozenset[str] = frozenset()   # entities this connector syncs: references to others cannot resolve
    validator: Any = None             # hub.validation.Validator, or None to skip
    matcher: Any = None               # fuzzy matcher (hub.matching), optional

    @property
    def writes_back(self) -> bool:
        return self.system in self.out_systems


STAT_KEYS = ("read", "created", "updated", "unchanged", "linked", "quarantined", "conflicts", "queued", "deleted",
             "still_parked", "older")     # older: of the unchanged, rows whose values differ but whose time is older


@dataclass
class BatchStats:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAT_KEYS, 0))
    resolved_quarantine: list[str] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


@dataclass
class _Item:
    raw: dict[str, Any]
    source_id: str
    values: dict[str, Any]            # encoded canonical values
    python_values: dict[str, Any]
    refs: dict[str, str]
    source_ts: str | None
    deleted: bool
    hash: str
    raw_hash: str | None = None       # digest of the raw record with the mapping (None: not skippable)
    record_id: str | None = None
    state_hash: str | None = None     # row_hash / raw_hash / source_ts of the stored source_state
    state_raw_hash: str | None = None
    state_ts: datetime | None = None
    linked_now: bool = False
    xref_status: str | None = None
    base: dict[str, Any] | None = None
    stored_base: Any = None           # source_state.values as read with the xref, decoded only if needed
    written: dict[str, list] | None = None   # our writes this system has not shown back yet (hub.echoes)
    quarantine_id: str | None = None
    candidates: list = field(default_factory=list)   # (record id, score, details) for a steward to review


def process_batch(conn: Connection, ctx: StreamContext, raws: Sequence[dict[str, Any]],
                  deleted_ids: Sequence[str] = (), *, from_quarantine: dict[str, str] | None = None) -> BatchStats:
    """Run one batch of raw source records through the pipeline on ``conn`` (inside a transaction).

    Args:
        raws: records as the system gave them.
        deleted_ids: source ids the system reports deleted.
        from_quarantine: source id -> quarantine id, when re-running parked rows.
    """
    with cyclic_gc_paused():
        return _process_batch(conn, ctx, raws, deleted_ids, from_quarantine)


def _process_batch(conn: Connection, ctx: StreamContext, raws: Sequence[dict[str, Any]],
                   deleted_ids: Sequence[str], from_quarantine: dict[str, str] | None) -> BatchStats:
    stats = BatchStats()
    stats.add("read", len(raws))
    quarantine = QuarantineWriter(conn, ctx.system, ctx.entity, ctx.run_id, ctx.now)
    outbox = OutboxQueue(ctx.entity, ctx.run_id, ctx.now)
    raws, digests = _skip_unread(conn, ctx, raws, from_quarantine or {}, stats)
    exact_digits = SQLITE_EXACT_DIGITS if conn.dialect.name == "sqlite" else None
    items = _map(ctx, raws, quarantine, from_quarantine or {}, digests, exact_digits)
    _attach_state(conn, ctx, items)
    deletes = [i for i in items.values() if i.deleted]
    changed, same = [], []
    for i in items.values():
        if i.deleted:
            continue
        if i.record_id is not None and i.xref_status != "deleted" and (i.hash == i.state_hash or _older(i)):
            same.append(i)
        else:
            changed.append(i)
    for i in same:
        stats.add("unchanged")
        if i.quarantine_id:
            stats.resolved_quarantine.append(i.quarantine_id)
    _note_older(ctx, [i for i in same if i.hash != i.state_hash], stats)
    _remember_raw(conn, ctx, [i for i in same if i.hash == i.state_hash])
    _attach_bases(changed + deletes)
    changed = _validate(ctx, changed, quarantine)
    changed = _resolve_refs(conn, ctx, changed, quarantine)
    _resolve_identity(conn, ctx, changed)
    rows = golden.load(conn, ctx.entity, [i.record_id for i in changed + deletes if i.record_id], lock=True)
    open_manual = open_fields(conn, ctx.entity, list(rows))
    writes = _Writes()
    for item in changed:
        _merge_one(ctx, item, rows, open_manual, writes, outbox, stats)
        if item.quarantine_id:
            stats.resolved_quarantine.append(item.quarantine_id)
    for item in deletes:
        _delete_one(ctx, item, rows, writes, outbox, stats)
    deleted_only = [sid for sid in deleted_ids if sid not in items]
    _delete_by_id(conn, ctx, deleted_only, writes, outbox, stats)
    writes.flush(conn, ctx)
    subscriptions.queue_changes(conn, ctx.entity, writes.history, ctx.run_id, ctx.now)
    stats.add("queued", outbox.flush(conn))
    stats.add("quarantined", quarantine.flush())
    # a parked row tried again and parked for the same reasons is still parked; a source row read again
    # exactly as it is parked already is unchanged
    stats.add("still_parked" if from_quarantine else "unchanged", quarantine.repeated)
    quarantine.supersede([i.source_id for i in changed + deletes], keep=set(stats.resolved_quarantine))
    writes.flush_history(conn)    # the change feed's lock is then held only until the commit
    if ctx.matcher is not None:    # golden records a record of the batch proved one: merged (on every path in)
        ctx.matcher.settle(conn, ctx.rules, ctx.out_systems)
    return stats


# --- stages ---------------------------------------------------------------------------------------

def _raw_digest(fingerprint: str, raw: dict[str, Any]) -> str | None:
    """The raw record as read, with the mapping and stream settings that read it; None when the
    record's text form is not stable across runs (an object without a value repr)."""
    sep, n = "\x1f", len(raw) - 1
    try:   # rows of text (CSV, spreadsheets): joined, when no value holds the separator (so it is exact)
        keys, values = sep.join(raw), sep.join(raw.values())
    except TypeError:
        keys = values = None
    if keys is not None and values.count(sep) == n and keys.count(sep) == n:
        text = f"{fingerprint}|j|{keys}|{values}"
    else:
        text = f"{fingerprint}|r|{raw!r}"
        if " object at 0x" in text:
            return None
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _stream_fingerprint(ctx: StreamContext) -> str | None:
    """What besides the raw record decides its canonical values. References resolve through xref,
    which can change while the raw row does not: such rows always take the full path."""
    m = ctx.mapping
    if getattr(m, "fingerprint", None) is None or m.ref_fields:
        return None
    return f"{m.fingerprint}|{','.join(sorted(ctx.synced))}"


def _skip_unread(conn: Connection, ctx: StreamContext, raws: Sequence[dict[str, Any]],
                 from_quarantine: dict[str, str], stats: BatchStats) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Drop rows identical to the ones last taken in, before any mapping (a full re-read of an
    unchanged source costs a digest and one primary-key lookup per row). Returns the rows left and
    their digests."""
    fingerprint = _stream_fingerprint(ctx)
    if fingerprint is None or not raws:
        return list(raws), [None] * len(raws)
    source_id_of = ctx.mapping.source_id_of
    sids: list[str | None] = []
    last: dict[str, int] = {}                # source id -> position of its last version in the batch
    for n, raw in enumerate(raws):
        sid = source_id_of(raw) if isinstance(raw, dict) and "__error__" not in raw else None
        sids.append(sid)
        if sid is not None:
            last[sid] = n
    digests: list[str | None] = [None] * len(raws)
    for sid, n in last.items():
        digests[n] = _raw_digest(fingerprint, raws[n])
    stored = _stored_raw_hashes(conn, ctx, sorted(sid for sid in last if sid not in from_quarantine))
    skip = {sid for sid, n in last.items() if digests[n] is not None and stored.get(sid) == digests[n]}
    if not skip:
        return list(raws), digests
    stats.add("unchanged", len(skip))
    keep = [n for n, sid in enumerate(sids) if sid not in skip]   # every version of a skipped id goes
    return [raws[n] for n in keep], [digests[n] for n in keep]


def _stored_raw_hashes(conn: Connection, ctx: StreamContext, source_ids: list[str]) -> dict[str, str]:
    """source id -> raw digest, from source_state alone (its primary key; a record flagged deleted has
    none, see _Writes.flush). The ids go as one array parameter where the store has one, not as
    thousands of bound parameters."""
    if not source_ids:
        return {}
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT source_id, raw_hash FROM source_state WHERE entity = ? AND system = ? "
            "AND source_id IN (SELECT value FROM json_each(?))", (ctx.entity, ctx.system, json.dumps(source_ids)))
        return dict(rows.all())
    # the store is SQLite or PostgreSQL (hub.store)
    rows = conn.exec_driver_sql(
        "SELECT source_id, raw_hash FROM source_state WHERE entity = %(e)s AND system = %(s)s "
        "AND source_id = ANY(%(ids)s)", {"e": ctx.entity, "s": ctx.system, "ids": source_ids})
    return dict(rows.all())


def _map(ctx: StreamContext, raws: Sequence[dict[str, Any]], quarantine: "QuarantineWriter",
         from_quarantine: dict[str, str], digests: Sequence[str | None] = (),
         exact_digits: int | None = None) -> dict[str, _Item]:
    items: dict[str, _Item] = {}
    to_canonical = ctx.mapping.to_canonical
    for n, raw in enumerate(raws):
        if "__error__" in raw:
            quarantine.park(raw, None, "read", [{"reason": "read", "message": raw["__error__"]}])
            continue
        try:
            rec = to_canonical(raw)
            values = encode_record(rec.values)
            unstorable = _unstorable(values)
            if unstorable:
                raise MappingError(unstorable[1], field=unstorable[0])
            check_fits(ctx.entity, rec.source_id, ctx.mapping.key, values, ctx.mapping.ref_fields, exact_digits)
        except (MappingError, ValueError, ArithmeticError, TypeError) as exc:
            field_name = getattr(exc, "field", None)
            key = raw.get(ctx.mapping.key) if isinstance(raw, dict) else None
            quarantine.park(raw, None if key in (None, "") else str(key), "mapping",
                            [{"reason": "mapping", "field": field_name, "message": getattr(exc, "message", str(exc))}])
            continue
        item = _Item(raw, rec.source_id, values, rec.values, rec.refs, encode(rec.source_ts), rec.deleted,
                     record_hash(values, rec.deleted))
        item.quarantine_id = from_quarantine.get(rec.source_id)
        item.raw_hash = digests[n] if n < len(digests) else None
        if _supersedes(item, items.get(rec.source_id)):
            items[rec.source_id] = item
    return items


def _supersedes(item: _Item, taken: _Item | None) -> bool:
    """A key read twice in one batch: the newer version wins (the later row when their times tie or
    are unknown), as across batches, where an older version read after a newer one changes nothing."""
    if taken is None or item.source_ts is None or taken.source_ts is None:
        return True
    return _instant(item.source_ts) >= _instant(taken.source_ts)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _unstorable(values: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) of the first text no store keeps, else None (one bad row must not fail the batch's write)."""
    for name, v in values.items():
        if isinstance(v, str):
            bad = _bad_char(v)
            if bad:
                return name, _why(name, bad)
        elif isinstance(v, list):
            for n, line in enumerate(v):
                for k, x in line.items():
                    bad = _bad_char(x) if isinstance(x, str) else None
                    if bad:
                        return f"{name}[{n}].{k}", _why(f"{name}[{n}].{k}", bad)
    return None


def _bad_char(text: str) -> str | None:
    """A NUL byte, or a lone surrogate: valid as a JSON escape (``\\ud800``), but no UTF-8 encodes it."""
    if "\x00" in text:
        return "\x00"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


def _why(where: str, char: str) -> str:
    if char == "\x00":
        return "a value holds a NUL byte (0x00), which no store keeps as text"
    return f"{where}: holds a lone surrogate (U+{ord(char):04X}), which UTF-8 cannot encode"


def _attach_state(conn: Connection, ctx: StreamContext, items: dict[str, _Item]) -> None:
    """Bulk lookup of the batch's xref links, stored row digests and merge bases (the bases as
    stored text on SQLite: only the changed rows' are decoded, see _attach_bases)."""
    xt, st = Xref.__table__, SourceState.__table__
    base = type_coerce(st.c["values"], Text).label("base")
    for part in chunks(sorted(items)):
        q = (select(xt.c.source_id, xt.c.record_id, xt.c.status, st.c.row_hash, st.c.raw_hash, st.c.source_ts,
                    base, st.c.written)
             .select_from(xt.outerjoin(st, and_(st.c.entity == xt.c.entity, st.c.system == xt.c.system,
                                                st.c.source_id == xt.c.source_id)))
             .where(xt.c.entity == ctx.entity, xt.c.system == ctx.system, xt.c.source_id.in_(part)))
        for r in conn.execute(q):
            item = items[r.source_id]
            item.record_id, item.xref_status = r.record_id, r.status
            item.state_hash, item.state_raw_hash, item.state_ts = r.row_hash, r.raw_hash, r.source_ts
            item.stored_base, item.written = r.base, r.written


def _note_older(ctx: StreamContext, older: list[_Item], stats: BatchStats) -> None:
    """Rows not taken because their time is older than the version already taken: counted and said, since
    a source whose clock or mapping timezone was corrected sends real edits that look like this."""
    if not older:
        return
    stats.add("older", len(older))
    first = older[0]
    log.warning("%s/%s: %d row(s) differ from the version taken in but are older, so not taken (%s: %s < %s): "
                "a superseded export read again, or the source's clock or the mapping's timezone changed",
                ctx.system, ctx.entity, len(older), first.source_id, first.source_ts,
                first.state_ts.isoformat() if first.state_ts else None)


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
            item.base = (json.loads(stored) if isinstance(stored, str) else stored) or {}


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


def _validate(ctx: StreamContext, items: list[_Item], quarantine: "QuarantineWriter") -> list[_Item]:
    if not items or ctx.validator is None:
        return items
    result = ctx.validator.validate([i.python_values for i in items])
    for table_failure in getattr(result, "table_failures", []):
        log.warning("batch-level expectation failed for %s/%s: %s", ctx.system, ctx.entity, table_failure)
    bad = result.row_failures
    keep = []
    for n, item in enumerate(items):
        if n in bad:
            quarantine.park(item.raw, item.source_id, "validation",
                            [dict(f, reason="validation") for f in bad[n]])
        else:
            keep.append(item)
    return keep


def _resolve_refs(conn: Connection, ctx: StreamContext, items: list[_Item],
                  quarantine: "QuarantineWriter") -> list[_Item]:
    """Replace reference fields' source ids with canonical ids (same system's xref); park the unresolved."""
    wanted: dict[str, set[str]] = {}
    for item in items:
        for f, ref_entity in list(item.refs.items()):
            if ctx.synced and ref_entity not in ctx.synced:
                # this connector does not sync that entity: the reference could never resolve, so it is left out
                item.values[f] = None
                del item.refs[f]
                continue
            wanted.setdefault(ref_entity, set()).add(str(item.values[f]))
    if not wanted:
        return items
    xt = Xref.__table__
    found: dict[tuple[str, str], str] = {}
    for ref_entity, sids in wanted.items():
        for part in chunks(sorted(sids)):
            for r in conn.execute(select(xt.c.source_id, xt.c.record_id).where(
                    xt.c.entity == ref_entity, xt.c.system == ctx.system, xt.c.source_id.in_(part))):
                found[(ref_entity, r.source_id)] = r.record_id
    keep = []
    for item in items:
        missing = []
        for f, ref_entity in item.refs.items():
            rid = found.get((ref_entity, str(item.values[f])))
            if rid is None:
                missing.append({"reason": "unresolved_ref", "field": f, "entity": ref_entity,
                                "source_id": item.values[f],
                                "message": f"{ref_entity} {item.values[f]} of {ctx.system} is not known yet"})
            else:
                item.values[f] = rid
        if missing:
            quarantine.park(item.raw, item.source_id, "unresolved_ref", missing)
        else:
            if item.refs:
                item.hash = record_hash(item.values, item.deleted)
            keep.append(item)
    return keep


def _resolve_identity(conn: Connection, ctx: StreamContext, items: list[_Item]) -> None:
    """Records without an xref: link by exact normalized keys, then by the fuzzy matcher, else new.

    A fuzzy score between ``review_at`` and ``link_at`` creates a new record and
    opens a match candidate for a steward (collected in ``item.candidates``).
    Records of one batch that share an exact key end up on one golden record.
    """
    unlinked = [i for i in items if i.record_id is None]
    if not unlinked:
        return
    from hub.identity import exact_matches, lock_exact_keys
    from hub.normalize import exact_key
    lock_exact_keys(conn, ctx.entity, ctx.exact_keys, [i.values for i in unlinked])
    matches: list[str | None] = exact_matches(conn, ctx.entity, ctx.exact_keys, [i.values for i in unlinked])
    provisional: dict[int, str] = {}          # batch position -> the id a new record would get
    in_batch: dict[tuple[str, str], int] = {}  # normalized key -> first batch position holding it
    same_as: dict[int, int] = {}              # batch position -> earlier position it shares a key with
    for n, item in enumerate(unlinked):
        keys = [(k, exact_key(k, item.values.get(k))) for k in ctx.exact_keys]
        keys = [(k, v) for k, v in keys if v]
        if matches[n] is None:
            earlier = next((in_batch[kv] for kv in keys if kv in in_batch), None)
            if earlier is not None:
                same_as[n] = earlier
            else:
                provisional[n] = new_id()
        for kv in keys:
            in_batch.setdefault(kv, n)
    fuzzy = [n for n in provisional]          # only records no exact key placed
    if ctx.matcher is not None and fuzzy:
        decisions = ctx.matcher.match_batch(conn, [unlinked[n].values for n in fuzzy],
                                            ids=[provisional[n] for n in fuzzy])
        for n, d in zip(fuzzy, decisions):
            if d.record_id is not None:
                matches[n] = d.record_id
                del provisional[n]
            elif d.same_as is not None:       # an earlier record of this batch
                same_as[n] = fuzzy[d.same_as]
                del provisional[n]
            unlinked[n].candidates = list(d.candidates)

    def final(n: int) -> tuple[str, bool]:
        seen = set()
        while n in same_as and n not in seen:   # follow in-batch links to the record that decides
            seen.add(n)
            n = same_as[n]
        if matches[n] is not None:
            return matches[n], True
        return provisional.setdefault(n, new_id()), False

    for n, item in enumerate(unlinked):
        rid, existing = (matches[n], True) if matches[n] is not None else final(n)
        item.record_id = rid
        first_of_new = not existing and n in provisional and provisional[n] == rid
        item._new = first_of_new  # type: ignore[attr-defined]
        item.linked_now = not first_of_new
        if first_of_new:
            item.base = None


# --- merge and collect writes ---------------------------------------------------------------------

class _Writes:
    """Everything a batch writes, collected in memory and flushed set-based at the end."""

    def __init__(self) -> None:
        self.new_golden: dict[str, tuple[dict[str, Any], dict[str, list]]] = {}
        self.changed_golden: dict[str, golden.GoldenRow] = {}
        self.changed_fields: dict[str, set[str]] = {}    # only these columns are rewritten
        self.xrefs: dict[str, dict[str, Any]] = {}
        self.xref_status: list[dict[str, Any]] = []
        self.states: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.conflicts: list[dict[str, Any]] = []
        self.open_conflicts: dict[tuple[str, str], dict[str, Any]] = {}   # (record, field) -> its open row
        self.deleted_in: dict[str, list[str] | None] = {}
        self.candidates: list[dict[str, Any]] = []

    def add_conflict(self, row: dict[str, Any]) -> None:
        """Keep one open conflict per (record, field): a later value for it updates that system's entry."""
        if row["status"] == "open":
            pending = self.open_conflicts.get((row["record_id"], row["field"]))
            if pending is not None:
                pending["values"] = {**pending["values"], **row["values"]}
                pending["timestamps"] = {**pending["timestamps"], **row["timestamps"]}
                return
            self.open_conflicts[(row["record_id"], row["field"])] = row
        self.conflicts.append(row)

    def _update_open_conflicts(self, conn: Connection, entity: str) -> None:
        """Open conflicts of this batch whose (record, field) has one open already update the stored
        one (the system's value there) instead of opening a second; the rest are inserted."""
        if not self.open_conflicts:
            return
        ct = Conflict.__table__
        updates, stored = [], set()
        for part in chunks(sorted({rid for rid, _ in self.open_conflicts})):
            for r in conn.execute(select(ct.c.id, ct.c.record_id, ct.c.field, ct.c["values"], ct.c.timestamps)
                                  .where(ct.c.entity == entity, ct.c.status == "open", ct.c.record_id.in_(part))
                                  ).mappings():
                new = self.open_conflicts.get((r["record_id"], r["field"]))
                if new is None:
                    continue
                stored.add(new["id"])
                updates.append({"_id": r["id"], "_values": {**(r["values"] or {}), **new["values"]},
                                "_ts": {**(r["timestamps"] or {}), **new["timestamps"]}})
        if updates:
            conn.execute(update(ct).where(ct.c.id == bindparam("_id"))
                         .values({"values": bindparam("_values"), "timestamps": bindparam("_ts")}), updates)
            self.conflicts = [c for c in self.conflicts if c["id"] not in stored]

    def flush_history(self, conn: Connection) -> None:
        from sqlalchemy import insert
        from hub.models import FieldHistory
        if self.history:
            lock_history(conn)   # the change feed hands out history numbers in commit order
            execute_many(conn, insert(FieldHistory.__table__), self.history, "history-insert")

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
        execute_many(conn, insert(Xref.__table__), list(self.xrefs.values()), "xref-insert")
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
        upsert(conn, SourceState.__table__, list(self.states.values()), ["entity", "system", "source_id"])
        self._update_open_conflicts(conn, ctx.entity)
        execute_many(conn, insert(Conflict.__table__), self.conflicts, "conflict-insert")
        if self.candidates:
            from hub.models import MatchCandidate
            execute_many(conn, insert(MatchCandidate.__table__), self.candidates, "candidate-insert")
        if ctx.matcher is not None:   # keep blocking keys in step with golden values
            touched = [(rid, v) for rid, (v, _) in self.new_golden.items()]
            touched += [(rid, row.values) for rid, row in self.changed_golden.items()]
            ctx.matcher.index(conn, touched)


def _same_keys_as_golden(ctx: StreamContext, item: _Item, golden_values: dict[str, Any]) -> None:
    """An exact matching key written another way (`9131 0000 ma1f l4xq01` for `91310000MA1FL4XQ01`) is the
    golden value, not a change: it linked the record, so it must not then open a conflict or be written
    back in the other form. The row digest keeps the source's form, so the next read of it is unchanged."""
    from hub.normalize import exact_key
    for f in ctx.exact_keys:
        mine, theirs = item.values.get(f), golden_values.get(f)
        if mine is not None and theirs is not None and mine != theirs and exact_key(f, mine) == exact_key(f, theirs):
            item.values[f] = theirs


def _merge_one(ctx: StreamContext, item: _Item, rows: dict[str, golden.GoldenRow], open_manual: dict[str, set[str]],
               w: _Writes, outbox: OutboxQueue, stats: BatchStats) -> None:
    rid = item.record_id
    assert rid is not None
    incoming = Incoming(ctx.system, item.values, item.source_ts)
    is_new = getattr(item, "_new", False) and rid not in w.new_golden and rid not in rows
    if is_new:
        outcome = create(incoming, ctx.rules)
        w.new_golden[rid] = (dict(outcome.changes), outcome.provenance)
        stats.add("created")
    else:
        row = rows.get(rid) or _row_from_new(w, rid)
        if row is None:  # linked to a record that no longer exists: treat as new
            outcome = create(incoming, ctx.rules)
            w.new_golden[rid] = (dict(outcome.changes), outcome.provenance)
            stats.add("created")
        else:
            _same_keys_as_golden(ctx, item, row.values)
            outcome = merge(row.values, row.provenance, item.base if not item.linked_now else None, incoming,
                            ctx.rules, frozenset(open_manual.get(rid, ())), item.written,
                            created_by_us=item.state_hash == WRITTEN and not item.linked_now)
            if item.linked_now:
                stats.add("linked")
                if ctx.writes_back:   # the new system learns what the hub knows that it lacks
                    for f, g in row.values.items():
                        if g not in (None, [], "") and item.values.get(f) in (None, []) and f in item.values:
                            outcome.send_back.setdefault(f, g)
            if outcome.changes or outcome.provenance != row.provenance:
                row.values.update(outcome.changes)
                row.provenance = outcome.provenance
                if rid in w.new_golden:
                    w.new_golden[rid] = (row.values, row.provenance)
                else:
                    w.changed_golden[rid] = row
                    w.changed_fields.setdefault(rid, set()).update(outcome.changes)
                stats.add("updated" if outcome.changes else "unchanged")
            elif not item.linked_now:
                stats.add("unchanged")
        if item.xref_status == "deleted":
            w.xref_status.append({"_sid": item.source_id, "status": "active"})
            row = rows.get(rid)
            if row is not None and row.deleted_in and ctx.system in row.deleted_in:
                before = list(row.deleted_in)
                row.deleted_in = [s for s in row.deleted_in if s != ctx.system] or None
                w.deleted_in[rid] = row.deleted_in
                w.history.append({"entity": ctx.entity, "record_id": rid, "field": "deleted_in", "old": before,
                                  "new": row.deleted_in, "system": ctx.system, "user": None, "run_id": ctx.run_id,
                                  "reason": "undeleted", "at": ctx.now})   # the counterpart of _flag_deleted's
    if item.xref_status is None:   # first time this source record is seen: link it
        w.xrefs[item.source_id] = {"id": new_id(), "entity": ctx.entity, "system": ctx.system,
                                   "source_id": item.source_id, "record_id": rid, "status": "active",
                                   "created_at": ctx.now, "updated_at": ctx.now}
    _record_outcome(ctx, item, rid, outcome, w, outbox, stats, created=is_new)
    for other, score, details in item.candidates:
        if other != rid:
            w.candidates.append({"id": new_id(), "entity": ctx.entity, "record_a": rid, "record_b": other,
                                 "score": float(score), "details": details, "status": "open",
                                 "created_at": ctx.now, "decided_at": None, "decided_by": None})
    w.states[item.source_id] = {"entity": ctx.entity, "system": ctx.system, "source_id": item.source_id,
                                "record_id": rid, "values": item.values, "row_hash": item.hash,
                                "raw_hash": item.raw_hash, "source_ts": _dt(item.source_ts), "seen_at": ctx.now,
                                "run_id": ctx.run_id, "written": still_pending(item.written, item.values)}


def _row_from_new(w: _Writes, rid: str) -> golden.GoldenRow | None:
    if rid in w.new_golden:
        values, prov = w.new_golden[rid]
        return golden.GoldenRow(rid, values, prov, None, None, 1)
    return None


def _record_outcome(ctx: StreamContext, item: _Item, rid: str, outcome: MergeOutcome, w: _Writes,
                    outbox: OutboxQueue, stats: BatchStats, *, created: bool) -> None:
    for h in outcome.history:
        w.history.append({"entity": ctx.entity, "record_id": rid, "field": h.field, "old": h.old, "new": h.new,
                          "system": ctx.system, "user": None, "run_id": ctx.run_id, "reason": h.reason,
                          "at": ctx.now})
    for c in outcome.conflicts:
        w.add_conflict({"id": new_id(), "entity": ctx.entity, "record_id": rid, "field": c.field,
                            "status": c.status, "rule": c.rule, "values": c.values, "timestamps": c.timestamps,
                            "golden": c.golden, "winner": c.winner, "note": None, "run_id": ctx.run_id,
                            "created_at": ctx.now, "resolved_at": None, "resolved_by": None})
    stats.add("conflicts", len(outcome.conflicts))
    if outcome.propagate:
        for target in ctx.out_systems:
            if target != ctx.system:
                outbox.queue(target, rid, outcome.propagate)
    if outcome.send_back and ctx.writes_back:
        outbox.queue(ctx.system, rid, outcome.send_back)


def _delete_one(ctx: StreamContext, item: _Item, rows: dict[str, golden.GoldenRow], w: _Writes,
                outbox: OutboxQueue, stats: BatchStats) -> None:
    w.states[item.source_id] = {"entity": ctx.entity, "system": ctx.system, "source_id": item.source_id,
                                "record_id": item.record_id, "values": item.base or item.values,
                                "row_hash": item.hash, "raw_hash": item.raw_hash, "source_ts": _dt(item.source_ts),
                                "seen_at": ctx.now, "run_id": ctx.run_id, "written": item.written}
    if item.record_id is None:
        w.states.pop(item.source_id)   # never seen alive: nothing to flag
        stats.add("unchanged")
        return
    _flag_deleted(ctx, item.source_id, item.record_id, item.xref_status, rows, w, outbox, stats)


def _delete_by_id(conn: Connection, ctx: StreamContext, source_ids: list[str], w: _Writes,
                  outbox: OutboxQueue, stats: BatchStats) -> None:
    if not source_ids:
        return
    xt = Xref.__table__
    found = []
    for part in chunks(source_ids):
        found += list(conn.execute(select(xt.c.source_id, xt.c.record_id, xt.c.status).where(
            xt.c.entity == ctx.entity, xt.c.system == ctx.system, xt.c.source_id.in_(part))))
    rows = golden.load(conn, ctx.entity, [r.record_id for r in found], lock=True)
    for r in found:
        _flag_deleted(ctx, r.source_id, r.record_id, r.status, rows, w, outbox, stats)


def _flag_deleted(ctx: StreamContext, source_id: str, rid: str, xref_status: str | None,
                  rows: dict[str, golden.GoldenRow], w: _Writes, outbox: OutboxQueue, stats: BatchStats) -> None:
    if xref_status == "deleted":
        return
    w.xref_status.append({"_sid": source_id, "status": "deleted"})
    row = rows.get(rid)
    if row is None:
        return
    before = list(row.deleted_in or [])
    row.deleted_in = sorted(set(before) | {ctx.system})
    w.deleted_in[rid] = row.deleted_in
    w.history.append({"entity": ctx.entity, "record_id": rid, "field": "deleted_in", "old": before or None,
                      "new": row.deleted_in, "system": ctx.system, "user": None, "run_id": ctx.run_id,
                      "reason": "deleted", "at": ctx.now})
    stats.add("deleted")
    for target in ctx.delete_targets:
        if target != ctx.system:
            outbox.queue(target, rid, {}, operation="delete")


def _dt(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


__all__ = ["StreamContext", "BatchStats", "process_batch", "CREATED", "STAT_KEYS"]
