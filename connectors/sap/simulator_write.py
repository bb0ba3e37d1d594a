"""Writing in the simulator: deep insert (POST), PATCH/MERGE/PUT, DELETE, with SAP-like checks.

A deep insert is checked completely before anything is stored, so a bad item
or address rejects the whole request (as SAP's change sets do). Business
errors come back as 400 with an ``innererror.errordetails`` list; the codes
have SAP's message-class/number shape but are this simulator's own.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, Callable

from stdnum.cn import uscc
from stdnum.de import vat as de_vat

from connectors.sap import data, wire
from connectors.sap.schema import ENTITY_SETS, EntitySet, Nav
from connectors.sap.simulator_query import ODataError, bad_request
from connectors.sap.store import SapStore

COUNTRIES = frozenset("CN DE US GB FR IT ES NL BE AT CH PL CZ SE DK NO FI IE PT JP KR HK TW SG MY TH VN "
                      "ID IN AU NZ CA MX BR AR RU TR AE SA ZA".split())
DIAL = {"CN": "86", "DE": "49", "US": "1", "GB": "44", "FR": "33", "JP": "81", "HK": "852", "SG": "65"}
_CJK = re.compile(r"[\u4e00-\u9fff]")
# business partner roles a tenant knows without customizing (general, customer, supplier, contact, prospect ...)
ROLES = frozenset("000000 FLCU00 FLCU01 FLVN00 FLVN01 BUP001 BUP002 BUP003 UKM000".split())


def business_error(code: str, message: str) -> ODataError:
    return ODataError(400, code, message, (message,))


@dataclass
class Plan:
    """A checked record waiting to be stored, with its inline children."""

    es: EntitySet
    values: dict[str, Any]
    children: list[tuple[Nav, "Plan"]] = field(default_factory=list)


def split_body(es: EntitySet, body: dict[str, Any], *, creating: bool) -> tuple[dict, dict]:
    """(properties in wire form, inline navigation values); read-only properties are ignored."""
    values: dict[str, Any] = {}
    navs: dict[str, Any] = {}
    for name, value in body.items():
        if name == "__metadata":
            continue
        if es.nav(name) is not None:
            navs[name] = value
            continue
        prop = es.by_name.get(name)
        if prop is None:
            raise bad_request(f"The property '{name}' does not exist in type '{es.type_name}'")
        if (creating and not prop.creatable) or (not creating and not prop.updatable and not prop.key):
            continue
        if value is not None and prop.type == "Edm.String" and not isinstance(value, str):
            raise bad_request(f"Invalid value {value!r} for property '{name}' (Edm.String expects a string)")
        if value is not None and prop.type == "Edm.Boolean" and not isinstance(value, bool):
            raise bad_request(f"Invalid value {value!r} for property '{name}' (Edm.Boolean)")
        try:
            encoded = wire.encode(prop.type, value, date_only=prop.display_format == "Date")
        except ValueError as exc:
            raise bad_request(f"Invalid value for property '{name}': {exc}") from None
        if isinstance(encoded, str) and prop.max_length and len(encoded) > prop.max_length:
            raise bad_request(f"Value of property '{name}' is too long ({len(encoded)} > {prop.max_length})")
        values[name] = encoded
    return values, navs


def _inline(value: Any, nav: Nav) -> list[dict]:
    """The inline records of a navigation value: {"results": [...]}, a list, or one object."""
    if value is None:
        return []
    if isinstance(value, dict) and "results" in value and isinstance(value["results"], list):
        items = value["results"]
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict) and not nav.many:
        items = [value]
    else:
        raise bad_request(f"Invalid inline content for navigation property '{nav.name}'")
    if not all(isinstance(i, dict) for i in items) or (not nav.many and len(items) > 1):
        raise bad_request(f"Invalid inline content for navigation property '{nav.name}'")
    return items


def full_name(values: dict[str, Any]) -> str:
    if values.get("BusinessPartnerCategory") == "1":
        first, last = values.get("FirstName") or "", values.get("LastName") or ""
        return last + first if _CJK.search(last) else f"{first} {last}".strip()
    return " ".join(v for v in (values.get("OrganizationBPName1"), values.get("OrganizationBPName2")) if v)


class Writer:
    """Applies write requests to the store."""

    def __init__(self, store: SapStore) -> None:
        self.store = store
        self.prepare_hooks: dict[str, Callable[[dict, dict | None, bool], None]] = {
            "A_BusinessPartner": self._bp, "A_BusinessPartnerAddress": self._address,
            "A_BusinessPartnerRole": self._role,
            "A_AddressEmailAddress": self._email, "A_AddressPhoneNumber": self._phone,
            "A_BusinessPartnerTaxNumber": self._tax, "A_Customer": self._customer,
            "A_CustomerSalesArea": self._sales_area, "A_SalesOrder": self._order,
            "A_SalesOrderItem": self._item}

    # ----- create

    def create(self, es: EntitySet, body: dict[str, Any],
               parent: tuple[EntitySet, dict, Nav] | None = None) -> tuple[dict, dict[str, dict]]:
        """Deep insert; returns the stored record and the expand tree of what was inlined."""
        if parent is None and not es.creatable:
            raise ODataError(405, "/IWBEP/CM_MGW_RT/021",
                             f"Creation of {es.name} is not supported; create it inline with its parent")
        with self.store.lock:
            fk, parent_values = {}, None
            if parent is not None:
                p_es, p_rec, nav = parent
                fk = {dep: p_rec.get(src) for src, dep in nav.pairs}
                parent_values = p_rec
            plan = self._prepare(es, body, fk, parent_values, siblings=self._existing(es, fk))
            rec, tree = self._commit(plan, touch_parent=parent is not None)
            if parent is not None and parent[2].name == "to_Customer":
                parent[1]["Customer"] = rec["Customer"]
            if es.name == "A_SalesOrderItem" and parent is not None:
                self.recompute_order(parent[1])
            self.store.save()
            return rec, tree

    def _existing(self, es: EntitySet, fk: dict) -> list[dict]:
        if not fk:
            return []
        return [r for r in self.store.rows(es.name) if all(r.get(k) == v for k, v in fk.items())]

    def _prepare(self, es: EntitySet, body: dict, fk: dict, parent: dict | None, siblings: list[dict]) -> Plan:
        if not isinstance(body, dict):
            raise bad_request(f"Invalid content for {es.name}: expected an object")
        values, navs = split_body(es, body, creating=True)
        values.update(fk)
        values["__siblings"] = siblings
        self.prepare_hooks[es.name](values, parent, True)
        del values["__siblings"]
        key = SapStore.key_of(es, values)
        # a blank is a valid key value (A_AddressEmailAddress.Person of an organization), a missing one is not
        if any(values.get(p.name) is None for p in es.keys) or values.get(es.keys[0].name) == "":
            raise bad_request(f"Key of {es.name} is incomplete: {', '.join(p.name for p in es.keys)}")
        if self.store.get(es.name, key) is not None or any(SapStore.key_of(es, s) == key for s in siblings):
            raise business_error("/IWBEP/CM_MGW_RT/026", f"{es.name} {'/'.join(key)} already exists")
        plan = Plan(es, values)
        for name, value in navs.items():
            nav = es.nav(name)
            assert nav is not None
            target = ENTITY_SETS[nav.target]
            child_fk = {dep: values.get(src) for src, dep in nav.pairs}
            done: list[dict] = []
            for item in _inline(value, nav):
                child = self._prepare(target, item, child_fk, values, siblings=done)
                done.append(child.values)
                plan.children.append((nav, child))
        if es.name == "A_BusinessPartner" and any(nav.name == "to_Customer" for nav, _ in plan.children):
            values["Customer"] = values["BusinessPartner"]
        if es.name == "A_SalesOrder":
            if not any(nav.name == "to_Item" for nav, _ in plan.children):
                raise business_error("V1/299", "Sales order has no items; send them inline in to_Item")
            total = sum(Decimal(c.values["NetAmount"]) for _, c in plan.children)
            values["TotalNetAmount"] = wire.format_decimal(total)
        return plan

    def _commit(self, plan: Plan, touch_parent: bool) -> tuple[dict, dict[str, dict]]:
        rec = self.store.insert(plan.es.name, plan.values, touch_parent=touch_parent)
        tree: dict[str, dict] = {}
        for nav, child in plan.children:
            _, sub = self._commit(child, touch_parent=False)
            tree.setdefault(nav.name, {}).update(sub)
        return rec, tree

    # ----- per entity set checks and derived values

    def _bp(self, v: dict, parent: dict | None, creating: bool) -> None:
        category = v.get("BusinessPartnerCategory")
        if category not in ("1", "2", "3"):
            raise business_error("R11/401", "Business partner category must be 1 (person), 2 (organization) "
                                            f"or 3 (group), not {category!r}")
        if category == "1" and not (v.get("LastName") or "").strip():
            raise business_error("R11/402", "Enter a last name for a person")
        if category != "1" and not (v.get("OrganizationBPName1") or "").strip():
            raise business_error("R11/403", "Enter a name (OrganizationBPName1) for an organization")
        if creating:
            if not v.get("BusinessPartner"):
                v["BusinessPartner"] = self.store.next_number("A_BusinessPartner")
            v.setdefault("BusinessPartnerGrouping", "BP01")
            v["BusinessPartnerUUID"] = str(uuid.uuid4())
            v["IsNaturalPerson"] = "X" if category == "1" else ""
        v["BusinessPartnerFullName"] = v["BusinessPartnerName"] = full_name(v)[:81]

    def _address(self, v: dict, parent: dict | None, creating: bool) -> None:
        country = v.get("Country")
        if country is not None or creating:
            if country not in COUNTRIES:
                raise business_error("AM/216", f"Country/Region {country!r} is not defined")
        if creating:
            v.setdefault("AddressID", self.store.next_number("address"))
            now = self.store.now()
            v.setdefault("ValidityStartDate", data.d_offset(now))
            v.setdefault("ValidityEndDate", data.END_OF_TIME)
            v["AddressUUID"] = str(uuid.uuid4())
            if parent and not v.get("FullName"):
                v["FullName"] = parent.get("BusinessPartnerFullName") or ""

    def _role(self, v: dict, parent: dict | None, creating: bool) -> None:
        role = v.get("BusinessPartnerRole")
        if role is not None and role not in ROLES:      # a missing one is the key check's
            raise business_error("R11/404", f"Business partner role {role!r} does not exist")
        if creating:
            v["ValidFrom"] = v.get("ValidFrom") or data.d_offset(self.store.now())
            v["ValidTo"] = v.get("ValidTo") or data.END_OF_TIME

    def _ordinal(self, v: dict) -> None:
        v.setdefault("Person", "")
        if not v.get("OrdinalNumber"):
            v["OrdinalNumber"] = str(len(v["__siblings"]) + 1)

    def _email(self, v: dict, parent: dict | None, creating: bool) -> None:
        address = (v.get("EmailAddress") or "").strip()
        if address and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            raise business_error("AM/180", f"E-mail address {address!r} is not valid")
        v["SearchEmailAddress"] = address.upper()[:20]
        if creating:
            self._ordinal(v)
            v.setdefault("IsDefaultEmailAddress", not v["__siblings"])

    def _phone(self, v: dict, parent: dict | None, creating: bool) -> None:
        country = v.get("DestinationLocationCountry") or (parent or {}).get("Country") or ""
        v["DestinationLocationCountry"] = country
        number = (v.get("PhoneNumber") or "").strip()
        digits = re.sub(r"\D", "", number)
        if number.startswith("+"):
            v["InternationalPhoneNumber"] = "+" + digits
        elif digits and country in DIAL:
            v["InternationalPhoneNumber"] = "+" + DIAL[country] + digits.lstrip("0")
        if creating:
            self._ordinal(v)
            v.setdefault("IsDefaultPhoneNumber", not v["__siblings"])

    def _tax(self, v: dict, parent: dict | None, creating: bool) -> None:
        number = v.get("BPTaxNumber") or v.get("BPTaxLongNumber") or ""
        checks = {"CN5": uscc.is_valid, "DE0": de_vat.is_valid}
        check = checks.get(v.get("BPTaxType") or "")
        if check and number and not check(number):
            raise business_error("AR/103", f"Tax number {number} is not valid for tax type {v.get('BPTaxType')}")

    def _customer(self, v: dict, parent: dict | None, creating: bool) -> None:
        if creating:
            v.setdefault("CustomerAccountGroup", "CUST")
            name = (parent or {}).get("BusinessPartnerFullName") or ""
            v.update(CustomerFullName=name[:220], CustomerName=name[:80], CreatedByUser=self.store.user,
                     CreationDate=data.d_date(self.store.now()),
                     NFPartnerIsNaturalPerson="X" if (parent or {}).get("BusinessPartnerCategory") == "1" else "")

    def _sales_area(self, v: dict, parent: dict | None, creating: bool) -> None:
        currency = v.get("Currency")
        if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
            raise business_error("F2/186", f"Currency {currency!r} is not defined")

    def _order(self, v: dict, parent: dict | None, creating: bool) -> None:
        if not creating:
            return
        party = v.get("SoldToParty") or ""
        customer = self.store.get("A_Customer", party)
        if customer is None:
            raise business_error("V1/390", f"Sold-to party {party!r} does not exist")
        if customer.get("OrderIsBlockedForCustomer"):
            raise business_error("V1/462", f"Sold-to party {party} is blocked for sales orders")
        areas = self.store.related(ENTITY_SETS["A_Customer"], customer, "to_CustomerSalesArea")
        area = areas[0] if areas else {}
        today = self.store.now()
        if not v.get("SalesOrder"):
            v["SalesOrder"] = self.store.next_number("A_SalesOrder")
        defaults = {"SalesOrderType": "OR", "SalesOrganization": area.get("SalesOrganization") or "1010",
                    "DistributionChannel": "10", "OrganizationDivision": "00",
                    "TransactionCurrency": area.get("Currency") or "EUR",
                    "CustomerPaymentTerms": area.get("CustomerPaymentTerms") or "",
                    "IncotermsClassification": area.get("IncotermsClassification") or "",
                    "SalesOrderDate": data.d_date(today),
                    "RequestedDeliveryDate": data.d_date(today + timedelta(days=14))}
        for name, value in defaults.items():
            if not v.get(name):
                v[name] = value
        v.setdefault("PricingDate", v["SalesOrderDate"])
        v.update(OverallSDProcessStatus="A", OverallDeliveryStatus="A", OverallTotalDeliveryStatus="A",
                 OverallSDDocumentRejectionSts="A", TotalNetAmount="0")

    def _item(self, v: dict, parent: dict | None, creating: bool) -> None:
        header = parent or {}
        if creating:
            if not v.get("Material"):
                raise business_error("V1/320", "Enter a material for each item")
            if not v.get("SalesOrderItem"):
                used = [int(s["SalesOrderItem"]) for s in v["__siblings"] if str(s["SalesOrderItem"]).isdigit()]
                v["SalesOrderItem"] = str((max(used) // 10 + 1) * 10 if used else 10)
            text, unit, _ = data.MATERIALS.get(v["Material"], (v["Material"], "PC", None))
            v.setdefault("SalesOrderItemText", text)
            if not v.get("RequestedQuantityUnit"):
                v["RequestedQuantityUnit"] = unit
            v.update(SalesOrderItemCategory=v.get("SalesOrderItemCategory") or "TAN", SDProcessStatus="A",
                     DeliveryStatus="A", OrderRelatedBillingStatus="A", HigherLevelItem="000000")
        quantity = Decimal(v.get("RequestedQuantity") or "0")
        if quantity <= 0:
            raise business_error("V1/318", f"Item {v.get('SalesOrderItem')}: enter a quantity greater than 0")
        currency = header.get("TransactionCurrency") or "EUR"
        given = Decimal(v["NetPriceAmount"]) if v.get("NetPriceAmount") else None
        price = data.price_of(v.get("Material") or "", currency, given)
        country = {"1310": "CN", "1010": "DE", "1710": "US"}.get(header.get("SalesOrganization") or "", "DE")
        net, tax = data.item_amounts(quantity, price, country)
        v.update(NetPriceAmount=wire.format_decimal(price), NetAmount=net, TaxAmount=tax,
                 TransactionCurrency=currency, NetPriceQuantity=v.get("NetPriceQuantity") or "1")

    # ----- update and delete

    def update(self, es: EntitySet, rec: dict, body: dict[str, Any]) -> None:
        """PATCH/MERGE: change the given properties; inline navigation content is refused (no deep update)."""
        if not es.updatable:
            raise ODataError(405, "/IWBEP/CM_MGW_RT/021", f"Update of {es.name} is not supported")
        with self.store.lock:
            values, navs = split_body(es, body, creating=False)
            if navs:
                raise bad_request(f"Deep update is not supported: update {', '.join(navs)} through its own "
                                  "entity set")
            for key in es.keys:
                if key.name in values and values.pop(key.name) != rec.get(key.name):
                    raise bad_request(f"Key property '{key.name}' cannot be changed")
            merged = {**rec, **values, "__siblings": []}
            parent = self.store.parent_of(es, rec)
            self.prepare_hooks[es.name](merged, parent, False)
            merged.pop("__siblings")
            for name in es.by_name:
                if merged.get(name) != rec.get(name):
                    rec[name] = merged[name]
            self.store.touch(es, rec)
            if es.name == "A_SalesOrderItem" and parent is not None:
                self.recompute_order(parent)
            self.store.save()

    def delete(self, es: EntitySet, rec: dict) -> None:
        if not es.deletable:
            raise ODataError(405, "/IWBEP/CM_MGW_RT/021", f"Deletion of {es.name} is not supported")
        with self.store.lock:
            parent = self.store.parent_of(es, rec)
            self.store.delete(es.name, SapStore.key_of(es, rec))
            if es.name == "A_SalesOrderItem" and parent is not None:
                self.recompute_order(parent)
            self.store.save()

    def recompute_order(self, order: dict) -> None:
        items = self.store.related(ENTITY_SETS["A_SalesOrder"], order, "to_Item")
        order["TotalNetAmount"] = wire.format_decimal(sum((Decimal(i["NetAmount"]) for i in items), Decimal(0)))
