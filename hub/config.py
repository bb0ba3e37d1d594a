"""``triad.yaml``: located, interpolated, validated once into one typed model (SPEC section 3).

Errors name the file, the key path and what was expected, and exit 2 through
the CLI. Secrets are wrapped in :class:`hub.secrets.Secret` right after
interpolation, so they are ``***`` wherever config is printed or logged.
"""
from __future__ import annotations

import math
import os
import re
from datetime import timezone
from pathlib import Path
from typing import Any, Literal

import yaml

from hub import yamlio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.canonical import ENTITIES
from hub.config_checks import cross_check, format_errors, option_problems
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
    # for systems that never report deletions: a complete read (no cursor) that ends ok flags the records
    # it did not return as deleted (hub.absence), at most this many at once (default: max(50, 10%))
    deleted_when_missing: bool = False
    deleted_when_missing_limit: int | None = Field(default=None, ge=0)

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
        # weights share out a score in 0..1: a negative or endless one, or none above 0, scores nothing sensibly
        bad = {f: w for f, w in self.fields.items() if not (math.isfinite(w) and w >= 0)}
        if bad:
            raise ValueError(f"fields: weights are numbers of 0 or more; not {bad}")
        if not any(w > 0 for w in self.fields.values()):
            raise ValueError("fields: name at least one field with a weight above 0 (e.g. {name: 0.6, city: 0.4})")
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
        if self.every:
            from hub.durations import parse as parse_duration
            parse_duration(self.every, name="every")   # the scheduler's own parser: refused at load, not at start
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
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string value; every unset variable is named
    (one ConfigError, a line each), not only the first."""
    missing: list[str] = []
    out = _interpolate(data, where, file, missing)
    if missing:
        raise ConfigError("\n".join(missing))
    return out


def _interpolate(data: Any, where: str, file: str, missing: list[str]) -> Any:
    if isinstance(data, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else str(k), file, missing) for k, v in data.items()}
    if isinstance(data, list):
        return [_interpolate(v, f"{where}[{i}]", file, missing) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data and not _VAR.search(data):
        raise ConfigError(f"{file}: {where}: '${{' starts a variable that is not closed: write ${{NAME}} "
                          f"or ${{NAME:-default}}")
    if isinstance(data, str) and "${" in data:
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if default is not None and not os.environ.get(name):   # as the shell: unset or empty
                return default
            if name in os.environ:
                return os.environ[name]
            missing.append(f"{file}: {where}: environment variable {name} is not set "
                           f"(set it, or write ${{{name}:-default}})")
            return ""
        return _VAR.sub(sub, data)
    return data


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
    try:
        return _parse_config(text, file, env_override)
    except ConfigError as exc:   # the key path of each problem, with the line it was written on
        from hub.config_lines import line_map, with_lines
        lined = with_lines(exc.message, line_map(text), file)
        if lined == exc.message:
            raise
        raise ConfigError(lined) from None


def _parse_config(text: str, file: str, env_override: bool) -> TriadConfig:
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
        raise ConfigError(format_errors(file, exc)) from None
    problems = cross_check(cfg) + option_problems(cfg)
    if problems:
        raise ConfigError("\n".join(f"{file}: {p}" for p in problems))
    return cfg


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
