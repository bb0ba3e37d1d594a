"""Validator: failing rows by position, offending values, table failures, reuse across batches."""
from __future__ import annotations

import json
import textwrap
from datetime import date
from decimal import Decimal

import pytest

from hub.canonical import ENTITIES
from hub.validation import ValidationResult, Validator, load_suite

EMAIL = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
PHONE = "^\\+[1-9]\\d{6,14}$"


def override(tmp_path, entity: str, text: str) -> Validator:
    path = tmp_path / f"{entity}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return Validator(load_suite(entity, override_path=str(path)))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_good_rows_pass(entity, validator_for, good_row):
    result = validator_for(entity).validate([good_row(entity, n) for n in range(5)])
    assert result == ValidationResult(row_failures={}, table_failures=[])
    assert result.ok


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_optional_fields_may_be_null(entity, validator_for, good_row):
    """Format, enum and range expectations let nulls through; only required fields fail."""
    row = {k: None for k in good_row(entity)}
    required = {s.kwargs["column"] for s in load_suite(entity).expectations
                if s.name == "expect_column_values_to_not_be_null"}
    row.update({k: good_row(entity)[k] for k in required})
    assert validator_for(entity).validate([row]).ok


def test_empty_batch(validator_for):
    assert validator_for("customer").validate([]) == ValidationResult()


CUSTOMER_FAILURES = [
    ("code", None, "expect_column_values_to_not_be_null", {"column": "code"}),
    ("name", None, "expect_column_values_to_not_be_null", {"column": "name"}),
    ("status", "deleted", "expect_column_values_to_be_in_set",
     {"column": "status", "value_set": ["active", "inactive", "blocked"]}),
    ("customer_type", "Company", "expect_column_values_to_be_in_set",
     {"column": "customer_type", "value_set": ["company", "person"]}),
    ("email", "buyer.acme.cn", "expect_column_values_to_match_regex", {"column": "email", "regex": EMAIL}),
    ("email", "buyer@acme", "expect_column_values_to_match_regex", {"column": "email", "regex": EMAIL}),
    ("email", "", "expect_column_values_to_match_regex", {"column": "email", "regex": EMAIL}),
    ("phone", "13800000000", "expect_column_values_to_match_regex", {"column": "phone", "regex": PHONE}),
    ("phone", "+86 138 0000 0000", "expect_column_values_to_match_regex", {"column": "phone", "regex": PHONE}),
    ("phone", "+0123456789", "expect_column_values_to_match_regex", {"column": "phone", "regex": PHONE}),
    ("country", "CHN", "expect_column_values_to_match_regex", {"column": "country", "regex": "^[A-Z]{2}$"}),
    ("currency", "cny", "expect_column_values_to_match_regex", {"column": "currency", "regex": "^[A-Z]{3}$"}),
    ("currency", "RMB¥", "expect_column_values_to_match_regex", {"column": "currency", "regex": "^[A-Z]{3}$"}),
    ("credit_limit", Decimal("-0.01"), "expect_column_values_to_be_between",
     {"column": "credit_limit", "min_value": 0}),
]


@pytest.mark.parametrize("field, bad, expectation, kwargs", CUSTOMER_FAILURES,
                         ids=[f"{f}={b!r}" for f, b, _, _ in CUSTOMER_FAILURES])
def test_each_failure_kind_names_row_expectation_and_value(validator_for, good_row,
                                                           field, bad, expectation, kwargs):
    rows = [good_row("customer", n) for n in range(4)]
    rows[2][field] = bad
    result = validator_for("customer").validate(rows)
    expected_value = None if bad is None else str(bad)
    assert result.row_failures == {2: [{"expectation": expectation, "column": field,
                                        "value": expected_value, "kwargs": kwargs}]}
    assert result.table_failures == []
    json.dumps(result.row_failures)   # JSON-safe for the quarantine table


@pytest.mark.parametrize("limit, fails", [
    (Decimal("1234.50"), False), (Decimal("0"), False), (Decimal("0.00"), False),
    (Decimal("9999999999999999.99"), False), (Decimal("-0.01"), True), (Decimal("-1234.50"), True),
    (None, False),
])
def test_decimal_credit_limit(validator_for, good_row, limit, fails):
    row = good_row("customer") | {"credit_limit": limit}
    result = validator_for("customer").validate([row])
    if fails:
        assert result.row_failures == {0: [{
            "expectation": "expect_column_values_to_be_between", "column": "credit_limit",
            "value": str(limit), "kwargs": {"column": "credit_limit", "min_value": 0}}]}
    else:
        assert result.ok


def test_several_failures_of_one_row_come_in_suite_order(validator_for, good_row):
    row = good_row("customer") | {"credit_limit": Decimal("-5.00"), "code": None,
                                  "email": "x", "status": "gone"}
    failures = validator_for("customer").validate([row]).row_failures[0]
    assert [(f["column"], f["value"]) for f in failures] == [
        ("code", None), ("status", "gone"), ("email", "x"), ("credit_limit", "-5.00")]


def test_mixed_batch_returns_exactly_the_bad_indexes(validator_for, good_row):
    rows = [good_row("customer", n) for n in range(200)]
    bad = {3: ("email", "nope"), 17: ("phone", "555-1234"), 18: ("code", None),
           99: ("credit_limit", Decimal("-1")), 150: ("currency", "EURO"), 199: ("status", "closed")}
    for index, (field, value) in bad.items():
        rows[index][field] = value
    result = validator_for("customer").validate(rows)
    assert sorted(result.row_failures) == sorted(bad)
    for index, (field, value) in bad.items():
        [failure] = result.row_failures[index]
        assert failure["column"] == field
        assert failure["value"] == (None if value is None else str(value))


def test_validator_is_reused_across_batch_sizes(validator_for, good_row):
    validator = validator_for("payment")
    for size in (3, 1, 250, 7, 1):
        rows = [good_row("payment", n) for n in range(size)]
        rows[size - 1]["amount"] = Decimal("-10.00")
        if size > 2:
            rows[1]["status"] = "lost"
        result = validator.validate(rows)
        expected = {size - 1} | ({1} if size > 2 else set())
        assert set(result.row_failures) == expected, size
        assert result.row_failures[size - 1][-1]["value"] == "-10.00"
    assert validator.validate([good_row("payment")]).ok


def test_order_lines_are_ignored_and_order_date_required(validator_for, good_row):
    rows = [good_row("order", 0), good_row("order", 1) | {"order_date": None, "lines": []},
            good_row("order", 2) | {"status": "pending", "tax_amount": Decimal("-0.50")}]
    result = validator_for("order").validate(rows)
    assert {i: [(f["expectation"], f["column"], f["value"]) for f in fs]
            for i, fs in result.row_failures.items()} == {
        1: [("expect_column_values_to_not_be_null", "order_date", None)],
        2: [("expect_column_values_to_be_in_set", "status", "pending"),
            ("expect_column_values_to_be_between", "tax_amount", "-0.50")],
    }


def test_contract_ending_before_it_starts(validator_for, good_row):
    rows = [good_row("contract", 0),
            good_row("contract", 1) | {"end_date": date(2023, 6, 30)},
            good_row("contract", 2) | {"end_date": None},
            good_row("contract", 3) | {"end_date": date(2024, 1, 1)}]   # same day: allowed
    result = validator_for("contract").validate(rows)
    assert result.row_failures == {1: [{
        "expectation": "expect_column_pair_values_a_to_be_greater_than_b",
        "column": "end_date,start_date",
        "value": json.dumps({"end_date": "2023-06-30", "start_date": "2024-01-01"}),
        "kwargs": {"column_A": "end_date", "column_B": "start_date", "or_equal": True,
                   "ignore_row_if": "either_value_is_missing"},
    }]}


@pytest.mark.parametrize("entity, field", [("payment", "amount"), ("approval", "amount"),
                                           ("contract", "total_value"), ("order", "total_amount")])
def test_negative_amounts_and_bad_currency(validator_for, good_row, entity, field):
    rows = [good_row(entity, 0) | {field: Decimal("-100.00")}, good_row(entity, 1) | {"currency": "US$"}]
    result = validator_for(entity).validate(rows)
    assert [(f["column"], f["value"]) for f in result.row_failures[0]] == [(field, "-100.00")]
    assert [(f["column"], f["value"]) for f in result.row_failures[1]] == [("currency", "US$")]


def test_override_suite_replaces_the_shipped_one(tmp_path, good_row):
    validator = override(tmp_path, "customer", """\
        - {expectation: expect_column_values_to_be_in_set, column: tier, value_set: [A, B]}
        """)
    rows = [good_row("customer", 0) | {"email": "not-an-email"},   # shipped check not applied
            good_row("customer", 1) | {"tier": "C"}]
    result = validator.validate(rows)
    assert result.row_failures == {1: [{"expectation": "expect_column_values_to_be_in_set",
                                        "column": "tier", "value": "C",
                                        "kwargs": {"column": "tier", "value_set": ["A", "B"]}}]}


def test_table_level_failures_are_reported_apart(tmp_path, good_row):
    validator = override(tmp_path, "customer", """\
        - {expectation: expect_table_row_count_to_be_between, min_value: 1, max_value: 2}
        - {expectation: expect_column_values_to_not_be_null, column: code}
        """)
    rows = [good_row("customer", n) for n in range(3)]
    rows[0]["code"] = None
    result = validator.validate(rows)
    assert result.row_failures == {0: [{"expectation": "expect_column_values_to_not_be_null",
                                        "column": "code", "value": None, "kwargs": {"column": "code"}}]}
    assert result.table_failures == [{"expectation": "expect_table_row_count_to_be_between",
                                      "column": None, "kwargs": {"min_value": 1, "max_value": 2},
                                      "observed_value": 3, "error": None}]
    assert validator.validate(rows[1:]).ok


def test_aggregate_expectation_on_decimals(tmp_path, good_row):
    validator = override(tmp_path, "customer", """\
        - {expectation: expect_column_mean_to_be_between, column: credit_limit, max_value: 1000}
        """)
    rows = [good_row("customer", 0), good_row("customer", 1) | {"credit_limit": Decimal("1000.50")}]
    result = validator.validate(rows)
    assert result.row_failures == {}
    [failure] = result.table_failures
    assert failure["expectation"] == "expect_column_mean_to_be_between"
    assert failure["observed_value"] == pytest.approx(1117.5)
    assert failure["error"] is None


def test_expectation_that_raises_is_a_table_failure(tmp_path, good_row):
    validator = override(tmp_path, "customer", """\
        - {expectation: expect_column_mean_to_be_between, column: name, min_value: 0}
        - {expectation: expect_column_values_to_not_be_null, column: code}
        """)
    result = validator.validate([good_row("customer", 0), good_row("customer", 1) | {"code": None}])
    assert list(result.row_failures) == [1]
    [failure] = result.table_failures
    assert failure["expectation"] == "expect_column_mean_to_be_between"
    assert failure["error"]


def test_mostly_tolerates_a_share_of_bad_rows(tmp_path, good_row):
    validator = override(tmp_path, "customer", """\
        - {expectation: expect_column_values_to_be_in_set, column: tier, value_set: [A], mostly: 0.5}
        """)
    rows = [good_row("customer", n) for n in range(4)]
    rows[0]["tier"] = "B"
    assert validator.validate(rows).ok              # 75% conform: the expectation holds
    rows[1]["tier"] = rows[2]["tier"] = "B"
    assert set(validator.validate(rows).row_failures) == {0, 1, 2}


def test_empty_suite_accepts_everything(tmp_path):
    validator = override(tmp_path, "approval", "[]\n")
    assert validator.validate([{"approval_no": None, "currency": "??"}]).ok


def test_row_condition_may_read_a_column_the_suite_does_not_check(tmp_path, good_row):
    validator = override(tmp_path, "customer", """\
        - expectation: expect_column_values_to_not_be_null
          column: email
          row_condition: 'status=="active"'
          condition_parser: pandas
        """)
    rows = [good_row("customer", 0) | {"email": None},
            good_row("customer", 1) | {"email": None, "status": "blocked"}]
    assert list(validator.validate(rows).row_failures) == [0]
