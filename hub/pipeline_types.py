"""The batch's shared shapes: the stream it belongs to, its counts, and one row on its way through
:mod:`hub.pipeline`."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.mapping import Mapping
from hub.merge import Rules


@dataclass
class StreamContext:
    """Everything a batch needs to know about its stream, built once per run."""

    system: str                       # the connector's name
    entity: str
    mapping: Mapping
    rules: Rules
    exact_keys: tuple[str, ...]
    out_systems: tuple[str, ...]      # connectors with direction out/both for this entity
    delete_targets: tuple[str, ...]   # connectors with propagate_deletes for this entity
    run_id: str
    now: datetime
    synced: frozenset[str] = frozenset()   # entities this connector syncs: references to others cannot resolve
    validator: Any = None             # hub.validation.Validator, or None to skip
    matcher: Any = None               # fuzzy matcher (hub.matching), optional
    said: set[str] = field(default_factory=set)   # warnings given once a run (later batches: counted, info)
    # target -> the canonical fields its mapping writes: a change of none of them is not queued there (its
    # push would settle it without a write, or retry a failed create with the same values); a target not
    # named here takes every change
    out_fields: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def writes_back(self) -> bool:
        return self.system in self.out_systems


STAT_KEYS = ("read", "created", "updated", "unchanged", "linked", "quarantined", "conflicts", "queued", "deleted",
             "still_parked", "older",     # older: of the unchanged, rows whose values differ but whose time is older
             "retried")                   # requests to the system sent again (it failed, timed out or throttled)


@dataclass
class BatchStats:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAT_KEYS, 0))
    resolved_quarantine: list[str] = field(default_factory=list)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


@dataclass
class _Item:
    raw: dict[str, Any]
    source_id: str
    values: dict[str, Any]            # encoded canonical values
    python_values: dict[str, Any]
    refs: dict[str, str]
    source_ts: str | None
    deleted: bool
    hash: str
    raw_hash: str | None = None       # digest of the raw record with the mapping (None: not skippable)
    record_id: str | None = None
    state_hash: str | None = None     # row_hash / raw_hash / source_ts of the stored source_state
    state_raw_hash: str | None = None
    state_ts: datetime | None = None
    state_record_id: str | None = None   # the record the stored source_state row names (None: no row yet)
    linked_now: bool = False
    xref_status: str | None = None
    base: dict[str, Any] | None = None
    stored_base: Any = None           # source_state.values as read with the xref, decoded only if needed
    written: dict[str, list] | None = None   # our writes this system has not shown back yet (hub.echoes)
    quarantine_id: str | None = None
    candidates: list = field(default_factory=list)   # (record id, score, details) for a steward to review
