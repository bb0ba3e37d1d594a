"""``triad.yaml``: located, interpolated, validated once into one typed model (SPEC section 3).

Errors name the file, the key path and what was expected, and exit 2 through
the CLI. Secrets are wrapped in :class:`hub.secrets.Secret` right after
interpolation, so they are ``***`` wherever config is printed or logged.
"""
from __future__ import annotations

import difflib
import os
import re
from datetime import timezone
from pathlib import Path
from types import UnionType
from typing import Any, Iterable, Literal, Union, get_args, get_origin

import yaml

from hub import yamlio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.canonical import ENTITIES
from hub.errors import ConfigError
from hub.flow_model import Flow
from hub.secrets import redact, wrap_secrets

DEFAULT_FILE = "triad.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
RULES = ("most_recent", "priority", "manual")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreConfig(_Strict):
    url: str = "sqlite:///triad.db"


class EntityBinding(BaseModel):
    """One entity a connector syncs; extra keys are connector-specific per-entity options.

    Which extra keys a type knows is checked after validation (:func:`_option_problems`).
    """

    model_config = ConfigDict(extra="allow")
    mapping: str | None = None
    batch_size: int | None = Field(default=None, gt=0, le=100_000)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ConnectorConfig(BaseModel):
    """A connector block; keys other than the common ones are the type's own options.

    Which options a type knows is checked after validation (:func:`_option_problems`).
    """

    model_config = ConfigDict(extra="allow")
    type: str
    direction: Literal["in", "out", "both"] = "both"
    entities: dict[str, EntityBinding] = Field(default_factory=dict)
    propagate_deletes: bool = False
    batch_size: int = Field(default=1000, gt=0, le=100_000)

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        from hub.connector import known_types
        known = known_types()
        if v not in known:
            raise ValueError(f"unknown type '{v}'; known: {', '.join(known)}")
        return v

    @field_validator("entities", mode="before")
    @classmethod
    def _entities(cls, v: Any) -> Any:
        if isinstance(v, list):  # `entities: [customer, order]` is a handy shorthand
            v = {name: {} for name in v}
        if isinstance(v, dict):
            v = {k: ({} if val is None else val) for k, val in v.items()}
            for name in v:
                if name not in ENTITIES:
                    raise ValueError(f"unknown entity '{name}'; known: {', '.join(ENTITIES)}")
        return v

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FieldRule(_Strict):
    owner: str | None = None
    rule: Literal["most_recent", "priority", "manual"] | None = None


class Survivorship(_Strict):
    default: Literal["most_recent", "priority", "manual"] = "most_recent"
    priority: list[str] = Field(default_factory=list)
    fields: dict[str, FieldRule] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, dict):  # `email: manual` is short for `email: {rule: manual}`
            return {k: ({"rule": r} if isinstance(r, str) else r) for k, r in v.items()}
        return v


class Fuzzy(_Strict):
    fields: dict[str, float] = Field(default_factory=dict)
    link_at: float = Field(default=0.92, ge=0, le=1)
    review_at: float = Field(default=0.75, ge=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> "Fuzzy":
        if self.review_at > self.link_at:
            raise ValueError(f"review_at ({self.review_at}) must not exceed link_at ({self.link_at})")
        return self


class Matching(_Strict):
    exact: list[str] = Field(default_factory=list)
    fuzzy: Fuzzy | None = None


class Schedule(_Strict):
    connector: str | None = None
    entity: str | None = None
    push: str | None = None          # "all" or a connector name: drain the outbox
    every: str | None = None         # 30s, 5m, 1h
    cron: str | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> "Schedule":
        if bool(self.every) == bool(self.cron):
            raise ValueError("give exactly one of `every` and `cron`")
        if bool(self.connector) == bool(self.push):
            raise ValueError("give exactly one of `connector` (a sync) and `push`")
        if self.every and not re.fullmatch(r"\d+\s*[smhd]", self.every):
            raise ValueError(f"every: '{self.every}' is not a duration like 30s, 5m, 2h, 1d")
        return self

    @field_validator("cron")
    @classmethod
    def _crontab(cls, v: str | None) -> str | None:
        """Parsed by the scheduler's own parser now, so `triad scheduler start` cannot trip over it later."""
        if v is None:
            return v
        from apscheduler.triggers.cron import CronTrigger
        try:
            CronTrigger.from_crontab(v, timezone=timezone.utc)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"'{v}' is not a crontab expression ({exc}); expected five fields, minute hour "
                             f"day-of-month month day-of-week, e.g. \"*/10 * * * *\"") from None
        return v


class RoleConfig(_Strict):
    entities: list[str] = Field(default_factory=lambda: list(ENTITIES))
    fields_denied: list[str] = Field(default_factory=list)
    can: list[str] = Field(default_factory=lambda: ["read"])


class OutboxConfig(_Strict):
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_seconds: float = Field(default=5.0, gt=0)
    max_backoff_seconds: float = Field(default=3600.0, gt=0)
    batch_size: int = Field(default=200, gt=0, le=10_000)


class ServeConfig(_Strict):
    """`triad serve`: how its worker gathers webhook events into batches, and SSO (checked on its own,
    see hub.api.auth.oidc_config)."""
    window_ms: float = Field(default=150, ge=0, le=60_000)       # gather events this long into one batch
    poll_seconds: float = Field(default=1.0, gt=0)
    push_interval_seconds: float = Field(default=10.0, ge=0)
    max_rows: int = Field(default=500, gt=0, le=100_000)
    worker: bool = True                                          # false: another process runs the inbox
    oidc: Any = None


class TriadConfig(_Strict):
    store: StoreConfig = Field(default_factory=StoreConfig)
    connectors: dict[str, ConnectorConfig] = Field(default_factory=dict)
    survivorship: dict[str, Survivorship] = Field(default_factory=dict)
    matching: dict[str, Matching] = Field(default_factory=dict)
    schedules: list[Schedule] = Field(default_factory=list)
    roles: dict[str, RoleConfig] = Field(default_factory=dict)
    users: dict[str, list[str]] = Field(default_factory=dict)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    flows: list["Flow"] = Field(default_factory=list)
    validation: dict[str, str] = Field(default_factory=dict)   # entity -> expectation suite override file
    serve: ServeConfig = Field(default_factory=ServeConfig)
    lag_seconds: float = Field(default=0, ge=0)

    # set by load_config, not by the file
    path: Path | None = Field(default=None, exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def survivorship_for(self, entity: str) -> Survivorship:
        return self.survivorship.get(entity) or Survivorship(priority=list(self.connectors))

    def printable(self) -> dict[str, Any]:
        """The config fit to print: secrets as ``***``, the store URL without its password."""
        from hub.secrets import masked_url
        data = redact(self.model_dump(mode="python", exclude={"path"}))
        data["store"]["url"] = masked_url(data["store"]["url"])
        return data


def locate(path: str | None) -> Path:
    if path:
        return Path(path)
    env = os.environ.get("TRIAD_CONFIG")
    return Path(env) if env else Path(DEFAULT_FILE)


def interpolate(data: Any, where: str, file: str) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string value."""
    if isinstance(data, dict):
        return {k: interpolate(v, f"{where}.{k}" if where else str(k), file) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, f"{where}[{i}]", file) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data and not _VAR.search(data):
        raise ConfigError(f"{file}: {where}: '${{' starts a variable that is not closed: write ${{NAME}} "
                          f"or ${{NAME:-default}}")
    if isinstance(data, str) and "${" in data:
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{file}: {where}: environment variable {name} is not set "
                              f"(set it, or write ${{{name}:-default}})")
        return _VAR.sub(sub, data)
    return data


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a known key is a near miss of ``key``, else empty."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""


def _expected(key: str, known: Iterable[str]) -> str:
    """The near miss, else the known keys (empty when they are not known)."""
    known = sorted(known)
    return _did_you_mean(key, known) or (f"; known: {', '.join(known)}" if known else "")


def _keys_at(loc: tuple) -> list[str]:
    """The keys the config model allows at ``loc`` (a path into TriadConfig), [] when it cannot tell."""
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


def _format_errors(file: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("function-after", "function-before"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + _expected(str(loc[-1]), _keys_at(loc[:-1]))
        elif e["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"{file}: {_loc(loc)}: {msg}")
    return "\n".join(lines)


_PLACEHOLDER = "__triad_env_{}__"


def _shield_variables(text: str) -> tuple[str, list[str]]:
    """Swap each ``${VAR}`` for a plain placeholder before parsing: `{a: ${X}}` is not valid YAML as written."""
    found: list[str] = []

    def swap(m: re.Match) -> str:
        found.append(m.group(0))
        return _PLACEHOLDER.format(len(found) - 1)
    return _VAR.sub(swap, text), found


def _unshield(data: Any, found: list[str]) -> Any:
    if isinstance(data, dict):
        return {_unshield(k, found): _unshield(v, found) for k, v in data.items()}
    if isinstance(data, list):
        return [_unshield(v, found) for v in data]
    if isinstance(data, str) and "__triad_env_" in data:
        return re.sub(r"__triad_env_(\d+)__", lambda m: found[int(m.group(1))], data)
    return data


def parse_config(text: str, file: str = DEFAULT_FILE, env_override: bool = True) -> TriadConfig:
    text, found = _shield_variables(text)
    try:
        raw = _unshield(yamlio.load(text) or {}, found)
    except (RecursionError, ValueError) as exc:   # self-referencing aliases, absurd nesting or numbers
        raise ConfigError(f"{file}: cannot be read as configuration: {type(exc).__name__}: {str(exc)[:200]}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}: {where}: invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of keys (store, connectors, ...)")
    raw = wrap_secrets(interpolate(raw, "", file))
    if env_override and os.environ.get("TRIAD_DATABASE_URL"):
        raw.setdefault("store", {})
        if isinstance(raw["store"], dict):
            raw["store"]["url"] = os.environ["TRIAD_DATABASE_URL"]
    try:
        cfg = TriadConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(file, exc)) from None
    problems = _cross_check(cfg) + _option_problems(cfg)
    if problems:
        raise ConfigError("\n".join(f"{file}: {p}" for p in problems))
    return cfg


def _cross_check(cfg: TriadConfig) -> list[str]:
    """References between sections: names must exist."""
    out: list[str] = []
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
    for i, flow in enumerate(cfg.flows):
        for j, step in enumerate(flow.steps):
            for k, sys_name in enumerate(step.systems or []):
                if sys_name not in names:
                    out.append(f"flows[{i}].steps[{j}].systems[{k}]: unknown connector '{sys_name}'")
        if flow.when.system and flow.when.system not in names:
            out.append(f"flows[{i}].when.system: unknown connector '{flow.when.system}'")
    for role, rc in cfg.roles.items():
        out += _role_problems(role, rc)
    known_roles = set(cfg.roles) | {"admin"}
    for user, roles in cfg.users.items():
        for i, r in enumerate(roles):
            if r not in known_roles:
                out.append(f"users.{user}[{i}]: unknown role '{r}'; known: {', '.join(sorted(known_roles))}")
    return out


def _role_problems(role: str, rc: RoleConfig) -> list[str]:
    """Unknown entities, fields and permissions: a misspelt one would silently grant or deny nothing."""
    from hub.rbac import ACTIONS
    out = [f"roles.{role}.entities[{i}]: unknown entity '{e}'; known: {', '.join(ENTITIES)}"
           for i, e in enumerate(rc.entities) if e not in ENTITIES]
    fields = {f for e in rc.entities if e in ENTITIES for f in ENTITIES[e].fields}
    for i, f in enumerate(rc.fields_denied):
        if f not in fields:
            out.append(f"roles.{role}.fields_denied[{i}]: '{f}' is not a field of "
                       f"{', '.join(rc.entities) or 'any entity of the role'}" + _did_you_mean(f, fields))
    for i, a in enumerate(rc.can):
        if a not in ACTIONS:
            out.append(f"roles.{role}.can[{i}]: unknown permission '{a}'" + _expected(a, ACTIONS))
    return out


def _option_problems(cfg: TriadConfig) -> list[str]:
    """Connector and entity keys the connector type does not read: a typo would silently change nothing.

    Only types whose class declares ``option_keys`` / ``entity_option_keys`` itself are checked;
    a plugin (or a subclass) that does not is trusted with whatever options it is given.
    """
    if not cfg.connectors:
        return []
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
            out += [f"connectors.{name}.{k}: not an option of a {c.type} connector" + _expected(k, known)
                    for k in c.options if k not in known]
        if "entity_option_keys" in declared:
            known = set(declared["entity_option_keys"]) | binding_common
            out += [f"connectors.{name}.entities.{e}.{k}: not an option of a {c.type} connector's entity"
                    + _expected(k, known) for e, b in c.entities.items() for k in b.options if k not in known]
    return out


def load_config(path: str | None = None, *, required: bool = True) -> TriadConfig:
    """Find, read and validate the config.

    Raises:
        ConfigError: missing file (when required), bad YAML, or invalid content.
    """
    p = locate(path)
    if not p.exists():
        if required:
            raise ConfigError(f"{p}: no such config file (create one with `triad init`, "
                              f"or pass --config PATH / set TRIAD_CONFIG)")
        cfg = parse_config("{}", str(p))
        return cfg
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    cfg = parse_config(text, str(p))
    cfg.path = p.resolve()
    cfg.store.url = _anchor_sqlite(cfg.store.url, cfg.base_dir)
    return cfg


def _anchor_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the config file, not to wherever triad was started."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite://":
        rel = url[len(prefix):]
        if rel and rel != ":memory:":
            return prefix + str((base / rel).resolve())
    return url
