"""Values a golden column cannot hold, found when a row is mapped.

PostgreSQL refuses a name longer than its column (and with it the whole batch); SQLite keeps it, and the
two stores would then disagree. Checking the mapped row first parks that row alone, with the field and
the limit, and the rest of the batch goes on. Decimals are bounded where they are typed
(``hub.mapping_types``); SQLite keeps them as 8-byte floats, so there a decimal of more significant digits
than a float carries exactly is parked too, never stored changed."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Container

from sqlalchemy import Integer, Numeric

from hub.errors import MappingError

SOURCE_ID_LENGTH = 255     # xref.source_id, source_state.source_id
SQLITE_EXACT_DIGITS = 15   # significant digits an 8-byte float (SQLite's store of a decimal) gives back unchanged
DECIMAL = "decimal"


@lru_cache(maxsize=None)
def _limits(entity: str) -> dict[str, tuple[int, int] | int | str]:
    """Per golden column: its length (text), its (low, high) range (integer) or DECIMAL."""
    from hub.golden import table_of
    from hub.steward_values import _int_range
    limits: dict[str, tuple[int, int] | int] = {}
    for col in table_of(entity).c:
        length = getattr(col.type, "length", None)
        if length is not None:
            limits[col.name] = length
        elif isinstance(col.type, Integer):
            limits[col.name] = _int_range(col.type)
        elif isinstance(col.type, Numeric):
            limits[col.name] = DECIMAL
    return limits


def check_fits(entity: str, source_id: str, key_field: str | None, values: dict[str, Any],
               refs: Container[str] = (), exact_digits: int | None = None) -> None:
    """Raise a MappingError naming the first value of a mapped row its store column cannot hold.

    ``refs``: reference fields, which hold the other system's id until they are resolved to a golden id.
    ``exact_digits``: the significant digits a decimal column keeps exactly (SQLITE_EXACT_DIGITS on SQLite;
    None where decimals are exact)."""
    if len(source_id) > SOURCE_ID_LENGTH:
        raise MappingError(f"the key is {len(source_id)} characters long; at most {SOURCE_ID_LENGTH} fit",
                           field=key_field)
    limits = _limits(entity)
    for name, value in values.items():     # the mapped fields only: fewer than the columns
        limit = limits.get(name)
        if limit is None or value is None or name in refs:
            continue
        if limit is DECIMAL:
            # encoded decimals are plain text ("-1234.5"): only a long one can have too many digits
            if exact_digits is not None and isinstance(value, str) and len(value) > exact_digits \
                    and _significant_digits(value) > exact_digits:
                raise MappingError(f"{name}: {value} {inexact(_significant_digits(value), exact_digits)}",
                                   field=name)
        elif isinstance(limit, int):
            if isinstance(value, str) and len(value) > limit:
                raise MappingError(f"{name}: is {len(value)} characters long; at most {limit} fit", field=name)
        elif isinstance(value, int) and not isinstance(value, bool) and not limit[0] <= value <= limit[1]:
            raise MappingError(f"{name}: {value} is out of range (a whole number from {limit[0]} to {limit[1]})",
                               field=name)


def inexact(digits: int, exact_digits: int) -> str:
    """Why a decimal of ``digits`` significant digits is refused by a store that keeps ``exact_digits``."""
    return (f"has {digits} significant digits; this SQLite store keeps {exact_digits} exactly "
            "(PostgreSQL keeps them all)")


def _significant_digits(text: str) -> int:
    """Significant digits of a decimal written out: "-0012.3400" -> 4, "1000" -> 1 (a float holds 1000 exactly)."""
    return len(text.lstrip("+-").replace(".", "").strip("0"))
