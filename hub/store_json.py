"""The JSON text the store keeps (merge bases, history, provenance, conflicts, outbox payloads).

Written as compact UTF-8 (a Chinese name in its own bytes, not ``\\uXXXX`` escapes; no blanks between
items) and read back exactly. orjson does the common case about ten times faster than the standard
library, which matters because every record of a batch writes its values as JSON twice (merge base
and history) and reads one back; whatever orjson would not write or read exactly as the standard
library does goes through the standard library, so the text and the values are the same either way.
"""
from __future__ import annotations

import json
import math
from typing import Any

import orjson

# datetimes and dataclasses as the standard library treats them (it refuses them: a caller's bug, not data)
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    """``value`` as compact UTF-8 JSON text."""
    try:
        out = orjson.dumps(value, option=_OPTIONS)
    except TypeError:   # a lone surrogate, an integer beyond 64 bits, a non-text key, a type JSON lacks
        return _dumps_stdlib(value)
    if b"null" in out and _has_nonfinite(value):   # orjson writes NaN and infinities as null
        return _dumps_stdlib(value)
    return out.decode("utf-8")


def loads(text: str | bytes) -> Any:
    """The value of JSON text the store holds."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:   # NaN, a lone surrogate's escape: valid for the standard library
        return json.loads(text)
    # orjson reads an integer beyond 64 bits as a float; the store's own values hold no floats, so
    # this look is all it costs them
    return json.loads(text) if _has_float(value) else value


def _dumps_stdlib(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:   # a lone surrogate (a raw webhook body, say): kept as its escape, as JSON allows
            return json.dumps(value, separators=(",", ":"))
    return text


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_nonfinite(v) for v in value)
    return False


def _has_float(value: Any) -> bool:
    """Whether a float is anywhere in a parsed value. Parsed JSON holds only plain dicts and lists, so exact
    type checks do (half the cost of :func:`_has_nonfinite`'s isinstance walk, which a caller's
    dict subclasses and tuples need, on every base read)."""
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    for v in value:
        kind = type(v)
        if kind is float or ((kind is dict or kind is list) and _has_float(v)):
            return True
    return False
