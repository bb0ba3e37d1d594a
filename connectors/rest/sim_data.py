"""Deterministic CRM data for the generic REST simulator: companies, contacts, deals.

The same seed gives the same data set. Each collection exists twice: flat
records for the generic routes, and HubSpot CRM v3 objects (``id`` +
``properties`` of strings) for the ``/crm/v3/objects/...`` routes.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

BASE = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
COLLECTIONS = ("companies", "contacts", "deals")

_WORDS = ("Nordwind", "Bluebay", "Quarry", "Lumen", "Harbor", "Cedar", "Summit", "Orbit", "Vega", "Atlas",
          "Kestrel", "Maple", "Pioneer", "Silverline", "Tidewater", "Granite", "Beacon", "Riverside", "Falcon",
          "Evergreen", "Helix", "Juniper", "Meridian", "Northstar")
_KINDS = ("Logistics", "Trading", "Foods", "Systems", "Textiles", "Robotics", "Pharma", "Energy", "Media", "Tools")
_PLACES = (  # country, city, state, postal code, currency, legal form
    ("DE", "Berlin", "BE", "10115", "EUR", "GmbH"),
    ("DE", "Hamburg", "HH", "20095", "EUR", "GmbH"),
    ("US", "Boston", "MA", "02110", "USD", "Inc."),
    ("US", "Austin", "TX", "73301", "USD", "LLC"),
    ("GB", "London", "ENG", "EC1A 1BB", "GBP", "Ltd"),
    ("FR", "Lyon", "ARA", "69001", "EUR", "SAS"),
    ("CN", "Shanghai", "SH", "200120", "CNY", "Co., Ltd."),
    ("JP", "Osaka", "27", "530-0001", "JPY", "K.K."),
)
_COUNTRY_NAMES = {"DE": "Germany", "US": "United States", "GB": "United Kingdom", "FR": "France", "CN": "China",
                  "JP": "Japan"}
_FIRST = ("Anna", "Ben", "Chen", "Dana", "Emil", "Fatima", "Greta", "Hiro", "Ines", "Jonas", "Keiko", "Liam",
          "Mia", "Noah", "Olga", "Pablo", "Qing", "Rosa", "Sven", "Tariq")
_LAST = ("Schmidt", "Miller", "Wang", "Dubois", "Tanaka", "Novak", "Garcia", "Berg", "Okafor", "Rossi")
_STAGES = ("open", "open", "won", "lost")
_HS_STAGES = {"open": "qualifiedtobuy", "won": "closedwon", "lost": "closedlost"}
_INDUSTRIES = ("LOGISTICS_AND_SUPPLY_CHAIN", "WHOLESALE", "FOOD_PRODUCTION", "COMPUTER_SOFTWARE", "TEXTILES",
               "MACHINERY", "PHARMACEUTICALS", "UTILITIES", "MEDIA_PRODUCTION", "MACHINERY")


def iso(dt: datetime) -> str:
    """UTC, second precision, with Z (the generic routes)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(dt: datetime) -> str:
    """UTC with milliseconds and Z (HubSpot's form)."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _stamp(rng: random.Random) -> tuple[datetime, datetime]:
    created = BASE + timedelta(minutes=rng.randint(0, 60 * 24 * 90))
    return created, created + timedelta(seconds=rng.randint(0, 60 * 60 * 24 * 30))


def phone(rng: random.Random, region: str) -> str:
    """A valid fixed-line number of the region, international format (the example number, varied)."""
    import phonenumbers
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    digits = str(example.national_number)
    for _ in range(50):
        tail = "".join(str(rng.randint(0, 9)) for _ in range(4))
        number = phonenumbers.parse(f"+{example.country_code}{digits[:-4]}{tail}")
        if phonenumbers.is_valid_number(number):
            break
    else:
        number = example
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _company(rng: random.Random, i: int) -> dict[str, Any]:
    word, kind = _WORDS[i % len(_WORDS)], _KINDS[(i // len(_WORDS) + rng.randint(0, 9)) % len(_KINDS)]
    country, city, state, postal, currency, form = rng.choice(_PLACES)
    slug = f"{word}-{kind}".lower()
    created, updated = _stamp(rng)
    return {"id": f"co-{i:05d}", "code": f"C{i:05d}", "name": f"{word} {kind} {form}" + (f" {i}" if i >= 240 else ""),
            "email": f"info@{slug}{i}.example", "phone": phone(rng, country),
            "country": country, "city": city, "state": state, "postal_code": postal,
            "address": f"{rng.randint(1, 250)} {rng.choice(('Harbor', 'Main', 'Station', 'Park'))} Street",
            "status": "active" if rng.random() > 0.1 else "inactive", "currency": currency,
            "credit_limit": f"{rng.randint(5, 500) * 1000}.00", "industry": _INDUSTRIES[i % len(_INDUSTRIES)],
            "employees": rng.randint(5, 5000), "created_at": iso(created), "updated_at": iso(updated)}


def _contact(rng: random.Random, i: int, companies: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    company = companies[rng.randrange(len(companies))]
    created, updated = _stamp(rng)
    return {"id": f"ct-{i:05d}", "first_name": first, "last_name": last,
            "email": f"{first}.{last}{i}@{company['email'].split('@')[1]}".lower(),
            "phone": phone(rng, company["country"]),
            "company_id": company["id"], "job_title": rng.choice(("Buyer", "CFO", "Head of Procurement", "CEO")),
            "created_at": iso(created), "updated_at": iso(updated)}


def _deal(rng: random.Random, i: int, companies: list[dict[str, Any]]) -> dict[str, Any]:
    company = companies[rng.randrange(len(companies))]
    created, updated = _stamp(rng)
    return {"id": f"dl-{i:05d}", "title": f"{company['name']} – order {2025 + i % 2}-{i:04d}",
            "amount": f"{rng.randint(1, 400) * 250}.00", "currency": company["currency"],
            "stage": rng.choice(_STAGES), "company_id": company["id"],
            "close_date": (created + timedelta(days=rng.randint(10, 120))).date().isoformat(),
            "created_at": iso(created), "updated_at": iso(updated)}


def _hs(obj_id: int, props: dict[str, Any], created: str, updated: str) -> dict[str, Any]:
    props = {k: (None if v is None else str(v)) for k, v in props.items()}
    return {"id": str(obj_id), "properties": {**props, "hs_object_id": str(obj_id)}, "createdAt": created,
            "updatedAt": updated, "archived": False}


def to_hubspot(kind: str, rec: dict[str, Any], obj_id: int, company_ids: dict[str, str]) -> dict[str, Any]:
    """One generic record as a HubSpot CRM v3 object (property values are strings)."""
    created = iso_ms(datetime.fromisoformat(rec["created_at"]))
    updated = iso_ms(datetime.fromisoformat(rec["updated_at"]))
    if kind == "companies":
        props = {"name": rec["name"], "domain": rec["email"].split("@")[1], "phone": rec["phone"],
                 "address": rec["address"], "city": rec["city"], "state": rec["state"], "zip": rec["postal_code"],
                 "country": _COUNTRY_NAMES[rec["country"]], "industry": rec["industry"],
                 "numberofemployees": rec["employees"],
                 "annualrevenue": rec["credit_limit"], "lifecyclestage": "customer", "createdate": created,
                 "hs_lastmodifieddate": updated}
    elif kind == "contacts":
        props = {"firstname": rec["first_name"], "lastname": rec["last_name"], "email": rec["email"],
                 "phone": rec["phone"], "jobtitle": rec["job_title"], "associatedcompanyid":
                 company_ids.get(rec["company_id"]), "createdate": created, "lastmodifieddate": updated}
    else:
        props = {"dealname": rec["title"], "amount": rec["amount"], "deal_currency_code": rec["currency"],
                 "dealstage": _HS_STAGES[rec["stage"]], "pipeline": "default",
                 "closedate": rec["close_date"] + "T00:00:00.000Z", "createdate": created,
                 "hs_lastmodifieddate": updated}
    return _hs(obj_id, props, created, updated)


def generate(seed: int, records: int) -> dict[str, Any]:
    """The whole data set: generic collections, their HubSpot twins, and id counters."""
    rng = random.Random(seed)
    n = max(1, records)
    companies = [_company(rng, i) for i in range(1, n + 1)]
    contacts = [_contact(rng, i, companies) for i in range(1, n + 1)]
    deals = [_deal(rng, i, companies) for i in range(1, max(1, n // 2) + 1)]
    data: dict[str, Any] = {"companies": companies, "contacts": contacts, "deals": deals}
    starts = {"companies": 5_000_000, "contacts": 7_000_000, "deals": 9_000_000}
    company_ids = {c["id"]: str(starts["companies"] + i) for i, c in enumerate(companies, 1)}
    data["hubspot"] = {kind: [to_hubspot(kind, rec, starts[kind] + i, company_ids)
                              for i, rec in enumerate(data[kind], 1)] for kind in COLLECTIONS}
    data["next_id"] = {**{kind: len(data[kind]) + 1 for kind in COLLECTIONS},
                       **{f"hubspot.{k}": starts[k] + len(data[k]) + 1 for k in COLLECTIONS}}
    return data
