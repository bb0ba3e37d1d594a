"""SapConnector against the shared connector contract, for business partners and for sales orders."""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest

from connectors.sap.connector import SapConnector
from connectors.sap.simulator import create_app
from connectors.simkit import SimOptions, SimServer
from hub.connector import StreamSpec, WriteChange

from .conftest import FAST_RETRY, PASSWORD, USER

# the contract lives in tests/connectors, which is a plain folder on purpose (see contract.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "connectors"))
from contract import ConnectorContract  # noqa: E402

UTC = timezone.utc


@pytest.fixture
def sap_app():
    return create_app(SimOptions(seed=21, records=36, extra={"page_size": 8}))


@pytest.fixture
def sap_connector(sap_app) -> Iterator[SapConnector]:
    with SimServer(sap_app) as srv:
        conn = SapConnector("erp", {"base_url": srv.base_url, "auth": {"user": USER, "password": PASSWORD},
                                    "retry": FAST_RETRY})
        yield conn
        conn.close()


def _seed(app, entity_set: str, key: str, values: dict) -> Callable[[], str]:
    def change() -> str:
        app.store.clock = lambda: datetime.now(UTC)
        app.store.update(entity_set, key, values)
        return key
    return change


class TestBusinessPartnerContract(ConnectorContract):
    @pytest.fixture
    def connector(self, sap_connector):
        return sap_connector

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="customer", source="A_BusinessPartner", key="BusinessPartner",
                          updated_at="_changed_at", batch_size=10)

    @pytest.fixture
    def seed_change(self, sap_app):
        return _seed(sap_app, "A_BusinessPartner", "17100007", {"SearchTerm2": "CONTRACT"})

    @pytest.fixture
    def new_change(self) -> WriteChange:
        return WriteChange("new-bp", "rec-bp", None, {"OrganizationBPName1": "Contract Test GmbH",
                                                      "BusinessPartnerCategory": "2", "SearchTerm1": "CONTRACT"})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        return WriteChange("bad-bp", "rec-bad", None, {"BusinessPartnerCategory": "2"})   # no name


class TestSalesOrderContract(ConnectorContract):
    update_field = "PurchaseOrderByCustomer"

    @pytest.fixture
    def connector(self, sap_connector):
        return sap_connector

    @pytest.fixture
    def stream(self) -> StreamSpec:
        return StreamSpec(entity="order", source="A_SalesOrder", key="SalesOrder", updated_at="LastChangeDateTime",
                          batch_size=10, options={"expand": "to_Item"})

    @pytest.fixture
    def seed_change(self, sap_app):
        return _seed(sap_app, "A_SalesOrder", "10000005", {"PurchaseOrderByCustomer": "PO-CHANGED"})

    @pytest.fixture
    def new_change(self, sap_app) -> WriteChange:
        customer = next(c["Customer"] for c in sap_app.store.rows("A_Customer") if not c["OrderIsBlockedForCustomer"])
        return WriteChange("new-so", "rec-so", None, {
            "SoldToParty": customer, "PurchaseOrderByCustomer": "PO-CONTRACT",
            "to_Item": {"results": [{"Material": "TG11", "RequestedQuantity": "2"}]}})

    @pytest.fixture
    def bad_change(self) -> WriteChange:
        return WriteChange("bad-so", "rec-bad", None, {"SoldToParty": "NOBODY", "to_Item": [{"Material": "TG11"}]})
