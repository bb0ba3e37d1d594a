"""How often a run's requests were sent again: a stream or push counts them for its own thread.

Kept apart from :mod:`hub.http` so that counting costs a run that sends no request (a file stream)
no import of requests.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_tally: ContextVar[list[int] | None] = ContextVar("triad_retried", default=None)


@contextmanager
def counting_retries() -> Iterator[list[int]]:
    """Count the requests sent again within (this thread or task) in the one-item list yielded: a run
    says how often its system failed or throttled it, which its other figures hide."""
    tally = [0]
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def count_retry() -> None:
    """One request is sent again (hub.http, before its wait)."""
    tally = _tally.get()
    if tally is not None:
        tally[0] += 1
