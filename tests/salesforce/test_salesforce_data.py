"""The simulator's seed data: deterministic, realistic, and internally consistent."""
from __future__ import annotations

import phonenumbers
import pytest
from stdnum.cn import uscc
from stdnum.de import vat as de_vat
from stdnum.gb import vat as gb_vat
from stdnum.us import ein

from connectors.salesforce.data import BASE_TIME, generate, sf_datetime
from connectors.salesforce.schema import OBJECTS, id_suffix, make_id, object_of_id


@pytest.fixture(scope="module")
def data() -> dict:
    return generate(7, 300)["objects"]


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert generate(3, 20) == generate(3, 20)
    assert generate(3, 20)["objects"]["Account"] != generate(4, 20)["objects"]["Account"]


def test_ids_are_18_characters_with_key_prefix_and_checksum(data) -> None:
    prefixes = {"Account": "001", "Contact": "003", "Opportunity": "006", "Order": "801", "OrderItem": "802",
                "Contract": "800", "Payment__c": "a0X"}
    for obj, prefix in prefixes.items():
        for rid in data[obj]:
            assert len(rid) == 18 and rid.startswith(prefix) and rid[15:] == id_suffix(rid[:15])
            assert object_of_id(rid) == obj
    assert id_suffix("001D000000IRFma") == "IAH"                 # the documented example id 001D000000IRFmaIAH
    assert make_id("001", 1) < make_id("001", 62) < make_id("001", 63)   # ids sort in creation order


def test_tax_ids_and_phones_are_valid(data) -> None:
    accounts = list(data["Account"].values())
    assert accounts[0]["Name"] == "上海星海贸易有限公司"
    validators = {"CNY": uscc, "EUR": de_vat, "GBP": gb_vat, "USD": ein}
    assert {a["CurrencyIsoCode"] for a in accounts} == set(validators)
    for a in accounts:
        assert validators[a["CurrencyIsoCode"]].is_valid(a["TaxId__c"]), a
        assert phonenumbers.is_valid_number(phonenumbers.parse(a["Phone"])), a["Phone"]
    chinese = [a for a in accounts if a["Name"].endswith("公司")]
    assert len(chinese) > len(accounts) / 3
    assert any(a["Name"].endswith("GmbH") for a in accounts) and any(a["Name"].endswith("Inc.") for a in accounts)


def test_references_point_at_existing_records(data) -> None:
    for order in data["Order"].values():
        assert order["AccountId"] in data["Account"]
        assert order["ContractId"] is None or order["ContractId"] in data["Contract"]
    lines: dict[str, float] = {}
    for item in data["OrderItem"].values():
        assert item["OrderId"] in data["Order"] and item["Product2Id"] in data["Product2"]
        lines[item["OrderId"]] = lines.get(item["OrderId"], 0) + item["TotalPrice"]
    for oid, total in lines.items():
        assert data["Order"][oid]["TotalAmount"] == round(total, 2)
    for pay in data["Payment__c"].values():
        assert data["Order"][pay["Order__c"]]["AccountId"] == pay["Account__c"]


def test_stamps_lie_in_the_two_weeks_before_the_base_time(data) -> None:
    stamps = [r["SystemModstamp"] for obj in ("Account", "Order", "Payment__c") for r in data[obj].values()]
    assert max(stamps) < sf_datetime(BASE_TIME)
    assert min(stamps) > sf_datetime(BASE_TIME.replace(day=1, month=10))
    assert all(set(r) == set(OBJECTS["Account"].fields) for r in data["Account"].values())
