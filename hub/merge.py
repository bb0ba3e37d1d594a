"""The field-level three-way merge of SPEC section 5: a pure function of
(golden, provenance, base, incoming, rules). No I/O here.

For each field f of golden record G and system s (V_s the value last seen from s):
1. v == V_s: s did not change f. Nothing happens.
2. v != V_s: V_s = v, then
   a. v == G.f: s caught up (an echo of our own write). Nothing more.
   b. V_s == G.f: an informed change. G.f = v, queued to the other systems.
   c. otherwise a concurrent change, settled by the field's rule
      (owner / priority / most_recent / manual).
A system that is not the owner of a field never changes it (also not by an
informed change); its value is overwritten back and the attempt recorded.
A value the hub wrote to a system coming back from it (an echo) is never
taken as that system's own edit: it does not vouch for the golden value's
time, and an older write returning late (or our write as a lossy value map
reads it back) changes nothing.
Order lines hold only the sub-fields the system's mapping carries: each line is
compared and taken with the golden line's other sub-fields, so a system never
clears what it does not hold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.values import complete_lines

CREATED = "*"   # provenance key for "every field not listed": who created the record, and when
# a ConflictNote's status when s, part of an open conflict on f, now holds the golden value: the open
# conflict's entry for s is updated (where s is in it); no conflict of its own
CAUGHT_UP = "caught_up"


@dataclass(frozen=True)
class FieldRule:
    kind: str                 # owner | priority | most_recent | manual
    owner: str | None = None


@dataclass(frozen=True)
class Rules:
    """Survivorship for one entity, from ``survivorship.<entity>`` in triad.yaml."""

    default: str = "most_recent"
    priority: tuple[str, ...] = ()
    fields: dict[str, FieldRule] = field(default_factory=dict)

    def for_field(self, name: str) -> FieldRule:
        return self.fields.get(name) or FieldRule(self.default)

    def rank(self, system: str | None) -> tuple[int, str]:
        """Lower ranks win. Users (steward decisions) outrank every system; unknown systems rank last."""
        if system is None:
            return (len(self.priority) + 1, "")
        if system.startswith("user:"):
            return (-1, system)
        try:
            return (self.priority.index(system), system)
        except ValueError:
            return (len(self.priority), system)


@dataclass
class Incoming:
    system: str
    values: dict[str, Any]          # encoded canonical values (only fields the mapping provides)
    source_ts: str | None = None    # ISO UTC of the source change


@dataclass
class ConflictNote:
    field: str
    status: str                     # open | auto | caught_up (CAUGHT_UP)
    rule: str
    values: dict[str, Any]          # system -> value
    timestamps: dict[str, Any]
    golden: Any
    winner: str | None


@dataclass
class HistoryNote:
    field: str
    old: Any
    new: Any
    reason: str                     # create | informed | owner | priority | most_recent


@dataclass
class MergeOutcome:
    changes: dict[str, Any] = field(default_factory=dict)       # golden field -> new value
    provenance: dict[str, list] = field(default_factory=dict)   # updated provenance (whole map)
    propagate: dict[str, Any] = field(default_factory=dict)     # to every other system
    send_back: dict[str, Any] = field(default_factory=dict)     # golden values to write back to s
    conflicts: list[ConflictNote] = field(default_factory=list)
    history: list[HistoryNote] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def provenance_of(prov: dict[str, list], name: str, value: Any = True) -> tuple[str | None, str | None]:
    """Who set a golden value, and the source time. The creator (``*``) only vouches for values it gave."""
    entry = prov.get(name)
    if entry is None and value is not None:
        entry = prov.get(CREATED)
    return (entry[0], entry[1]) if entry else (None, None)


def create(incoming: Incoming, rules: Rules | None = None) -> MergeOutcome:
    """A new golden record from one source record.

    Fields owned by another system are not taken from a non-owner, even at
    creation: they stay empty until their system of record says something.
    """
    rules = rules or Rules()
    values = {k: v for k, v in incoming.values.items() if v is not None}
    refused = []
    for k, rule in rules.fields.items():
        if rule.kind == "owner" and rule.owner != incoming.system and k in values:
            v = values.pop(k)
            refused.append(ConflictNote(k, "auto", "owner", {incoming.system: v}, {incoming.system: incoming.source_ts},
                                        None, rule.owner))
    out = MergeOutcome(changes=values, provenance={CREATED: [incoming.system, incoming.source_ts]},
                       propagate=dict(values), conflicts=refused)
    out.history.append(HistoryNote(CREATED, None, values, "create"))
    return out


def merge(golden: dict[str, Any], provenance: dict[str, list], base: dict[str, Any] | None,
          incoming: Incoming, rules: Rules, open_manual: frozenset[str] = frozenset(),
          echoes: dict[str, list] | None = None, created_by_us: bool = False) -> MergeOutcome:
    """Merge one source record into its golden record, field by field.

    Args:
        golden: the golden record's encoded values.
        provenance: field -> [system, source timestamp] of the golden values (``*`` for the rest).
        base: the values last seen from ``incoming.system`` (None: first time linked; every V_s is empty,
            so a differing value is concurrent, and an empty one says nothing).
        incoming: the new values from the system.
        rules: survivorship for the entity.
        open_manual: fields with an open manual conflict on this record (they stay put until resolved).
        echoes: field -> values the hub wrote to ``incoming.system`` that it has not shown back yet (a
            system whose writes are not read back at once, such as a file outbox). Such a value coming back
            is the hub's own write returning, not an edit of that system, whenever the system says it happened.
        created_by_us: the hub created the record in ``incoming.system`` and has not read it there since. A
            field the hub never sent it holds what that system filled in itself (its own number, a total it
            computes, its creation time): not an edit. It becomes the base; the golden value takes it only
            when it has none (or when that system owns the field).
    """
    s = incoming.system
    first_link = base is None
    base = base or {}
    prov = dict(provenance)
    out = MergeOutcome(provenance=prov)
    for f, v in incoming.values.items():
        g = golden.get(f)
        b = base.get(f)
        written = echoes.get(f, ()) if echoes is not None else ()
        if isinstance(g, list):   # order lines: s says nothing about the sub-fields its mapping does not carry
            v, b, written = _as_lines_of(g, v, b, written)
        if first_link:
            if v is None:
                continue                                          # nothing to say yet: not a change
        elif v == b:
            continue                                              # 1: s did not change f
        rule = rules.for_field(f)
        g_sys, g_ts = provenance_of(prov, f, g)
        echo = echoes is not None and v in written
        if v == g:                                                # 2a: s caught up
            if f in open_manual and rule.kind == "manual" and not echo and not first_link:
                # an open conflict s is part of shows what s holds now (the golden value): the steward
                # decides on what the systems hold
                out.conflicts.append(ConflictNote(f, CAUGHT_UP, "manual", {s: v}, {s: incoming.source_ts}, g, None))
            if not echo and rule.kind in ("priority", "most_recent") and _incoming_wins(
                    rule.kind, rules, s, incoming.source_ts, g_sys, g_ts):
                prov[f] = [s, incoming.source_ts]   # the value's strongest witness, so order cannot matter
            continue                                # an echo is no witness: its time is when s took our write
        if echo:       # our write as s holds it (a lossy value map), or an earlier one back after a later:
            continue   # not s's edit; the later write is on its way
        if created_by_us and f not in base and f not in (echoes or {}) and not (rule.kind == "owner"
                                                                                 and rule.owner == s):
            if g is None and g_sys is None:
                _apply(out, f, g, v, s, incoming.source_ts, "fill")
            continue                                              # filled in by s at creation
        vs = _MISSING if first_link else b                        # a first link is never an informed change
        if rule.kind == "owner" and s != rule.owner:
            # only the system of record changes this field; write the golden value back to s, but an
            # empty golden value erases nothing (as in create(): the owner has not said anything yet)
            if g is not None:
                out.send_back[f] = g
            out.conflicts.append(ConflictNote(f, "auto", "owner", {s: v, rule.owner or "golden": g},
                                              {s: incoming.source_ts}, g, rule.owner))
            continue
        if f in open_manual and rule.kind == "manual":
            out.conflicts.append(ConflictNote(f, "open", "manual", {s: v}, {s: incoming.source_ts}, g, None))
            continue
        if vs == g or rule.kind == "owner":
            _apply(out, f, g, v, s, incoming.source_ts, "informed" if vs == g else "owner")   # 2b (or the owner)
            continue
        if g is None and g_sys is None:
            _apply(out, f, g, v, s, incoming.source_ts, "fill")   # nobody has said anything about f yet
            continue
        # 2c: a concurrent change; the golden side keyed apart when it came from s too (another of s's
        # records linked to the same golden record), so the conflict holds both values
        gk = g_sys if g_sys and g_sys != s else "golden"
        theirs = {s: v, gk: g}
        stamps = {s: incoming.source_ts, gk: g_ts}
        if rule.kind == "manual":
            out.conflicts.append(ConflictNote(f, "open", "manual", theirs, stamps, g, None))
            continue
        if _incoming_wins(rule.kind, rules, s, incoming.source_ts, g_sys, g_ts):
            _apply(out, f, g, v, s, incoming.source_ts, rule.kind)
            out.conflicts.append(ConflictNote(f, "auto", rule.kind, theirs, stamps, g, s))
        else:
            out.send_back[f] = g
            out.conflicts.append(ConflictNote(f, "auto", rule.kind, theirs, stamps, g, g_sys))
    return out


_MISSING = object()


def _as_lines_of(golden_lines: list, v: Any, b: Any, written: Any) -> tuple[Any, Any, list]:
    """The system's lines, its base lines and the lines written to it, each completed from the golden
    lines (:func:`hub.values.complete_lines`), so they compare only on what the system carries."""
    return (complete_lines(golden_lines, v), complete_lines(golden_lines, b),
            [complete_lines(golden_lines, w) for w in written])


def _apply(out: MergeOutcome, f: str, old: Any, new: Any, system: str, ts: str | None, reason: str) -> None:
    out.changes[f] = new
    out.provenance[f] = [system, ts]
    out.propagate[f] = new
    out.history.append(HistoryNote(f, old, new, reason))


def _incoming_wins(kind: str, rules: Rules, s: str, s_ts: str | None, g_sys: str | None, g_ts: str | None) -> bool:
    if kind == "most_recent" and s_ts and g_ts and s_ts != g_ts and not (g_sys or "").startswith("user:"):
        return s_ts > g_ts          # ISO UTC strings of one format compare in time order
    if kind == "most_recent" and s_ts and not g_ts and g_sys is None:
        return True
    return rules.rank(s) < rules.rank(g_sys)


def rules_from_config(survivorship: Any, connectors: list[str]) -> Rules:
    """Rules from a ``hub.config.Survivorship`` (priority defaults to the order of the connectors)."""
    fields = {}
    for name, fr in survivorship.fields.items():
        if fr.owner:
            fields[name] = FieldRule("owner", fr.owner)
        elif fr.rule:
            fields[name] = FieldRule(fr.rule)
    priority = tuple(survivorship.priority) or tuple(connectors)
    return Rules(default=survivorship.default, priority=priority, fields=fields)
