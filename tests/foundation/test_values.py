"""Encoded values back to Python: a typed-in boolean means what it says; the digest of a record's values."""
from __future__ import annotations

import pytest

from hub.values import decode, values_hash


@pytest.mark.parametrize("text, expected", [("false", False), ("0", False), ("no", False), ("true", True),
                                            ("1", True), ("Y", True)])
def test_a_boolean_typed_as_text(text: str, expected: bool):
    assert decode(text, "bool") is expected


def test_stored_booleans_and_bad_text():
    assert decode(True, "bool") is True and decode(0, "bool") is False
    with pytest.raises(ValueError, match="not a boolean: 'maybe'"):
        decode("maybe", "bool")


def test_the_values_digest_depends_on_the_values_not_their_order():
    """A record read again with its fields in another order (a reordered export, a JSON payload) is the same
    record; a changed value, a value's type, a deletion or an order line make another digest."""
    a = {"name": "上海测试贸易有限公司", "credit_limit": "7", "active": True, "lines": [{"line_no": 1, "qty": "2"}]}
    b = dict(reversed(list(a.items())))
    assert values_hash(a) == values_hash(b)
    assert len({values_hash(a), values_hash({**a, "name": "上海测试贸易有限公司 "}), values_hash({**a, "active": 1}),
                values_hash(a, deleted=True), values_hash({**a, "lines": [{"line_no": 1, "qty": "3"}]})}) == 5
    huge = {**a, "n": 2 ** 70}     # not an encoded value: digested all the same, the same each time
    assert values_hash(huge) == values_hash(dict(huge)) != values_hash(a)
