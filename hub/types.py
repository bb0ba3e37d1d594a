"""Column types shared by the store: aware UTC timestamps, JSON that works on every dialect."""
from __future__ import annotations

import random
import time
from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# SQL NULL for None (not a JSON "null" string): cheaper, and `IS NULL` works
JsonType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(TypeDecorator):
    """Stores UTC, always returns aware datetimes (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps in the store are UTC-aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]     # 10 bits -> 2 characters
_time_part: tuple[int, str] = (-1, "")


def new_id() -> str:
    """A ULID (48-bit millisecond time + 80 random bits, Crockford base32): sortable by creation
    time, minted by any node without coordination. Built inline: ids are minted per record in bulk.

    The bits come from ``random`` (seeded from the system's entropy, and again in a forked child), not
    from a system call per id: that call let go of the GIL, and a load's checkpoint thread took it
    each time (6% of an initial load). An id needs to be unique, not secret (tokens use ``secrets``)."""
    global _time_part
    ms = time.time_ns() // 1_000_000
    if _time_part[0] != ms:       # the 10 time characters change once per millisecond
        value, chars = ms, []
        for _ in range(10):
            chars.append(_CROCKFORD[value & 31])
            value >>= 5
        _time_part = (ms, "".join(reversed(chars)))
    r = random.getrandbits(80)
    p = _PAIRS
    return (_time_part[1] + p[r >> 70] + p[(r >> 60) & 1023] + p[(r >> 50) & 1023] + p[(r >> 40) & 1023]
            + p[(r >> 30) & 1023] + p[(r >> 20) & 1023] + p[(r >> 10) & 1023] + p[r & 1023])
