"""The start of a batch: rows unchanged since last read are skipped before mapping, the rest are
mapped to canonical values, and rows no store could keep are parked."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import Connection

from hub.column_fit import check_fits
from hub.errors import MappingError
from hub.pipeline_types import BatchStats, StreamContext, _Item
from hub.quarantine import QuarantineWriter
from hub.values import encode, encode_record, values_hash


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
    none, see hub.pipeline_writes._Writes.flush). The ids go as one array parameter where the store
    has one, not as thousands of bound parameters."""
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
            problems = getattr(exc, "problems", None) or [(field_name, getattr(exc, "message", str(exc)))]
            quarantine.park(raw, None if key in (None, "") else str(key), "mapping",
                            [{"reason": "mapping", "field": f, "message": m} for f, m in problems])
            continue
        item = _Item(raw, rec.source_id, values, rec.values, rec.refs, encode(rec.source_ts), rec.deleted,
                     values_hash(values, rec.deleted))
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
