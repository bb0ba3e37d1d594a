"""The shipped SAP mappings: valid, and they carry every simulated record through both directions."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from connectors.sap.connector import SapConnector
from connectors.sap.simulator import create_app
from connectors.sap.writes import unfold_picks
from connectors.simkit import SimOptions, SimServer
from hub.canonical import ENTITIES
from hub.mapping import shipped_mappings_dir, validate_mapping_file

from .conftest import FAST_RETRY, PASSWORD, USER, mapping, stream_of


@pytest.mark.parametrize("entity", ["customer", "order"])
def test_shipped_mapping_is_valid(entity):
    assert validate_mapping_file(shipped_mappings_dir() / "sap" / f"{entity}.yaml", entity) == []


@pytest.fixture(scope="module")
def raw_records():
    """Raw records of a larger simulated data set, as the connector hands them to the pipeline."""
    app = create_app(SimOptions(seed=1234, records=150))
    with SimServer(app) as srv:
        conn = SapConnector("erp", {"base_url": srv.base_url, "auth": {"user": USER, "password": PASSWORD},
                                    "retry": FAST_RETRY})
        out = {entity: [r for b in conn.read(stream_of(entity), None) for r in b.records]
               for entity in ("customer", "order")}
        model = conn.model("API_BUSINESS_PARTNER")
        conn.close()
    return out, model


def test_every_partner_maps_to_a_valid_customer(raw_records):
    records, _ = raw_records
    m = mapping("customer")
    mapped = [m.to_canonical(r) for r in records["customer"]]
    assert len(mapped) == 150
    enums = ENTITIES["customer"].enums
    for rec in mapped:
        v = rec.values
        assert v["customer_type"] in enums["customer_type"] and v["status"] in enums["status"]
        assert v["country"] in {"CN", "DE", "US"} and v["name"]
        assert v["phone"] is None or re.fullmatch(r"\+\d{8,15}", v["phone"])
        assert v["email"] is None or v["email"] == v["email"].strip().lower()
        assert rec.source_ts is not None and rec.source_ts.tzinfo == timezone.utc
    assert any(r.values["tax_id"] for r in mapped) and any(r.values["currency"] == "CNY" for r in mapped)
    assert any(re.search(r"[\u4e00-\u9fff]", r.values["name"]) for r in mapped)


def test_customer_values_go_back_where_they_came_from(raw_records):
    records, model = raw_records
    m = mapping("customer")
    raw = next(r for r in records["customer"] if r["BusinessPartnerCategory"] == "2" and r["_email"])
    values = m.to_canonical(raw).values
    body = unfold_picks(m.to_source(values), m.options["first"], model,
                        model.type_of_set("A_BusinessPartner"))
    address = body["to_BusinessPartnerAddress"]["results"][0]
    assert address["CityName"] == raw["_address"]["CityName"] and address["Country"] == raw["_address"]["Country"]
    assert address["to_EmailAddress"]["results"][0]["EmailAddress"] == values["email"]
    assert address["to_PhoneNumber"]["results"][0]["PhoneNumber"] == values["phone"]
    assert body["OrganizationBPName1"] == raw["BusinessPartnerFullName"]
    assert body["to_Customer"] == {"CustomerClassification": raw["to_Customer"]["CustomerClassification"]}
    assert "to_BusinessPartnerTaxNumber" not in body, "tax_id is read only"


def test_every_sales_order_maps_with_lines_and_customer_ref(raw_records):
    records, _ = raw_records
    m = mapping("order")
    for raw in records["order"]:
        rec = m.to_canonical(raw)
        assert rec.refs == {"customer_id": "customer"}
        lines = rec.values["lines"]
        assert lines and all(line["quantity"] > 0 and line["sku"] for line in lines)
        assert sum(line["amount"] for line in lines) == rec.values["total_amount"]
        assert rec.values["status"] in ENTITIES["order"].enums["status"]
        assert isinstance(rec.source_ts, datetime)
    out = m.to_source(m.to_canonical(records["order"][0]).values)
    assert set(out) == {"SoldToParty", "SalesOrderDate", "TransactionCurrency", "YY1_TrackingNumber_SDH", "to_Item"}
    assert out["to_Item"]["results"][0]["Material"] == records["order"][0]["to_Item"]["results"][0]["Material"]
