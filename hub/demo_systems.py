"""The demo's three systems: Salesforce, SAP and DingTalk simulators served in-process, with data
that overlaps the way real ERP and CRM data does (same companies, different spellings and phones)."""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from connectors.simkit import SimOptions, SimServer

CALLBACK_TOKEN = "triad-callback-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DemoSystems:
    crm: Any            # the Salesforce app (``.sim`` is the org)
    erp: Any            # the SAP app (``.store`` holds the data)
    oa: Any             # the DingTalk app (``.sim`` decides approvals)
    servers: dict[str, SimServer] = field(default_factory=dict)
    aes_key: str = ""
    mirrored: list[dict[str, str]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return self.servers[name].base_url

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()


def start_systems(seed: int, records: int, callback_url: str) -> DemoSystems:
    from connectors.dingtalk.simulator import DEFAULT_AES_KEY, create_app as dingtalk_app
    from connectors.salesforce.simulator import create_app as salesforce_app
    from connectors.sap.simulator import create_app as sap_app
    crm = salesforce_app(SimOptions(seed=seed, records=records))
    erp = sap_app(SimOptions(seed=seed, records=records))
    oa = dingtalk_app(SimOptions(seed=seed, records=4, extra={
        "callback_url": callback_url, "callback_token": CALLBACK_TOKEN, "callback_aes_key": DEFAULT_AES_KEY}))
    systems = DemoSystems(crm, erp, oa, aes_key=DEFAULT_AES_KEY)
    for name, app in (("crm", crm), ("erp", erp), ("oa", oa)):
        systems.servers[name] = SimServer(app).start()
    return systems


def overlap(systems: DemoSystems, count: int = 6) -> list[dict[str, str]]:
    """Make ``count`` CRM accounts the same companies as ERP business partners, as sales keyed them in:
    the same tax id, customer number and address, the name sometimes shortened -- and, for one of them,
    a newer phone number, and for another a different e-mail address."""
    store = systems.erp.store
    taxes = {r["BusinessPartner"]: r["BPTaxNumber"] for r in store.rows("A_BusinessPartnerTaxNumber")}
    addresses = {a["BusinessPartner"]: a for a in store.rows("A_BusinessPartnerAddress")}
    emails = {e["AddressID"]: e["EmailAddress"] for e in store.rows("A_AddressEmailAddress")}
    phones = {p["AddressID"]: p["InternationalPhoneNumber"] for p in store.rows("A_AddressPhoneNumber")}
    classes = {c["Customer"]: c.get("CustomerClassification") for c in store.rows("A_Customer")}
    terms = {a["Customer"]: a.get("CustomerPaymentTerms") for a in store.rows("A_CustomerSalesArea")}
    currencies = {a["Customer"]: a.get("Currency") for a in store.rows("A_CustomerSalesArea")}
    partners = [bp for bp in store.rows("A_BusinessPartner")
                if bp["BusinessPartnerCategory"] == "2" and bp["BusinessPartner"] in taxes][:count]
    partners.sort(key=lambda bp: not emails.get(addresses.get(bp["BusinessPartner"], {}).get("AddressID")))
    org = systems.crm.sim
    accounts = sorted((a for a in org.records["Account"].values() if not a.get("IsDeleted")),
                      key=lambda a: a["Id"])[:count]
    mirrored = []
    for n, (bp, account) in enumerate(zip(partners, accounts)):
        key = bp["BusinessPartner"]
        name, addr = bp["BusinessPartnerFullName"], addresses.get(key, {})
        email, phone = emails.get(addr.get("AddressID")), phones.get(addr.get("AddressID"))
        values = {"Name": name.replace("有限公司", "") if n == 2 else name, "TaxId__c": taxes[key],
                  "AccountNumber": key, "BillingStreet": addr.get("StreetName"), "BillingCity": addr.get("CityName"),
                  "BillingState": addr.get("Region"), "BillingPostalCode": addr.get("PostalCode"),
                  "BillingCountry": addr.get("Country"), "Phone": phone, "Email__c": email,
                  "Tier__c": {"A": "Gold", "B": "Silver", "C": "Bronze"}.get(classes.get(key) or ""),
                  "PaymentTerms__c": terms.get(key), "CurrencyIsoCode": currencies.get(key)}
        if n == 0 and email:
            values["Email__c"] = "purchasing@" + email.split("@")[-1]   # sales uses another mailbox
        if n == 1:
            values["Phone"] = "+86 21 6888 0000"                       # and has a newer switchboard number
        org.update("Account", account["Id"], {k: v for k, v in values.items() if v is not None})
        mirrored.append({"account": account["Id"], "partner": key, "name": name})
    systems.mirrored = mirrored
    return mirrored


def early_opportunity(systems: DemoSystems) -> dict[str, Any]:
    """A deal of a company both systems know, still before the proposal stage."""
    org = systems.crm.sim
    accounts = {m["account"] for m in systems.mirrored}
    early = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition")
    deals = sorted((o for o in org.records["Opportunity"].values()
                    if o.get("AccountId") in accounts and o.get("StageName") in early and not o.get("IsDeleted")),
                   key=lambda o: o["Id"])
    if not deals:   # no early deal on an overlapping account: put the first one back to qualification
        deal = sorted((o for o in org.records["Opportunity"].values() if o.get("AccountId") in accounts),
                      key=lambda o: o["Id"])[0]
        org.update("Opportunity", deal["Id"], {"StageName": "Qualification"})
        return org.get("Opportunity", deal["Id"])
    return deals[0]
