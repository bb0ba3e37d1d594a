"""Ctrl-C for commands that work in committed batches: the first press finishes the batch, the second stops at once.

A KeyboardInterrupt raised wherever the signal happens to land can be lost: CPython discards an
exception raised while one of its C lookups runs Python code (a dict key's ``__eq__``, a property read
by ``hasattr``), and a run interrupted there goes on to the end as if Ctrl-C had never been pressed.
A handler that only sets an event cannot be lost that way, and the batch in progress commits instead
of rolling back; the loop checks the event between batches.
"""
from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FIRST_PRESS = "Ctrl-C: finishing the current batch, then stopping (Ctrl-C again to stop at once)"


@contextmanager
def finish_batch_on_ctrl_c(first_press: str = FIRST_PRESS) -> Iterator[threading.Event]:
    """Yield an event the first SIGINT sets (saying ``first_press`` on stderr, when not empty); a second
    SIGINT raises KeyboardInterrupt as usual.

    Outside the main thread (signals go to it only), or when SIGINT is ignored (a background job
    of a shell), nothing is installed and the event is never set.
    """
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is signal.SIG_IGN:
        yield stop
        return

    def handler(_signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if first_press:
            print(first_press, file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
