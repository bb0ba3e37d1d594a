"""Change stamps of SAP entity sets and the ``$filter`` expressions that read by them.

A stamp is either one Edm.DateTimeOffset property (A_SalesOrder.LastChangeDateTime,
shown to the millisecond) or an Edm.DateTime date plus an Edm.Time time
(A_BusinessPartner.LastChangeDate + LastChangeTime, to the second). A rule may
name fallbacks: a business partner never changed since creation has no
LastChangeDate, so CreationDate + CreationTime stand in.

Reads walk each entity set in passes ("phases") ordered by (stamp, key) and
page by key set (``(stamp, key) > last``) rather than by offset, so records
that change while a read runs cannot shift a page boundary and be skipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from connectors.sap import wire

UTC = timezone.utc


@dataclass(frozen=True)
class StampRule:
    """How an entity set stamps changes.

    Attributes:
        kind: ``instant`` (one DateTimeOffset property) or ``date_time`` (date and time properties).
        candidates: property tuples, first non-null wins: ``(("LastChangeDate", "LastChangeTime"),
            ("CreationDate", "CreationTime"))`` or ``(("LastChangeDateTime",),)``.
    """

    kind: str
    candidates: tuple[tuple[str, ...], ...]

    @property
    def resolution(self) -> timedelta:
        # the wire shows DateTimeOffset to the millisecond, Edm.Time to the second
        return timedelta(milliseconds=1) if self.kind == "instant" else timedelta(seconds=1)

    @property
    def props(self) -> list[str]:
        return [p for c in self.candidates for p in c]

    def stamp_of(self, rec: dict) -> datetime | None:
        """The record's stamp: aware UTC for ``instant``, naive (source time) for ``date_time``."""
        for cand in self.candidates:
            ms = wire.date_ms(rec.get(cand[0]) or "")
            if ms is None:
                continue
            if self.kind == "instant":
                return wire.from_ms(ms)
            seconds = wire.time_seconds(rec.get(cand[1]) or "PT00H00M00S") if len(cand) > 1 else 0
            return (wire.from_ms(ms) + timedelta(seconds=seconds)).replace(tzinfo=None)
        return None

    def parse_cursor(self, text: str) -> datetime:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if self.kind == "instant":
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None)

    def format_cursor(self, at: datetime) -> str:
        if self.kind == "instant":
            return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return at.isoformat(timespec="seconds")

    def phases(self) -> list["Phase"]:
        """Passes in cursor-safe order: records with no stamp at all (full reads only), then each
        fallback candidate, then the primary candidate (which alone moves the cursor mid-read)."""
        nulls = [f"{c[0]} eq null" for c in self.candidates]
        out = [Phase(self, None, " and ".join(nulls), full_only=True)]
        for i in range(len(self.candidates) - 1, -1, -1):
            where = [f"{c[0]} eq null" for c in self.candidates[:i]] + [f"{self.candidates[i][0]} ne null"]
            out.append(Phase(self, self.candidates[i], " and ".join(where)))
        return out


def _lit_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _lit_datetime(at: datetime) -> str:
    return f"datetime'{at.replace(tzinfo=None).isoformat(timespec='seconds')}'"


def _lit_offset(at: datetime) -> str:
    return f"datetimeoffset'{at.astimezone(UTC).isoformat(timespec='milliseconds').replace('+00:00', 'Z')}'"


def _lit_time(at: datetime) -> str:
    return f"time'{wire.format_time(at.hour * 3600 + at.minute * 60 + at.second)}'"


def key_after(keys: list[str], rec: dict) -> str:
    """``(k1 gt 'a') or (k1 eq 'a' and k2 gt 'b')``: records after ``rec`` in key order."""
    parts = []
    for i, key in enumerate(keys):
        eqs = [f"{k} eq {_lit_string(rec.get(k, ''))}" for k in keys[:i]]
        parts.append("(" + " and ".join([*eqs, f"{key} gt {_lit_string(rec.get(key, ''))}"]) + ")")
    return " or ".join(parts)


@dataclass(frozen=True)
class Phase:
    """One ordered pass: a fixed filter and the stamp properties it orders and pages by."""

    rule: StampRule | None
    stamp: tuple[str, ...] | None
    where: str | None
    full_only: bool = False

    def order(self, keys: list[str]) -> str:
        return ",".join(f"{p} asc" for p in (*(self.stamp or ()), *keys))

    def at_least(self, at: datetime) -> str | None:
        """Records stamped at or after ``at`` (``at`` truncated to the stamp's resolution)."""
        if not self.stamp or self.rule is None:
            return None
        if self.rule.kind == "instant":
            return f"{self.stamp[0]} ge {_lit_offset(at)}"
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        if len(self.stamp) == 1:
            return f"{self.stamp[0]} ge {_lit_datetime(day)}"
        date, time = self.stamp
        return (f"({date} gt {_lit_datetime(day)} or ({date} eq {_lit_datetime(day)} and "
                f"{time} ge {_lit_time(at)}))")

    def after(self, rec: dict, keys: list[str]) -> str:
        """Records after ``rec`` in (stamp, key) order, exact despite the wire's truncation."""
        tie = key_after(keys, rec)
        if not self.stamp or self.rule is None:
            return tie
        stamp = self.rule.stamp_of({p: rec.get(p) for p in self.stamp} if len(self.stamp) > 1
                                   else {self.stamp[0]: rec.get(self.stamp[0])})
        if stamp is None:
            return tie
        if self.rule.kind == "instant":
            prop, nxt = self.stamp[0], stamp + self.rule.resolution
            # the wire shows milliseconds; the server may keep more digits, so "equal" is a 1 ms range
            return (f"{prop} ge {_lit_offset(nxt)} or ({prop} ge {_lit_offset(stamp)} and "
                    f"{prop} lt {_lit_offset(nxt)} and ({tie}))")
        day = stamp.replace(hour=0, minute=0, second=0)
        if len(self.stamp) == 1:
            date = self.stamp[0]
            return f"{date} gt {_lit_datetime(day)} or ({date} eq {_lit_datetime(day)} and ({tie}))"
        date, time = self.stamp
        return (f"{date} gt {_lit_datetime(day)} or ({date} eq {_lit_datetime(day)} and {time} gt "
                f"{_lit_time(stamp)}) or ({date} eq {_lit_datetime(day)} and {time} eq {_lit_time(stamp)} "
                f"and ({tie}))")

    def stamp_of(self, rec: dict) -> datetime | None:
        if not self.stamp or self.rule is None:
            return None
        return StampRule(self.rule.kind, (self.stamp,)).stamp_of(rec)


# Built-in rules for the A2X services; a mapping may name another DateTimeOffset field as updated_at.
STAMP_RULES: dict[str, StampRule] = {
    "A_BusinessPartner": StampRule("date_time", (("LastChangeDate", "LastChangeTime"),
                                                 ("CreationDate", "CreationTime"))),
    "A_SalesOrder": StampRule("instant", (("LastChangeDateTime",),)),
}
