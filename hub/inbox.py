"""The inbox: webhook deliveries committed before the sender gets its 2xx.

Credentials in headers and query parameters are left out of the stored row, and
those in the body by the connector (``redact_webhook``) before it is stored; a body
that is not UTF-8 is kept byte for byte (base64). A replayed delivery whose vendor
event id is stored already stores nothing. :mod:`hub.inbox_processor` runs the rows
through the pipeline.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from sqlalchemy import Engine, func, insert, select

from hub.models import Inbox
from hub.sqlutil import upsert
from hub.types import new_id, utcnow

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-triad-token"})
REDACTED_QUERY = frozenset({"token", "access_token"})
QUERY_KEY, ENCODING_KEY = ":query", ":body-encoding"   # stored beside the headers (':' names no real header)


@dataclass
class Stored:
    id: str
    duplicate: bool


def call_hook(method: Callable[..., Any], headers: Mapping[str, str], body: bytes,
              query: Mapping[str, str] | None) -> Any:
    """Call a connector's webhook method, passing ``query`` only to methods that take it."""
    if _takes_query(getattr(method, "__func__", method)):
        return method(headers, body, query=query or None)
    return method(headers, body)


@functools.lru_cache(maxsize=None)
def _takes_query(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "query" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def event_key(connector: str, key: str | None) -> str | None:
    """The unique inbox key of a vendor event id, scoped by connector (bounded to the column's size)."""
    if not key:
        return None
    full = f"{connector}:{key}"
    return full if len(full) <= 255 else f"{connector}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def store(engine: Engine, connector: str, headers: Mapping[str, str], body: bytes, *,
          query: Mapping[str, str] | None = None, key: str | None = None) -> Stored:
    """Commit one delivery as a pending inbox row; a replay of a stored ``key`` stores nothing.

    Args:
        key: the value of :func:`event_key`, or None when the vendor gives no event id.
    """
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in REDACTED_HEADERS}
    q = {k: v for k, v in (query or {}).items() if k.lower() not in REDACTED_QUERY}
    if q:
        kept[QUERY_KEY] = q
    try:
        text = body.decode("utf-8")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", body, 0, 1, "NUL")
    except UnicodeDecodeError:       # kept byte for byte; the connector decides what it means
        text = base64.b64encode(body).decode("ascii")
        kept[ENCODING_KEY] = "base64"
    it = Inbox.__table__
    row = {"id": new_id(), "connector": connector, "event_key": key, "headers": kept, "body": text,
           "status": "pending", "attempts": 0, "error": None, "received_at": utcnow(), "processed_at": None}
    with engine.begin() as conn:
        if key is None:
            conn.execute(insert(it), [row])
            return Stored(row["id"], False)
        upsert(conn, it, [row], ["event_key"], [])      # a concurrent replay must not fail the request
        stored = conn.scalar(select(it.c.id).where(it.c.event_key == key))
    return Stored(stored, stored != row["id"])


def unpack(row: Mapping[str, Any]) -> tuple[dict[str, str], bytes, dict[str, str]]:
    """A stored row as (headers, body bytes, query), as the connector's parser takes them."""
    stored = dict(row["headers"] or {})
    query = stored.pop(QUERY_KEY, None) or {}
    encoding = stored.pop(ENCODING_KEY, None)
    body = base64.b64decode(row["body"]) if encoding == "base64" else row["body"].encode("utf-8")
    return {k: v for k, v in stored.items() if not k.startswith(":")}, body, query


def backlog(engine: Engine) -> dict[str, Any]:
    """Pending rows, the age in seconds of the oldest, and rows in error (for /healthz)."""
    it = Inbox.__table__
    with engine.connect() as conn:
        n, oldest = conn.execute(select(func.count(), func.min(it.c.received_at)).where(it.c.status == "pending")).one()
        errors = conn.scalar(select(func.count()).where(it.c.status == "error"))
    return {"pending": int(n), "oldest_seconds": round((utcnow() - oldest).total_seconds(), 3) if oldest else 0.0,
            "errors": int(errors or 0)}
