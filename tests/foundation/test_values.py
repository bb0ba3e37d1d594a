"""Encoded values back to Python: a typed-in boolean means what it says."""
from __future__ import annotations

import pytest

from hub.values import decode


@pytest.mark.parametrize("text, expected", [("false", False), ("0", False), ("no", False), ("true", True),
                                            ("1", True), ("Y", True)])
def test_a_boolean_typed_as_text(text: str, expected: bool):
    assert decode(text, "bool") is expected


def test_stored_booleans_and_bad_text():
    assert decode(True, "bool") is True and decode(0, "bool") is False
    with pytest.raises(ValueError, match="not a boolean: 'maybe'"):
        decode("maybe", "bool")
