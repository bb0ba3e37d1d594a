"""A pure, in-memory hub over hub.merge: golden record, provenance, one base per system, and a ledger.

It applies source events exactly as the pipeline does for one record, so
properties of the merge can be checked without a database.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.merge import Incoming, Rules, create, merge


@dataclass
class MiniHub:
    rules: Rules
    golden: dict[str, Any] | None = None
    provenance: dict[str, list] = field(default_factory=dict)
    bases: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[str, Any, Any, str]] = field(default_factory=list)
    conflicts: list[Any] = field(default_factory=list)
    outbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    open_manual: set[str] = field(default_factory=set)

    def receive(self, system: str, values: dict[str, Any], ts: str | None = None) -> Any:
        incoming = Incoming(system, dict(values), ts)
        if self.golden is None:
            out = create(incoming, self.rules)
            self.golden = dict(out.changes)
        else:
            out = merge(self.golden, self.provenance, self.bases.get(system), incoming, self.rules,
                        frozenset(self.open_manual))
            self.golden.update(out.changes)
        self.provenance = out.provenance
        self.bases[system] = dict(values)
        self.history += [(h.field, h.old, h.new, system) for h in out.history]
        self.conflicts += out.conflicts
        self.open_manual |= {c.field for c in out.conflicts if c.status == "open"}
        if out.propagate:
            self.outbox.append(("others", dict(out.propagate)))
        if out.send_back:
            self.outbox.append((system, dict(out.send_back)))
        return out
