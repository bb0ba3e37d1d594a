"""Values between a database driver and the mapping: plain text in, typed parameters out."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Column
from sqlalchemy import types as sqltypes

from connectors.file.timestamps import zone

_TRUE = {"true", "1", "yes", "y", "t", "on"}
_FALSE = {"false", "0", "no", "n", "f", "off"}


def as_text(value: Any) -> Any:
    """A driver value as the mapping receives it: text for scalars, structure kept for JSON columns.

    Numbers never pass through float on the way (``Decimal`` -> its digits).
    """
    if value is None or isinstance(value, (str, dict, list)):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.hex()
    return str(value)


def is_temporal(col: Column) -> bool:
    return isinstance(col.type, (sqltypes.Date, sqltypes.DateTime, sqltypes.Time))


def is_text(col: Column) -> bool:
    return isinstance(col.type, sqltypes.String) and not isinstance(col.type, sqltypes.Enum)


def naive_local(dt: datetime, tz: str) -> datetime:
    """An aware datetime as the wall-clock time a naive column holds."""
    return dt.astimezone(zone(tz)).replace(tzinfo=None)


def coerce(col: Column, value: Any, tz: str, exact_digits: int | None = None) -> Any:
    """``value`` as a parameter the column's type accepts.

    ``exact_digits``: the significant digits a decimal column keeps exactly (SQLite keeps a decimal
    as a float: 15); None where decimals are exact.

    Raises:
        ValueError: the value does not fit the column (message names the column and type).
    """
    if value is None:
        return None
    t = col.type
    try:
        if isinstance(t, sqltypes.DateTime):
            dt = _datetime(value)
            if dt.tzinfo is not None and not getattr(t, "timezone", False):
                dt = naive_local(dt, tz)
            elif dt.tzinfo is None and getattr(t, "timezone", False):
                dt = dt.replace(tzinfo=zone(tz)).astimezone(timezone.utc)
            return dt
        if isinstance(t, sqltypes.Date):
            if isinstance(value, datetime):
                return value.date()
            return value if isinstance(value, date) else date.fromisoformat(str(value).strip()[:10])
        if isinstance(t, sqltypes.Time):
            return value if isinstance(value, time) else time.fromisoformat(str(value).strip())
        if isinstance(t, sqltypes.Boolean):
            return _bool(value)
        if isinstance(t, sqltypes.Integer):
            number = Decimal(str(value).strip())
            if number != number.to_integral_value():
                raise ValueError("not a whole number")
            return int(number)
        if isinstance(t, sqltypes.Float):
            return float(value)
        if isinstance(t, sqltypes.Numeric):
            number = Decimal(str(value).strip())
            _fits_decimal(number, t, exact_digits)
            return number
        if isinstance(t, sqltypes.JSON):
            return value
        if is_text(col):
            if isinstance(value, (list, dict)):  # e.g. order lines kept as JSON text
                text = json.dumps(value, ensure_ascii=False, default=as_text)
            else:
                text = value if isinstance(value, str) else as_text(value)
            length = getattr(t, "length", None)
            if length and len(text) > length:
                raise ValueError(f"{len(text)} characters, the column holds {length}")
            return text
    except (ValueError, TypeError, InvalidOperation, ArithmeticError) as exc:
        detail = f": {exc}" if str(exc) and not isinstance(exc, InvalidOperation) else ""
        raise ValueError(f"column {col.name}: cannot store {value!r} as {t}{detail}") from None
    return value


def _fits_decimal(number: Decimal, t: sqltypes.Numeric, exact_digits: int | None) -> None:
    """A decimal the column would round (MariaDB rounds extra places even in strict mode) is refused:
    the write would report success, and reading it back would change the golden value."""
    if not number.is_finite():
        raise ValueError("not a finite number")
    _, digits, exp = number.normalize().as_tuple()
    places, whole = max(0, -exp), max(0, len(digits) + exp)
    scale, precision = getattr(t, "scale", None), getattr(t, "precision", None)
    if scale is not None and places > scale:
        raise ValueError(f"{places} decimal places, the column holds {scale}")
    if precision is not None and whole > precision - (scale or 0):
        raise ValueError(f"{whole} digits before the decimal point, the column holds {precision - (scale or 0)}")
    if exact_digits is not None and len(digits) > exact_digits and number != number.to_integral_value():
        raise ValueError(f"{len(digits)} significant digits; SQLite keeps {exact_digits} of a decimal exactly")


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean")
