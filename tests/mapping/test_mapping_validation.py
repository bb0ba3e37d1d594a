"""Load-time checks: every error kind names the file, the line and the YAML key path."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import ConfigError
from hub.mapping import MappingIssue, load_mapping, validate_mapping_file
from hub.transforms import known_transforms


def issues_of(write_yaml, text: str, entity: str = "customer") -> tuple[Path, list[str]]:
    path = write_yaml(text)
    return path, [str(issue) for issue in validate_mapping_file(path, entity)]


def test_good_file_has_no_issues(write_yaml) -> None:
    path = write_yaml("""
        source: Account
        key: Id
        updated_at: LastModifiedDate
        timezone: Asia/Shanghai
        deleted: {from: IsDeleted, values: ["true", true]}
        options: {api_version: "59.0", anything: [1, 2]}
        fields:
          name: Name
          phone: {from: Phone, transform: "phone_e164:CN"}
          country: {from: BillingCountry, values: {China: CN, 中国: CN}, to: {CN: China}}
          status: {from: Active__c, values: {"true": active, "false": inactive}}
          owner: {from: Owner.Name, readonly: true}
        """)
    assert validate_mapping_file(path, "customer") == []
    mapping = load_mapping(path, "customer")
    assert (mapping.source, mapping.key, mapping.updated_at, mapping.timezone) == (
        "Account", "Id", "LastModifiedDate", "Asia/Shanghai")
    assert mapping.options == {"api_version": "59.0", "anything": [1, 2]}
    assert mapping.writable_fields == ("name", "phone", "country", "status")


def test_unknown_transform(write_yaml) -> None:
    path, issues = issues_of(write_yaml, """
        source: Account
        key: Id
        fields:
          name: Name
          phone:
            from: Phone
            transform: phone164
        """)
    assert len(issues) == 1
    assert issues[0].startswith(f"{path}:7: fields.phone.transform: unknown transform 'phone164'; known: ")
    assert "phone_e164" in issues[0] and "strip" in issues[0]


def test_unknown_transform_in_a_list_points_at_the_item(write_yaml) -> None:
    path, issues = issues_of(write_yaml, """
        source: Account
        key: Id
        fields:
          tax_id:
            from: TaxId__c
            transform:
              - strip
              - uper
        """)
    assert issues == [f"{path}:8: fields.tax_id.transform[1]: unknown transform 'uper'; known: "
                      + ", ".join(known_transforms())]


def test_unknown_canonical_field(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "source: A\nkey: Id\nfields:\n  name: Name\n  phon: Phone\n")
    assert len(issues) == 1
    assert issues[0].startswith(f"{path}:5: fields.phon: unknown canonical field 'phon'; known: code, name, ")


def test_unknown_type(write_yaml) -> None:
    path, issues = issues_of(write_yaml, """
        source: A
        key: Id
        fields:
          credit_limit: {from: Limit, type: money}
        """)
    assert issues == [f"{path}:4: fields.credit_limit.type: unknown type 'money'; known: "
                      "string, int, decimal, bool, date, datetime"]


def test_incompatible_type(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "source: A\nkey: Id\nfields:\n  credit_limit: {from: L, type: date}\n")
    assert issues == [f"{path}:4: fields.credit_limit.type: a date source value cannot be stored in "
                      "credit_limit, a decimal field"]


def test_values_map_that_cannot_be_inverted(write_yaml) -> None:
    text = """
        source: A
        key: Id
        fields:
          country:
            from: BillingCountry
            values:
              China: CN
              中国: CN
              United States: US
            {extra}
        """
    path, issues = issues_of(write_yaml, text.format(extra=""))
    assert len(issues) == 1
    assert issues[0].startswith(f"{path}:6: fields.country.values: cannot be inverted for writing: "
                                "'China', '中国' all map to 'CN'")
    # readonly, or an explicit `to:` map, makes it acceptable
    assert issues_of(write_yaml, text.format(extra="readonly: true"))[1] == []
    assert issues_of(write_yaml, text.format(extra="to: {CN: China, US: United States}"))[1] == []
    assert issues_of(write_yaml, text.format(extra="to: {field: Country__c, values: {CN: China}}"))[1] == []
    # naming another outbound field does not say which source value to write
    assert len(issues_of(write_yaml, text.format(extra="to: Country__c"))[1]) == 1


def test_missing_key_and_source(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "# no header\nfields:\n  name: Name\n")
    assert f"{path}:1: source: required key 'source' is missing" in issues
    assert f"{path}:1: key: required key 'key' is missing" in issues
    assert len(issues) == 2


def test_unknown_keys(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "source: A\nkey: Id\nsorce: B\nfields:\n  name: {from: N, colour: red}\n")
    assert issues[0].startswith(f"{path}:3: sorce: unknown key 'sorce'; known: source, key, ")
    assert issues[1].startswith(f"{path}:5: fields.name.colour: unknown key 'colour'; known: from, type, ")


def test_bad_timezone(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "source: A\nkey: Id\ntimezone: Asia/Shanghi\nfields: {name: N}\n")
    assert issues == [f"{path}:3: timezone: unknown time zone 'Asia/Shanghi' (use an IANA name such as "
                      "Asia/Shanghai)"]


def test_values_must_fit_the_field(write_yaml) -> None:
    path, issues = issues_of(write_yaml, """
        source: A
        key: Id
        fields:
          status:
            from: S
            values:
              A: active
              B: actve
          credit_limit: {from: L, default: lots}
        """)
    assert issues == [
        f"{path}:8: fields.status.values.B: 'actve' is not a valid status; "
        "expected one of active, inactive, blocked",
        f"{path}:9: fields.credit_limit.default: not a decimal number: 'lots' (the canonical type of "
        "credit_limit is decimal)"]


def test_refs_and_each_checks(write_yaml) -> None:
    path, issues = issues_of(write_yaml, """
        source: VBAK
        key: VBELN
        fields:
          customer_id: {from: KUNNR, ref: contract}
          contract_id: {from: VGBEL, ref: contrakt}
          status: {from: S, each: {sku: X}}
          lines:
            from: Items
            each:
              sku: MATNR
              colour: FARBE
        """, entity="order")
    assert issues[0] == f"{path}:4: fields.customer_id.ref: customer_id refers to customer, not contract"
    assert issues[1].startswith(f"{path}:5: fields.contract_id.ref: unknown entity 'contrakt'; known: customer, ")
    assert issues[2].startswith(f"{path}:6: fields.status.each: `each` only applies to list fields")
    assert issues[3].startswith(f"{path}:11: fields.lines.each.colour: unknown canonical field 'colour'; known: "
                                "line_no, sku, ")
    assert len(issues) == 4
    _, issues = issues_of(write_yaml, "source: V\nkey: K\nfields:\n  lines: Items\n", entity="order")
    assert issues == [f"{path}:4: fields.lines: lines is a list of lines: "
                      "give `each:` with the fields of one line"]


def test_yaml_syntax_error_has_a_line(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "source: A\nkey: Id\nfields:\n  name: [unclosed\n  code: C\n")
    assert len(issues) == 1 and issues[0].startswith(f"{path}:5: invalid YAML")


def test_duplicate_keys_are_reported(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "source: A\nkey: Id\nfields:\n  name: N\n  name: M\n")
    assert issues == [f"{path}:5: fields.name: duplicate key 'name'"]


def test_not_a_map_and_unreadable(write_yaml, tmp_path) -> None:
    path, issues = issues_of(write_yaml, "- just\n- a list\n")
    assert issues == [f"{path}:1: a mapping file must be a YAML map with source, key and fields"]
    missing = tmp_path / "nope.yaml"
    found = validate_mapping_file(missing, "customer")
    assert len(found) == 1 and isinstance(found[0], MappingIssue)
    assert str(found[0]).startswith(f"{missing}:1: cannot read the mapping file")


def test_all_issues_at_once_and_load_raises(write_yaml) -> None:
    path = write_yaml("""
        source: Account
        timezone: Mars/Olympus
        fields:
          phon: Phone
          phone: {from: Phone, transform: [strip, phone164]}
          credit_limit: {from: L, type: money}
        """)
    issues = validate_mapping_file(path, "customer")
    assert [(i.line, i.path) for i in issues] == [
        (1, "key"), (2, "timezone"), (4, "fields.phon"), (5, "fields.phone.transform[1]"),
        (6, "fields.credit_limit.type")]
    with pytest.raises(ConfigError) as info:
        load_mapping(path, "customer")
    message = str(info.value)
    assert "5 issues" in message
    for issue in issues:
        assert str(issue) in message


def test_unknown_entity(write_yaml) -> None:
    path, issues = issues_of(write_yaml, "source: A\nkey: Id\nfields: {name: N}\n", entity="invoice")
    from hub.canonical import ENTITIES
    assert issues == [f"{path}:1: unknown entity 'invoice'; known: {', '.join(ENTITIES)}"]


def test_wrong_value_shapes(write_yaml) -> None:
    path, issues = issues_of(write_yaml, """
        source: [A]
        key: Id
        fields:
          name: {from: N, readonly: maybe}
          code: {from: C, transform: 5}
          tier: {from: T, to: [1, 2]}
          email: [x]
        deleted: {values: [1]}
        """)
    assert issues == [
        f"{path}:1: source: Input should be a valid string",
        f"{path}:4: fields.name.readonly: Input should be a valid boolean, unable to interpret input",
        f"{path}:5: fields.code.transform: Input should be a valid list",
        f"{path}:6: fields.tier.to: expected a source field name or a map of canonical -> source values",
        f"{path}:7: fields.email: expected a source field name or a map with from, type, transform, values, "
        "readonly, to, ref, each, default",
        f"{path}:8: deleted.from: required key 'from' is missing"]
