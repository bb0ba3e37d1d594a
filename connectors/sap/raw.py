"""Raw records as the connector gives them: links without data dropped, the first record along a
1:n path picked out, and what the connector last saw of each record (for the writes that follow)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class SeenRecords:
    """What the connector last saw of each record (its ETag and category), newest kept, oldest dropped."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._seen: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()      # a read and a push may share the connector

    def remember(self, entity_set: str, key: str, rec: dict[str, Any]) -> None:
        seen = {"etag": (rec.get("__metadata") or {}).get("etag"), "category": rec.get("BusinessPartnerCategory")}
        with self._lock:
            self._seen[(entity_set, key)] = seen
            self._seen.move_to_end((entity_set, key))
            while len(self._seen) > self.limit:
                self._seen.popitem(last=False)

    def get(self, entity_set: str, key: str) -> dict[str, Any]:
        with self._lock:
            return self._seen.get((entity_set, key)) or {}

    def forget(self, entity_set: str, key: str) -> None:
        """After our own write: its new ETag is known only from the next read."""
        with self._lock:
            self._seen.pop((entity_set, key), None)


def drop_deferred(rec: dict[str, Any]) -> None:
    """Remove ``__deferred`` placeholders (links, no data) at every level."""
    for key in [k for k, v in rec.items() if isinstance(v, dict) and "__deferred" in v]:
        del rec[key]
    for value in rec.values():
        if isinstance(value, dict):
            for child in value.get("results", []) if isinstance(value.get("results"), list) else [value]:
                if isinstance(child, dict):
                    drop_deferred(child)


def first_along(rec: dict[str, Any], path: list[str]) -> dict[str, Any] | None:
    node: Any = rec
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
        if isinstance(node, dict) and isinstance(node.get("results"), list):
            node = node["results"][0] if node["results"] else None
    return node if isinstance(node, dict) else None
