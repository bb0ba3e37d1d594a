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


TERM_FIRST = "SIGTERM: finishing the current batch, then stopping (Ctrl-C stops at once)"


class Interrupt(threading.Event):
    """Set by the first SIGINT (or SIGTERM, where asked for); ``signum`` says which (exit status 128 + signum)."""

    signum: int = signal.SIGINT


@contextmanager
def finish_batch_on_ctrl_c(first_press: str = FIRST_PRESS, *, sigterm: bool = False,
                           first_term: str = TERM_FIRST) -> Iterator[Interrupt]:
    """Yield an event the first SIGINT sets (saying ``first_press`` on stderr, when not empty); a second
    SIGINT raises KeyboardInterrupt as usual. With ``sigterm``, SIGTERM (a `kill`, a service manager's stop,
    `timeout`) sets it too, saying ``first_term``: a command run in the background, where Ctrl-C cannot
    reach it, also stops after its batch; a second SIGTERM changes nothing (`timeout` sends two).

    Outside the main thread (signals go to it only) nothing is installed and the event is never set; a
    signal that is ignored (SIGINT in a shell's background job) stays ignored.
    """
    stop = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return      # `timeout` signals the process and then its group: the same request twice
        stop.signum = signum
        stop.set()
        text = first_press if signum == signal.SIGINT else first_term
        if text:
            print(text, file=sys.stderr, flush=True)

    installed: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM) if sigterm else (signal.SIGINT,):
        previous = signal.getsignal(signum)
        if previous is not None and previous is not signal.SIG_IGN:   # None: a handler not set from Python
            installed[signum] = previous
            signal.signal(signum, handler)
    try:
        yield stop
    finally:
        for signum, previous in installed.items():
            signal.signal(signum, previous)
