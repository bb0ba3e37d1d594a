"""Source change timestamps and cursor arithmetic shared by the file and sql connectors.

Cursors hold aware-UTC ISO strings. Source timestamps without an offset are
in the stream's timezone. A cursor never moves past the run's start time,
floored to whole seconds because many systems store timestamps without
fractions: a row stamped 10:00:00 after a run started at 10:00:00.4 must
still be at or after the next run's lower bound.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.errors import ConfigError


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The zone named ``name``.

    Raises:
        ConfigError: the name is not a known IANA zone.
    """
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone '{name}'; expected an IANA name such as Asia/Shanghai") from None


def parse_timestamp(value: object, tz: str = "UTC") -> datetime | None:
    """A source timestamp as an aware UTC datetime, or None when it cannot be read.

    Accepts datetime/date objects and ISO 8601 text (``2024-05-01T08:00:00Z``,
    ``2024-05-01 08:00:00``, ``2024/05/01 08:00``, ``2024-05-01``). Naive values
    are in ``tz``.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if len(text) >= 10 and text[4] == "/" and text[7] == "/":
            text = text[:10].replace("/", "-") + text[10:]  # 2024/05/01: common in Chinese ERP exports
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    if dt.tzinfo is None:
        if tz == "UTC":
            return dt.replace(tzinfo=timezone.utc)
        dt = dt.replace(tzinfo=zone(tz))
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:   # year 1 or 9999 with an offset: not a usable change time
        return None


def to_iso(dt: datetime) -> str:
    """The cursor text of an aware datetime: ISO 8601 in UTC."""
    return dt.astimezone(timezone.utc).isoformat()


def parse_cursor_ts(text: object, what: str = "cursor") -> datetime | None:
    """Read a stored cursor timestamp back (None stays None).

    Raises:
        ConfigError: the stored value is not an ISO timestamp (a cursor from another connector type).
    """
    if text is None or text == "":
        return None
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=timezone.utc)
    try:
        dt = datetime.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not an ISO timestamp; `triad sync run --full` reads the stream "
                          f"again and stores a new cursor") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def cap(dt: datetime | None, run_started_at: datetime | None) -> datetime | None:
    """``dt`` but never past the run's start (floored to the second)."""
    if dt is None or run_started_at is None:
        return dt
    start = run_started_at if run_started_at.tzinfo else run_started_at.replace(tzinfo=timezone.utc)
    start = start.replace(microsecond=0)
    return min(dt, start)
