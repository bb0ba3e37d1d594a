"""Incremental-read helpers for APIs without a server cursor (Kingdee, Yonyou).

Both systems filter on a local modify timestamp without offset. A run reads
from ``cursor - overlap`` (closed lower bound), drops rows it has already
seen in the run, and reports as cursor the newest timestamp seen, as aware
UTC ISO, never past the run's start (STYLE.md 5): a record changed while the
run pages through the data is then read again by the next run.

Also here: dotted source paths (``FCustId.FNumber``) to nested dicts and back.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

LOCAL_FILTER_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_local(value: Any, tz: ZoneInfo) -> datetime | None:
    """A source timestamp (local, usually without offset) as an aware datetime; None if unparseable."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("/", "-"))
        except ValueError:
            return None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


def cursor_datetime(cursor: Any) -> datetime | None:
    """The aware datetime of a stored cursor (UTC ISO string or datetime)."""
    if cursor in (None, ""):
        return None
    dt = cursor if isinstance(cursor, datetime) else datetime.fromisoformat(str(cursor))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


def lower_bound(cursor: Any, overlap_seconds: float, tz: ZoneInfo) -> str | None:
    """The local filter value for a run: cursor minus the overlap window, floored to the second."""
    dt = cursor_datetime(cursor)
    if dt is None:
        return None
    return (dt - timedelta(seconds=overlap_seconds)).astimezone(tz).strftime(LOCAL_FILTER_FORMAT)


class CursorTracker:
    """The newest source timestamp seen, never behind the start cursor nor past ``run_started_at``."""

    def __init__(self, start: Any, tz: ZoneInfo, run_started_at: datetime | None) -> None:
        self.tz = tz
        self.start = cursor_datetime(start)
        self.best = self.start
        self.ceiling = cursor_datetime(run_started_at) if run_started_at else None

    def see(self, value: Any) -> None:
        dt = parse_local(value, self.tz)
        if dt is not None and (self.best is None or dt > self.best):
            self.best = dt

    def value(self) -> str | None:
        best = self.best
        if best is not None and self.ceiling is not None and best > self.ceiling:
            best = max(self.ceiling, self.start) if self.start else self.ceiling
        return best.astimezone(timezone.utc).isoformat() if best is not None else None

    def start_value(self) -> str | None:
        return self.start.astimezone(timezone.utc).isoformat() if self.start else None


class RunDedup:
    """Key dedup within a run: a row is new unless this key was already seen at this timestamp or later."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.seen: dict[str, datetime | None] = {}

    def fresh(self, key: Any, stamp: Any) -> bool:
        k = str(key)
        dt = parse_local(stamp, self.tz)
        if k in self.seen:
            old = self.seen[k]
            if dt is None or (old is not None and dt <= old):
                return False
        self.seen[k] = dt
        return True


def set_path(record: dict[str, Any], dotted: str, value: Any) -> None:
    """Store ``value`` under a dotted path as nested dicts; a path that would cross a scalar stays flat."""
    parts = dotted.split(".")
    node = record
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            record[dotted] = value
            return
        node = nxt
    node[parts[-1]] = value


def get_path(record: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path (a flat key of that name wins)."""
    if dotted in record:
        return record[dotted]
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def nest_dotted(values: dict[str, Any]) -> dict[str, Any]:
    """Outbound values with dotted keys (``FTRADINGCURRID.FNumber``) as nested objects, recursively."""
    out: dict[str, Any] = {}
    for key in sorted(values, key=lambda k: k.count(".")):
        value = values[key]
        if isinstance(value, dict):
            value = nest_dotted(value)
        elif isinstance(value, list):
            value = [nest_dotted(v) if isinstance(v, dict) else v for v in value]
        if "." in key:
            set_path(out, key, value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


_AWARE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


def localize_times(value: Any, tz: ZoneInfo, fmt: str) -> Any:
    """Outbound values with aware ISO timestamps rewritten as local time in ``fmt`` (no offset), recursively.

    Both ERPs store local wall-clock time without an offset; the mapping writes aware ISO strings.
    """
    if isinstance(value, str) and _AWARE_ISO.match(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz).strftime(fmt)
    if isinstance(value, dict):
        return {k: localize_times(v, tz, fmt) for k, v in value.items()}
    if isinstance(value, list):
        return [localize_times(v, tz, fmt) for v in value]
    return value
