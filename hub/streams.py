"""From config to working parts: connector instances, mappings, stream specs, rules, validators.

Built once per run and passed explicitly (no module-level singletons).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hub.canonical import ENTITIES
from hub.config import TriadConfig
from hub.connector import Connector, StreamSpec, load_registry
from hub.errors import ConfigError, TriadError, UsageError
from hub.mapping import Mapping, find_mapping, load_mapping
from hub.merge import Rules, rules_from_config

# references point backwards: customers before the deals, contracts and orders that name them
ENTITY_ORDER = ("customer", "approval", "opportunity", "contract", "order", "payment")


@dataclass
class Parts:
    """Caches for one process: connectors, mappings and validators are built once."""

    cfg: TriadConfig
    registry: dict[str, type[Connector]] = field(default_factory=dict)
    connectors: dict[str, Connector] = field(default_factory=dict)
    mappings: dict[tuple[str, str], Mapping] = field(default_factory=dict)
    validators: dict[tuple[str, frozenset], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.registry:
            self.registry = load_registry(only={c.type for c in self.cfg.connectors.values()})

    def connector(self, name: str) -> Connector:
        if name not in self.connectors:
            c = self.cfg.connectors.get(name)
            if c is None:
                raise UsageError(f"unknown connector '{name}'; configured: {', '.join(self.cfg.connectors) or 'none'}")
            cls = self.registry.get(c.type)
            if cls is None:
                raise ConfigError(f"connectors.{name}.type: type '{c.type}' is not installed")
            self.connectors[name] = cls(name, c.options, base_dir=str(self.cfg.base_dir))
        return self.connectors[name]

    def _binding(self, name: str, entity: str) -> tuple[Any, Any]:
        """The connector's config and its binding of ``entity``; a usage error naming what exists."""
        c = self.cfg.connectors.get(name)
        if c is None:
            raise UsageError(f"unknown connector '{name}'; configured: {', '.join(self.cfg.connectors) or 'none'}")
        binding = c.entities.get(entity)
        if binding is None:
            raise UsageError(f"connector '{name}' does not sync {entity}; it syncs {', '.join(c.entities)}")
        return c, binding

    def binding(self, name: str, entity: str) -> Any:
        """The connector's ``entities.<entity>`` block (hub.config.EntityBinding)."""
        return self._binding(name, entity)[1]

    def mapping(self, name: str, entity: str) -> Mapping:
        key = (name, entity)
        if key not in self.mappings:
            c, binding = self._binding(name, entity)
            path = find_mapping(c.type, entity, binding.mapping, str(self.cfg.base_dir))
            self.mappings[key] = load_mapping(path, entity)
        return self.mappings[key]

    def validator(self, name: str, entity: str, *, prepare: bool = False) -> Any:
        """The entity's suite, limited to the fields this connector's mapping provides.

        A CRM that has no customer code must not fail ``code is not null``: the
        golden record gets its code from the system that has one. The suite is
        loaded and built on the first batch with rows to validate (a run of
        unchanged rows never imports great-expectations), or now with ``prepare``.
        """
        mapped = frozenset(p.name for p in self.mapping(name, entity).plan.fields)
        key = (entity, mapped)
        if key not in self.validators:
            from hub.validation import DeferredValidator
            self.validators[key] = DeferredValidator(entity, self.suite_override(entity), mapped)
        validator = self.validators[key]
        if prepare:
            validator.prepare()
        return validator

    def suite_override(self, entity: str) -> str | None:
        """The deployment's own expectation suite file for ``entity`` (``validation:``), if it has one."""
        override = self.cfg.validation.get(entity)
        return str(Path(self.cfg.base_dir) / override) if override else None

    def stream_spec(self, name: str, entity: str, run_started_at: datetime | None) -> StreamSpec:
        """The stream as its connector reads it. ``run_started_at``, the point no cursor moves past, is put
        back by ``lag_seconds``: the next run reads that window again (rows it holds unchanged are skipped),
        so a row committed late under an earlier stamp, or stamped by a clock running behind, is not missed."""
        c, binding = self._binding(name, entity)
        m = self.mapping(name, entity)
        if run_started_at is not None and self.cfg.lag_seconds:
            run_started_at = run_started_at - timedelta(seconds=self.cfg.lag_seconds)
        return StreamSpec(entity=entity, source=m.source, key=m.key, updated_at=m.updated_at,
                          timezone=str(m.timezone), batch_size=binding.batch_size or c.batch_size,
                          run_started_at=run_started_at, fields=tuple(m.source_paths()),
                          options={**(m.options or {}), **binding.options})

    def rules(self, entity: str) -> Rules:
        return rules_from_config(self.cfg.survivorship_for(entity), list(self.cfg.connectors))

    def out_systems(self, entity: str) -> tuple[str, ...]:
        """Connectors that take writes of ``entity``: direction out or both, and a type that can write it."""
        return tuple(n for n, c in self.cfg.connectors.items()
                     if c.direction in ("out", "both") and entity in c.entities and self.writable(c.type, entity))

    def out_fields(self, entity: str) -> dict[str, frozenset[str]]:
        """For each system taking writes of ``entity``, the canonical fields its mapping writes. A system
        whose mapping does not load is left out (it then takes every change; its own push says why)."""
        found: dict[str, frozenset[str]] = {}
        for target in self.out_systems(entity):
            try:
                found[target] = frozenset(self.mapping(target, entity).writable_fields)
            except TriadError:
                continue
        return found

    def writable(self, type_name: str, entity: str) -> bool:
        """False for an entity the connector type declares read-only (its API takes no writes)."""
        cls = self.registry.get(type_name)
        return cls is None or entity not in getattr(cls, "read_only_entities", frozenset())

    def delete_targets(self, entity: str) -> tuple[str, ...]:
        return tuple(n for n in self.out_systems(entity) if self.cfg.connectors[n].propagate_deletes)

    def exact_keys(self, entity: str) -> tuple[str, ...]:
        m = self.cfg.matching.get(entity)
        return tuple(m.exact) if m else ()

    def close(self) -> None:
        for c in self.connectors.values():
            try:
                c.close()
            except Exception:  # closing must never hide the real outcome
                pass


def inbound_streams(cfg: TriadConfig, connectors: tuple[str, ...] = (), entities: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(connector, entity) pairs to read, in reference order (customers before their orders)."""
    for n in connectors:
        if n not in cfg.connectors:
            raise UsageError(f"unknown connector '{n}'; configured: {', '.join(cfg.connectors) or 'none'}")
    for e in entities:
        if e not in ENTITIES:
            raise UsageError(f"unknown entity '{e}'; known: {', '.join(ENTITIES)}")
    out = []
    for entity in ENTITY_ORDER:
        if entities and entity not in entities:
            continue
        for name, c in cfg.connectors.items():
            if connectors and name not in connectors:
                continue
            if c.direction in ("in", "both") and entity in c.entities:
                out.append((name, entity))
    return out


def check_selection(cfg: TriadConfig, connectors: tuple[str, ...], entities: tuple[str, ...],
                    streams: list[tuple[str, str]]) -> None:
    """A connector or entity named on the command line that selects no inbound stream is a usage error:
    an empty run would exit 0 and hide the typo or the wrong direction.

    Raises:
        UsageError: naming the connector or entity, and what it does sync.
    """
    for n in connectors:
        if any(name == n for name, _ in streams):
            continue
        c = cfg.connectors[n]
        if c.direction not in ("in", "both"):
            raise UsageError(f"connector '{n}' has direction {c.direction}: Triad does not read it")
        synced = ", ".join(c.entities) or "nothing"
        raise UsageError(f"connector '{n}' does not sync {', '.join(entities) or 'any entity'}; it syncs {synced}")
    for e in entities:
        if any(entity == e for _, entity in streams):
            continue
        if len(connectors) == 1:
            n = connectors[0]
            raise UsageError(f"connector '{n}' does not sync {e}; it syncs {', '.join(cfg.connectors[n].entities)}")
        if connectors:
            raise UsageError(f"none of the connectors {', '.join(repr(n) for n in connectors)} syncs {e}")
        writers = [n for n, c in cfg.connectors.items() if e in c.entities]
        if writers:
            raise UsageError(f"no connector reads {e}: {', '.join(repr(n) for n in writers)} "
                             f"{'has' if len(writers) == 1 else 'have'} direction out")
        raise UsageError(f"no connector syncs {e}; configured: "
                         + ("; ".join(f"{n} ({', '.join(c.entities) or 'no entities'})"
                                      for n, c in cfg.connectors.items()) or "none"))
