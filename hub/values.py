"""Canonical values in one JSON-safe form, so bases, golden rows and outbox rows compare exactly.

Decimals are normalized (``1234.50`` and ``1234.5`` are the same value),
timestamps are UTC ISO strings, dates ISO, order lines a list sorted by line
number. The merge compares and stores only encoded values.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import orjson

from hub.canonical import ENTITIES, ORDER_LINE_FIELDS


def encode(value: Any) -> Any:
    """The JSON-safe canonical form of one value."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        text = format(value.normalize(), "f")
        return "0" if text in ("-0", "") else text
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}")
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return encode(Decimal(repr(value)))
    if isinstance(value, list):
        lines = [{k: encode(v) for k, v in line.items()} for line in value]
        return sorted(lines, key=lambda ln: (ln.get("line_no") is None, ln.get("line_no") or 0))
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return str(value)


def complete_lines(golden_lines: Any, lines: Any) -> Any:
    """A system's encoded order lines, each completed with the golden line's sub-fields it does not carry.

    A mapping's ``each:`` gives every line all the sub-fields it reads (a blank one as None) and no
    others, so a sub-field missing from a line is one the system does not hold: it keeps the golden
    value of the matching line (the same ``line_no``, or the same place when the system carries no line
    numbers). Lines the system added or left out stay added or left out.
    """
    if not isinstance(lines, list) or not isinstance(golden_lines, list) or not lines or not golden_lines:
        return lines
    by_no = {g["line_no"]: g for g in golden_lines if isinstance(g, dict) and g.get("line_no") is not None}
    out = []
    for n, line in enumerate(lines):
        if not isinstance(line, dict):
            return lines
        if "line_no" in line:
            match = by_no.get(line["line_no"])
        else:
            match = golden_lines[n] if n < len(golden_lines) else None
        out.append({**match, **line} if isinstance(match, dict) else line)
    return out


def encode_record(values: dict[str, Any]) -> dict[str, Any]:
    return {k: encode(v) for k, v in values.items()}


def decode(value: Any, type_name: str) -> Any:
    """The Python value for a column from its encoded form."""
    if value is None:
        return None
    if type_name == "decimal":
        return Decimal(str(value))
    if type_name == "datetime":
        dt = datetime.fromisoformat(value) if isinstance(value, str) else value
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    if type_name == "date":
        return date.fromisoformat(value[:10]) if isinstance(value, str) else value
    if type_name == "int":
        return int(value)
    if type_name == "bool":
        if isinstance(value, str):    # typed in (--where, a flow constant): "false" is False, not a non-empty str
            from hub.mapping_types import to_bool
            return to_bool(value)
        return bool(value)
    if type_name == "list":
        return [{k: decode(v, ORDER_LINE_FIELDS.get(k, "string")) for k, v in line.items()} for line in value]
    return value


def decode_record(entity: str, values: dict[str, Any]) -> dict[str, Any]:
    types = ENTITIES[entity].fields
    return {k: decode(v, types.get(k, "string")) for k, v in values.items()}


def record_hash(values: dict[str, Any], deleted: bool = False) -> str:
    """A short digest of encoded values: an unchanged source row is skipped without a merge."""
    # encoded values are plain str/int/bool/None (and lists of such dicts): repr is stable and cheaper than JSON
    payload = repr(sorted(values.items()))
    if deleted:
        payload += "|deleted"
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


def values_hash(values: dict[str, Any], deleted: bool = False) -> str:
    """The digest of a record's encoded values kept in ``source_state.row_hash``: an unchanged record
    read again is skipped without a merge. Their sorted JSON, a quarter of the cost of :func:`record_hash`'s
    repr (which checks every character of a Chinese name for printability). Encoded values hold no floats
    (:func:`encode` turns them into decimal text), so orjson's null for a NaN cannot make two records alike."""
    try:
        payload = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    except TypeError:   # not an encoded record (an integer beyond 64 bits, an object): its repr
        return record_hash(values, deleted)
    if deleted:
        payload += b"|deleted"
    return hashlib.blake2b(payload, digest_size=16).hexdigest()
