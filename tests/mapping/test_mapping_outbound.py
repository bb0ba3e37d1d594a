"""Outbound: canonical values -> the system's field names and formats."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from hub.errors import MappingError

UTC = timezone.utc

CUSTOMER = """
timezone: Asia/Shanghai
fields:
  code: AccountNumber
  name: Name
  country: {from: BillingCountry, values: {China: CN, 中国: CN, Germany: DE}, to: {CN: China, DE: Germany}}
  status: {from: Active__c, values: {true: active, false: inactive}}
  tier: {from: Tier__c, values: {"1": gold, "2": silver}}
  credit_limit: {from: CreditLimit__c, type: decimal}
  owner: {from: Owner.Name, readonly: true}
  city: {from: Address.City}
  province: {from: Address.State}
  created_at: CreatedDate
  email: {from: Email, to: PersonEmail}
"""


def test_rename_format_and_invert(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    values = {"code": "00123", "name": "上海示例", "country": "CN", "status": "inactive", "tier": "silver",
              "credit_limit": Decimal("1234.5"), "owner": "李雷", "city": "上海", "province": "上海市",
              "created_at": datetime(2026, 3, 1, 1, 0, tzinfo=UTC), "email": "a@b.cn"}
    assert mapping.to_source(values) == {
        "AccountNumber": "00123", "Name": "上海示例", "BillingCountry": "China",
        "Active__c": False,                       # the YAML key `false` is written as a boolean
        "Tier__c": "2",                           # the YAML key "2" as a string
        "CreditLimit__c": "1234.5",
        "Address": {"City": "上海", "State": "上海市"},   # dotted paths build nested objects
        "CreatedDate": "2026-03-01T09:00:00+08:00",      # ISO with the mapping's offset
        "PersonEmail": "a@b.cn",                   # `to:` names another outbound field
    }


def test_readonly_fields_are_never_written(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    assert mapping.to_source({"owner": "李雷"}) == {}
    assert "owner" not in mapping.writable_fields


def test_only_given_and_selected_fields(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    values = {"name": "ACME", "code": "C1", "city": None}
    assert mapping.to_source(values) == {"Name": "ACME", "AccountNumber": "C1", "Address": {"City": None}}
    assert mapping.to_source(values, fields=["name"]) == {"Name": "ACME"}
    assert mapping.to_source(values, fields=iter(["code", "owner"])) == {"AccountNumber": "C1"}


def test_decimal_and_date_formats(make_mapping) -> None:
    mapping = make_mapping("""
        fields:
          order_date: D
          total_amount: T
          tax_amount: X
        """, entity="order")
    out = mapping.to_source({"order_date": date(2026, 1, 5), "total_amount": Decimal("1234.50"),
                             "tax_amount": Decimal("1E+3")})
    assert out == {"D": "2026-01-05", "T": "1234.50", "X": "1000"}


def test_unknown_canonical_value_for_a_values_map(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    with pytest.raises(MappingError, match="status: no source value for 'blocked'") as info:
        mapping.to_source({"status": "blocked"})
    assert info.value.field == "status"


def test_wrong_python_type_is_a_mapping_error(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    with pytest.raises(MappingError) as info:
        mapping.to_source({"created_at": "yesterday"})
    assert info.value.field == "created_at"


def test_ref_fields_are_renamed_only(make_mapping) -> None:
    mapping = make_mapping("fields: {customer_id: {from: AccountId, ref: customer}, order_no: OrderNumber}\n",
                           entity="order")
    assert mapping.ref_fields == {"customer_id": "customer"}
    # the caller passes the target system's id, already resolved through xref
    assert mapping.to_source({"customer_id": "001XYZ", "order_no": "SO-1"}) == {
        "AccountId": "001XYZ", "OrderNumber": "SO-1"}


def test_lines_back_to_source_lists(make_mapping) -> None:
    mapping = make_mapping("""
        fields:
          order_no: VBELN
          lines:
            from: to_Item.results
            each:
              line_no: {from: POSNR, type: string}
              sku: MATNR
              quantity: {from: KWMENG, type: decimal}
              amount: {from: NETWR, readonly: true}
        """, entity="order")
    lines = [{"line_no": 10, "sku": "TG11", "quantity": Decimal("2.000"), "amount": Decimal("20.00")},
             {"line_no": 20, "sku": "TG12", "quantity": Decimal("1")}]
    assert mapping.to_source({"order_no": "4711", "lines": lines}) == {
        "VBELN": "4711",
        "to_Item": {"results": [{"POSNR": "10", "MATNR": "TG11", "KWMENG": "2.000"},
                                {"POSNR": "20", "MATNR": "TG12", "KWMENG": "1"}]}}
    assert mapping.to_source({"lines": None}) == {"to_Item": {"results": None}}


@pytest.mark.parametrize("type_,value,expected", [
    ("int", "00123", 123), ("bool", "true", True), ("decimal", "12.50", "12.50"), ("string", "x", "x"),
])
def test_source_type_formats_outbound(make_mapping, type_, value, expected) -> None:
    mapping = make_mapping(f"fields: {{tier: {{from: T, type: {type_}}}}}\n")
    assert mapping.to_source({"tier": value}) == {"T": expected}


def test_date_and_datetime_sources(make_mapping) -> None:
    mapping = make_mapping("""
        timezone: Asia/Shanghai
        fields:
          order_date: {from: D, type: datetime}
        """, entity="order")
    record = mapping.to_canonical({"Id": "1", "D": "2026-01-04T20:00:00Z"})
    assert record.values["order_date"] == date(2026, 1, 5)              # the local calendar day
    assert mapping.to_source(record.values) == {"D": "2026-01-05T00:00:00+08:00"}
    mapping = make_mapping("timezone: Asia/Shanghai\nfields: {created_at: {from: C, type: date}}\n")
    record = mapping.to_canonical({"Id": "1", "C": "2026-01-05"})
    assert record.values["created_at"] == datetime(2026, 1, 4, 16, 0, tzinfo=UTC)
    assert mapping.to_source(record.values) == {"C": "2026-01-05"}



REPO = Path(__file__).resolve().parents[2]
SHIPPED_CUSTOMER_MAPPINGS = sorted([*REPO.glob("mappings/*/customer.yaml"),
                                    *REPO.glob("config/samples/mappings/*_customer.yaml")])


@pytest.mark.parametrize("path", SHIPPED_CUSTOMER_MAPPINGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_customer_mapping_writes_every_allowed_status(path: Path):
    """A status the validation suite allows (active, inactive, blocked) never dies in the outbox as
    'no source value' for a mapping Triad ships or `triad init` writes."""
    import yaml

    from hub.mapping import load_mapping
    suite = yaml.safe_load((REPO / "config" / "expectations" / "customer.yaml").read_text(encoding="utf-8"))
    (allowed,) = [e["value_set"] for e in suite if e.get("column") == "status"]
    mapping = load_mapping(path, "customer")
    if "status" not in mapping.writable_fields:
        pytest.skip("the mapping does not write status")
    for status in allowed:
        assert mapping.to_source({"status": status}, ["status"]), (path, status)


def test_a_value_the_field_would_refuse_on_reading_back_is_not_written(make_mapping) -> None:
    """YonBIP's creditCode is read as a Chinese unified social credit code: a German VAT id written there
    made the merchant, and every read of it then parked it as a mapping error."""
    mapping = make_mapping("""
        fields:
          tax_id: {from: creditCode, transform: tax_id_cn}
          phone: {from: contactTel, transform: phone_e164}
          name: {from: name, transform: [strip, upper]}
        """)
    assert mapping.to_source({"tax_id": "91310115MA1H7GQX4A", "phone": "+4989123456", "name": "acme "}) == {
        "creditCode": "91310115MA1H7GQX4A", "contactTel": "+4989123456", "name": "acme "}   # written as they are
    with pytest.raises(MappingError, match=r"tax_id: 'DE538685015' is not written, as reading it back would "
                                           r"refuse it \(invalid unified social credit code") as exc:
        mapping.to_source({"tax_id": "DE538685015", "name": "Müller GmbH"})
    assert exc.value.field == "tax_id"
    assert mapping.to_source({"tax_id": None}) == {"creditCode": None}
