"""SAP's own OData client (pyodata) against the simulator: the wire format is the real one."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pyodata
import pytest
import requests
from pyodata.exceptions import HttpError
from pyodata.v2.model import EndRole

from connectors.sap import wire
from connectors.sap.schema import ENTITY_SETS

from .conftest import BP_ROOT, PASSWORD, SO_ROOT, USER

UTC = timezone.utc


def session(fetch_token: bool = False, root: str = "") -> requests.Session:
    s = requests.Session()
    s.auth = (USER, PASSWORD)
    if fetch_token:   # as in pyodata's docs/usage/creating.rst
        response = s.head(root, headers={"x-csrf-token": "fetch"})
        s.headers.update({"x-csrf-token": response.headers.get("x-csrf-token", "")})
    return s


@pytest.fixture
def bp(server):
    return pyodata.Client(server.base_url + BP_ROOT, session())


@pytest.fixture
def so(server):
    return pyodata.Client(server.base_url + SO_ROOT, session())


def test_metadata_loads_with_types_keys_navigation_and_sap_annotations(bp, so):
    partner = bp.schema.entity_set("A_BusinessPartner")
    etype = partner.entity_type
    assert [p.name for p in etype.key_proprties] == ["BusinessPartner"]
    assert etype.proprty("LastChangeDate").typ.name == "Edm.DateTime"
    assert etype.proprty("LastChangeTime").typ.name == "Edm.Time"
    assert etype.proprty("OrganizationBPName1").label == "Name 1"
    assert etype.proprty("OrganizationBPName1").max_length == 40
    full_name = etype.proprty("BusinessPartnerFullName")
    assert (full_name.creatable, full_name.updatable) == (False, False)
    assert etype.proprty("ETag").filterable is False
    assert partner.creatable and partner.updatable and not partner.deletable
    assert not bp.schema.entity_set("A_Customer").creatable
    assert etype.nav_proprty("to_Customer").to_role.multiplicity == EndRole.MULTIPLICITY_ZERO_OR_ONE
    assert etype.nav_proprty("to_BusinessPartnerAddress").to_role.multiplicity == EndRole.MULTIPLICITY_ZERO_OR_MORE
    order = so.schema.entity_set("A_SalesOrder").entity_type
    assert order.proprty("LastChangeDateTime").typ.name == "Edm.DateTimeOffset"
    assert order.proprty("TotalNetAmount").typ.name == "Edm.Decimal"
    assert [p.name for p in so.schema.entity_set("A_SalesOrderItem").entity_type.key_proprties] == \
        ["SalesOrder", "SalesOrderItem"]


def test_filter_inline_count_top_and_skip(bp, app):
    organizations = sorted(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
                           if r["BusinessPartnerCategory"] == "2")
    result = (bp.entity_sets.A_BusinessPartner.get_entities().filter("BusinessPartnerCategory eq '2'")
              .count(inline=True).top(5).skip(2).execute())
    assert result.total_count == len(organizations)
    assert [e.BusinessPartner for e in result] == organizations[2:7]
    assert bp.entity_sets.A_BusinessPartner.get_entities().count().execute() == 40


def test_server_driven_paging_is_followed_with_next_url(bp, app):
    query = bp.entity_sets.A_BusinessPartner.get_entities
    page = query().execute()
    seen = [e.BusinessPartner for e in page]
    assert len(seen) == 7 and page.next_url and "$skiptoken=" in page.next_url
    while page.next_url:
        page = query().next_url(page.next_url).execute()
        seen += [e.BusinessPartner for e in page]
    assert seen == sorted(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner"))


def test_typed_filters_from_the_expression_builder(bp, so, app):
    since = datetime(2025, 1, 1, tzinfo=UTC)
    partners = bp.entity_sets.A_BusinessPartner.get_entities().filter(LastChangeDate__gte=since).execute()
    expected = [r for r in app.store.rows("A_BusinessPartner")
                if r["LastChangeDate"] and wire.date_ms(r["LastChangeDate"]) >= wire.ms_of(since)]
    assert len(partners) == len(expected) > 0
    assert all(e.LastChangeDate >= since for e in partners)
    orders = (so.entity_sets.A_SalesOrder.get_entities()
              .filter(LastChangeDateTime__gte=since, TransactionCurrency="CNY").execute())
    assert orders and all(o.LastChangeDateTime >= since and o.TransactionCurrency == "CNY" for o in orders)
    assert all(isinstance(o.TotalNetAmount, str) and Decimal(o.TotalNetAmount) > 0 for o in orders)


def test_get_by_key_with_expand_and_composite_keys(bp, so, app):
    stored = app.store.get("A_BusinessPartner", "17100001")
    entity = (bp.entity_sets.A_BusinessPartner.get_entity("17100001")
              .expand("to_BusinessPartnerAddress,to_Customer").execute())
    assert entity.BusinessPartnerFullName == stored["BusinessPartnerFullName"]
    assert entity.etag.startswith('W/"datetime\'')
    assert entity.to_Customer.Customer == "17100001"
    assert entity.to_BusinessPartnerAddress[0].Country in {"CN", "DE", "US"}
    assert entity.LastChangeTime.startswith("PT")
    item = so.entity_sets.A_SalesOrderItem.get_entity(SalesOrder="10000001", SalesOrderItem="10").execute()
    assert item.Material == app.store.get("A_SalesOrderItem", ("10000001", "10"))["Material"]


def test_writes_need_a_csrf_token(server):
    client = pyodata.Client(server.base_url + BP_ROOT, session())
    request = client.entity_sets.A_BusinessPartner.update_entity("17100001").set(OrganizationBPName2="x")
    with pytest.raises(HttpError) as exc:
        request.execute()
    assert exc.value.response.status_code == 403
    assert exc.value.response.headers["x-csrf-token"] == "Required"


def test_create_deep_insert_then_patch_and_merge(server, app):
    root = server.base_url + BP_ROOT
    client = pyodata.Client(root, session(fetch_token=True, root=root))
    created = client.entity_sets.A_BusinessPartner.create_entity().set(**{
        "BusinessPartnerCategory": "2", "OrganizationBPName1": "南京云帆软件有限公司", "SearchTerm1": "YUNFAN",
        "to_BusinessPartnerAddress": [{"Country": "CN", "CityName": "南京", "PostalCode": "210000"}],
        "to_Customer": {"CustomerClassification": "A"},
    }).execute()
    key = created.BusinessPartner
    assert key == "17100041" and created.BusinessPartnerFullName == "南京云帆软件有限公司"
    stored = app.store.get("A_BusinessPartner", key)
    assert stored["Customer"] == key and stored["LastChangeDate"] is None    # never changed yet
    (address,) = app.store.related(ENTITY_SETS["A_BusinessPartner"], stored, "to_BusinessPartnerAddress")
    assert address["CityName"] == "南京" and address["AddressID"]

    client.entity_sets.A_BusinessPartner.update_entity(key).set(OrganizationBPName2="江宁分公司").execute()
    assert app.store.get("A_BusinessPartner", key)["OrganizationBPName2"] == "江宁分公司"
    assert app.store.get("A_BusinessPartner", key)["LastChangeDate"] is not None
    client.entity_sets.A_BusinessPartner.update_entity(key, method="MERGE").set(SearchTerm2="NANJING").execute()
    assert app.store.get("A_BusinessPartner", key)["SearchTerm2"] == "NANJING"


def test_sales_order_deep_insert_and_item_update(server, app):
    root = server.base_url + SO_ROOT
    client = pyodata.Client(root, session(fetch_token=True, root=root))
    customer = next(c["Customer"] for c in app.store.rows("A_Customer") if not c["OrderIsBlockedForCustomer"])
    order = client.entity_sets.A_SalesOrder.create_entity().set(**{
        "SoldToParty": customer, "PurchaseOrderByCustomer": "PO-4711",
        "to_Item": [{"Material": "TG11", "RequestedQuantity": "3"}, {"Material": "RM12", "RequestedQuantity": "10"}],
    }).execute()
    items = app.store.related(ENTITY_SETS["A_SalesOrder"], app.store.get("A_SalesOrder", order.SalesOrder), "to_Item")
    assert [i["SalesOrderItem"] for i in items] == ["10", "20"]
    assert Decimal(order.TotalNetAmount) == sum(Decimal(i["NetAmount"]) for i in items) > 0
    assert [i.Material for i in order.to_Item] == ["TG11", "RM12"]
    before = app.store.get("A_SalesOrder", order.SalesOrder)["LastChangeDateTime"]
    app.store.clock = lambda: datetime(2030, 1, 1, tzinfo=UTC)
    client.entity_sets.A_SalesOrderItem.update_entity(SalesOrder=order.SalesOrder, SalesOrderItem="10") \
        .set(RequestedQuantity="6").execute()
    header = app.store.get("A_SalesOrder", order.SalesOrder)
    assert header["LastChangeDateTime"] != before and header["LastChangeDateTime"].endswith("+0000)/")
    assert Decimal(header["TotalNetAmount"]) > Decimal(order.TotalNetAmount)
