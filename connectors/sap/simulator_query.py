"""Reading in the simulator: resource paths, $select/$expand/$orderby/$top/$skip/$inlinecount,
server-driven paging with ``$skiptoken``, and the verbose JSON entity representation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from connectors.sap import wire
from connectors.sap.odata_filter import FilterError, compile_filter
from connectors.sap.schema import ENTITY_SETS, EntitySet, Nav
from connectors.sap.store import SapStore

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<key>.*)\))?$")
_KEY_PART = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?'(?P<value>(?:[^']|'')*)'\s*(?:,|$)")


class ODataError(Exception):
    """An error answered with SAP Gateway's JSON error body.

    Args:
        status: HTTP status.
        code: the message code (``error.code``).
        message: the message text (``error.message.value``).
        details: extra messages for ``innererror.errordetails``.
    """

    def __init__(self, status: int, code: str, message: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def not_found(what: str) -> ODataError:
    return ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{what}'")


def bad_request(message: str) -> ODataError:
    return ODataError(400, "/IWBEP/CM_MGW_RT/004", message)


@dataclass
class Target:
    """What a resource path addresses."""

    es: EntitySet
    key: tuple[str, ...] | None = None           # a single entity of es
    parent: tuple[EntitySet, dict] | None = None  # the navigation source, for Set(key)/to_X
    nav: Nav | None = None
    prop: str | None = None                      # Set(key)/Property
    count: bool = False                          # .../$count


def parse_key(es: EntitySet, text: str) -> tuple[str, ...]:
    """``'17100001'`` or ``SalesOrder='1',SalesOrderItem='10'`` -> key values in key order."""
    found: dict[str, str] = {}
    pos = 0
    names = [p.name for p in es.keys]
    while pos < len(text):
        match = _KEY_PART.match(text, pos)
        if not match or match.end() == pos:
            raise bad_request(f"Invalid key predicate ({text}) for entity set {es.name}")
        name = match.group("name") or (names[0] if len(names) == 1 else "")
        found[name] = match.group("value").replace("''", "'")
        pos = match.end()
    if sorted(found) != sorted(names):
        raise bad_request(f"Invalid key predicate ({text}): expected {', '.join(names)}")
    return tuple(found[n] for n in names)


def resolve_path(store: SapStore, service_sets: dict[str, EntitySet], segments: list[str]) -> Target:
    """Resolve ``Set``, ``Set(key)``, ``Set(key)/nav``, ``Set(key)/Prop``, ``.../$count``."""
    count = bool(segments) and segments[-1] == "$count"
    if count:
        segments = segments[:-1]
    if not segments or len(segments) > 2:
        raise not_found("/".join(segments))
    match = _SEGMENT.match(segments[0])
    if not match or match.group("name") not in service_sets:
        raise not_found(segments[0])
    es = service_sets[match.group("name")]
    key = parse_key(es, match.group("key")) if match.group("key") is not None else None
    if len(segments) == 1:
        if count and key is not None:
            raise bad_request("$count is only allowed on a collection")
        return Target(es, key=key, count=count)
    if key is None:
        raise bad_request(f"Navigation from {es.name} needs a key predicate")
    rec = store.get(es.name, key)
    if rec is None:
        raise not_found(es.type_name)
    name = segments[1]
    nav = es.nav(name)
    if nav is not None:
        target = ENTITY_SETS[nav.target]
        return Target(target, parent=(es, rec), nav=nav, count=count)
    if name in es.by_name and not count:
        return Target(es, key=key, prop=name)
    raise not_found(name)


@dataclass
class Select:
    """Which properties and navigation properties one entity level shows."""

    all: bool = True
    props: set[str] = field(default_factory=set)
    navs: dict[str, "Select"] = field(default_factory=dict)


def parse_select(text: str | None, es: EntitySet) -> Select:
    if not text or text.strip() == "*":
        return Select()
    root = Select(all=False)
    for item in (i.strip() for i in text.split(",") if i.strip()):
        node, cur = root, es
        parts = item.split("/")
        for i, part in enumerate(parts):
            nav = cur.nav(part)
            last = i == len(parts) - 1
            if part == "*" and last:
                node.all = True
            elif nav is not None:
                node = node.navs.setdefault(part, Select(all=last))
                if last:
                    node.all = True
                cur = ENTITY_SETS[nav.target]
            elif last and part in cur.by_name:
                node.props.add(part)
            else:
                raise bad_request(f"Property {part} not found in type '{cur.type_name}' ($select={text})")
    return root


def parse_expand(text: str | None, es: EntitySet) -> dict[str, dict]:
    tree: dict[str, dict] = {}
    for item in (i.strip() for i in (text or "").split(",") if i.strip()):
        node, cur = tree, es
        for part in item.split("/"):
            nav = cur.nav(part)
            if nav is None:
                raise bad_request(f"Property {part} not found in type '{cur.type_name}' ($expand={text})")
            node = node.setdefault(part, {})
            cur = ENTITY_SETS[nav.target]
    return tree


class Renderer:
    """Turns stored records into verbose JSON for one request (``root`` is the absolute service URL)."""

    def __init__(self, store: SapStore, root: str) -> None:
        self.store = store
        self.root = root

    def uri(self, es: EntitySet, rec: dict) -> str:
        return f"{self.root}/{es.name}" + wire.key_predicate(
            [(p.name, str(rec.get(p.name))) for p in es.keys])

    def entity(self, es: EntitySet, rec: dict, expand: dict[str, dict], select: Select) -> dict[str, Any]:
        uri = self.uri(es, rec)
        meta = {"id": uri, "uri": uri, "type": f"{es.service}.{es.type_name}"}
        etag = self.store.etag(es, rec)
        if etag:
            meta["etag"] = etag
        out: dict[str, Any] = {"__metadata": meta}
        for p in es.props:
            if select.all or p.name in select.props:
                out[p.name] = rec.get(p.name)
        for nav in es.navs:
            sub = select.navs.get(nav.name)
            if not select.all and sub is None:
                continue
            if nav.name not in expand:
                out[nav.name] = {"__deferred": {"uri": f"{uri}/{nav.name}"}}
                continue
            target = ENTITY_SETS[nav.target]
            children = self.store.related(es, rec, nav.name)
            child_select = sub or Select()
            rendered = [self.entity(target, c, expand[nav.name], child_select) for c in children]
            out[nav.name] = {"results": rendered} if nav.many else (rendered[0] if rendered else None)
        return out


def sort_records(records: list[dict], es: EntitySet, orderby: str | None) -> list[dict]:
    """Key order first (SAP's default), then each $orderby item, stable."""
    keys = [p.name for p in es.keys]
    out = sorted(records, key=lambda r: tuple(str(r.get(k)) for k in keys))
    if not orderby:
        return out
    items = []
    for part in (p.strip() for p in orderby.split(",") if p.strip()):
        words = part.split()
        if len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")) or words[0] not in es.by_name:
            raise bad_request(f"Invalid $orderby item '{part}' for type '{es.type_name}'")
        items.append((es.by_name[words[0]], len(words) == 2 and words[1] == "desc"))
    for prop, desc in reversed(items):
        # nulls sort first ascending, like HANA
        out.sort(key=lambda r, p=prop: (r.get(p.name) is not None,
                                        wire.comparable(p.type, r.get(p.name)) if r.get(p.name) is not None else 0),
                 reverse=desc)
    return out


def _int_option(params: dict[str, str], name: str) -> int | None:
    if name not in params:
        return None
    try:
        value = int(params[name])
    except ValueError:
        raise bad_request(f"Invalid value '{params[name]}' for system query option {name}") from None
    if value < 0:
        raise bad_request(f"Invalid value '{params[name]}' for system query option {name}")
    return value


def filtered(store: SapStore, es: EntitySet, records: list[dict], params: dict[str, str]) -> list[dict]:
    """The records that pass ``$filter`` (all when there is none)."""
    if not params.get("$filter"):
        return records
    try:
        test = compile_filter(params["$filter"], es, store.resolve(es), ENTITY_SETS)
    except FilterError as exc:
        raise bad_request(str(exc)) from None
    return [r for r in records if test(r)]


def collection(store: SapStore, renderer: Renderer, es: EntitySet, records: list[dict],
               params: dict[str, str], request_url: str, page_size: int) -> dict[str, Any]:
    """The ``d`` object of a collection response.

    Args:
        records: the candidates (all of the set, or the records a navigation leads to).
        params: the decoded query options.
        request_url: the absolute URL of the resource, without query string, for ``__next``.
        page_size: the server page size; longer results get ``__next`` with ``$skiptoken``.
    """
    records = filtered(store, es, records, params)
    total = len(records)
    records = sort_records(records, es, params.get("$orderby"))
    skip, top = _int_option(params, "$skip") or 0, _int_option(params, "$top")
    records = records[skip:] if top is None else records[skip:skip + top]
    token = params.get("$skiptoken", "0")
    if not token.isdigit():
        raise bad_request(f"Invalid $skiptoken '{token}'")
    start = int(token)
    page = records[start:start + page_size]
    expand = parse_expand(params.get("$expand"), es)
    select = parse_select(params.get("$select"), es)
    out: dict[str, Any] = {"results": [renderer.entity(es, r, expand, select) for r in page]}
    if params.get("$inlinecount") == "allpages":
        out["__count"] = str(total)
    elif params.get("$inlinecount") not in (None, "none"):
        raise bad_request(f"Invalid value '{params['$inlinecount']}' for $inlinecount")
    if start + page_size < len(records):
        nxt = {k: v for k, v in params.items() if k != "$skiptoken"}
        nxt["$skiptoken"] = str(start + page_size)
        # keep $ and the literal quotes readable, as SAP Gateway writes its __next links
        query = urlencode(nxt, quote_via=quote, safe="$'(),/:")
        out["__next"] = f"{request_url}?{query}"
    return out
