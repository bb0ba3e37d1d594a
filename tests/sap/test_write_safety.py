"""Writes that must not do harm: a create answered 504 after SAP made it is not made twice, an edit made
in SAP since the last read is not overwritten, a request quota stops the run with SAP's own message,
a person's rename reaches SAP, and partners marked for archiving read as deleted."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable

import pytest
import requests

from connectors.sap.connector import SapConnector
from connectors.sap.simulator import create_app
from connectors.sap.writes import create_ref, split_person_name
from connectors.simkit import SimOptions, SimServer
from hub.connector import WriteChange
from hub.errors import LimitExceeded

from .conftest import FAST_RETRY, PASSWORD, USER, mapping, stream_of

UTC = timezone.utc


def connect(url: str, **extra: Any) -> SapConnector:
    return SapConnector("erp", {"base_url": url, "auth": {"user": USER, "password": PASSWORD}, "retry": FAST_RETRY,
                                **extra})


class CommitThen504:
    """A gateway in front of SAP that loses the answer of the first create: SAP made the record, the
    client hears 504 Gateway Timeout."""

    def __init__(self, app: Callable) -> None:
        self.app, self.dropped = app, 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST" and not self.dropped:
            self.dropped += 1
            list(self.app(environ, lambda status, headers, exc_info=None: (lambda data: None)))  # SAP commits
            start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
            return [b"upstream timed out"]
        return self.app(environ, start_response)


def sap_user_edit(base_url: str, service: str, path: str, values: dict[str, Any]) -> None:
    """A user changes a record in SAP (CSRF token, PATCH), as the Fiori apps do."""
    with requests.Session() as s:
        s.auth = (USER, PASSWORD)
        root = f"{base_url}/sap/opu/odata/sap/{service}"
        token = s.head(root, headers={"x-csrf-token": "Fetch"}).headers["x-csrf-token"]
        resp = s.patch(f"{root}/{path}", json=values, headers={"x-csrf-token": token, "If-Match": "*"})
        assert resp.status_code == 204, resp.text


def later(app, seconds: float = 5) -> None:
    """SAP's clock moves on (partner stamps and ETags have a resolution of one second)."""
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    app.store.clock = lambda: at


def an_order_customer(app) -> str:
    return next(c["Customer"] for c in app.store.rows("A_Customer") if not c["OrderIsBlockedForCustomer"])


# ----- 1. a create SAP made but whose answer was lost

@pytest.mark.parametrize("entity", ["customer", "order"])
def test_a_create_answered_504_after_sap_made_it_is_found_not_made_twice(entity: str):
    app = create_app(SimOptions(seed=3, records=5))
    gateway = CommitThen504(app)
    entity_set, prop = {"customer": ("A_BusinessPartner", "BusinessPartnerIDByExtSystem"),
                        "order": ("A_SalesOrder", "ExternalDocumentID")}[entity]
    values = ({"name": "重复创建测试有限公司", "customer_type": "company"} if entity == "customer" else
              {"customer_id": an_order_customer(app), "lines": [{"sku": "TG11", "quantity": Decimal(2)}]})
    change = WriteChange("ch-1", "01JRECORD0000000000000000A", None, mapping(entity).to_source(values))
    before = app.store.count(entity_set)
    with SimServer(gateway) as srv:
        conn = connect(srv.base_url)
        (first,) = conn.write(stream_of(entity), [change])
        assert not first.ok and first.retriable and "504" in first.error
        assert app.store.count(entity_set) == before + 1, "the create is not sent again after a 504"
        (again,) = conn.write(stream_of(entity), [change])         # the outbox's next attempt
        conn.close()
    assert again.ok, again.error
    assert app.store.count(entity_set) == before + 1, "the retried create made a second record"
    made = app.store.get(entity_set, again.source_id)
    assert made is not None and made[prop] == create_ref(change.record_id, 20 if entity == "customer" else 40)
    assert gateway.dropped == 1


@pytest.mark.parametrize("entity", ["customer", "order"])
def test_a_create_sent_again_with_later_values_gives_them_to_the_record_it_made(entity: str):
    """The push of a create died after SAP made it; the record changed in the hub before the next push,
    which sends the create with the later values (``maybe_sent``): the record made first gets them."""
    app = create_app(SimOptions(seed=3, records=5))
    gateway = CommitThen504(app)
    m = mapping(entity)
    if entity == "customer":
        entity_set, first_values, later_values = "A_BusinessPartner", {"name": "先建后改测试有限公司"}, {
            "name": "先建后改测试（更名）有限公司"}
        base = {"customer_type": "company"}
    else:
        entity_set, base = "A_SalesOrder", {"customer_id": an_order_customer(app)}
        first_values = {"lines": [{"sku": "TG11", "quantity": Decimal(2)}]}
        later_values = {"lines": [{"sku": "TG11", "quantity": Decimal(5)}]}
    record = "01JRECORD0000000000000000B"
    before = app.store.count(entity_set)
    with SimServer(gateway) as srv:
        conn = connect(srv.base_url)
        try:
            (first,) = conn.write(stream_of(entity), [WriteChange("ch-1", record, None,
                                                                  m.to_source({**base, **first_values}))])
            assert not first.ok and first.retriable and "504" in first.error
            (again,) = conn.write(stream_of(entity), [WriteChange("ch-1", record, None,
                                                                  m.to_source({**base, **later_values}),
                                                                  maybe_sent=datetime.now(UTC))])
        finally:
            conn.close()
    assert again.ok, again.error
    assert app.store.count(entity_set) == before + 1, "made twice"
    if entity == "customer":
        made = app.store.get(entity_set, again.source_id)
        assert made["OrganizationBPName1"] == "先建后改测试（更名）有限公司", made
    else:
        lines = [r for r in app.store.rows("A_SalesOrderItem") if r["SalesOrder"] == again.source_id]
        assert [Decimal(str(r["RequestedQuantity"])) for r in lines] == [Decimal(5)], lines


def test_a_batch_sent_again_finds_every_record_it_made_with_few_lookups(connector, app):
    m = mapping("customer")
    changes = [WriteChange(f"ch-{i}", f"01JBATCH{i:018d}", None, m.to_source(
        {"name": f"批量创建{i}有限公司", "customer_type": "company"})) for i in range(25)]
    first = connector.write(stream_of("customer"), changes)
    assert all(r.ok for r in first), [r.error for r in first]
    count, requests_before = app.store.count("A_BusinessPartner"), app.stats["requests"]
    again = connector.write(stream_of("customer"), changes)           # as after a crash before the hub saw them
    assert [r.source_id for r in again] == [r.source_id for r in first] and all(r.ok for r in again)
    assert app.store.count("A_BusinessPartner") == count
    assert app.stats["requests"] - requests_before <= 8               # 25 refs: 2 lookups, paged by 7


def test_the_create_reference_fits_the_property():
    assert create_ref("01JRECORD0000000000000000A", 40) == "01JRECORD0000000000000000A"
    short = create_ref("01JRECORD0000000000000000A", 20)
    assert len(short) == 20 and short == create_ref("01JRECORD0000000000000000A", 20)
    assert short != create_ref("01JRECORD0000000000000000B", 20)


# ----- 2. an edit made in SAP after the hub's read

def test_an_update_after_an_edit_in_sap_waits_for_a_read_instead_of_overwriting(connector, app, server):
    key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
               if r["BusinessPartnerCategory"] == "2")
    stream = stream_of("customer")
    (seen,) = connector.fetch(stream, [key])
    assert seen["BusinessPartner"] == key and "_changed_at" in seen and "__metadata" in seen
    later(app)
    sap_user_edit(server.base_url, "API_BUSINESS_PARTNER", f"A_BusinessPartner('{key}')",
                  {"OrganizationBPName1": "SAP侧改名股份有限公司"})
    hub_values = mapping("customer").to_source({"name": "Hub写入有限公司"})
    (held,) = connector.write(stream, [WriteChange("ch-1", "rec-1", key, hub_values)])
    assert not held.ok and held.retriable and "412" in held.error
    assert held.error.endswith("waiting for a read")
    assert app.store.get("A_BusinessPartner", key)["BusinessPartnerFullName"] == "SAP侧改名股份有限公司"
    # once the edit is read, the write goes with the ETag of that read
    connector.fetch(stream, [key])
    (written,) = connector.write(stream, [WriteChange("ch-2", "rec-1", key, hub_values)])
    assert written.ok, written.error
    assert app.store.get("A_BusinessPartner", key)["BusinessPartnerFullName"] == "Hub写入有限公司"


def test_a_service_that_insists_on_if_match_gets_the_etag_last_read_not_the_current_one():
    app = create_app(SimOptions(records=5, extra={"require_if_match": True}))
    with SimServer(app) as srv:
        conn = connect(srv.base_url)
        stream = stream_of("customer")
        key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
                   if r["BusinessPartnerCategory"] == "2")
        [r for b in conn.read(stream, None) for r in b.records]
        later(app)
        sap_user_edit(srv.base_url, "API_BUSINESS_PARTNER", f"A_BusinessPartner('{key}')",
                      {"SearchTerm2": "SAPUSER"})
        (held,) = conn.write(stream, [WriteChange("ch-1", "rec-1", key, {"SearchTerm2": "HUB"})])
        conn.close()
    assert not held.ok and held.retriable and held.error.endswith("waiting for a read")
    assert app.store.get("A_BusinessPartner", key)["SearchTerm2"] == "SAPUSER"


def test_a_child_only_update_after_an_edit_in_sap_waits_too(connector, app, server):
    key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
               if r["BusinessPartnerCategory"] == "2")
    stream = stream_of("customer")
    connector.fetch(stream, [key])
    later(app)
    sap_user_edit(server.base_url, "API_BUSINESS_PARTNER", f"A_BusinessPartner('{key}')", {"SearchTerm2": "SAPUSER"})
    (held,) = connector.write(stream, [WriteChange("ch-1", "rec-1", key, mapping("customer").to_source(
        {"city": "Hub City"}))])
    assert not held.ok and held.retriable and held.error.endswith("waiting for a read")


def test_fetch_gives_records_by_key_in_the_shape_read_gives(connector):
    stream = stream_of("customer")
    read = {r["BusinessPartner"]: r for b in connector.read(stream, None) for r in b.records}
    keys = sorted(read)[:25] + ["99999999"]                     # more than one request; one unknown key
    fetched = {r["BusinessPartner"]: r for r in connector.fetch(stream, keys)}
    assert sorted(fetched) == sorted(read)[:25]
    assert all(fetched[k] == read[k] for k in fetched)
    order_stream = stream_of("order")
    (order,) = connector.fetch(order_stream, ["10000003"])
    assert order["SalesOrder"] == "10000003" and order["to_Item"]["results"]


# ----- 3. a request quota

def test_a_request_quota_stops_with_saps_message_and_a_short_path():
    app = create_app(SimOptions(records=5, request_budget=2))
    with SimServer(app) as srv:
        conn = connect(srv.base_url, retry={"attempts": 5, "backoff": 0.01, "max_wait": 1})
        started = time.monotonic()
        with pytest.raises(LimitExceeded) as caught:
            [r for b in conn.read(stream_of("customer"), None) for r in b.records]
        changes = [WriteChange(f"ch-{i}", f"rec-{i}", f"1710000{i}", {"SearchTerm2": "X"}) for i in range(1, 4)]
        results = conn.write(stream_of("customer"), changes)
        conn.close()
    message = str(caught.value)
    assert time.monotonic() - started < 10
    assert "Request quota of the communication user exceeded" in message
    assert "GET API_BUSINESS_PARTNER/A_BusinessPartner:" in message
    assert "$filter" not in message and "http" not in message and len(message) < 300
    assert caught.value.retry_after == 60
    assert [r.ok for r in results] == [False, False, False] and all(r.retriable for r in results)
    assert all(r.error == results[0].error and "HTTP 429" in r.error and r.retry_after == 60 for r in results)


# ----- 4. persons

@pytest.mark.parametrize("name", ["王小明", "欧阳文华", "Anna Maria Schmidt", "Mustermann"])
def test_a_person_renamed_by_the_hub_reads_back_with_that_name(connector, app, name: str):
    key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner")
               if r["BusinessPartnerCategory"] == "1")
    stream = stream_of("customer")
    (result,) = connector.write(stream, [WriteChange("ch-1", "rec-1", key, mapping("customer").to_source(
        {"name": name}))])
    assert result.ok, result.error
    (raw,) = connector.fetch(stream, [key])
    assert mapping("customer").to_canonical(raw).values["name"] == name


def test_a_person_created_by_the_hub_is_named_by_first_and_last_name(connector, app):
    values = mapping("customer").to_source({"name": "李雷", "customer_type": "person", "country": "CN"})
    (result,) = connector.write(stream_of("customer"), [WriteChange("ch-1", "rec-p", None, values)])
    assert result.ok, result.error
    made = app.store.get("A_BusinessPartner", result.source_id)
    assert (made["LastName"], made["FirstName"], made["BusinessPartnerFullName"]) == ("李", "雷", "李雷")


def test_split_person_name():
    assert split_person_name("张伟") == ("伟", "张")
    assert split_person_name("司马  相如") == ("相如", "司马")
    assert split_person_name("诸葛亮") == ("亮", "诸葛")
    assert split_person_name("Anna  Maria Schmidt") == ("Anna Maria", "Schmidt")
    assert split_person_name("Cher") == ("", "Cher")


# ----- 5. partners marked for archiving

def test_a_partner_marked_for_archiving_reads_as_deleted(connector, app):
    key = next(r["BusinessPartner"] for r in app.store.rows("A_BusinessPartner"))
    app.store.update("A_BusinessPartner", key, {"IsMarkedForArchiving": True})
    m = mapping("customer")
    records = {r["BusinessPartner"]: m.to_canonical(r) for b in connector.read(stream_of("customer"), None)
               for r in b.records}
    assert records[key].deleted
    assert not any(rec.deleted for k, rec in records.items() if k != key)
