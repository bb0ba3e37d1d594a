"""Singer catalogs: which streams a run selects, and how they replicate.

A discovered (or given) catalog is copied per run with only the streams the
entity reads selected, their properties selected too (except ``unsupported``
ones), and the replication key and method from the configuration where given.
Other streams are deselected, so a tap with many tables reads only what the
entity needs. A stream may be named by its ``tap_stream_id`` or its ``stream``;
taps label RECORDs with either, so a selection keeps both names.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hub.errors import ConfigError, FatalError


@dataclass(frozen=True)
class Wanted:
    """One Singer stream an entity reads, and its replication settings (None: the tap's default)."""

    stream: str
    replication_key: str | None = None
    replication_method: str | None = None   # INCREMENTAL, FULL_TABLE, LOG_BASED


def _root(entry: dict[str, Any]) -> dict[str, Any]:
    metadata = entry.setdefault("metadata", [])
    for item in metadata:
        if isinstance(item, dict) and list(item.get("breadcrumb") or []) == []:
            return item.setdefault("metadata", {})
    item = {"breadcrumb": [], "metadata": {}}
    metadata.append(item)
    return item["metadata"]


def stream_names(catalog: dict[str, Any]) -> list[str]:
    return [str(e.get("tap_stream_id") or e.get("stream")) for e in catalog.get("streams") or []]


def select(catalog: Any, wanted: list[Wanted], connector: str) -> tuple[dict[str, Any], set[str]]:
    """A copy of ``catalog`` with exactly the wanted streams selected, and every name of those streams
    (``tap_stream_id`` and ``stream``: the names the tap's RECORDs of them may carry).

    Raises:
        FatalError: the catalog is not a Singer catalog.
        ConfigError: a wanted stream is not in it (the message lists the tap's streams).
    """
    if not isinstance(catalog, dict) or not isinstance(catalog.get("streams"), list):
        raise FatalError("the tap's catalog has no `streams` list", connector=connector)
    out = copy.deepcopy(catalog)
    by_name = {w.stream: w for w in wanted}
    found: set[str] = set()
    selected_names: set[str] = set()
    for entry in out["streams"]:
        if not isinstance(entry, dict):
            continue
        names = [n for n in (entry.get("tap_stream_id"), entry.get("stream")) if n]
        want = next((by_name[n] for n in names if n in by_name), None)
        root = _root(entry)
        root["selected"] = want is not None
        if want is None:
            continue
        found.add(want.stream)
        selected_names.update(str(n) for n in names)
        method = want.replication_method or ("INCREMENTAL" if want.replication_key else None)
        if want.replication_key:
            root["replication-key"] = entry["replication_key"] = want.replication_key
        if method:
            root["replication-method"] = entry["replication_method"] = method
        for item in entry["metadata"]:
            crumb = list(item.get("breadcrumb") or [])
            md = item.get("metadata") or {}
            if crumb[:1] == ["properties"] and md.get("inclusion") != "unsupported":
                md["selected"] = True
                item["metadata"] = md
    missing = [w.stream for w in wanted if w.stream not in found]
    if missing:
        raise ConfigError(f"the tap offers no stream {', '.join(repr(m) for m in missing)}; it offers: "
                          f"{', '.join(stream_names(out)) or 'none'} (set `streams:` of connector {connector}, "
                          f"or the mapping's `source`)", connector=connector)
    return out, selected_names
