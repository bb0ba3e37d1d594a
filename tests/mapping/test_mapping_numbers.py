"""Numbers as the store keeps them: commas only between thousands, amounts rounded half-up to the
column's scale and refused when too large for it (SPEC section 2: Numeric(18, 2) money,
Numeric(18, 4) quantities), so a bad value is one row's mapping error and both stores hold the same number."""
from __future__ import annotations

from decimal import Decimal

import pytest

from hub.canonical import ENTITIES, ORDER_LINE_FIELDS, decimal_digits
from hub.errors import MappingError
from hub.mapping_types import decimal_for_column, to_decimal, to_int


@pytest.mark.parametrize("raw,expected", [
    ("1,234.50", Decimal("1234.50")), ("1,234,567", Decimal("1234567")), ("-1,000.5", Decimal("-1000.5")),
    ("1，234.5", Decimal("1234.5")), (" 12,345 ", Decimal("12345")), ("12.50", Decimal("12.50")),
])
def test_commas_between_thousands_are_dropped(raw, expected) -> None:
    assert to_decimal(raw) == expected


@pytest.mark.parametrize("raw", ["12,50", "1.234,50", "1,5", "1,23", "1,2345", "12,345,67", "1，5", ",5", "1,,000"])
def test_decimal_commas_are_refused_not_read_as_another_number(raw) -> None:
    with pytest.raises(ValueError, match="never as a decimal point"):
        to_decimal(raw)


def test_int_refuses_a_decimal_comma_and_says_why() -> None:
    assert to_int("1,200") == 1200
    with pytest.raises(ValueError, match="'1,5' is not a number.*never as a decimal point"):
        to_int("1,5")


@pytest.mark.parametrize("raw,expected", [
    ("2.675", "2.68"), ("1234.565", "1234.57"), ("-2.675", "-2.68"), ("0.005", "0.01"), ("-0.001", "0.00"),
    ("9999999999999999.994", "9999999999999999.99"), ("1234.5", "1234.5"), ("88", "88"),
])
def test_money_is_rounded_half_up_to_two_places(raw, expected) -> None:
    assert str(decimal_for_column(18, 2)(Decimal(raw))) == expected


def test_quantity_keeps_four_places() -> None:
    fit = decimal_for_column(18, 4)
    assert str(fit(Decimal("1.23455"))) == "1.2346"
    assert fit(Decimal("99999999999999.9999")) == Decimal("99999999999999.9999")


@pytest.mark.parametrize("digits,raw", [
    ((18, 2), "99999999999999999.99"), ((18, 2), "10000000000000000"), ((18, 2), "-10000000000000000"),
    ((18, 2), "9999999999999999.995"),          # rounds up past the largest amount
    ((18, 2), "1E+400000"), ((18, 4), "100000000000000"),
])
def test_too_large_for_the_column_is_refused(digits, raw) -> None:
    with pytest.raises(ValueError, match="is too large: the store keeps at most") as info:
        decimal_for_column(*digits)(Decimal(raw))
    assert len(str(info.value)) < 200          # an absurd number is not written out in full


def test_largest_amounts_fit() -> None:
    assert decimal_for_column(18, 2)(Decimal("-9999999999999999.99")) == Decimal("-9999999999999999.99")


def test_canonical_digits_agree_with_the_store_columns() -> None:
    from hub.models import GOLDEN_MODELS, OrderLine
    for name, entity in ENTITIES.items():
        table = GOLDEN_MODELS[name].__table__
        for field, ftype in entity.fields.items():
            if ftype == "decimal":
                column = table.c[field].type
                assert decimal_digits(name, field) == (column.precision, column.scale), (name, field)
    for field, ftype in ORDER_LINE_FIELDS.items():
        if ftype == "decimal":
            column = OrderLine.__table__.c[field].type
            assert decimal_digits("order", f"lines.{field}") == (column.precision, column.scale), field


def test_mapping_refuses_an_overflowing_amount_naming_field_value_and_limit(make_mapping) -> None:
    mapping = make_mapping("fields: {credit_limit: {from: L, type: decimal}}\n")
    with pytest.raises(MappingError) as info:
        mapping.to_canonical({"Id": "1", "L": "99999999999999999.99"})
    assert info.value.field == "credit_limit"
    message = info.value.message
    assert message.startswith("credit_limit: 99999999999999999.99 is too large")
    assert "9999999999999999.99" in message and "16 digits" in message and "from L" in message


def test_mapping_rounds_amounts_from_text_and_json_numbers(make_mapping) -> None:
    mapping = make_mapping("fields: {credit_limit: {from: L, type: decimal}}\n")
    assert mapping.to_canonical({"Id": "1", "L": "2.675"}).values["credit_limit"] == Decimal("2.68")
    assert mapping.to_canonical({"Id": "1", "L": 2.675}).values["credit_limit"] == Decimal("2.68")
    assert mapping.to_canonical({"Id": "1", "L": "1,234.565"}).values["credit_limit"] == Decimal("1234.57")


def test_mapping_refuses_a_decimal_comma(make_mapping) -> None:
    mapping = make_mapping("fields: {credit_limit: {from: L, type: decimal}}\n")
    for raw in ("12,50", "1.234,50"):
        with pytest.raises(MappingError, match="never as a decimal point") as info:
            mapping.to_canonical({"Id": "1", "L": raw})
        assert info.value.field == "credit_limit"


def test_values_map_and_default_are_fitted_too(make_mapping) -> None:
    mapping = make_mapping("fields: {credit_limit: {from: L, values: {low: '2.675', huge: '1E+17'}, "
                           "default: '0.125'}}\n")
    assert mapping.to_canonical({"Id": "1", "L": "low"}).values["credit_limit"] == Decimal("2.68")
    assert mapping.to_canonical({"Id": "1"}).values["credit_limit"] == Decimal("0.13")
    with pytest.raises(MappingError, match="credit_limit: 100000000000000000 is too large"):
        mapping.to_canonical({"Id": "1", "L": "huge"})


def test_order_lines_use_their_own_columns(make_mapping) -> None:
    mapping = make_mapping("fields: {lines: {from: L, each: {quantity: Q, unit_price: P}}}\n", entity="order")
    record = mapping.to_canonical({"Id": "1", "L": [{"Q": "1.23456", "P": "2.675"}]})
    assert record.values["lines"] == [{"quantity": Decimal("1.2346"), "unit_price": Decimal("2.68")}]
    ok = mapping.to_canonical({"Id": "1", "L": [{"Q": "99999999999999", "P": "9999999999999999"}]})
    assert ok.values["lines"][0]["quantity"] == Decimal("99999999999999")
    with pytest.raises(MappingError, match=r"lines\[0\]\.quantity: 100000000000000 is too large") as info:
        mapping.to_canonical({"Id": "1", "L": [{"Q": "100000000000000", "P": "1"}]})
    assert info.value.field == "lines"


def test_an_int_read_into_a_money_field_is_bounded(make_mapping) -> None:
    mapping = make_mapping("fields: {credit_limit: {from: L, type: int}}\n")
    assert mapping.to_canonical({"Id": "1", "L": "1,200"}).values["credit_limit"] == Decimal("1200")
    with pytest.raises(MappingError, match="too large"):
        mapping.to_canonical({"Id": "1", "L": 10 ** 16})
