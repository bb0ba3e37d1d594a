"""Property: for every shipped mapping and every mapping used in tests,
``to_canonical(to_source(v)) == v`` for the fields that are written back.

Canonical values are generated from each field's plan: its type, its value
map (the canonical side), or valid inputs of its transforms. Fields that are
readonly or written to another field (``to: OtherField``) are left out: they
do not come back by design.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.mapping import Mapping, load_mapping, shipped_mappings_dir
from hub.mapping_model import FieldPlan
from hub.mapping_types import parser_for
from hub.transforms import get_transform

HERE = Path(__file__).parent / "mappings"
UTC = timezone.utc


def mapping_files() -> list[Any]:
    """(path, entity): test mappings are named <system>_<entity>.yaml, shipped ones <type>/<entity>.yaml."""
    found = [pytest.param(p, p.stem.split("_")[-1], id=f"tests/{p.name}") for p in sorted(HERE.glob("*.yaml"))]
    shipped = shipped_mappings_dir()
    found += [pytest.param(p, p.stem, id=f"shipped/{p.parent.name}/{p.name}")
              for p in sorted(shipped.glob("*/*.yaml"))]
    return found


# valid raw inputs for transforms that only accept well-formed values
TRANSFORM_INPUTS: dict[str, list[str]] = {
    "phone_e164": ["021-5555 0101", "+86 138 0013 8000", "+1 415 555 2671", "+49 30 901820", "0755-8888 6666"],
    "email": ["Zhang.San@Example.CN", "li@example.com", "anna.schmidt+crm@beispiel.de", "张三@例子.中国"],
    "tax_id_cn": ["91110000600037341L", "9111 0000 6000 3734 1l"],
    "vat": ["DE136695976", "FR 61 954 506 077", "NL004495445B01"],
    "country_iso2": ["中国", "美国", "Germany", "JPN", "香港", "gb"],
    "currency": ["CNY", "rmb", "usd", "EUR", "人民币"],
    "postal_code": ["200000", "94105-1234", "SW1A 1AA", "10117"],
}

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20).filter(
    lambda s: not s.isspace())
BY_TYPE: dict[str, st.SearchStrategy] = {
    "string": texts,
    "int": st.integers(-10**9, 10**9),
    "decimal": st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2,
                           allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "date": st.dates(date(1970, 1, 1), date(2100, 12, 31)),
    "datetime": st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1), timezones=st.just(UTC)),
}


def field_strategy(plan: FieldPlan, tz: Any) -> st.SearchStrategy:
    """Canonical values this field can hold (and get back after a round trip)."""
    if plan.type == "list":
        children = {c.name: (st.just(c.default) if c.readonly or c.target != c.source else field_strategy(c, tz))
                    for c in plan.each or ()}
        return st.none() | st.lists(st.fixed_dictionaries(children), max_size=3)
    if plan.values is not None or plan.outbound_values is not None:
        # what inbound can produce: the canonical side of the values map (a `to:` map may also
        # list values the system cannot hold, e.g. blocked -> false; those do not come back)
        image = plan.values.values() if plan.values is not None else plan.outbound_values
        base = st.sampled_from(sorted({v for v in image if v is not None}, key=repr))
    elif plan.transform_names:
        first = plan.transform_names[0].split(":")[0]
        raw = st.sampled_from(TRANSFORM_INPUTS[first]) if first in TRANSFORM_INPUTS else texts

        def chain(value: str) -> Any:
            for name in plan.transform_names:
                value = get_transform(name)(value) if value else value
            return value or None
        base = raw.map(chain).filter(lambda v: v is not None)
    else:
        source_type = plan.source_type or plan.type
        base = BY_TYPE[source_type]
        if source_type != plan.type:
            to_canonical = parser_for(plan.type, tz)
            if (source_type, plan.type) == ("datetime", "date"):
                base = base.map(lambda v: v.astimezone(tz).date())
            else:
                base = base.map(to_canonical)
    return base if plan.default is not None else st.none() | base


def canonical_values(mapping: Mapping) -> st.SearchStrategy[dict[str, Any]]:
    plan = mapping.plan
    fields = {}
    for field in plan.fields:
        if field.readonly or field.target != field.source:
            continue
        strategy = field_strategy(field, plan.tz)
        if field.source == plan.key:            # the key must be present for the record to map
            strategy = strategy.filter(lambda v: v is not None)
        fields[field.name] = strategy
    return st.fixed_dictionaries({}, optional=fields)


@pytest.mark.parametrize("path,entity", mapping_files())
def test_round_trip(path: Path, entity: str) -> None:
    mapping = load_mapping(path, entity)
    key = mapping.plan.key

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(canonical_values(mapping))
    def check(values: dict[str, Any]) -> None:
        source = mapping.to_source(values)
        node = source
        for part in key[:-1]:
            node = node.setdefault(part, {})
        if node.get(key[-1]) in (None, ""):
            node[key[-1]] = "K-1"
        back = mapping.to_canonical(source).values
        assert {name: back[name] for name in values} == values

    check()


def test_round_trip_finds_a_lossy_mapping(write_yaml) -> None:
    """The property is able to fail: a `to:` map that does not invert the `values` map breaks it."""
    mapping = load_mapping(write_yaml("""
        source: A
        key: Id
        fields:
          name: {from: N, values: {a: x, b: y}, to: {x: a, y: a}}
        """), "customer")

    @settings(max_examples=20, deadline=None, database=None)
    @given(canonical_values(mapping))
    def check(values: dict[str, Any]) -> None:
        back = mapping.to_canonical({"Id": "1", **mapping.to_source(values)}).values
        assert {name: back[name] for name in values} == values

    with pytest.raises(AssertionError):
        check()


def test_mapping_files_are_found() -> None:
    assert len(mapping_files()) >= 3
