"""Blocking keys: which golden records a new record is compared with at all.

Keys are a fixed function of a record's values (never of the configuration),
so the keys kept in ``match_key`` stay valid when the fuzzy fields or their
weights change. Each key type catches a different kind of duplicate; a pair
needs to share only one key to be compared:

    tx / em / ph   normalized tax id, e-mail, phone (identifying: a shared one is always compared)
    nm             the whole normalized name (native script)
    nl             the romanized distinctive core of the name (xinghai): cross-script and spacing variants
    np             phonetic codes of a Latin name's words, sorted: typos and swapped name order
    nz / nc        one name word (or the core) with the postal code / the city: typos elsewhere in the name
    ad / ap        house number with street word / with postal code: names typed very differently
    aw             the whole normalized address
    nw / sw        one name word / the street word alone                       } broad: used only while
    pc / ct        the postal code alone / the city alone                      } a block stays small
    nk             the natural key of other entities (order_no, contract_no ...)

Broad keys find duplicates with typos in several fields at once in small and
medium stores; in a large store their blocks outgrow ``MAX_BLOCK`` and the
matcher skips them (it counts a block before fetching it), leaving the
selective keys.
"""
from __future__ import annotations

from typing import Any, Iterable

from hub import normalize as norm
from hub.canonical import ENTITIES
from hub.matching_lexicon import LATIN_INDUSTRY, LATIN_STOPWORDS

IDENTIFYING = ("tx", "em", "ph")          # shared values of these are compared whatever the block size
BROAD = ("nw", "sw", "pc", "ct", "np")    # counted before fetching: skipped where the block is large
KEY_TYPES = ("tx", "em", "ph", "nm", "nl", "np", "nz", "nc", "ad", "ap", "aw", "nw", "sw", "pc", "ct", "nk")
# the fields a key type is made of: a pair found through a key says little about those fields (training)
KEY_FIELDS_OF = {"tx": ("tax_id",), "em": ("email",), "ph": ("phone",), "nm": ("name",), "nl": ("name",),
                 "np": ("name",), "nw": ("name",), "nz": ("name", "postal_code"), "nc": ("name", "city"),
                 "ad": ("address",), "ap": ("address", "postal_code"), "aw": ("address",), "sw": ("address",),
                 "pc": ("postal_code",), "ct": ("city",)}
EXACT_KEY_TYPES = {"tax_id": "tx", "email": "em", "phone": "ph"}   # for hub.identity
MAX_LEN = 255
# fields whose values the keys are made of (loaded for golden records before keys are built)
KEY_FIELDS = ("name", "customer_type", "tax_id", "email", "phone", "country", "city", "postal_code", "address")


def key_fields(entity: str) -> tuple[str, ...]:
    fields = ENTITIES[entity].fields
    own = tuple(f for f in KEY_FIELDS if f in fields)
    nk = ENTITIES[entity].natural_key
    return own + ((nk,) if nk not in own else ())


def _name_words(n: norm.Name) -> list[str]:
    if n.cjk:
        return [n.core] if len(n.core) >= 2 else []
    words = [t for t in n.latin if len(t) > 1 and t not in LATIN_STOPWORDS and t not in LATIN_INDUSTRY
             and t != n.region]
    return words[:4]


def record_keys(entity: str, values: dict[str, Any]) -> set[tuple[str, str]]:
    """The blocking keys (key type, key value) of one record's encoded values."""
    keys: set[tuple[str, str]] = set()
    edef = ENTITIES[entity]

    def add(kt: str, kv: str | None) -> None:
        if kv:
            keys.add((kt, kv[:MAX_LEN]))

    if "tax_id" in edef.fields:
        add("tx", norm.tax_id(values.get("tax_id")))
    if "email" in edef.fields:
        add("em", norm.email(values.get("email")))
    if "phone" in edef.fields and values.get("phone"):
        add("ph", norm.phone(values.get("phone"), values.get("country") or "CN"))
    postal = norm.postal_code(values.get("postal_code")) if "postal_code" in edef.fields else None
    city = norm.place(values.get("city")) if "city" in edef.fields else None
    if "name" in edef.fields:
        n = norm.name(values.get("name"), "person" if values.get("customer_type") == "person" else None)
        if n is not None:
            add("nm", n.compact)
            if len(n.core) >= 2 and n.core != n.compact:
                add("nl", n.core)
            if not n.cjk:
                codes = sorted({norm.soundex(t) for t in n.latin if len(t) > 1})
                if codes:
                    add("np", "|".join(codes))
            for w in _name_words(n):
                add("nw", w)
                if postal:
                    add("nz", f"{w}|{postal}")
                if city:
                    add("nc", f"{w}|{city}")
    if "address" in edef.fields:
        a = norm.address(values.get("address"))
        if a is not None:
            add("aw", a.raw)
            add("sw", a.street if len(a.street) > 2 else None)
            if a.number and a.street:
                add("ad", f"{a.number}|{a.street}")
            if a.number and postal:
                add("ap", f"{a.number}|{postal}")
    add("pc", postal)
    add("ct", city)
    if entity != "customer":
        nk = edef.natural_key
        add("nk", norm.exact_key(nk, values.get(nk)))
    return keys


def key_rows(entity: str, records: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, str]]:
    """``match_key`` rows for (record id, encoded values) pairs."""
    rows = []
    for rid, values in records:
        for kt, kv in record_keys(entity, values):
            rows.append({"entity": entity, "record_id": rid, "key_type": kt, "key_value": kv})
    return rows
