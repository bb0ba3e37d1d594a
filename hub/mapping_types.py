"""Parsing source values into canonical types, and formatting them back for a system.

Parsers take a non-empty source value (usually a string, as systems and CSV
files send it) and return the Python value for the canonical type, raising
ValueError with a short reason. Formatters do the reverse for outbound writes.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable
from zoneinfo import ZoneInfo

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# SAP OData v2: /Date(1700000000000)/ (Edm.DateTime) and /Date(1700000000000+0000)/ (DateTimeOffset)
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_CN_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*(.*)$")
_TRUE = frozenset({"true", "1", "yes", "y", "x", "t", "on", "是"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "off", "否"})
# commas are read only as thousands separators: 1,234.50 (or 1，234.50); 12,50 is refused, not read as 1250
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_THOUSANDS_FULL_WIDTH = re.compile(r"[+-]?\d{1,3}(?:，\d{3})+(?:\.\d+)?")


def to_string(value: Any) -> str:
    """Any scalar as the string a system would have shown (integral floats without '.0')."""
    cls = value.__class__
    if cls is str:
        return value
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if cls is Decimal:
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        raise ValueError(f"expected a single value, got a {cls.__name__}")
    return str(value)


def to_decimal(value: Any) -> Decimal:
    """'1,234.50', '1234.5', 12, 12.5 -> Decimal; NaN, infinity and decimal commas ('12,50') are refused."""
    cls = value.__class__
    try:
        if cls is str:
            result = _decimal_from_text(value)
        elif cls is int:
            return Decimal(value)
        elif cls is float:
            result = Decimal(repr(value))
        elif cls is Decimal:
            result = value
        else:
            raise ValueError
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    except ValueError as exc:
        raise ValueError(str(exc) or f"not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite decimal number: {value!r}")
    return result


def _decimal_from_text(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        pass
    stripped = text.strip()
    if _THOUSANDS.fullmatch(stripped) or _THOUSANDS_FULL_WIDTH.fullmatch(stripped):
        return Decimal(stripped.replace(",", "").replace("，", ""))
    if "," in stripped or "，" in stripped:
        raise ValueError(f"{text!r} is not a number: a comma is read only between groups of thousands "
                         f"(1,234.50), never as a decimal point")
    raise ValueError(f"not a decimal number: {text!r}")


def decimal_for_column(precision: int, scale: int) -> Callable[[Decimal], Decimal]:
    """A function that rounds a decimal half-up to ``scale`` places (when it has more) and refuses one
    that does not fit Numeric(precision, scale), so every store keeps the same number: SQLite would keep
    2.675 as written where PostgreSQL rounds it, and store an overflow PostgreSQL refuses (failing the
    whole batch).
    """
    step = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (precision - scale)
    largest = format(limit - step, "f")

    def fit(number: Decimal) -> Decimal:
        rounded = number
        if abs(number) < limit and number.as_tuple().exponent < -scale:     # 1234.5 stays as written
            rounded = number.quantize(step, rounding=ROUND_HALF_UP)
            rounded = rounded if rounded else abs(rounded)                  # -0.001 -> 0.00, not -0.00
        if abs(rounded) >= limit:
            raise ValueError(f"{_shown(number)} is too large: the store keeps at most "
                             f"{precision - scale} digits before the decimal point (largest {largest})")
        return rounded
    return fit


def _shown(number: Decimal) -> str:
    """A decimal for a message, cut short: 1E+400000 is not written out in full."""
    text = format(number, "f") if number.adjusted() < 40 else str(number)
    return text if len(text) <= 40 else f"{text[:24]}... ({number.adjusted() + 1} digits before the point)"


def to_int(value: Any) -> int:
    """'00123', '1,234', 12.0, '12.0' -> int; fractions are refused."""
    cls = value.__class__
    if cls is int:
        return value
    if cls is str:
        try:
            return int(value)
        except ValueError:
            pass
    if cls is bool:
        raise ValueError(f"not an integer: {value!r}")
    try:
        number = to_decimal(value)
    except ValueError as exc:
        if cls is str and ("," in value or "，" in value):
            raise                                # says why the comma was refused
        raise ValueError(f"not an integer: {value!r}") from exc
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def to_bool(value: Any) -> bool:
    """true/false, 1/0, yes/no, Y/N, SAP's X (and 是/否) -> bool."""
    if value is True or value is False:
        return value
    if value.__class__ is int and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (expected true/false, 1/0, yes/no, Y/N or X)")


def _from_epoch_ms(ms: int | float) -> datetime:
    # Seconds below 1e11 (up to year 5138); milliseconds above (from 1973 on).
    if abs(ms) < 1e11:
        ms = ms * 1000
    return _EPOCH + timedelta(milliseconds=ms)


def _parse_text_datetime(text: str) -> datetime | date:
    """Parse the textual forms; returns an aware or naive datetime, or a date."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    text = text.strip()
    match = _MS_DATE.match(text)
    if match:
        return _from_epoch_ms(int(match.group(1)))
    if text.isdigit() and len(text) >= 9:
        return _from_epoch_ms(int(text))
    match = _CN_DATE.match(text)
    if match:
        y, m, d, rest = match.groups()
        text = f"{y}-{int(m):02d}-{int(d):02d}" + (f" {rest}" if rest else "")
    try:
        return datetime.fromisoformat(text.replace("/", "-"))
    except ValueError:
        raise ValueError(f"not a date/time: {text!r}") from None


def datetime_parser(tz: tzinfo) -> Callable[[Any], datetime]:
    """A parser returning UTC-aware datetimes; naive source values are read in ``tz``."""
    is_utc = tz is UTC

    def to_datetime(value: Any) -> datetime:
        cls = value.__class__
        if cls is str:
            try:
                result = datetime.fromisoformat(value)
            except ValueError:
                result = _parse_text_datetime(value)
        elif cls is datetime:
            result = value
        elif cls is int or cls is float:
            result = _from_epoch_ms(value)
        elif cls is date:
            result = datetime(value.year, value.month, value.day)
        else:
            raise ValueError(f"not a date/time: {value!r}")
        if result.__class__ is date:
            result = datetime(result.year, result.month, result.day)
        if result.tzinfo is None:
            if is_utc:
                return result.replace(tzinfo=UTC)
            result = result.replace(tzinfo=tz)
        return result.astimezone(UTC)
    return to_datetime


def to_date(value: Any) -> date:
    """ISO dates (also with a time part, taken as written), /Date(ms)/ (UTC), 2026/01/05, 2026年1月5日."""
    cls = value.__class__
    if cls is str:
        if len(value) == 10:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        result: Any = _parse_text_datetime(value)
    elif cls is date:
        return value
    elif cls is int or cls is float:
        result = _from_epoch_ms(value)
    elif cls is datetime:
        result = value
    else:
        raise ValueError(f"not a date: {value!r}")
    return result.date() if isinstance(result, datetime) else result


PARSERS_BY_TYPE: dict[str, Callable[[Any], Any]] = {
    "string": to_string, "int": to_int, "decimal": to_decimal, "bool": to_bool, "date": to_date,
}


def parser_for(type_name: str, tz: tzinfo) -> Callable[[Any], Any]:
    """The parser for a canonical type name."""
    if type_name == "datetime":
        return datetime_parser(tz)
    return PARSERS_BY_TYPE[type_name]


def formatter_for(type_name: str, tz: tzinfo) -> Callable[[Any], Any]:
    """How a canonical value is written to a system: decimals as plain strings, ISO dates/times."""
    if type_name == "decimal":
        return lambda v: format(v, "f")
    if type_name == "date":
        return lambda v: v.isoformat()
    if type_name == "datetime":
        return lambda v: v.astimezone(tz).isoformat()
    if type_name == "int":
        return int
    if type_name == "bool":
        return bool
    return str


def zone(name: str) -> tzinfo:
    """An IANA time zone; 'UTC' gives datetime.timezone.utc (the fast path).

    Raises:
        ValueError: unknown zone name.
    """
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone '{name}' (use an IANA name such as Asia/Shanghai)") from exc
