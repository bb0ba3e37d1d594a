"""Hostile mapping files (corpus/mappings) and hostile records: `triad mappings validate` exits 1 with
file:line for every problem; load_mapping raises only ConfigError; Mapping.to_canonical raises only
MappingError, whatever a system sends (hypothesis, over every shipped mapping)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from hub.canonical import ENTITIES, TYPES
from hub.errors import ConfigError, MappingError
from hub.mapping import load_mapping, shipped_mappings_dir, validate_mapping_file
from hub.transforms import known_transforms

from .conftest import CORPUS, Project, clean, run_cli

FUZZ = settings(max_examples=80, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
FIND = settings(FUZZ, max_examples=40, phases=[Phase.generate])     # known findings: fail fast, no shrinking

# corpus file (without _customer.yaml) -> (line of the first problem, what the message says)
REFUSED = {
    "tabs": (4, "invalid YAML"),
    "unclosed_bracket": (4, "invalid YAML"),
    "duplicate_field": (6, "fields.name: duplicate key 'name'"),
    "python_tag": (1, "invalid YAML"),
    "merge_key": (4, "invalid YAML"),
    "two_documents": (4, "another document"),
    "empty": (1, "must be a YAML map"),
    "top_level_list": (1, "must be a YAML map"),
    "wrong_types": (1, "source: Input should be a valid string"),
    "missing_key": (1, "required key 'key' is missing"),
    "unknown_top_key": (3, "unknown key 'filter'"),
    "unknown_field": (5, "unknown canonical field"),
    "unknown_type": (4, "fields.name.type: unknown type 'blob'"),
    "unknown_transform": (4, "fields.name.transform[1]: unknown transform '__import__'"),
    "transform_not_list": (4, "fields.phone.transform"),
    "bad_region": (4, "phone region"),
    "timezone_traversal": (3, "unknown time zone"),
    "timezone_nul": (3, "unknown time zone"),
    "from_dots": (4, "bad source path"),
    "values_not_map": (4, "fields.status.values"),
    "values_not_invertible": (4, "cannot be inverted"),
    "values_bad_enum": (4, "is not a valid status"),
    "ref_sql": (4, "unknown entity"),
    "default_wrong_type": (4, "not a decimal number"),
    "each_on_scalar": (4, "`each` only applies"),
    "complex_key": (3, "a key must be a plain value"),
    "fields_null": (3, "fields"),
    "binary_garbage": (1, "cannot read the mapping file"),
    "utf16": (1, "cannot read the mapping file"),
    "nul_byte": (None, "invalid YAML"),       # the reader reports a character position, not a line
}
CRASHING = ["recursive_alias", "deep_nesting", "huge_int"]
SHIPPED = sorted(shipped_mappings_dir().glob("*/*.yaml"))


def _file(tmp_path: Path, name: str) -> Path:
    target = tmp_path / f"{name}_customer.yaml"
    shutil.copyfile(CORPUS / "mappings" / f"{name}_customer.yaml", target)
    return target


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_mapping_file_exits_1_with_file_and_line(tmp_path: Path, name: str):
    path = _file(tmp_path, name)
    line, needle = REFUSED[name]
    out = clean(run_cli("mappings", "validate", str(path), "--entity", "customer"), 1)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert where in out.stderr, out.describe()
    assert needle in out.stderr, out.describe()
    issues = validate_mapping_file(path, "customer")
    assert issues and all(i.file == str(path) and i.line >= 1 for i in issues)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_mapping(path, "customer")


def test_nul_in_a_source_field_name_is_only_a_name(tmp_path: Path):
    """Not an error: a field name is data, never a path or SQL; it maps to nothing when absent."""
    path = _file(tmp_path, "nul_escaped")
    clean(run_cli("mappings", "validate", str(path), "--entity", "customer"), 0)
    assert load_mapping(path, "customer").to_canonical({"customer_no": "C1", "na\x00me": "x"}).values["name"] == "x"


def test_missing_file_directory_and_unknown_entity(tmp_path: Path):
    out = clean(run_cli("mappings", "validate", str(tmp_path / "nope_customer.yaml")), 1)
    assert "nope_customer.yaml:1: cannot read the mapping file" in out.stderr
    out = clean(run_cli("mappings", "validate", str(tmp_path)), 1)
    assert f"{tmp_path}:1:" in out.stderr
    good = shipped_mappings_dir() / "file" / "customer.yaml"
    out = clean(run_cli("mappings", "validate", str(good), "--entity", "'; DROP TABLE customer;--"), 1)
    assert "unknown entity" in out.stderr


def test_five_megabyte_mapping_reports_the_right_line(tmp_path: Path):
    path = tmp_path / "big_customer.yaml"
    filler = "".join(f"# filler line {n} {'x' * 200}\n" for n in range(25_000))      # about 5 MB
    path.write_text("source: customers.csv\nkey: customer_no\nfields:\n  name: name\n" + filler
                    + "  nmae: name\n", encoding="utf-8")
    out = clean(run_cli("mappings", "validate", str(path), "--entity", "customer"), 1)
    assert f"{path}:{4 + 25_000 + 1}: fields.nmae: unknown canonical field" in out.stderr


def test_damaged_project_mapping_fails_its_stream_only(project: Project):
    (project.root / "mappings" / "crm_customer.yaml").write_bytes((CORPUS / "mappings" / "tabs_customer.yaml")
                                                                  .read_bytes())
    out = clean(project.triad("mappings", "validate"), 1)
    assert "crm_customer.yaml:4: invalid YAML" in out.stderr
    out = clean(project.triad("config", "validate"), 2)
    assert "crm_customer.yaml:4:" in out.stderr
    runs = project.sync()
    assert runs[("crm", "customer")]["status"] == "error" and "crm_customer.yaml" in runs[("crm", "customer")]["error"]
    assert runs[("erp", "customer")]["status"] == "ok" and runs[("erp", "customer")]["created"] == 4


@pytest.mark.parametrize("name", CRASHING)
def test_pathological_mapping_yaml_is_an_issue_not_a_crash(tmp_path: Path, name: str):
    path = _file(tmp_path, name)
    out = clean(run_cli("mappings", "validate", str(path), "--entity", "customer"), 1)
    assert f"{path}:" in out.stderr


# --- hypothesis: random mapping documents and damaged mapping text --------------------------------

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from([*TYPES, *known_transforms(), "phone_e164:CN", "phone_e164:", "a.b", "..", ".", "",
                     "customer", "order", "UTC", "Asia/Shanghai", "'; DROP TABLE customer;--", "../../etc/passwd"]))
_ANY = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=3)),
    max_leaves=6)
_FIELD_KEYS = ["from", "type", "transform", "values", "readonly", "to", "ref", "each", "default", "junk"]
_SPEC = st.one_of(
    _SCALARS,
    st.dictionaries(st.sampled_from(_FIELD_KEYS), _ANY, max_size=5),
    st.fixed_dictionaries({"from": st.text(max_size=8)}, optional={
        "to": st.dictionaries(st.sampled_from(["field", "values", "junk"]), _ANY, max_size=2),
        "each": st.dictionaries(st.sampled_from(["sku", "line_no", "quantity", "junk"]), _ANY, max_size=3),
        "values": st.dictionaries(st.one_of(st.text(max_size=6), st.integers(), st.booleans()), _ANY, max_size=3)}))


@st.composite
def _documents(draw: Any) -> tuple[str, Any]:
    entity = draw(st.sampled_from(sorted(ENTITIES)))
    top = draw(st.dictionaries(st.sampled_from(["source", "key", "updated_at", "timezone", "deleted", "options",
                                                "junk"]), _ANY, max_size=6))
    if draw(st.booleans()) or not top:
        names = [*ENTITIES[entity].fields, "junk"]
        top["fields"] = draw(st.dictionaries(st.sampled_from(names), _SPEC, max_size=6))
    return entity, top


def _only_config_errors(path: Path, entity: str) -> None:
    issues = validate_mapping_file(path, entity)
    assert isinstance(issues, list)
    try:
        load_mapping(path, entity)
    except ConfigError:
        assert issues, "load_mapping refused a file validate_mapping_file accepted"
    else:
        assert not issues, "load_mapping accepted a file validate_mapping_file refused"


@FUZZ
@given(_documents())
def test_random_mapping_documents_give_issues_never_crashes(tmp_path_factory: Any, doc: tuple[str, Any]):
    entity, document = doc
    path = tmp_path_factory.mktemp("doc") / f"m_{entity}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    _only_config_errors(path, entity)


_YAML_BITS = st.sampled_from([":", "{", "}", "[", "]", ",", "&a", "*a", "!", "!!str", "|", ">", "'", '"', "#",
                              "-", "\t", "\n", " ", "%", "@", "`", "?", "\\", "\x00", "\ufeff", "é", "\x85",
                              "\u2028", "<<"])


@FUZZ
@given(st.sampled_from(SHIPPED), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8), _YAML_BITS), min_size=1,
                                          max_size=6))
def test_damaged_shipped_mapping_text_gives_issues_never_crashes(tmp_path_factory: Any, shipped: Path,
                                                                 edits: list[tuple[float, int, str]]):
    text = shipped.read_text(encoding="utf-8")
    for where, cut, bit in edits:          # replace `cut` characters at a relative position with a YAML bit
        at = int(where * len(text))
        text = text[:at] + bit + text[at + cut:]
    path = tmp_path_factory.mktemp("mut") / shipped.name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_config_errors(path, shipped.stem)


# --- hypothesis: random raw records through every shipped mapping ---------------------------------

_MAPPINGS = {f"{p.parent.name}/{p.name}": load_mapping(p, p.stem) for p in SHIPPED}
_TRICKY_TEXT = ["", " ", "\t", "null", "None", "NaN", "-NaN", "Infinity", "1e999999", "0x1F", "1,2,3", "1,234.50",
                "true", "是", "否", "X", "\x00", "2024-13-45", "2024-02-30", "2024年13月45日", "２０２４年１月１日",
                "/Date(abc)/", "'; DROP TABLE customer;--", "%", "_", "../../etc/passwd", "+86 21", "-0", "00123",
                "1" * 400, "9" * 30 + ".5", "2026-11-01T08:00:00Z", "2026-11-01 08:00:00", "\u202e", "é" * 3]


def _sane_text(s: str) -> bool:
    # long digit runs are epoch timestamps: those far out of range are finding M3, covered below
    return not (s.strip().isdigit() and len(s.strip()) > 15)


_TEXT = st.one_of(st.text(max_size=40).filter(_sane_text), st.sampled_from(_TRICKY_TEXT))
_JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.sampled_from(
        _TRICKY_TEXT + ["99999999999999999999", "/Date(-99999999999999)/", "0001-01-01T00:00:00+14:00"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


def _records(mapping: Any, values: Any) -> Any:
    paths = mapping.source_paths() + ["junk"]
    return st.dictionaries(st.sampled_from(paths), values, max_size=len(paths))


def _only_mapping_errors(mapping: Any, raw: dict) -> None:
    try:
        record = mapping.to_canonical(raw)
    except MappingError as exc:
        assert exc.message
        return
    assert isinstance(record.source_id, str) and record.source_id


@pytest.mark.parametrize("name", sorted(_MAPPINGS))
def test_text_records_raise_only_mapping_errors(name: str):
    """What file readers and most APIs hand over: text values (and absent ones)."""
    mapping = _MAPPINGS[name]

    @FUZZ
    @given(_records(mapping, _TEXT))
    def check(raw: dict) -> None:
        _only_mapping_errors(mapping, raw)
    check()


def test_any_json_records_raise_only_mapping_errors():
    for name, mapping in sorted(_MAPPINGS.items()):
        @FIND
        @given(_records(mapping, _JSONISH))
        def check(raw: dict) -> None:
            _only_mapping_errors(mapping, raw)
        check()


@pytest.mark.parametrize("key", [[], ["C1"], {"id": "C1"}])
def test_non_scalar_key_is_a_mapping_error(key: Any):
    mapping = _MAPPINGS["salesforce/customer.yaml"]
    with pytest.raises(MappingError):
        mapping.to_canonical({"Id": key, "Name": "Acme"})


@pytest.mark.parametrize("mapping,raw", [
    ("file/payment.yaml", {"payment_no": "P1", "paid_at": "99999999999999999999"}),
    ("file/payment.yaml", {"payment_no": "P1", "paid_at": "/Date(-99999999999999)/"}),
    ("file/order.yaml", {"order_no": "O1", "order_date": "99999999999999999999"}),
    ("kingdee/customer.yaml", {"FCUSTID": "1", "FModifyDate": "0001-01-01T00:00:00"}),
    ("salesforce/customer.yaml", {"Id": "1", "SystemModstamp": "9999-12-31T23:59:59-14:00"}),
])
def test_out_of_range_dates_are_mapping_errors(mapping: str, raw: dict):
    with pytest.raises(MappingError):
        _MAPPINGS[mapping].to_canonical(raw)
