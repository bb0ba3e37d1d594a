"""SapConnector writes: deep inserts through the shipped mappings, nested updates, CSRF refetch,
per-record errors, retries, optimistic locking, deletes."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.sap.connector import SapConnector
from connectors.sap.schema import ENTITY_SETS
from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub.connector import WriteChange

from .conftest import FAST_RETRY, PASSWORD, USER, mapping, stream_of

CUSTOMER = {"name": "西安新创科技有限公司", "customer_type": "company", "email": "hi@xinchuang.cn",
            "phone": "+862988886666", "country": "CN", "city": "西安", "address": "高新路",
            "postal_code": "710075", "tier": "gold", "status": "active"}


def change(n: int, source_id: str | None, values: dict, delete: bool = False) -> WriteChange:
    return WriteChange(f"ch-{n}", f"rec-{n}", source_id, values, delete=delete)


def children(app, set_name: str, rec: dict, nav: str) -> list[dict]:
    return app.store.related(ENTITY_SETS[set_name], rec, nav)


def read_customer(conn: SapConnector, key: str) -> dict:
    for batch in conn.read(stream_of("customer"), None):
        for raw in batch.records:
            if raw["BusinessPartner"] == key:
                return mapping("customer").to_canonical(raw).values
    raise AssertionError(f"{key} not read")


def test_create_customer_deep_insert_round_trip(connector, app):
    m = mapping("customer")
    (result,) = connector.write(stream_of("customer"), [change(1, None, m.to_source(CUSTOMER))])
    assert result.ok, result.error
    assert result.source_id == "17100041" and result.change_id == "ch-1"
    stored = app.store.get("A_BusinessPartner", result.source_id)
    assert stored["Customer"] == result.source_id and stored["BusinessPartnerCategory"] == "2"
    (address,) = children(app, "A_BusinessPartner", stored, "to_BusinessPartnerAddress")
    (phone,) = children(app, "A_BusinessPartnerAddress", address, "to_PhoneNumber")
    assert phone["InternationalPhoneNumber"] == "+862988886666"
    back = read_customer(connector, result.source_id)
    assert {k: back[k] for k in CUSTOMER} == CUSTOMER
    assert back["code"] == result.source_id


def test_a_customer_without_a_type_is_created_as_an_organization(connector, app):
    # read from a system that keeps no type (a CRM account, a Kingdee customer): SAP needs a category
    untyped = {k: v for k, v in CUSTOMER.items() if k != "customer_type"} | {"name": "无类型贸易有限公司"}
    (result,) = connector.write(stream_of("customer"), [change(9, None, mapping("customer").to_source(untyped))])
    assert result.ok, result.error
    stored = app.store.get("A_BusinessPartner", result.source_id)
    assert stored["BusinessPartnerCategory"] == "2" and stored["OrganizationBPName1"] == "无类型贸易有限公司"


def test_update_reaches_child_records(connector, app):
    m = mapping("customer")
    key = "17100004"
    before = read_customer(connector, key)
    values = m.to_source({"name": "Neuer Name GmbH", "city": "Leipzig", "email": "einkauf@neu.de", "tier": "bronze",
                          "status": "blocked"})
    (result,) = connector.write(stream_of("customer"), [change(2, key, values)])
    assert result.ok, result.error
    after = read_customer(connector, key)
    assert (after["city"], after["email"], after["tier"], after["status"]) == \
        ("Leipzig", "einkauf@neu.de", "bronze", "blocked")
    assert after["country"] == before["country"], "fields not written stay as they were"
    bp = app.store.get("A_BusinessPartner", key)
    if bp["BusinessPartnerCategory"] == "2":
        assert after["name"] == "Neuer Name GmbH"
    assert bp["LastChangedByUser"] == "DEMO"


def test_new_child_is_posted_to_the_navigation_property(connector, app):
    key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
               if not children(app, "A_BusinessPartner", r, "to_BusinessPartnerTaxNumber")
               and r["BusinessPartnerCategory"] == "2")
    values = {"_tax": {"BPTaxType": "CN5", "BPTaxNumber": "91310000MA1FL0B12C"}}
    stream = stream_of("customer")
    (result,) = connector.write(stream, [change(3, key, values)])
    assert result.ok, result.error
    (tax,) = children(app, "A_BusinessPartner", app.store.get("A_BusinessPartner", key),
                      "to_BusinessPartnerTaxNumber")
    assert tax["BPTaxNumber"] == "91310000MA1FL0B12C"


def test_create_and_update_sales_order_with_lines(connector, app):
    m = mapping("order")
    customer = next(c["Customer"] for c in app.store.rows("A_Customer") if not c["OrderIsBlockedForCustomer"])
    order = {"customer_id": customer, "order_date": date(2026, 5, 4), "currency": "EUR",
             "lines": [{"line_no": 10, "sku": "TG11", "quantity": Decimal("2")},
                       {"line_no": 20, "sku": "MZ-FG-C900", "quantity": Decimal("1")}]}
    stream = stream_of("order")
    (created,) = connector.write(stream, [change(4, None, m.to_source(order))])
    assert created.ok, created.error
    header = app.store.get("A_SalesOrder", created.source_id)
    assert header["SoldToParty"] == customer and header["SalesOrderDate"] == "/Date(1777852800000)/"
    assert [i["Material"] for i in children(app, "A_SalesOrder", header, "to_Item")] == ["TG11", "MZ-FG-C900"]
    update = m.to_source({"lines": [{"line_no": 10, "quantity": Decimal("5")},
                                    {"line_no": 30, "sku": "RM12", "quantity": Decimal("100")}]})
    (updated,) = connector.write(stream, [change(5, created.source_id, update)])
    assert updated.ok, updated.error
    items = {i["SalesOrderItem"]: i for i in children(app, "A_SalesOrder", header, "to_Item")}
    assert sorted(items) == ["10", "20", "30"]
    assert items["10"]["RequestedQuantity"] == "5" and items["30"]["Material"] == "RM12"
    assert Decimal(header["TotalNetAmount"]) == sum(Decimal(i["NetAmount"]) for i in items.values())


def test_errors_are_reported_per_record(connector, app):
    m = mapping("customer")
    app.store.update("A_Customer", "17100002", {"OrderIsBlockedForCustomer": "01"})
    changes = [
        change(1, None, m.to_source(CUSTOMER)),
        change(2, None, m.to_source({**CUSTOMER, "country": "XX"})),          # SAP refuses the country
        change(3, "99999999", m.to_source({"tier": "silver"})),                     # no such partner
        change(4, None, {"BusinessPartnerCategory": "2", "Colour": "red"}),     # not in the metadata
        change(5, None, m.to_source({**CUSTOMER, "name": "Zweiter Kunde"})),
    ]
    results = connector.write(stream_of("customer"), changes)
    assert [r.change_id for r in results] == [c.change_id for c in changes]
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert "Country/Region 'XX' is not defined" in results[1].error and not results[1].retriable
    assert "404" in results[2].error
    assert "Colour" in results[3].error
    order = mapping("order").to_source({"customer_id": "17100002", "lines": [{"sku": "TG11", "quantity": Decimal(1)}]})
    (refused,) = connector.write(stream_of("order"), [change(6, None, order)])
    assert not refused.ok and "blocked for sales orders" in refused.error


def test_expired_csrf_token_is_fetched_again_mid_run(connector, app):
    app.csrf.max_uses = 2                      # every token dies after two writes
    changes = [change(i, f"171000{i:02d}", {"SearchTerm2": f"RUN{i}"}) for i in range(10, 16)]
    results = connector.write(stream_of("customer"), changes)
    assert all(r.ok for r in results), [r.error for r in results]
    assert app.csrf.stats["fetched"] >= 3 and app.csrf.stats["rejected"] >= 2
    app.csrf.max_uses = None
    app.csrf.invalidate_all()                  # the server forgot every session between two runs
    (result,) = connector.write(stream_of("customer"), [change(20, "17100020", {"SearchTerm2": "AGAIN"})])
    assert result.ok and app.store.get("A_BusinessPartner", "17100020")["SearchTerm2"] == "AGAIN"


def test_server_failures_are_retried_or_reported_retriable():
    app = create_app(SimOptions(seed=5, records=10, fail_rate=0.3, rate_limit_rate=0.2))
    with SimServer(app) as srv:
        conn = SapConnector("erp", {"base_url": srv.base_url, "auth": {"user": USER, "password": PASSWORD},
                                    "retry": {**FAST_RETRY, "attempts": 12}})
        changes = [change(i, f"171000{i:02d}", {"SearchTerm2": f"R{i}"}) for i in range(1, 9)]
        assert all(r.ok for r in conn.write(stream_of("customer"), changes))
        assert app.stats["failed"] + app.stats["throttled"] > 0
        app.options.fail_rate, app.options.rate_limit_rate = 1.0, 0.0
        (down,) = conn.write(stream_of("customer"), [change(9, "17100009", {"SearchTerm2": "DOWN"})])
        conn.close()
    assert not down.ok and down.retriable and "503" in down.error


def test_precondition_required_is_answered_with_the_etag():
    app = create_app(SimOptions(records=5, extra={"require_if_match": True}))
    with SimServer(app) as srv:
        conn = SapConnector("erp", {"base_url": srv.base_url, "auth": {"user": USER, "password": PASSWORD},
                                    "retry": FAST_RETRY})
        (result,) = conn.write(stream_of("customer"), [change(1, "17100002", {"SearchTerm2": "LOCKED"})])
        conn.close()
    assert result.ok, result.error
    assert app.store.get("A_BusinessPartner", "17100002")["SearchTerm2"] == "LOCKED"


def test_deletes_archive_partners_and_remove_orders(connector, app):
    results = connector.write(stream_of("customer"), [change(1, "17100003", {}, delete=True)])
    assert results[0].ok and app.store.get("A_BusinessPartner", "17100003")["IsMarkedForArchiving"] is True
    (gone,) = connector.write(stream_of("order"), [change(2, "10000002", {}, delete=True)])
    assert gone.ok and app.store.get("A_SalesOrder", "10000002") is None


def test_bearer_token_auth(server, app):
    conn = SapConnector("erp", {"base_url": server.base_url + "/sap/opu/odata/sap", "auth": {"token": "triad-secret"},
                                "retry": FAST_RETRY})
    assert conn.check().ok
    (result,) = conn.write(stream_of("customer"), [change(1, "17100001", {"SearchTerm2": "BEARER"})])
    conn.close()
    assert result.ok and app.store.get("A_BusinessPartner", "17100001")["SearchTerm2"] == "BEARER"
