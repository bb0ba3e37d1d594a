"""Reading a service's ``$metadata`` (EDMX, OData v2) into what the connector needs.

The connector writes values in the wire form of each property's declared type,
resolves mapping paths into ``$select``/``$expand``, and finds the keys of
child records; all of that comes from the tenant's own metadata, never from
guesses about values.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from hub.errors import FatalError, RetriableError

SAP_NS = "{http://www.sap.com/Protocols/SAPData}"


@dataclass
class PropInfo:
    name: str
    type: str
    date_only: bool = False
    creatable: bool = True
    updatable: bool = True
    max_length: int | None = None


@dataclass
class TypeInfo:
    """One entity type: properties, key names, navigation name -> (target type, to many)."""

    name: str                       # qualified: API_BUSINESS_PARTNER.A_BusinessPartnerType
    props: dict[str, PropInfo] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    navs: dict[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class ServiceModel:
    """Entity types by qualified name and entity sets by name."""

    types: dict[str, TypeInfo]
    sets: dict[str, str]            # entity set -> qualified type name

    def type_of_set(self, entity_set: str) -> TypeInfo:
        try:
            return self.types[self.sets[entity_set]]
        except KeyError:
            raise FatalError(f"entity set {entity_set} is not in the service metadata; "
                             f"known: {', '.join(sorted(self.sets))}") from None

    def nav_target(self, info: TypeInfo, nav: str) -> tuple[TypeInfo, bool] | None:
        found = info.navs.get(nav)
        if found is None:
            return None
        return self.types[found[0]], found[1]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def parse_metadata(xml: bytes) -> ServiceModel:
    """Parse EDMX text.

    Raises:
        RetriableError: not well-formed XML (a body cut short on the way).
        FatalError: XML, but not an EDMX document.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise RetriableError(f"$metadata is not well-formed XML: {exc}") from None
    if _local(root.tag) != "Edmx":
        raise FatalError(f"$metadata is not an EDMX document (root element {_local(root.tag)})")
    types: dict[str, TypeInfo] = {}
    sets: dict[str, str] = {}
    ends: dict[tuple[str, str], tuple[str, str]] = {}   # (association, role) -> (type, multiplicity)
    pending: list[tuple[TypeInfo, str, str, str]] = []
    for schema in (el for el in root.iter() if _local(el.tag) == "Schema"):
        namespace = schema.get("Namespace", "")
        for node in schema:
            kind = _local(node.tag)
            if kind == "EntityType":
                info = TypeInfo(f"{namespace}.{node.get('Name')}")
                for child in node:
                    ckind = _local(child.tag)
                    if ckind == "Key":
                        info.keys = [ref.get("Name", "") for ref in child]
                    elif ckind == "Property":
                        info.props[child.get("Name", "")] = PropInfo(
                            child.get("Name", ""), child.get("Type", "Edm.String"),
                            date_only=child.get(f"{SAP_NS}display-format") == "Date",
                            creatable=child.get(f"{SAP_NS}creatable") != "false",
                            updatable=child.get(f"{SAP_NS}updatable") != "false",
                            max_length=_int(child.get("MaxLength")))
                    elif ckind == "NavigationProperty":
                        pending.append((info, child.get("Name", ""), child.get("Relationship", ""),
                                        child.get("ToRole", "")))
                types[info.name] = info
            elif kind == "Association":
                for end in (e for e in node if _local(e.tag) == "End"):
                    ends[(f"{namespace}.{node.get('Name')}", end.get("Role", ""))] = \
                        (end.get("Type", ""), end.get("Multiplicity", "1"))
            elif kind == "EntityContainer":
                for es in (e for e in node if _local(e.tag) == "EntitySet"):
                    sets[es.get("Name", "")] = es.get("EntityType", "")
    for info, name, relationship, role in pending:
        target = ends.get((relationship, role))
        if target:
            info.navs[name] = (target[0], target[1] == "*")
    return ServiceModel(types, sets)


def query_paths(model: ServiceModel, info: TypeInfo, path: list[str],
                picks: dict[str, str]) -> tuple[str | None, str | None] | None:
    """A mapping path -> ($select path, $expand path); None when it does not fit the metadata."""
    steps = [s for s in path if s != "results" and not s.isdigit()]
    if not steps:
        return None
    if steps[0] in picks:
        steps = str(picks[steps[0]]).split("/") + steps[1:]
    elif steps[0].startswith("_"):
        return None, None                # synthetic (_changed_at, __metadata): nothing to ask for
    navs: list[str] = []
    cur = info
    for i, step in enumerate(steps):
        nav = model.nav_target(cur, step)
        if nav is not None:
            navs.append(step)
            cur = nav[0]
            continue
        if step in cur.props and i == len(steps) - 1:
            return "/".join([*navs, step]), "/".join(navs) or None
        return None
    return "/".join(navs), "/".join(navs)
