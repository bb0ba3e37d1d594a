"""Inbound: raw source records (values exactly as systems send them) -> canonical values."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from hub.errors import MappingError
from hub.mapping import MappedRecord, preview

UTC = timezone.utc

CUSTOMER = """
updated_at: LastModifiedDate
timezone: Asia/Shanghai
fields:
  code: AccountNumber
  name: Name
  phone: {from: Phone, transform: phone_e164}
  tax_id: {from: TaxId__c, transform: [strip, upper]}
  country: {from: BillingCountry, transform: country_iso2}
  credit_limit: {from: CreditLimit__c, type: decimal}
  status: {from: Active__c, values: {"true": active, "false": inactive}}
  owner: {from: Owner.Name, readonly: true}
  created_at: CreatedDate
"""

ORDER = """
source: A_SalesOrder
key: SalesOrder
updated_at: LastChangeDateTime
deleted: {from: IsDeleted, values: ["true", true, X]}
fields:
  order_no: SalesOrder
  customer_id: {from: SoldToParty, ref: customer}
  contract_id: {from: Contract, ref: contract}
  order_date: SalesOrderDate
  total_amount: TotalNetAmount
  lines:
    from: to_Item.results
    each:
      line_no: SalesOrderItem
      sku: {from: Material, transform: upper}
      quantity: RequestedQuantity
      unit_price: {from: Price.Amount}
"""


def test_spec_example_record(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    raw = {"Id": "001A", "AccountNumber": "00123", "Name": "上海示例贸易有限公司", "Phone": "021-5555 0101",
           "TaxId__c": " 91110000600037341l ", "BillingCountry": "中国", "CreditLimit__c": "1,234.50",
           "Active__c": True, "Owner": {"attributes": {"type": "User"}, "Name": "李雷"},
           "CreatedDate": "2026-01-05T08:30:00.000+0000", "LastModifiedDate": "2026-03-01 09:00:00"}
    record = mapping.to_canonical(raw)
    assert isinstance(record, MappedRecord)
    assert record.source_id == "001A"
    assert record.source_ts == datetime(2026, 3, 1, 1, 0, tzinfo=UTC)      # naive, read in Asia/Shanghai
    assert record.values == {
        "code": "00123", "name": "上海示例贸易有限公司", "phone": "+862155550101",
        "tax_id": "91110000600037341L", "country": "CN", "credit_limit": Decimal("1234.50"),
        "status": "active", "owner": "李雷", "created_at": datetime(2026, 1, 5, 8, 30, tzinfo=UTC)}
    assert record.refs == {}
    assert record.deleted is False


def test_missing_and_empty_source_fields_are_none(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    record = mapping.to_canonical({"Id": "1", "Name": "", "Phone": "   ", "CreditLimit__c": None, "Owner": None})
    assert all(value is None for value in record.values.values())
    assert record.source_ts is None


def test_strings_stay_as_sent(make_mapping) -> None:
    mapping = make_mapping("fields: {code: Code, phone: Phone, postal_code: Zip, name: Name}\n")
    values = mapping.to_canonical({"Id": 7, "Code": "00123", "Phone": "+86 21 5555 0101", "Zip": "010020",
                                   "Name": "  ACME  "}).values
    assert values == {"code": "00123", "phone": "+86 21 5555 0101", "postal_code": "010020", "name": "  ACME  "}
    # numbers from JSON sources become their text (integral floats from spreadsheets without '.0')
    values = mapping.to_canonical({"Id": 7, "Code": 123, "Zip": 200000.0, "Phone": 8613800138000}).values
    assert values["code"] == "123" and values["postal_code"] == "200000" and values["phone"] == "8613800138000"
    assert mapping.to_canonical({"Id": 7}).source_id == "7"


@pytest.mark.parametrize("raw,expected", [
    ("1,234.50", Decimal("1234.50")), ("1234.5", Decimal("1234.5")), ("-0.01", Decimal("-0.01")),
    (" 88 ", Decimal("88")), (12, Decimal("12")), (12.5, Decimal("12.5")), ("1，000", Decimal("1000")),
])
def test_decimal(make_mapping, raw, expected) -> None:
    mapping = make_mapping("fields: {credit_limit: {from: L, type: decimal}}\n")
    value = mapping.to_canonical({"Id": "1", "L": raw}).values["credit_limit"]
    assert value == expected and isinstance(value, Decimal)
    assert str(value) == str(expected)


@pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity", "1.2.3", [1]])
def test_decimal_invalid(make_mapping, raw) -> None:
    mapping = make_mapping("fields: {credit_limit: {from: L, type: decimal}}\n")
    with pytest.raises(MappingError) as info:
        mapping.to_canonical({"Id": "1", "L": raw})
    assert info.value.field == "credit_limit"
    assert "credit_limit" in info.value.message and "from L" in info.value.message


@pytest.mark.parametrize("raw,expected", [("00010", 10), ("1,200", 1200), ("12.0", 12), (7, 7), (7.0, 7)])
def test_int(make_mapping, raw, expected) -> None:
    mapping = make_mapping("fields: {lines: {from: L, each: {line_no: N}}}\n", entity="order")
    assert mapping.to_canonical({"Id": "1", "L": [{"N": raw}]}).values["lines"] == [{"line_no": expected}]


@pytest.mark.parametrize("raw", ["12.5", "ten", True])
def test_int_invalid(make_mapping, raw) -> None:
    mapping = make_mapping("fields: {lines: {from: L, each: {line_no: N}}}\n", entity="order")
    with pytest.raises(MappingError, match=r"lines\[0\]\.line_no") as info:
        mapping.to_canonical({"Id": "1", "L": [{"N": raw}]})
    assert info.value.field == "lines"


@pytest.mark.parametrize("raw,expected", [
    ("true", "true"), ("false", "false"), ("1", "true"), ("0", "false"), ("yes", "true"), ("No", "false"),
    ("Y", "true"), ("n", "false"), ("X", "true"), (True, "true"), (False, "false"), (1, "true"), ("是", "true"),
])
def test_bool(make_mapping, raw, expected) -> None:
    # no canonical field is a bool: a bool source read into a text field gives "true"/"false"
    mapping = make_mapping("fields: {tier: {from: Flag, type: bool}}\n")
    assert mapping.to_canonical({"Id": "1", "Flag": raw}).values["tier"] == expected


def test_bool_source_through_a_values_map(make_mapping) -> None:
    mapping = make_mapping("""
        fields:
          status: {from: BlockFlag, type: bool, values: {true: blocked, false: active}}
        """)
    assert [mapping.to_canonical({"Id": "1", "BlockFlag": raw}).values["status"]
            for raw in ("X", "N", True, "0", "yes")] == ["blocked", "active", "blocked", "active", "blocked"]
    with pytest.raises(MappingError, match="not a boolean: 'maybe'"):
        mapping.to_canonical({"Id": "1", "BlockFlag": "maybe"})


@pytest.mark.parametrize("raw,expected", [
    ("2026-01-05", date(2026, 1, 5)), ("/Date(1767571200000)/", date(2026, 1, 5)),
    ("/Date(1767571200000+0000)/", date(2026, 1, 5)), ("2026/01/05", date(2026, 1, 5)),
    ("2026年1月5日", date(2026, 1, 5)), ("2026-01-05T00:00:00", date(2026, 1, 5)),
    ("20260105", date(2026, 1, 5)), (1767571200000, date(2026, 1, 5)),
])
def test_date(make_mapping, raw, expected) -> None:
    mapping = make_mapping("fields: {order_date: D}\n", entity="order")
    assert mapping.to_canonical({"Id": "1", "D": raw}).values["order_date"] == expected


@pytest.mark.parametrize("raw", ["2026-13-01", "yesterday", "05/01/2026x"])
def test_date_invalid(make_mapping, raw) -> None:
    mapping = make_mapping("fields: {order_date: D}\n", entity="order")
    with pytest.raises(MappingError, match="order_date") as info:
        mapping.to_canonical({"Id": "1", "D": raw})
    assert info.value.field == "order_date"


@pytest.mark.parametrize("tz,raw,expected", [
    ("UTC", "2026-01-05T08:30:00.000+0000", datetime(2026, 1, 5, 8, 30, tzinfo=UTC)),       # Salesforce
    ("UTC", "/Date(1700000000000)/", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),         # SAP Edm.DateTime
    ("UTC", "/Date(1700000000000+0000)/", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),    # DateTimeOffset
    ("UTC", 1700000000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),                  # epoch ms
    ("UTC", "2026-01-05 08:30:00", datetime(2026, 1, 5, 8, 30, tzinfo=UTC)),
    ("UTC", "2026-01-05T08:30:00Z", datetime(2026, 1, 5, 8, 30, tzinfo=UTC)),
    ("Asia/Shanghai", "2026-03-01 09:00:00", datetime(2026, 3, 1, 1, 0, tzinfo=UTC)),
    ("Asia/Shanghai", "2026-03-01T09:00:00+08:00", datetime(2026, 3, 1, 1, 0, tzinfo=UTC)),
    ("Asia/Shanghai", "2026-03-01T09:00:00Z", datetime(2026, 3, 1, 9, 0, tzinfo=UTC)),       # offset wins
    ("Asia/Shanghai", "/Date(1700000000000)/", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("Asia/Shanghai", "2026/03/01 09:00:00", datetime(2026, 3, 1, 1, 0, tzinfo=UTC)),
    ("America/New_York", "2026-07-01 12:00:00", datetime(2026, 7, 1, 16, 0, tzinfo=UTC)),     # summer time
    ("America/New_York", "2026-01-15 12:00:00", datetime(2026, 1, 15, 17, 0, tzinfo=UTC)),
])
def test_datetime_and_timezone(make_mapping, tz, raw, expected) -> None:
    mapping = make_mapping(f"timezone: {tz}\nupdated_at: Modified\nfields: {{created_at: C}}\n")
    record = mapping.to_canonical({"Id": "1", "C": raw, "Modified": raw})
    for value in (record.values["created_at"], record.source_ts):
        assert value == expected
        assert value.utcoffset() == timedelta(0)


def test_datetime_invalid_names_field(make_mapping) -> None:
    mapping = make_mapping("updated_at: Modified\nfields: {created_at: C}\n")
    with pytest.raises(MappingError) as info:
        mapping.to_canonical({"Id": "1", "C": "not a time"})
    assert info.value.field == "created_at"
    with pytest.raises(MappingError) as info:
        mapping.to_canonical({"Id": "1", "Modified": "2026-02-30 10:00"})
    assert info.value.field == "updated_at"


def test_values_map_compares_as_strings(make_mapping) -> None:
    mapping = make_mapping("""
        fields:
          status: {from: S, values: {true: active, "false": inactive, 9: blocked}}
        """)
    got = [mapping.to_canonical({"Id": "1", "S": raw}).values["status"]
           for raw in (True, "true", False, "false", "9", 9, "TRUE")]
    assert got == ["active", "active", "inactive", "inactive", "blocked", "blocked", "active"]
    with pytest.raises(MappingError, match="unknown value 'maybe'.*known: true, false, 9") as info:
        mapping.to_canonical({"Id": "1", "S": "maybe"})
    assert info.value.field == "status"


def test_transform_failure_names_field(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    with pytest.raises(MappingError, match="phone: invalid phone number '12345'") as info:
        mapping.to_canonical({"Id": "1", "Phone": "12345"})
    assert info.value.field == "phone"


def test_default_fills_missing_values(make_mapping) -> None:
    mapping = make_mapping("fields: {currency: {from: Cur, default: CNY},\n"
                           "         customer_type: {from: T, default: company}}\n")
    assert mapping.to_canonical({"Id": "1"}).values == {"currency": "CNY", "customer_type": "company"}
    assert mapping.to_canonical({"Id": "1", "Cur": "USD", "T": ""}).values == {
        "currency": "USD", "customer_type": "company"}


def test_order_with_lines_refs_and_delete_flag(make_mapping) -> None:
    mapping = make_mapping(ORDER, entity="order", header="")
    raw = {"SalesOrder": "4711", "SoldToParty": "17100001", "Contract": "",
           "SalesOrderDate": "/Date(1767571200000)/",
           "TotalNetAmount": "1,050.00", "LastChangeDateTime": "/Date(1767600000000+0000)/", "IsDeleted": "X",
           "to_Item": {"results": [
               {"SalesOrderItem": "10", "Material": "tg11", "RequestedQuantity": "2", "Price": {"Amount": "500.00"}},
               {"SalesOrderItem": "20", "Material": "tg12", "RequestedQuantity": "1.5", "Price": {}}]}}
    record = mapping.to_canonical(raw)
    assert record.source_id == "4711"
    assert record.deleted is True
    assert record.source_ts == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert record.values["customer_id"] == "17100001"          # the source id: xref resolves it later
    assert record.refs == {"customer_id": "customer"}           # contract_id is empty: nothing to resolve
    assert record.values["total_amount"] == Decimal("1050.00")
    assert record.values["lines"] == [
        {"line_no": 10, "sku": "TG11", "quantity": Decimal("2"), "unit_price": Decimal("500.00")},
        {"line_no": 20, "sku": "TG12", "quantity": Decimal("1.5"), "unit_price": None}]
    assert mapping.to_canonical({**raw, "IsDeleted": False}).deleted is False
    assert mapping.to_canonical({**raw, "IsDeleted": "x"}).deleted is True        # compared ignoring case
    assert mapping.to_canonical({**raw, "IsDeleted": "N"}).deleted is False
    assert mapping.to_canonical({**raw, "IsDeleted": True}).deleted is True
    assert mapping.to_canonical({**raw, "Contract": "800001"}).refs == {
        "customer_id": "customer", "contract_id": "contract"}


def test_lines_errors(make_mapping) -> None:
    mapping = make_mapping(ORDER, entity="order", header="")
    base = {"SalesOrder": "1"}
    assert "lines" not in mapping.to_canonical(base).values          # not carried: says nothing of the lines
    assert mapping.to_canonical({**base, "to_Item": None}).values["lines"] is None
    assert mapping.to_canonical({**base, "to_Item": {"results": []}}).values["lines"] == []
    with pytest.raises(MappingError, match=r"lines\[1\]\.quantity: not a decimal") as info:
        mapping.to_canonical({**base, "to_Item": {"results": [{"RequestedQuantity": "1"},
                                                               {"RequestedQuantity": "zwei"}]}})
    assert info.value.field == "lines"
    with pytest.raises(MappingError, match="expected a list of lines"):
        mapping.to_canonical({**base, "to_Item": {"results": {"x": 1}}})


def test_lines_from_a_json_cell(make_mapping) -> None:
    mapping = make_mapping("fields: {lines: {from: Lines, each: {sku: sku, quantity: qty}}}\n", entity="order")
    record = mapping.to_canonical({"Id": "1", "Lines": '[{"sku": "A-1", "qty": "3"}]'})
    assert record.values["lines"] == [{"sku": "A-1", "quantity": Decimal("3")}]


def test_deleted_as_plain_bool_field(make_mapping) -> None:
    mapping = make_mapping("deleted: Inactive\nfields: {name: Name}\n")
    assert [mapping.to_canonical({"Id": "1", "Inactive": v}).deleted for v in ("X", "", "N", None, "true")] == [
        True, False, False, False, True]


def test_dotted_paths_nested_and_flat(make_mapping) -> None:
    mapping = make_mapping("fields: {owner: Owner.Name, name: FName, code: FCustId.FNumber}\n")
    nested = mapping.to_canonical({"Id": "1", "Owner": {"Name": "韩梅梅"}, "FCustId": {"FNumber": "CUST0001"}})
    assert nested.values == {"owner": "韩梅梅", "code": "CUST0001"}     # FName not carried: not a value
    # Kingdee-style flat result rows name nested fields by their dotted path
    flat = mapping.to_canonical({"Id": "1", "FCustId.FNumber": "CUST0002", "Owner": "not a dict"})
    assert flat.values["code"] == "CUST0002" and flat.values["owner"] is None


def test_missing_key_is_a_mapping_error(make_mapping) -> None:
    mapping = make_mapping("fields: {name: Name}\n")
    with pytest.raises(MappingError, match="record has no Id"):
        mapping.to_canonical({"Name": "x"})


def test_source_fields(make_mapping) -> None:
    mapping = make_mapping(ORDER, entity="order", header="")
    assert mapping.source_fields() == ["SalesOrder", "LastChangeDateTime", "IsDeleted", "SoldToParty",
                                       "Contract", "SalesOrderDate", "TotalNetAmount", "to_Item"]
    assert "to_Item.results" in mapping.source_paths()
    assert make_mapping(CUSTOMER).source_fields() == [
        "Id", "LastModifiedDate", "AccountNumber", "Name", "Phone", "TaxId__c", "BillingCountry",
        "CreditLimit__c", "Active__c", "Owner", "CreatedDate"]


def test_preview(make_mapping) -> None:
    mapping = make_mapping(CUSTOMER)
    rows = preview(mapping, [{"Id": "1", "Name": "ACME", "CreditLimit__c": "10"},
                             {"Id": "2", "CreditLimit__c": "ten"}])
    assert rows[0]["canonical"]["name"] == "ACME" and rows[0]["source_id"] == "1"
    assert rows[0]["raw"] == {"Id": "1", "Name": "ACME", "CreditLimit__c": "10"}
    assert "error" not in rows[0]
    assert rows[1]["field"] == "credit_limit" and "not a decimal" in rows[1]["error"]
    assert "canonical" not in rows[1]

