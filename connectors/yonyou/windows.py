"""Time windows for a list that cannot be ordered by its timestamp (YonBIP's customer list).

Such a list's cursor may only move to a time up to which everything has been read. Asking
for one window of ``pubts`` at a time (``pubts`` at or after its start, ``endTime`` at or
before its end; PROTOCOLS 4.3) makes each window's end such a time: the cursor is committed
per window, so a run stopped by a call quota resumes there instead of starting over.

A run first asks for everything since its cursor in one open window: a run that finds less
than a page is done in one call. When that holds more, its first page is kept and, as a sample
of what is left, sizes the bounded windows that follow from the same start (see
:meth:`Windows.narrow`). A bounded window whose first page comes back full is halved and asked
again (its page is kept, not its cursor), down to one second; one that filled less than a
quarter page doubles the next. Every call thus moves the cursor or narrows the window, and a
run stopped by the quota resumes with windows it can finish.

Bounded windows stop ``overlap`` before the run's start. The last window, from there on, is
open-ended and its cursor is the newest ``pubts`` seen (as for an ordered list): near "now"
YonBIP's clock, not ours, decides.

``endTime`` may filter on the creation time in YonBIP [unverified]: a record changed in a
window was created before its end, so the window still holds every record changed in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hub.errors import ConfigError
from hub.incremental import LOCAL_FILTER_FORMAT, cursor_datetime, parse_local

DEFAULT_START = "2000-01-01 00:00:00"    # a full read starts here: no record of a tenant is older
MIN_WIDTH = 1                            # seconds: the filters' resolution


@dataclass
class Windows:
    """The next window to read and how wide the ones after it are.

    Attributes:
        start: where the next window starts (aware).
        end: where bounded windows stop (aware); from there on the window is open-ended.
        page_size: records per page, to which widths adapt.
        width: seconds of the next window.
        stop: where the next window ends instead (the oldest change the first try saw).
    """

    start: datetime
    end: datetime
    page_size: int
    width: int = MIN_WIDTH
    stop: datetime | None = None
    first_try: bool = True

    @classmethod
    def plan(cls, cursor: object, *, overlap: float, tz: ZoneInfo, run_started_at: datetime | None,
             now: datetime, start_date: str | None, page_size: int) -> "Windows":
        """The windows of one run: from ``cursor - overlap`` (else ``start_date``) to the run's start."""
        at = cursor_datetime(cursor)
        start = at - timedelta(seconds=overlap) if at else parse_local(start_date or DEFAULT_START, tz)
        if start is None:
            raise ConfigError(f"yonyou: start_date {start_date!r} is not a yyyy-MM-dd [HH:mm:ss] time")
        end = (run_started_at or now) - timedelta(seconds=overlap)
        return cls(_whole_seconds(start.astimezone(tz)), _whole_seconds(end.astimezone(tz)), page_size)

    def current(self) -> tuple[datetime, datetime | None]:
        """(start, end) of the next window; end None for an open-ended one (the first try, the last)."""
        if self.first_try or self.start >= self.end:
            return self.start, None
        return self.start, min(self.stop or self.start + timedelta(seconds=self.width), self.end)

    def narrow(self, end: datetime | None, stamps: list[datetime]) -> bool:
        """The window up to ``end`` (None: open) filled its first page: True when it is to be
        read again, narrower; False when it is read page by page (the last one, one second wide).

        The first try's page is a sample of what is left: the next window ends at its oldest
        change (a stretch without changes before the data costs one call), the ones after it
        span half the mean gap between its changes. A bounded window is halved.
        """
        if self.first_try:
            self.first_try = False
            if len(stamps) < 2 or self.start >= self.end:
                return False
            oldest, newest = min(stamps), max(stamps)
            self.width = max(MIN_WIDTH, int((newest - oldest).total_seconds() / (len(stamps) - 1) / 2))
            self.stop = _whole_seconds(oldest) if self.start < oldest < self.end else None
            return True
        if end is None or end - self.start <= timedelta(seconds=MIN_WIDTH):
            return False
        self.width, self.stop = max(MIN_WIDTH, int((end - self.start).total_seconds()) // 2), None
        return True

    def done(self, end: datetime, count: int) -> None:
        """The window up to ``end`` is read (``count`` rows): the next one starts there, twice as
        wide when this one (not the one up to the first try's oldest change) filled less than a
        quarter page."""
        if self.stop is None and count < self.page_size / 4:
            self.width *= 2
        self.start, self.stop = end, None


def filter_text(value: datetime, tz: ZoneInfo) -> str:
    """A window bound as the list filters take it: local ``yyyy-MM-dd HH:mm:ss``."""
    return value.astimezone(tz).strftime(LOCAL_FILTER_FORMAT)


def _whole_seconds(value: datetime) -> datetime:
    return value.replace(microsecond=0)
