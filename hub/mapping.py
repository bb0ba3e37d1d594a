"""Declarative field mappings between a system and the canonical model (SPEC section 4).

A mapping file describes one (system, entity) pair and drives both directions::

    mapping = load_mapping(find_mapping("salesforce", "customer", None, base_dir), "customer")
    record = mapping.to_canonical(raw)          # MappedRecord(source_id, source_ts, values, refs, deleted)
    payload = mapping.to_source(record.values)  # the system's field names and formats

The model and its checks live in :mod:`hub.mapping_model`, the per-record
engine in :mod:`hub.mapping_engine`, the transforms in :mod:`hub.transforms`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hub.errors import ConfigError, MappingError
from hub.mapping_engine import Mapping, MappedRecord
from hub.mapping_model import resolve_mapping
from hub.mapping_yaml import MappingIssue

__all__ = ["Mapping", "MappedRecord", "MappingIssue", "find_mapping", "load_mapping", "preview",
           "shipped_mappings_dir", "validate_mapping_file"]

log = logging.getLogger(__name__)


def shipped_mappings_dir() -> Path:
    """The ``mappings/`` folder installed next to the ``hub`` package."""
    return Path(__file__).resolve().parent.parent / "mappings"


def _read(path: str | Path) -> tuple[str | None, list[MappingIssue]]:
    try:
        return Path(path).read_text(encoding="utf-8"), []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, [MappingIssue(str(path), 1, "", f"cannot read the mapping file: {reason}")]


def validate_mapping_file(path: str | Path, entity: str) -> list[MappingIssue]:
    """Check a mapping file against the canonical model.

    Args:
        path: the YAML file.
        entity: the canonical entity it maps (customer, order, ...).

    Returns:
        Every issue found (empty when the file is good), each with file, line and key path.
    """
    text, issues = _read(path)
    if text is None:
        return issues
    return resolve_mapping(text, str(path), entity)[1]


def load_mapping(path: str | Path, entity: str) -> Mapping:
    """Load, check and compile a mapping file.

    Raises:
        ConfigError: the file cannot be read or has issues; the message lists all of them.
    """
    text, issues = _read(path)
    plan = None
    if text is not None:
        plan, issues = resolve_mapping(text, str(path), entity)
    if plan is None:
        lines = "\n".join(f"  {issue}" for issue in issues)
        raise ConfigError(f"mapping {path} for {entity} has {len(issues)} "
                          f"issue{'s' if len(issues) != 1 else ''}:\n{lines}", file=str(path))
    log.debug("loaded mapping %s for %s (%d fields)", path, entity, len(plan.fields))
    mapping = Mapping(plan)
    mapping.fingerprint = _fingerprint(entity, text or "")
    return mapping


# bumped whenever a transform or type reader changes its output: rows read before are then mapped again
MAPPING_CODE_VERSION = "2"     # 2: decimals rounded to their column, decimal commas refused


def _fingerprint(entity: str, text: str) -> str:
    import hashlib
    payload = f"{MAPPING_CODE_VERSION}|{entity}|{text}".encode("utf-8")
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


def find_mapping(connector_type: str, entity: str, override: str | None, base_dir: str | Path) -> Path:
    """Where the mapping of a connector entity is: the configured override, else the shipped default.

    Args:
        connector_type: the connector type (salesforce, sap, file, ...).
        entity: the canonical entity.
        override: the ``mapping:`` path of the connector entity in triad.yaml, relative to ``base_dir``.
        base_dir: the folder of triad.yaml.

    Raises:
        ConfigError: the file is missing; the message names both places.
    """
    default = shipped_mappings_dir() / connector_type / f"{entity}.yaml"
    if override:
        path = Path(base_dir) / override
        if path.is_file():
            return path
        raise ConfigError(f"mapping file {path} (set for {connector_type} {entity} in the config) does "
                          f"not exist; remove the `mapping:` entry to use the shipped default {default}")
    if default.is_file():
        return default
    raise ConfigError(f"no mapping for {connector_type} {entity}: no `mapping:` file is set in the config "
                      f"(looked for an override relative to {Path(base_dir).resolve()}) and there is no "
                      f"shipped default {default}")


def preview(mapping: Mapping, raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Map sample records for `triad mappings preview`: one entry per record, never raising.

    Returns:
        ``{"raw", "source_id", "canonical", "refs", "deleted", "source_ts", "sources"}`` for records
        that map (``sources``: canonical field -> the source path it is read from),
        ``{"raw", "error", "field", "errors"}`` for those that do not (``errors``: every field that does not
        fit, the first being ``field``).
    """
    out: list[dict[str, Any]] = []
    # canonical field -> the source path it is read from (fields with only a default have none)
    sources = {p.name: ".".join(p.source) for p in mapping.plan.fields if p.source}
    for raw in raws:
        try:
            record = mapping.to_canonical(raw)
        except MappingError as exc:
            out.append({"raw": raw, "error": exc.message, "field": exc.field,
                        "errors": [{"field": f, "error": m} for f, m in exc.problems]})
            continue
        except (ValueError, ArithmeticError, TypeError) as exc:   # values no type accepts (huge epochs ...)
            out.append({"raw": raw, "error": f"{type(exc).__name__}: {exc}", "field": None})
            continue
        out.append({"raw": raw, "source_id": record.source_id, "canonical": record.values,
                    "refs": record.refs, "deleted": record.deleted, "source_ts": record.source_ts,
                    "sources": sources})
    return out


def raw_at(raw: Any, path: str | None) -> Any:
    """The raw value at a dotted source path (None where the path runs out, or for no path)."""
    if not path:
        return None
    for part in path.split("."):
        if not isinstance(raw, dict):
            return None
        raw = raw.get(part)
    return raw
