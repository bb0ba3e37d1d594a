"""Ctrl-C during a batch command: the first press asks the loop to stop after its batch, the second stops at once."""
from __future__ import annotations

import signal
import threading

import pytest

from hub.interrupts import FIRST_PRESS, TERM_FIRST, finish_batch_on_ctrl_c


@pytest.fixture
def default_sigint():
    """A terminal's SIGINT (a test worker may run with it ignored, as a shell's background job does)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_first_press_sets_the_event_without_raising_the_second_raises(default_sigint, capsys):
    with finish_batch_on_ctrl_c() as stop:
        assert not stop.is_set()
        signal.raise_signal(signal.SIGINT)     # would raise KeyboardInterrupt here without the handler
        assert stop.is_set()
        assert FIRST_PRESS in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back on the way out


def test_an_ignored_sigint_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with finish_batch_on_ctrl_c() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
            assert not stop.is_set()
    finally:
        signal.signal(signal.SIGINT, before)


def test_outside_the_main_thread_nothing_is_installed(default_sigint):
    seen = []

    def work() -> None:
        with finish_batch_on_ctrl_c() as stop:
            seen.append((signal.getsignal(signal.SIGINT), stop.is_set()))
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [(signal.default_int_handler, False)]


def test_sigterm_where_asked_for_finishes_the_batch_like_ctrl_c(default_sigint, capsys):
    before = signal.getsignal(signal.SIGTERM)
    with finish_batch_on_ctrl_c(sigterm=True) as stop:
        signal.raise_signal(signal.SIGTERM)        # would end the process here without the handler
        assert stop.is_set() and stop.signum == signal.SIGTERM
        assert TERM_FIRST in capsys.readouterr().err
        signal.raise_signal(signal.SIGTERM)        # `timeout` signals the process, then its group: still one stop
        assert stop.signum == signal.SIGTERM and capsys.readouterr().err == ""
        with pytest.raises(KeyboardInterrupt):     # Ctrl-C then stops at once
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_is_left_alone_unless_asked_for(default_sigint):
    before = signal.getsignal(signal.SIGTERM)
    with finish_batch_on_ctrl_c() as stop:
        assert signal.getsignal(signal.SIGTERM) is before
        signal.raise_signal(signal.SIGINT)
        assert stop.signum == signal.SIGINT


def test_sigterm_is_caught_where_sigint_is_ignored():
    """A shell's background job ignores Ctrl-C; `kill` still reaches it, and stops it after its batch."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with finish_batch_on_ctrl_c(sigterm=True) as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGTERM)
            assert stop.is_set()
    finally:
        signal.signal(signal.SIGINT, before)
