"""OData v2 JSON value coding as SAP Gateway writes it, shared by the connector and the simulator.

Edm.DateTime travels as ``/Date(<ms>)/``, Edm.DateTimeOffset as
``/Date(<ms>+0000)/``, Edm.Time as ``PT14H30M00S``, Edm.Decimal as a string
(PROTOCOLS.md section 2.2). :func:`encode` turns the values a caller has
(Python dates, ISO strings, numbers, or the wire forms themselves) into that form.
"""
from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import quote

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS_DATE = re.compile(r"^/Date\((-?\d+)(?:([+-])(\d{2})(\d{2}))?\)/$")
DURATION = re.compile(r"^P(?:(\d+)D)?T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?$")


def ms_of(value: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@lru_cache(maxsize=65536)          # the simulator compares the same stamps on every page
def date_ms(text: str) -> int | None:
    """The instant of a ``/Date(ms[+hhmm])/`` value in UTC milliseconds; None when it is not one."""
    match = MS_DATE.match(text)
    if not match:
        return None
    # the ticks are UTC already; the offset only tells the original zone
    return int(match.group(1))


@lru_cache(maxsize=4096)
def time_seconds(text: str) -> int:
    """Seconds after midnight of an Edm.Time value (``PT14H30M00S``; also ``14:30:00``).

    Raises:
        ValueError: neither form.
    """
    match = DURATION.match(text)
    if match:
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds
    try:
        t = time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an Edm.Time value: {text!r} (expected PT14H30M00S)") from None
    return t.hour * 3600 + t.minute * 60 + t.second


def format_time(seconds: int) -> str:
    return f"PT{seconds // 3600:02d}H{seconds % 3600 // 60:02d}M{seconds % 60:02d}S"


def format_decimal(value: Decimal) -> str:
    """Plain notation without an exponent or trailing zeros (``52.65``, ``3``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def to_instant(value: Any) -> datetime:
    """An aware UTC datetime from a wire date, an ISO string, a date or a datetime.

    Raises:
        ValueError: not a date/time.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        ms = date_ms(value)
        if ms is not None:
            return from_ms(ms)
        try:
            return to_instant(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"not a date/time: {value!r}")


def encode(edm_type: str, value: Any, *, date_only: bool = False) -> Any:
    """The wire form of ``value`` for a property of ``edm_type``.

    Args:
        edm_type: e.g. ``Edm.DateTime``.
        value: a Python value or a string in ISO or wire form; None stays None.
        date_only: the property has ``sap:display-format="Date"`` (the time part is dropped).

    Raises:
        ValueError: the value does not fit the type.
    """
    if value is None:
        return None
    if edm_type == "Edm.DateTime":
        instant = to_instant(value)
        if date_only:
            instant = instant.replace(hour=0, minute=0, second=0, microsecond=0)
        return f"/Date({ms_of(instant)})/"
    if edm_type == "Edm.DateTimeOffset":
        return f"/Date({ms_of(to_instant(value))}+0000)/"
    if edm_type == "Edm.Time":
        if isinstance(value, time):
            return format_time(value.hour * 3600 + value.minute * 60 + value.second)
        return format_time(time_seconds(str(value)))
    if edm_type in ("Edm.Decimal", "Edm.Double", "Edm.Single", "Edm.Int64"):
        if isinstance(value, bool):
            raise ValueError(f"not a number: {value!r}")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return format_decimal(number)
    if edm_type == "Edm.Guid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise ValueError(f"not a GUID: {value!r}") from None
    return value


def comparable(edm_type: str, value: Any) -> Any:
    """A value that sorts and compares like the typed value (for $filter and $orderby)."""
    if value is None:
        return None
    if edm_type in ("Edm.DateTime", "Edm.DateTimeOffset"):
        return date_ms(value) if isinstance(value, str) else ms_of(to_instant(value))
    if edm_type == "Edm.Time":
        return time_seconds(value)
    if edm_type in ("Edm.Decimal", "Edm.Double", "Edm.Single", "Edm.Int64", "Edm.Int32", "Edm.Int16"):
        return Decimal(str(value))
    return value


def etag_for(kind: str, instant: datetime) -> str:
    """A weak ETag in SAP's form: ``W/"datetimeoffset'2016-09-02T06%3A15%3A47.1257050Z'"``."""
    if kind == "offset":
        text = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
        return f"W/\"datetimeoffset'{quote(text, safe='')}'\""
    text = instant.strftime("%Y-%m-%dT%H:%M:%S")
    return f"W/\"datetime'{quote(text, safe='')}'\""


def string_literal(value: str) -> str:
    """An Edm.String literal for a URI: ``'O''Brien'``."""
    return "'" + str(value).replace("'", "''") + "'"


def key_predicate(values: list[tuple[str, str]]) -> str:
    """``('17100001')`` for one key, ``(SalesOrder='1',SalesOrderItem='10')`` for several."""
    if len(values) == 1:
        return f"({string_literal(values[0][1])})"
    return "(" + ",".join(f"{name}={string_literal(v)}" for name, v in values) + ")"
