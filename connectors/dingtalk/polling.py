"""Incremental reads of approval instances, for OA systems that list ids by *start* time only.

DingTalk (``ListProcessInstanceIds``) and Feishu (``GET /approval/v4/instances``)
list the instance ids of one template (process code / approval code) started
in a time window; the details come one instance at a time. A decision on an
old instance does not show up in a window over recent start times, so the
cursor also remembers the instances that were still open::

    {"ts": "<ISO UTC>", "open": {"<instance id>": "<template code>"}, "scopes": ["<template code>", ...]}

A read first re-fetches the open instances (those that finished since are
yielded; those changed at or after ``ts - overlap`` are yielded too), then lists
every template from ``ts - overlap`` (a template new to the cursor: from
``since_days`` back) to now in windows of ``window_days`` and fetches what it
has not seen yet. Finished instances (approved, refused, revoked) do not change
again, so nothing is missed. ``ts`` becomes the time the listing started,
never past ``StreamSpec.run_started_at``; an interrupted read resumes from the
previous ``ts`` with the open set as far as it got.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Protocol

from hub.connector import Batch, StreamSpec
from hub.incremental import cursor_datetime

log = logging.getLogger(__name__)


class InstanceSource(Protocol):
    """What a vendor client offers the poller."""

    def list_ids(self, scope: str, start: datetime, end: datetime) -> Iterable[str]:
        """Ids of the template's instances started in ``[start, end]``."""

    def fetch_one(self, instance_id: str, scope: str | None) -> dict[str, Any] | None:
        """The raw record of one instance (None when it no longer exists)."""

    def record_id(self, record: dict[str, Any]) -> str:
        """The instance id of a raw record."""

    def is_final(self, record: dict[str, Any]) -> bool:
        """True once the instance can no longer change (approved, refused, revoked, deleted)."""

    def changed_at(self, record: dict[str, Any]) -> datetime | None:
        """The newest time anything happened on the instance."""


@dataclass(frozen=True)
class PollSettings:
    since_days: float = 365.0          # how far back a first read lists
    window_days: float = 120.0         # longest window one list call may span
    overlap_seconds: float = 300.0     # clock skew and minute-precision times between runs
    concurrency: int = 4               # parallel detail fetches

    @classmethod
    def from_options(cls, *sources: dict[str, Any]) -> "PollSettings":
        """Settings from option dicts, the first that has a key wins (stream options before connector options)."""
        def pick(key: str, default: float) -> float:
            for src in sources:
                if src.get(key) is not None:
                    return float(src[key])
            return default
        return cls(since_days=pick("since_days", cls.since_days), window_days=pick("window_days", cls.window_days),
                   overlap_seconds=pick("overlap_seconds", cls.overlap_seconds),
                   concurrency=max(1, int(pick("fetch_concurrency", cls.concurrency))))


def parse_cursor(cursor: Any) -> tuple[datetime | None, dict[str, str | None], set[str] | None]:
    """(ts, open ids -> template, templates covered or None when unknown) of a stored cursor."""
    if cursor in (None, "", {}):
        return None, {}, set()
    if isinstance(cursor, dict):
        open_ = cursor.get("open") or {}
        if isinstance(open_, list):
            open_ = {str(i): None for i in open_}
        scopes = cursor.get("scopes")
        return cursor_datetime(cursor.get("ts")), dict(open_), set(scopes) if scopes is not None else None
    return cursor_datetime(cursor), {}, None


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(timezone.utc).isoformat() if dt else None


def windows(start: datetime, end: datetime, days: float) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end]`` cut into consecutive windows of at most ``days``."""
    step = timedelta(days=days)
    a = start
    while a < end:
        b = min(end, a + step)
        yield a, b
        a = b


def fetch_many(source: InstanceSource, items: list[tuple[str, str | None]], concurrency: int) -> list[dict[str, Any]]:
    """Details of several instances, in order, fetched ``concurrency`` at a time; missing ones are left out."""
    if concurrency <= 1 or len(items) <= 1:
        found = [source.fetch_one(i, s) for i, s in items]
    else:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(items)), thread_name_prefix="oa-fetch") as pool:
            found = list(pool.map(lambda item: source.fetch_one(*item), items))
    return [r for r in found if r is not None]


def read_instances(source: InstanceSource, scopes: list[str], stream: StreamSpec, cursor: Any,
                   settings: PollSettings, clock: Callable[[], datetime] | None = None) -> Iterator[Batch]:
    """Batches of raw instance records changed since ``cursor`` (see the module docstring).

    Every batch holds at most ``stream.batch_size`` records; only the last one
    carries the advanced ``ts``.
    """
    now = (clock or (lambda: datetime.now(timezone.utc)))()
    prev_ts, prev_open, covered = parse_cursor(cursor)
    ceiling = cursor_datetime(stream.run_started_at) if stream.run_started_at else None
    overlap = timedelta(seconds=settings.overlap_seconds)
    floor = prev_ts - overlap if prev_ts else None
    size = max(1, stream.batch_size)
    open_now: dict[str, str | None] = {}
    seen: set[str] = set()
    held: list[Batch] = []

    def cap(ts: datetime | None) -> datetime | None:
        return ceiling if ts and ceiling and ts > ceiling else ts

    def cursor_value(ts: datetime | None, pending: Iterable[tuple[str, str | None]],
                     done_scopes: Iterable[str]) -> dict[str, Any]:
        merged = dict(pending)
        merged.update(open_now)
        return {"ts": _iso(cap(ts)), "open": dict(sorted(merged.items())), "scopes": sorted(set(done_scopes))}

    def take(records: list[dict[str, Any]], items: list[tuple[str, str | None]], reopened: bool = False,
             everything: bool = False) -> list[dict[str, Any]]:
        """Records to yield: all of a template new to the cursor, else those finished or changed since."""
        scope_of = dict(items)
        out = []
        for rec in records:
            rid = source.record_id(rec)
            if rid in seen:
                continue
            seen.add(rid)
            final = source.is_final(rec)
            if not final:
                open_now[rid] = scope_of.get(rid)
            changed = source.changed_at(rec)
            if everything or floor is None or (reopened and final) or (changed is not None and changed >= floor):
                out.append(rec)
        return out

    def emit(batch: Batch) -> Iterator[Batch]:
        if not batch.records:
            return
        if held:
            yield held.pop()
        held.append(batch)

    old_scopes = [s for s in scopes if covered is None or s in covered] if prev_ts else []
    # 1. instances that were open at the previous read
    pending = [(i, s) for i, s in prev_open.items()]
    for n in range(0, len(pending), size):
        chunk = pending[n:n + size]
        records = take(fetch_many(source, chunk, settings.concurrency), chunk, reopened=True)
        yield from emit(Batch(records, cursor=cursor_value(prev_ts, pending[n + size:], old_scopes)))
    # 2. instances started since the previous read (or since_days back for templates new to the cursor)
    listed_at = now
    for scope in scopes:
        known = scope in old_scopes
        start = prev_ts - overlap if prev_ts and known else now - timedelta(days=settings.since_days)
        log.info("listing %s instances started from %s", scope, start.isoformat())
        chunk: list[tuple[str, str | None]] = []
        for a, b in windows(start, now, settings.window_days):
            for iid in source.list_ids(scope, a, b):
                if iid in seen or any(iid == c for c, _ in chunk):
                    continue
                chunk.append((iid, scope))
                if len(chunk) >= size:
                    records = take(fetch_many(source, chunk, settings.concurrency), chunk, everything=not known)
                    yield from emit(Batch(records, cursor=cursor_value(prev_ts, (), old_scopes)))
                    chunk = []
        if chunk:
            records = take(fetch_many(source, chunk, settings.concurrency), chunk, everything=not known)
            yield from emit(Batch(records, cursor=cursor_value(prev_ts, (), old_scopes)))
    final = cursor_value(listed_at, (), scopes)
    if held:
        batch = held.pop()
        batch.cursor = final
        yield batch
    elif final != cursor:
        yield Batch([], cursor=final)
