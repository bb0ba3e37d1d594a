"""Durations as people type them (``30s``, ``5m``, ``1.5h``, ``7d``, ``2w``), and times given as an age back from now.

Token lifetimes, conflict ages, ``--since`` and schedule intervals all go through :func:`parse`, so they
take the same forms and explain a mistake the same way: what was given, what is expected, an example.
Each caller keeps its own bound and adds what else it accepts (``never``, an ISO-8601 time).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from hub.errors import UsageError
from hub.types import utcnow

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
EXAMPLES = "30m, 12h, 7d, 2w"
MAX = timedelta(days=36500)   # far beyond any use, well inside what datetime arithmetic can take
OR_ISO_TIME = ", or an ISO-8601 time like 2024-05-01 or 2024-05-01T08:00:00Z"
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")


class DurationError(UsageError, ValueError):
    """A duration that is malformed, not more than 0, or beyond its bound.

    A usage error (exit 2) on the command line, and a ValueError so config validators report it as theirs.
    """


def parse(text: str, *, name: str, maximum: timedelta = MAX, beyond: str = "too long",
          otherwise: str = "") -> timedelta:
    """A positive duration: a number (decimals allowed) and a unit s, m, h, d or w; case and spaces ignored.

    Args:
        text: what was given.
        name: the option or setting it came from, named in errors (``--expires``, ``every``).
        maximum: the longest duration the caller takes.
        beyond: how the caller says that ``text`` is over ``maximum`` ("too far back").
        otherwise: what else the caller takes, added to every error (", or 'never'").

    Raises:
        DurationError: naming ``name`` and ``text``, with the forms expected and an example.
    """
    m = _DURATION.fullmatch(text.lower())   # lower() first: a case-blind match would take 'ſ' for 's'
    if not m:
        raise DurationError(f"{name} {text!r}: expected a positive duration like {EXAMPLES} "
                            f"(a number and a unit: s, m, h, d or w){otherwise}")
    seconds = float(m.group(1)) * UNITS[m.group(2)]
    if seconds > maximum.total_seconds():   # checked before timedelta(), which would overflow
        raise DurationError(f"{name} {text!r}: {beyond}; at most {maximum.days} days{otherwise}")
    duration = timedelta(seconds=seconds)
    if duration <= timedelta(0):   # zero is a typo, not a wish: it would filter nothing or expire at once
        raise DurationError(f"{name} {text!r}: the duration must be more than 0, e.g. {EXAMPLES}{otherwise}")
    return duration


def since(text: str | None, *, name: str = "--since", maximum: timedelta = MAX) -> datetime | None:
    """The start of a time window: an ISO-8601 time (naive means UTC) or a positive age back from now."""
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        return utcnow() - parse(text, name=name, maximum=maximum, beyond="too far back", otherwise=OR_ISO_TIME)
    return at if at.tzinfo else at.replace(tzinfo=utcnow().tzinfo)
