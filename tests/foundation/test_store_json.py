"""The store's JSON keeps every value as it went in, whichever library writes and reads it."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.store_json import dumps, loads

# any text, lone surrogates included (a raw webhook body may hold them), keys and values alike
TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
           | st.floats(allow_nan=True, allow_infinity=True) | TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                      max_leaves=20)


def _same(a: object) -> str:
    """A form in which two values are equal exactly when they are the same value (NaN included, 1 is not 1.0)."""
    return json.dumps(a, sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_every_value_reads_back_as_it_was_written(value):
    text = dumps(value)
    assert isinstance(text, str)
    assert _same(loads(text)) == _same(value)
    assert _same(loads(text.encode("utf-8", "surrogatepass"))) == _same(value)   # as a driver may hand it over
