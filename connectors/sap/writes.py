"""Outbound changes to SAP: values encoded by the service metadata, deep inserts, updates of
a record and of the child records it carries (addresses, items ...), archiving for deletes.

OData v2 has no deep update, so an update with nested values PATCHes the
parent's own properties, then each child through its own URI (matched by key,
else by position), and POSTs children that do not exist yet to the parent's
navigation property.

A create leaves the hub's record id in a property SAP keeps (``CREATE_REFS``) and
is sent once: after a timeout or a 5xx it may have been carried out, so the next
attempt looks that id up first and reports the record found instead of making a
second one. An update carries ``If-Match`` with the ETag the connector last saw;
SAP's 412 then means someone changed the record since: the write waits for a read.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
from typing import Any
from urllib.parse import quote

import requests

from connectors.sap import wire
from connectors.sap.client import SapClient, odata_message
from connectors.sap.metadata import ServiceModel, TypeInfo
from hub.errors import FatalError, SkippableRecordError
from hub.mapping_types import to_bool

log = logging.getLogger(__name__)

# entity sets SAP does not let us delete: a delete becomes this change instead
ARCHIVE_INSTEAD_OF_DELETE = {"A_BusinessPartner": {"IsMarkedForArchiving": True}}
# where a create leaves the hub's record id (PROTOCOLS.md 2.5: the external system's number of a partner,
# the external document id of a sales order), so a create sent again finds the record it made
CREATE_REFS = {"A_BusinessPartner": "BusinessPartnerIDByExtSystem", "A_SalesOrder": "ExternalDocumentID"}
# the roles a create sends inline (PROTOCOLS.md 2.3): a business partner the hub creates is a customer, and
# S/4HANA has it as one only with the customer roles (financial accounting, sales); updates leave roles alone
CREATE_ROLES = {"A_BusinessPartner": ("FLCU00", "FLCU01")}
ROLE_NAV = "to_BusinessPartnerRole"
LOOKUP_CHUNK = 20                # refs per lookup request: URLs stay short
PERSON = "1"                     # BusinessPartnerCategory of a natural person
_CJK = re.compile(r"[\u3400-\u9fff]")
# two-character family names (复姓): the rest of a name written without a space is the given name
COMPOUND_SURNAMES = frozenset("欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 令狐 端木 西门 "
                              "南宫 独孤 轩辕 呼延 闻人 申屠 澹台 公冶 太史 赫连".split())


class WriteFailed(Exception):
    """A per-record failure (reported in the WriteResult)."""

    def __init__(self, message: str, retriable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retriable, self.retry_after = retriable, retry_after


def create_ref(record_id: str, max_length: int | None) -> str:
    """The value a create leaves in its ``CREATE_REFS`` property: the record id, or a digest of it
    where the property is shorter (BusinessPartnerIDByExtSystem holds 20 characters, a record id 26)."""
    if max_length is None or len(record_id) <= max_length:
        return record_id
    digest = base64.b32encode(hashlib.sha256(record_id.encode("utf-8")).digest()).decode("ascii")
    return digest[:max_length]


def split_person_name(name: str) -> tuple[str, str]:
    """(FirstName, LastName) of a person's full name, so that SAP's full name reads back as ``name``:
    Chinese names run family name first without a space (张伟, 欧阳修), others end with it (Anna Schmidt)."""
    name = " ".join(name.split())
    if _CJK.search(name):
        if " " in name:
            last, first = name.split(" ", 1)
            return first.replace(" ", ""), last
        size = 2 if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else 1
        return name[size:], name[:size]
    if " " in name:
        first, last = name.rsplit(" ", 1)
        return first, last
    return "", name


def name_person(values: dict[str, Any]) -> dict[str, Any]:
    """A person is named by FirstName and LastName (SAP derives its full name from them and ignores the
    organization name): the name written as OrganizationBPName1 goes there instead."""
    if "OrganizationBPName1" not in values or "FirstName" in values or "LastName" in values:
        return values
    out = dict(values)
    name = out.pop("OrganizationBPName1")
    out["FirstName"], out["LastName"] = split_person_name(str(name or ""))
    return out


def unfold_picks(values: dict[str, Any], picks: dict[str, str], model: ServiceModel,
                 info: TypeInfo) -> dict[str, Any]:
    """Move synthetic ``first`` fields (``_address: {...}``) back under their navigation path.

    ``{"_address": {"CityName": "Xi'an"}}`` with ``_address: to_BusinessPartnerAddress`` becomes
    ``{"to_BusinessPartnerAddress": {"results": [{"CityName": "Xi'an"}]}}``.
    """
    out = {k: v for k, v in values.items() if k not in picks}
    for name, path in picks.items():
        if not isinstance(values.get(name), dict):
            continue
        node, cur = out, info
        for step in path.split("/"):
            nav = model.nav_target(cur, step)
            if nav is None:
                raise SkippableRecordError(f"{name}: {cur.name} has no navigation property {step}")
            cur, many = nav
            if many:
                holder = node.get(step) if isinstance(node.get(step), dict) else {}
                results = holder.setdefault("results", [])
                if not results:
                    results.append({})
                node[step] = holder
                node = results[0]
            else:
                node = node.setdefault(step, {})
        node.update(values[name])
    return out


def with_roles(info: TypeInfo, entity_set: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the roles a create of ``entity_set`` needs (``CREATE_ROLES``) inline, next to any the
    values give; unchanged where the service has no role navigation."""
    roles = CREATE_ROLES.get(entity_set)
    if not roles or ROLE_NAV not in info.navs:
        return values
    given = _items(values.get(ROLE_NAV), ROLE_NAV)
    have = {str(r.get("BusinessPartnerRole")) for r in given}
    added = [{"BusinessPartnerRole": role} for role in roles if role not in have]
    return {**values, ROLE_NAV: {"results": [*given, *added]}}


def encode_values(model: ServiceModel, info: TypeInfo, values: dict[str, Any], *, mode: str) -> dict[str, Any]:
    """The request body for ``values``: wire forms by declared type.

    Args:
        mode: ``create`` keeps creatable properties, ``update`` updatable ones (and nested records
            keep both: they may be created or updated).

    Raises:
        SkippableRecordError: a property the entity type does not have, or a value that does not fit.
    """
    body: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("_"):
            continue                     # synthetic fields (_changed_at, __metadata)
        nav = model.nav_target(info, name)
        if nav is not None:
            target, many = nav
            encoded = [encode_values(model, target, item, mode="create" if mode == "create" else "any")
                       for item in _items(value, name)]
            if many:
                body[name] = {"results": encoded}
            elif encoded:
                body[name] = encoded[0]
            continue
        prop = info.props.get(name)
        if prop is None:
            raise SkippableRecordError(f"{info.name} has no property {name}")
        allowed = {"create": prop.creatable, "update": prop.updatable}.get(mode, True)
        if not allowed:
            log.debug("not writing read-only property %s of %s", name, info.name)
            continue
        try:
            if prop.type == "Edm.String":
                body[name] = "" if value is None else ("X" if value is True else "" if value is False
                                                       else str(value))
            elif prop.type == "Edm.Boolean":
                body[name] = None if value is None else to_bool(value)
            elif prop.type in ("Edm.Int32", "Edm.Int16", "Edm.Byte"):
                body[name] = None if value is None else int(value)
            else:
                body[name] = wire.encode(prop.type, value, date_only=prop.date_only)
        except (ValueError, TypeError) as exc:
            raise SkippableRecordError(f"{name}: {exc}") from None
    return body


def _items(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        value = value["results"]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    raise SkippableRecordError(f"{name}: expected an object or a list of objects")


def entity_path(entity_set: str, key_values: list[tuple[str, str]]) -> str:
    return quote(entity_set + wire.key_predicate(key_values), safe="()'=,")


class RecordWriter:
    """Creates, updates and archives records of one entity set."""

    def __init__(self, client: SapClient, service: str, model: ServiceModel, entity_set: str) -> None:
        self.client, self.service, self.model, self.entity_set = client, service, model, entity_set
        self.info = model.type_of_set(entity_set)

    def _check(self, resp: requests.Response, what: str) -> requests.Response:
        if resp.status_code < 400:
            return resp
        message = f"{what}: HTTP {resp.status_code} {odata_message(resp)}"
        if resp.status_code in (401, 403):
            raise FatalError(message, connector=self.client.name)
        raise WriteFailed(message, retriable=resp.status_code in (409, 412, 423))

    def ref_of(self, ref_prop: str | None, record_id: str, values: dict[str, Any]) -> tuple[str, str] | None:
        """(property, value) a create of ``record_id`` leaves in the record (see :func:`create_ref`); None
        where the entity type has no such property or the values set it themselves."""
        prop = self.info.props.get(ref_prop or "")
        if prop is None or not record_id or prop.name in values:
            return None
        return prop.name, create_ref(record_id, prop.max_length)

    def made_before(self, prop: str, refs: list[str], key: str) -> dict[str, str]:
        """ref -> key of the records that hold these refs in ``prop`` (made by earlier attempts of creates),
        one request per 20 refs."""
        what = f"read {self.entity_set}"
        found: dict[str, str] = {}
        for start in range(0, len(refs), LOOKUP_CHUNK):
            where = " or ".join(f"{prop} eq {wire.string_literal(r)}" for r in refs[start:start + LOOKUP_CHUNK])
            params = {"$filter": where, "$select": f"{key},{prop}", "$format": "json"}
            try:
                page = self._get(self.entity_set, params)
                while True:
                    for rec in (page.get("d") or {}).get("results") or []:
                        found.setdefault(str(rec[prop]), str(rec[key]))
                    more = (page.get("d") or {}).get("__next")
                    if not more:
                        break
                    page = self._get(_relative(more, self.service))
            except WriteFailed as exc:
                if exc.retriable:
                    raise
                raise WriteFailed(f"{exc}; a create is looked up by {prop} first (the entity option "
                                  "create_ref names another property, or false for none)") from None
            except (KeyError, TypeError, AttributeError):
                raise WriteFailed(f"{what}: unexpected answer to the lookup by {prop}", retriable=True) from None
        return found

    def create(self, values: dict[str, Any], key: str, ref: tuple[str, str] | None = None) -> str:
        """Deep insert with the roles the entity set needs (``CREATE_ROLES``), sent once (a timeout or 5xx is
        not sent again: it may have been carried out); ``ref`` (property, value) marks the record so that a
        later attempt finds it. Returns the new key."""
        body = encode_values(self.model, self.info, with_roles(self.info, self.entity_set, values), mode="create")
        if ref is not None:
            body[ref[0]] = ref[1]
        resp = self._check(self.client.modify("POST", self.service, self.entity_set, body=body, idempotent=False),
                           f"create {self.entity_set}")
        try:
            return str(resp.json()["d"][key])
        except (ValueError, KeyError, TypeError):
            raise WriteFailed(f"create {self.entity_set}: the response carries no {key}") from None

    def category(self, source_id: str) -> str | None:
        """A business partner's category (1 person, 2 organization), read by key."""
        path = entity_path(self.entity_set, [(self.info.keys[0], source_id)])
        return (self._get(path, {"$select": "BusinessPartnerCategory"}).get("d") or {}).get("BusinessPartnerCategory")

    def update(self, source_id: str, values: dict[str, Any], if_match: str | None = None) -> None:
        """PATCH the record (and its children); ``if_match``: the ETag last seen, so a change made in SAP
        since then is not overwritten (:class:`WriteFailed`, retriable, "waiting for a read")."""
        if len(self.info.keys) != 1:
            raise SkippableRecordError(f"{self.entity_set} has a composite key; cannot address it by one id")
        path = entity_path(self.entity_set, [(self.info.keys[0], source_id)])
        body = encode_values(self.model, self.info, values, mode="update")
        self._update(self.info, path, body, if_match)

    def delete(self, source_id: str) -> None:
        if self.entity_set in ARCHIVE_INSTEAD_OF_DELETE:
            self.update(source_id, ARCHIVE_INSTEAD_OF_DELETE[self.entity_set])
            return
        path = entity_path(self.entity_set, [(self.info.keys[0], source_id)])
        resp = self.client.modify("DELETE", self.service, path)
        if resp.status_code != 404:      # already gone is done
            self._check(resp, f"delete {path}")

    def _patch(self, path: str, body: dict[str, Any], if_match: str | None = None) -> None:
        resp = self.client.modify("PATCH", self.service, path, body=body,
                                  headers={"If-Match": if_match} if if_match else None)
        if resp.status_code == 412 and if_match:
            raise self._changed(path, f"HTTP 412 {odata_message(resp)}")
        if resp.status_code == 428 and not if_match:
            # the service insists on optimistic locking, and no read of this record was seen to hold it to
            resp = self.client.modify("PATCH", self.service, path, body=body, headers={"If-Match": self._etag(path)})
        self._check(resp, f"update {path}")

    def _changed(self, path: str, why: str) -> WriteFailed:
        return WriteFailed(f"update {path}: {why}: {self.client.name} changed it since the last read: "
                           "waiting for a read", retriable=True)

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """Read the record a change addresses; a missing record is this change's error, not the run's."""
        resp = self._check(self.client.send("GET", self.client.url(self.service, path), params=params),
                           f"read {path}")
        try:
            return resp.json()
        except ValueError:
            raise WriteFailed(f"read {path}: the body is not JSON", retriable=True) from None

    def _etag(self, path: str) -> str:
        body = self._get(path)
        return (body.get("d", {}).get("__metadata") or {}).get("etag") or "*"

    def _update(self, info: TypeInfo, path: str, body: dict[str, Any], if_match: str | None = None) -> None:
        scalars = {k: v for k, v in body.items() if k in info.props}
        navs = {k: v for k, v in body.items() if k in info.navs}
        current: dict[str, Any] = {}
        if navs:      # read before the record's own PATCH, which gives it a new ETag
            expand = ",".join(_expand_paths(self.model, info, navs))
            current = self._get(path, {"$expand": expand})["d"]
            etag = (current.get("__metadata") or {}).get("etag")
            if if_match and etag and etag != if_match:   # children have no ETag of their own to send
                raise self._changed(path, "its ETag is not the one last read")
        if scalars:
            self._patch(path, scalars, if_match)
        for name, value in navs.items():
            self._update_children(info, path, current, name, value)

    def _update_children(self, info: TypeInfo, parent_path: str, parent: dict, nav: str, value: Any) -> None:
        target, many = self.model.nav_target(info, nav)  # type: ignore[misc]
        wanted = value["results"] if many else [value]
        have = parent.get(nav)
        existing = (have or {}).get("results", []) if many else ([have] if have else [])
        for i, item in enumerate(wanted):
            match = _match(target, item, existing, i)
            if match is None:
                resp = self.client.modify("POST", self.service, f"{parent_path}/{nav}",
                                          body=_creatable(self.model, target, item))
                self._check(resp, f"create {parent_path}/{nav}")
                continue
            child_path = _relative(match["__metadata"]["uri"], self.service)
            keyless = {k: v for k, v in item.items() if k not in target.keys}
            self._update_children_of(target, child_path, match, keyless)

    def _update_children_of(self, info: TypeInfo, path: str, current: dict, body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if k in info.props and info.props[k].updatable}
        if scalars:
            self._patch(path, scalars)
        for name, value in ((k, v) for k, v in body.items() if k in info.navs):
            self._update_children(info, path, current, name, value)


class EarlierCreates:
    """The records earlier attempts of a batch's creates made, looked up once for all of its creates."""

    def __init__(self, writer: RecordWriter, ref_prop: str | None, changes: list[Any], key: str) -> None:
        self.writer, self.key = writer, key
        self.refs = {ch.change_id: ref for ch in changes if ch.source_id is None and not ch.delete
                     and (ref := writer.ref_of(ref_prop, ch.record_id, ch.values)) is not None}
        self.found: dict[str, str] | None = None

    def ref(self, change_id: str) -> tuple[str, str] | None:
        return self.refs.get(change_id)

    def made(self, change_id: str) -> str | None:
        """The key of the record an earlier attempt of this create made, or None (then create it)."""
        ref = self.refs.get(change_id)
        if ref is None:
            return None
        if self.found is None:     # one lookup for the whole batch; a failed one is tried again by the next create
            self.found = self.writer.made_before(ref[0], [v for _, v in self.refs.values()], self.key)
        return self.found.get(ref[1])


def _expand_paths(model: ServiceModel, info: TypeInfo, navs: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for name, value in navs.items():
        path = f"{prefix}{name}"
        out.append(path)
        target, many = model.nav_target(info, name)  # type: ignore[misc]
        for item in (value["results"] if many else [value]):
            nested = {k: v for k, v in item.items() if k in target.navs}
            out += _expand_paths(model, target, nested, f"{path}/")
    return list(dict.fromkeys(out))


def _match(target: TypeInfo, item: dict, existing: list[dict], index: int) -> dict | None:
    """The existing child an outbound item updates: the one with the key values it gives (none: a new
    child), or without key values the one at the same position."""
    given = {k: item[k] for k in target.keys if item.get(k) not in (None, "")}
    if given:
        return next((c for c in existing if all(str(c.get(k)) == str(v) for k, v in given.items())), None)
    return existing[index] if index < len(existing) else None


def _creatable(model: ServiceModel, info: TypeInfo, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without the properties a create does not take, at every level."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        nav = model.nav_target(info, name)
        if nav is not None:
            target, many = nav
            out[name] = {"results": [_creatable(model, target, v) for v in value["results"]]} if many \
                else _creatable(model, target, value)
        elif name in info.props and info.props[name].creatable:
            out[name] = value
    return out


def _relative(uri: str, service: str) -> str:
    """``A_BusinessPartnerAddress(...)`` from the absolute URI the server gave (host may be a proxy's)."""
    marker = f"/{service}/"
    return uri.split(marker, 1)[1] if marker in uri else uri.rsplit("/", 1)[-1]


