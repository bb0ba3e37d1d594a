"""The checks of ``triad.yaml`` beyond its types: readable messages for pydantic's errors (the key
path and a did-you-mean), names that must exist across sections, role permissions and fields, and the
options each connector type reads (a typo would otherwise change nothing, silently)."""
from __future__ import annotations

import difflib
import os
from types import UnionType
from typing import TYPE_CHECKING, Any, Iterable, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from hub.canonical import ENTITIES
from hub.mapping_yaml import format_path

if TYPE_CHECKING:   # hub.config imports this module: its models are imported where they are used
    from hub.config import RoleConfig, TriadConfig


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a known key is a near miss of ``key``, else empty."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def expected_among(key: str, known: Iterable[str]) -> str:
    """The near miss, else the known keys (empty when they are not known)."""
    known = sorted(known)
    return did_you_mean(key, known) or (f"; known: {', '.join(known)}" if known else "")


def _keys_at(loc: tuple) -> list[str]:
    """The keys the config model allows at ``loc`` (a path into TriadConfig), [] when it cannot tell."""
    from hub.config import TriadConfig
    tp: Any = TriadConfig
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field else None
        elif get_origin(tp) in (dict, list):
            tp = get_args(tp)[-1]       # dict[str, X] and list[X]: the part is a key or an index
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [n for n, f in tp.model_fields.items() if not f.exclude]
    return []


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in get_args(tp) if a is not type(None)]
    return args[0] if get_origin(tp) in (Union, UnionType) and len(args) == 1 else tp


def format_errors(file: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("function-after", "function-before"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + expected_among(str(loc[-1]), _keys_at(loc[:-1]))
        elif e["type"] == "missing":
            msg = "required key is missing"
        # a validator may report several mistakes, one a line: each line names the file and key path
        lines += [f"{file}: {format_path(loc)}: {m}" for m in msg.split("\n")]
    return "\n".join(lines)


def store_url_problem(url: str) -> str | None:
    """Why ``store.url`` cannot name a store (unparsable, unknown dialect, driver not installed), or None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    example = "e.g. sqlite:///triad.db or postgresql+psycopg://user@host:5432/triad"
    try:
        dialect = make_url(url).get_dialect()
    except NoSuchModuleError:
        return f"store.url: unknown database kind '{url.split(':', 1)[0]}'; {example}"
    except (ArgumentError, ValueError) as exc:    # garbage; a port that is not a number
        reason = str(exc).replace(url, "...") if url else str(exc)
        return f"store.url: not a database URL ({reason}); {example}"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return f"store.url: the driver for '{url.split(':', 1)[0]}' is not installed ({exc}); {example}"
    return None


def cross_check(cfg: TriadConfig) -> list[str]:
    """References between sections: names must exist."""
    out: list[str] = []
    url_problem = store_url_problem(str(cfg.store.url))
    if url_problem:
        out.append(url_problem + (" (from $TRIAD_DATABASE_URL)" if os.environ.get("TRIAD_DATABASE_URL") else ""))
    names = set(cfg.connectors)
    for entity, s in cfg.survivorship.items():
        if entity not in ENTITIES:
            out.append(f"survivorship.{entity}: unknown entity; known: {', '.join(ENTITIES)}")
            continue
        for i, sys_name in enumerate(s.priority):
            if sys_name not in names:
                out.append(f"survivorship.{entity}.priority[{i}]: unknown connector '{sys_name}'; known: {', '.join(sorted(names))}")
        for f, rule in s.fields.items():
            if f not in ENTITIES[entity].fields:
                out.append(f"survivorship.{entity}.fields.{f}: unknown field of {entity}")
            if rule.owner and rule.owner not in names:
                out.append(f"survivorship.{entity}.fields.{f}.owner: unknown connector '{rule.owner}'")
    for entity, m in cfg.matching.items():
        if entity not in ENTITIES:
            out.append(f"matching.{entity}: unknown entity; known: {', '.join(ENTITIES)}")
            continue
        fields = ENTITIES[entity].fields
        for i, f in enumerate(m.exact):
            if f not in fields:
                out.append(f"matching.{entity}.exact[{i}]: unknown field '{f}' of {entity}")
        for f in (m.fuzzy.fields if m.fuzzy else {}):
            if f not in fields:
                out.append(f"matching.{entity}.fuzzy.fields.{f}: unknown field of {entity}")
    for i, sch in enumerate(cfg.schedules):
        if sch.connector and sch.connector not in names:
            out.append(f"schedules[{i}].connector: unknown connector '{sch.connector}'")
        if sch.push and sch.push != "all" and sch.push not in names:
            out.append(f"schedules[{i}].push: unknown connector '{sch.push}' (or 'all')")
        if sch.entity and sch.entity not in ENTITIES:
            out.append(f"schedules[{i}].entity: unknown entity '{sch.entity}'")
    out += _flow_problems(cfg)
    out += _absence_problems(cfg)
    for role, rc in cfg.roles.items():
        out += _role_problems(role, rc)
    known_roles = set(cfg.roles) | {"admin"}
    for user, roles in cfg.users.items():
        for i, r in enumerate(roles):
            if r not in known_roles:
                out.append(f"users.{user}[{i}]: unknown role '{r}'; known: {', '.join(sorted(known_roles))}")
    return out


def _flow_problems(cfg: TriadConfig) -> list[str]:
    """Flow names are unique (runs are keyed by them), a step writes only to systems that take writes of its
    entity (any other write would wait in the outbox forever) and a trigger's system reads its entity."""
    out: list[str] = []
    first: dict[str, int] = {}
    for i, flow in enumerate(cfg.flows):
        if flow.name in first:
            out.append(f"flows[{i}].name: '{flow.name}' is already the name of flows[{first[flow.name]}]; "
                       "flow names must be unique")
        first.setdefault(flow.name, i)
        for j, step in enumerate(flow.steps):
            entity = flow.entity_of(step.target) if step.action == "update_record" else step.entity
            for k, sys_name in enumerate(step.systems or []):
                problem = _write_problem(cfg, sys_name, entity or flow.when.entity)
                if problem:
                    out.append(f"flows[{i}].steps[{j}].systems[{k}]: {problem}")
        system = flow.when.system
        if system:
            problem = _read_problem(cfg, system, flow.when.entity)
            if problem:
                out.append(f"flows[{i}].when.system: {problem}")
    return out


def _absence_problems(cfg: TriadConfig) -> list[str]:
    """Deletes by absence need a stream that is read; a limit without the option would do nothing."""
    out: list[str] = []
    for name, c in cfg.connectors.items():
        for entity, b in c.entities.items():
            where = f"connectors.{name}.entities.{entity}"
            if b.deleted_when_missing and c.direction == "out":
                out.append(f"{where}.deleted_when_missing: {name} only writes {entity} (direction out); "
                           "only a read can find a record missing")
            if b.deleted_when_missing_limit is not None and not b.deleted_when_missing:
                out.append(f"{where}.deleted_when_missing_limit: set without deleted_when_missing: true")
            narrowing = [k for k in NARROWING_OPTIONS if b.options.get(k) or (c.model_extra or {}).get(k)]
            if b.deleted_when_missing and narrowing:
                out.append(f"{where}.deleted_when_missing: a read narrowed by {' and '.join(narrowing)} does not return "
                           "the records outside it, and each would be flagged deleted (a record whose type or "
                           "date moves it out, every record when the option changes); drop one of the two")
    return out


# options with which even a complete read returns part of the system only (SAP and Kingdee `filter`,
# Yonyou `start_date`): absence from such a read says nothing about deletion
NARROWING_OPTIONS = ("filter", "start_date")


def _sync_problem(cfg: TriadConfig, name: str, entity: str) -> str:
    """Why connector ``name`` does not sync ``entity`` at all (empty when it does)."""
    c = cfg.connectors.get(name)
    if c is None:
        return f"unknown connector '{name}'" + expected_among(name, cfg.connectors)
    if entity not in c.entities:
        return f"{name} does not sync {entity} (its entities: {', '.join(c.entities) or 'none'})"
    return ""


def _write_problem(cfg: TriadConfig, name: str, entity: str) -> str:
    """Why connector ``name`` takes no writes of ``entity`` (empty when it does)."""
    problem = _sync_problem(cfg, name, entity)
    if problem:
        return problem
    c = cfg.connectors[name]
    if c.direction == "in":
        return f"{name} only reads {entity} (direction in)"
    from hub.connector import load_registry
    cls = load_registry(only={c.type}).get(c.type)
    if cls is not None and entity in getattr(cls, "read_only_entities", frozenset()):
        return f"the {c.type} connector cannot write {entity}"
    return ""


def _read_problem(cfg: TriadConfig, name: str, entity: str) -> str:
    """Why no change of ``entity`` ever comes from connector ``name`` (empty when it can)."""
    problem = _sync_problem(cfg, name, entity)
    if not problem and cfg.connectors[name].direction == "out":
        problem = f"{name} only writes {entity} (direction out): no change of it comes from {name}"
    return problem


def _role_problems(role: str, rc: RoleConfig) -> list[str]:
    """Unknown entities, fields and permissions: a misspelt one would silently grant or deny nothing."""
    from hub.rbac import ACTIONS
    out = [f"roles.{role}.entities[{i}]: unknown entity '{e}'; known: {', '.join(ENTITIES)}"
           for i, e in enumerate(rc.entities) if e not in ENTITIES]
    fields = {f for e in rc.entities if e in ENTITIES for f in ENTITIES[e].fields}
    for i, f in enumerate(rc.fields_denied):
        if f not in fields:
            out.append(f"roles.{role}.fields_denied[{i}]: '{f}' is not a field of "
                       f"{', '.join(rc.entities) or 'any entity of the role'}" + did_you_mean(f, fields))
    for i, a in enumerate(rc.can):
        if a not in ACTIONS:
            out.append(f"roles.{role}.can[{i}]: unknown permission '{a}'" + expected_among(a, ACTIONS))
    return out


def option_problems(cfg: TriadConfig) -> list[str]:
    """Connector and entity keys the connector type does not read: a typo would silently change nothing.

    Only types whose class declares ``option_keys`` / ``entity_option_keys`` itself are checked;
    a plugin (or a subclass) that does not is trusted with whatever options it is given.
    """
    if not cfg.connectors:
        return []
    from hub.config import ConnectorConfig, EntityBinding
    from hub.connector import Connector, load_registry
    registry = load_registry(only={c.type for c in cfg.connectors.values()})
    common, binding_common = set(ConnectorConfig.model_fields), set(EntityBinding.model_fields)
    out: list[str] = []
    for name, c in cfg.connectors.items():
        cls = registry.get(c.type)
        declared = vars(cls) if cls is not None else {}
        if "option_keys" in declared:
            known = set(declared["option_keys"]) | common
            if cls.verify_webhook is Connector.verify_webhook:   # the generic webhook reads these
                known |= {"webhook_secret", "webhook_token"}
            out += [f"connectors.{name}.{k}: not an option of a {c.type} connector" + expected_among(k, known)
                    for k in c.options if k not in known]
        if "entity_option_keys" in declared:
            known = set(declared["entity_option_keys"]) | binding_common
            out += [f"connectors.{name}.entities.{e}.{k}: not an option of a {c.type} connector's entity"
                    + expected_among(k, known) for e, b in c.entities.items() for k in b.options if k not in known]
        if c.propagate_deletes and cls is not None and not cls.writes_deletes:
            out.append(f"connectors.{name}.propagate_deletes: a {c.type} connector cannot delete records in its "
                       f"system; the deletes would only fail (leave it false)")
        if "auth_keys" in declared and c.options.get("auth") is not None:
            out += _auth_problems(name, c.type, c.options["auth"], declared["auth_keys"],
                                  declared.get("auth_values", {}))
    return out


def _auth_problems(name: str, type_name: str, auth: Any, known: Iterable[str],
                   values: dict[str, Iterable[str]]) -> list[str]:
    """Keys of an `auth:` block its connector type does not read, and values it does not know."""
    where = f"connectors.{name}.auth"
    if not isinstance(auth, dict):
        return [f"{where}: expected a map of {', '.join(sorted(known))}"]
    out = [f"{where}.{k}: not an auth setting of a {type_name} connector" + expected_among(k, known)
           for k in auth if k not in known]
    from hub.secrets import reveal
    for key, allowed in values.items():
        v = reveal(auth.get(key))     # a value given as ${VAR} is wrapped as a secret
        if v is not None and v not in allowed:
            out.append(f"{where}.{key}: unknown {key} '{v}'" + expected_among(str(v), allowed))
    return out
