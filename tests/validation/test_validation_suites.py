"""Loading expectation suites: the shipped defaults and deployment overrides."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub.canonical import ENTITIES
from hub.errors import ConfigError
from hub.validation import load_suite
from hub.validation_suites import shipped_path


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_each_shipped_suite_loads(entity):
    suite = load_suite(entity)
    assert suite.entity == entity
    assert Path(suite.path) == shipped_path(entity)
    assert suite.expectations, "a shipped suite must check something"
    assert [s.index for s in suite.expectations] == list(range(len(suite.expectations)))


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_shipped_suite_requires_the_natural_key(entity):
    key = ENTITIES[entity].natural_key
    required = {s.kwargs["column"] for s in load_suite(entity).expectations
                if s.name == "expect_column_values_to_not_be_null"}
    assert key in required


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_shipped_enum_sets_match_the_canonical_model(entity):
    sets = {s.kwargs["column"]: tuple(s.kwargs["value_set"]) for s in load_suite(entity).expectations
            if s.name == "expect_column_values_to_be_in_set"}
    assert sets == dict(ENTITIES[entity].enums)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_shipped_suite_checks_currency_and_non_negative_money(entity):
    suite = load_suite(entity).expectations
    regexes = {s.kwargs["column"]: s.kwargs["regex"] for s in suite
               if s.name == "expect_column_values_to_match_regex"}
    assert regexes["currency"] == "^[A-Z]{3}$"
    money = [c for c, t in ENTITIES[entity].fields.items() if t == "decimal"]
    between = {s.kwargs["column"]: s.kwargs for s in suite if s.name == "expect_column_values_to_be_between"}
    assert set(money) <= set(between)
    assert all(between[c]["min_value"] == 0 and "max_value" not in between[c] for c in money)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_line_numbers_point_at_items(entity):
    lines = shipped_path(entity).read_text().splitlines()
    for spec in load_suite(entity).expectations:
        assert lines[spec.line - 1].startswith(f"- {{expectation: {spec.name},") \
            or lines[spec.line - 1] == f"- expectation: {spec.name}"


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_override_is_read_instead_of_the_shipped_file(tmp_path):
    path = write(tmp_path, """\
        - {expectation: expect_column_values_to_be_in_set, column: tier, value_set: [A, B]}
        """)
    suite = load_suite("customer", override_path=path)
    assert suite.path == path
    assert [(s.name, s.kwargs) for s in suite.expectations] == [
        ("expect_column_values_to_be_in_set", {"column": "tier", "value_set": ["A", "B"]})]


def test_empty_list_is_a_valid_suite(tmp_path):
    assert load_suite("payment", override_path=write(tmp_path, "[]\n")).expectations == ()


BAD_SUITES = [
    pytest.param("""\
        - {expectation: expect_column_values_to_not_be_null, column: code}
        - {expectation: expect_column_values_to_be_in_sett, column: status, value_set: [active]}
        """, 2, 1, ["unknown expectation 'expect_column_values_to_be_in_sett'",
                    "did you mean 'expect_column_values_to_be_in_set'"], id="unknown-name"),
    pytest.param("""\
        - {expectation: expect_column_values_to_be_in_set, column: status}
        """, 1, 0, ["expect_column_values_to_be_in_set: bad arguments", "value_set"], id="missing-kwarg"),
    pytest.param("""\
        # leading comment
        - {expectation: expect_column_values_to_not_be_null, column: code, colour: red}
        """, 2, 0, ["bad arguments", "colour", "extra fields not permitted"], id="extra-kwarg"),
    pytest.param("""\
        - {expectation: expect_column_values_to_be_between, column: credit_limit, min_value: lots}
        """, 1, 0, ["bad arguments", "min_value"], id="bad-kwarg-type"),
    pytest.param("""\
        - {expectation: expect_column_values_to_not_be_null, column: emial}
        """, 1, 0, ["column 'emial' is not a column of this entity"], id="unknown-column"),
    pytest.param("""\
        - {expectation: expect_column_values_to_not_be_null, column: code}
        - expectation: expect_column_values_to_match_regex
          column: email
          regex: "([a-z"
        """, 2, 1, ["regex '([a-z' is not a valid regular expression"], id="bad-regex"),
    pytest.param("""\
        - {expectation: expect_column_values_to_not_be_null, column: code, result_format: BOOLEAN_ONLY}
        """, 1, 0, ["result_format cannot be set"], id="reserved-kwarg"),
    pytest.param("""\
        - {column: code}
        """, 1, 0, ["missing 'expectation'"], id="no-name"),
    pytest.param("""\
        - expect_column_values_to_not_be_null
        """, 1, 0, ["expected a mapping"], id="item-not-mapping"),
    pytest.param("""\
        - {expectation: unexpected_rows_expectation, unexpected_rows_query: "select 1"}
        """, 1, 0, ["unknown expectation 'unexpected_rows_expectation'"], id="sql-only"),
]


@pytest.mark.parametrize("text, line, index, fragments", BAD_SUITES)
def test_bad_override_names_file_line_item_and_problem(tmp_path, text, line, index, fragments):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_suite("customer", override_path=path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: expectation #{index}: ")
    for fragment in fragments:
        assert fragment in message
    assert err.value.context == {"entity": "customer"}


@pytest.mark.parametrize("text, problem", [
    ("expectation: expect_column_values_to_not_be_null\ncolumn: code\n", "expected a list of expectations, got dict"),
    ("", "expected a list of expectations, got nothing"),
    ("- [unclosed\n", "invalid YAML"),
])
def test_bad_override_file_shape(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="^" + path.replace(".", r"\.")) as err:
        load_suite("order", override_path=path)
    assert problem in str(err.value)


def test_missing_override_file(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as err:
        load_suite("customer", override_path=path)
    assert path in str(err.value) and "cannot read" in str(err.value)


def test_lines_is_not_a_validatable_column(tmp_path):
    path = write(tmp_path, "- {expectation: expect_column_values_to_not_be_null, column: lines}\n")
    with pytest.raises(ConfigError, match="'lines' is not a column"):
        load_suite("order", override_path=path)


def test_importing_validation_does_not_import_great_expectations():
    code = ("import sys, hub.validation, hub.validation_suites; "
            "print(sorted(m for m in ('great_expectations', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
