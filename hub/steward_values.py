"""A steward's value for one canonical field, checked the way a source value is (SPEC section 5).

``triad conflicts resolve --value`` makes a typed-in value golden and queues it to
every system. A source value reaches golden only after it was parsed to the
field's type, normalized by its mapping's transform and passed the entity's
expectation suite; a steward's value takes the same road, so a typo is refused
with the field, the value and the failed check instead of spreading:

1. parsed with the mapping parsers (``1,234.50`` is a decimal, ``abc`` is not);
2. normalized to the canonical form the model names for the field (phones
   E.164, e-mails lower case, ISO country and currency codes);
3. checked by the suite's expectations on that field, on the record as it
   would become (a pair expectation sees the record's other column);
4. checked against the store column (length, digits), which would refuse it later.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from hub.canonical import ENTITIES
from hub.errors import MappingError, UsageError
from hub.values import decode_record, encode

log = logging.getLogger(__name__)

# canonical field -> the transform that brings a value to its canonical form (SPEC section 2:
# phone E.164, country ISO 3166-1 alpha-2, currency ISO 4217; e-mail addresses compare lower case)
NORMALIZERS: dict[str, str] = {"email": "email", "phone": "phone_e164", "country": "country_iso2",
                               "currency": "currency"}
DEFAULT_PHONE_REGION = "CN"   # the transform's own default, for a record without a usable country
TYPE_NOUNS = {"decimal": "a decimal number", "int": "a whole number", "date": "a date (YYYY-MM-DD)",
              "datetime": "a date and time (ISO 8601, e.g. 2026-01-05T09:30:00+08:00)", "bool": "true or false"}


def prepare(entity: str, field: str, suite_override: str | None = None) -> None:
    """Load and build the field's checks now (great-expectations takes seconds to import):
    before the record is locked, not while it is. Raises ConfigError for a bad suite file."""
    _validator(entity, field, suite_override)


def steward_values(entity: str, field: str, text: str, records: list[dict[str, Any]],
                   suite_override: str | None = None, exact_digits: int | None = None) -> list[Any]:
    """The encoded value ``text`` makes golden for ``field`` in each of ``records`` (an empty text clears
    the field), their expectations checked in one run: per record, the value or the UsageError (one line
    naming the field, the value and what it failed) refusing it there.

    Args:
        entity: canonical entity name.
        field: the canonical field the value is for.
        text: the value as the steward typed it.
        records: the golden records' encoded values (the country a phone number is read in, the other
            column of a multi-column expectation).
        suite_override: the deployment's suite file for the entity (config ``validation``), else the shipped one.
        exact_digits: the significant digits the store keeps of a decimal exactly (SQLite's float: 15;
            None where decimals are exact), as a source value is checked (:mod:`hub.column_fit`).

    Raises:
        UsageError: the field cannot be typed in at all.
        ConfigError: the suite file is bad.
    """
    ftype = ENTITIES[entity].fields.get(field)
    if ftype is None:
        raise UsageError(f"{field}: not a field of {entity}; --value cannot set it")
    if ftype == "list":
        raise UsageError(f"{field}: order lines cannot be typed in with --value; use --take SYSTEM or --keep")
    out: list[Any] = []
    checked: list[tuple[int, Any, dict[str, Any]]] = []   # (position, typed value, record)
    refusals: dict[int, str | None] = {}
    for i, record in enumerate(records):
        value, refusals[i] = _normalize(field, ftype, text, record)
        try:
            typed = _parse(field, ftype, value)
        except UsageError as exc:
            out.append(exc)
            continue
        out.append(typed)
        checked.append((i, typed, record))
    failures = _failed_expectations(entity, field, [(typed, record) for _, typed, record in checked], suite_override)
    for n, (i, typed, record) in enumerate(checked):
        failure = failures.get(n)
        if failure is not None:
            out[i] = UsageError(f"{field}: {text!r} {failure_words(field, failure, record)} ({failure['expectation']})")
        elif refusals[i] is not None:   # the suite let it through, the canonical form did not
            out[i] = UsageError(refusals[i])
        else:
            problem = column_problem(entity, field, typed, exact_digits)   # what the column would refuse or round
            out[i] = UsageError(f"{field}: {text!r} {problem}") if problem is not None else encode(typed)
    return out


def _normalize(field: str, ftype: str, text: str, record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(value, refusal): the canonical form, or the text as typed and why the transform refused it
    (the suite's verdict on the text comes first: it names the expected format)."""
    if text == "":
        return None, None
    spec = NORMALIZERS.get(field) if ftype == "string" else None
    if spec is None:
        return text, None
    if spec == "phone_e164":
        spec = f"phone_e164:{_phone_region(record)}"
    from hub.transforms import get_transform
    try:
        return get_transform(spec)(text), None
    except MappingError as exc:
        return text, f"{field}: {exc.message} ({spec})"


def _phone_region(record: dict[str, Any]) -> str:
    """The record's country, for numbers typed without +country (as a CN mapping reads CN numbers)."""
    import phonenumbers
    country = str(record.get("country") or "").upper()
    return country if country in phonenumbers.SUPPORTED_REGIONS else DEFAULT_PHONE_REGION


def _parse(field: str, ftype: str, value: str | None) -> Any:
    if value is None or ftype == "string":
        return value
    from hub.mapping_types import parser_for
    try:
        return parser_for(ftype, timezone.utc)(value)
    except ValueError:
        raise UsageError(f"{field}: {value!r} is not {TYPE_NOUNS.get(ftype, ftype)}") from None


@lru_cache(maxsize=64)
def _validator(entity: str, field: str, suite_override: str | None) -> Any:
    """The suite's expectations that read ``field`` (others say nothing about this value), or None."""
    from hub.validation import Validator, load_suite
    suite = load_suite(entity, suite_override)
    mine = tuple(e for e in suite.expectations if field in e.columns)
    return Validator(replace(suite, expectations=mine)) if mine else None


def _failed_expectations(entity: str, field: str, values: list[tuple[Any, dict[str, Any]]],
                         suite_override: str | None) -> dict[int, dict[str, Any]]:
    """Position -> the first expectation the (typed value, record) there fails, all in one run."""
    validator = _validator(entity, field, suite_override)
    if validator is None or not values:
        return {}
    rows = [{**decode_record(entity, record), field: typed} for typed, record in values]
    # a check across rows (a uniqueness) would judge the records against each other: one run per record
    alone = any(_across_rows(e.name) for e in validator.suite.expectations)
    runs = [(i, [row]) for i, row in enumerate(rows)] if alone else [(0, rows)]
    out: dict[int, dict[str, Any]] = {}
    for start, run in runs:
        result = validator.validate(run)
        for failure in result.table_failures:   # as in a sync: aggregate or raising checks do not refuse a row
            log.warning("expectation %s on %s.%s did not judge the steward's value: %s",
                        failure["expectation"], entity, field, failure["error"] or failure["observed_value"])
        out.update({start + i: failures[0] for i, failures in result.row_failures.items() if failures})
    return out


def _across_rows(name: str) -> bool:
    return "unique" in name and not name.endswith("_within_record")


def failure_words(field: str, failure: dict[str, Any], record: dict[str, Any]) -> str:
    """What the value failed, in words: 'does not match ^...$', 'is not one of a, b'."""
    name, kwargs = failure["expectation"], failure["kwargs"]
    if name.endswith("_to_match_regex"):
        return f"does not match {kwargs['regex']}"
    if name.endswith("_to_not_match_regex"):
        return f"matches {kwargs['regex']}"
    if name.endswith("_to_be_in_set"):
        return f"is not one of {', '.join(map(str, kwargs['value_set']))}"
    if name.endswith("_to_not_be_in_set"):
        return f"is one of {', '.join(map(str, kwargs['value_set']))}"
    if name.endswith("_to_not_be_null"):
        return "is empty, but the field is required"
    if name == "expect_column_values_to_be_between":
        return _range(kwargs)
    others = [c for c in (failure["column"] or "").split(",") if c and c != field]
    if others:
        return "does not fit " + ", ".join(f"{c} {record.get(c)!r}" for c in others)
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("column", "meta"))
    return f"fails {args}" if args else "fails"


def _range(kwargs: dict[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        return f"is not between {low} and {high}"
    if low is not None:
        return f"is not above {low}" if kwargs.get("strict_min") else f"is below {low}"
    return f"is not below {high}" if kwargs.get("strict_max") else f"is above {high}"


def column_problem(entity: str, field: str, typed: Any, exact_digits: int | None = None) -> str | None:
    """Why the store column of ``field`` cannot hold ``typed`` as it is ('has more than 2 decimal
    places'), or None when it fits. ``exact_digits``: see :func:`steward_values`."""
    from hub.golden import table_of
    col_type = table_of(entity).c[field].type
    length = getattr(col_type, "length", None)
    if isinstance(typed, str) and length is not None and len(typed) > length:
        return f"is {len(typed)} characters long; at most {length} fit"
    if isinstance(typed, Decimal) and getattr(col_type, "scale", None) is not None:
        scale, digits = col_type.scale, col_type.precision - col_type.scale
        figures, exponent = _significant(typed)
        if -exponent > scale:
            return f"has more than {scale} decimal places"
        if len(figures) + exponent > digits:
            return f"has more than {digits} digits before the decimal point"
        if exact_digits is not None and len(figures) > exact_digits:
            from hub.column_fit import inexact
            return inexact(len(figures), exact_digits)
    if isinstance(typed, int) and not isinstance(typed, bool):
        low, high = _int_range(col_type)
        if not low <= typed <= high:
            return f"is out of range (a whole number from {low} to {high})"
    return None


def _significant(number: Decimal) -> tuple[tuple[int, ...], int]:
    """(digits, exponent) without trailing zeros: ``normalize()`` without its context, which
    overflows on an exponent like 1e999999999."""
    _, figures, exponent = number.as_tuple()
    if not any(figures):
        return (0,), 0
    while len(figures) > 1 and figures[-1] == 0:
        figures, exponent = figures[:-1], exponent + 1
    return figures, int(exponent)


def _int_range(col_type: Any) -> tuple[int, int]:
    """The values an integer column holds on every store (PostgreSQL's integer is 32 bits)."""
    from sqlalchemy import BigInteger, SmallInteger
    bits = 64 if isinstance(col_type, BigInteger) else 16 if isinstance(col_type, SmallInteger) else 32
    return -2 ** (bits - 1), 2 ** (bits - 1) - 1
