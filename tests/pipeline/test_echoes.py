"""Bookkeeping of values written to a system that has not shown them back (hub.echoes)."""
from __future__ import annotations

from hub.echoes import KEEP, add_written, still_pending


def test_each_write_becomes_the_newest_of_its_field():
    pending = add_written(None, {"city": "A", "name": "X"})
    pending = add_written(pending, {"city": "B"})
    pending = add_written(pending, {"city": "A"})
    assert pending == {"city": ["B", "A"], "name": ["X"]}


def test_only_the_last_writes_are_kept():
    pending = None
    for n in range(KEEP + 3):
        pending = add_written(pending, {"city": n})
    assert pending == {"city": list(range(3, KEEP + 3))}


def test_a_value_shown_back_settles_it_and_every_earlier_write():
    pending = {"city": ["A", "B", "C"], "name": ["X"]}
    assert still_pending(pending, {"city": "B", "name": "Y"}) == {"city": ["C"], "name": ["X"]}
    assert still_pending(pending, {"city": "C", "name": "X"}) is None
    assert still_pending(pending, {"email": "e"}) == pending
    assert still_pending(None, {"city": "A"}) is None
