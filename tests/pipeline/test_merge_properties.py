"""Invariants of the merge, checked with hypothesis over generated change streams."""
from __future__ import annotations

import itertools

from hypothesis import given, settings, strategies as st

from hub.merge import FieldRule, Rules

from .minihub import MiniHub

FIELDS = ("phone", "email", "city")
value = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
record = st.fixed_dictionaries({f: value for f in FIELDS})

RULESETS = {
    "priority": Rules(default="priority", priority=("erp", "crm", "oa")),
    "owner": Rules(default="priority", priority=("crm", "erp", "oa"),
                   fields={"phone": FieldRule("owner", "erp"), "email": FieldRule("owner", "crm")}),
}


def replay(rules: Rules, events: list[tuple[str, dict, str]], start: dict | None) -> MiniHub:
    hub = MiniHub(rules)
    if start is not None:            # every system linked and in step with the golden record
        for system in ("erp", "crm", "oa"):
            hub.receive(system, dict(start), "2026-11-01T00:00:00+00:00")
    for system, values, stamp in events:
        hub.receive(system, values, stamp)
    return hub


@settings(max_examples=200, deadline=None)
@given(changes=st.lists(record, min_size=2, max_size=3), start=st.one_of(st.none(), record),
       ruleset=st.sampled_from(["priority", "owner", "most_recent"]))
def test_arrival_order_does_not_change_the_result_under_deterministic_rules(changes, start, ruleset):
    """Concurrent batches of several systems (each its own snapshot) give one result in any arrival order."""
    rules = RULESETS.get(ruleset) or Rules(default="most_recent", priority=("erp", "crm", "oa"))
    systems = ("erp", "crm", "oa")
    events = [(systems[i], v, f"2026-11-02T00:00:{i:02d}+00:00") for i, v in enumerate(changes)]
    results = {tuple(sorted((replay(rules, list(order), start).golden or {}).items()))
               for order in itertools.permutations(events)}
    assert len(results) == 1, results


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["erp", "crm", "oa"]), record), min_size=1, max_size=6),
       ruleset=st.sampled_from(["priority", "owner", "most_recent"]))
def test_reapplying_the_same_input_is_a_no_op(events, ruleset):
    rules = RULESETS.get(ruleset) or Rules(default="most_recent", priority=("erp", "crm", "oa"))
    hub = MiniHub(rules)
    for n, (system, values) in enumerate(events):
        hub.receive(system, values, f"2026-11-01T00:{n:02d}:00+00:00")
        before = (dict(hub.golden), len(hub.history), len(hub.conflicts), len(hub.outbox))
        again = hub.receive(system, values, f"2026-11-01T00:{n:02d}:00+00:00")
        assert not again.changes and not again.conflicts and not again.propagate and not again.send_back
        assert (dict(hub.golden), len(hub.history), len(hub.conflicts), len(hub.outbox)) == before


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["erp", "crm", "oa"]), record), min_size=1, max_size=8),
       ruleset=st.sampled_from(["priority", "owner", "most_recent", "manual"]))
def test_no_value_is_lost(events, ruleset):
    """Every non-empty value ever received is golden, in a base, in history, or in a conflict."""
    rules = RULESETS.get(ruleset) or Rules(default=ruleset, priority=("erp", "crm", "oa"))
    hub = MiniHub(rules)
    received = []
    for n, (system, values) in enumerate(events):
        hub.receive(system, values, f"2026-11-01T00:{n:02d}:00+00:00")
        received += [(system, f, v) for f, v in values.items() if v is not None]
    for system, f, v in received:
        found = (hub.golden.get(f) == v
                 or any(base.get(f) == v for base in hub.bases.values())
                 or any(h[0] in (f, "*") and (h[2] == v or (isinstance(h[2], dict) and h[2].get(f) == v))
                        for h in hub.history)
                 or any(c.field == f and v in c.values.values() for c in hub.conflicts))
        assert found, (system, f, v)


@settings(max_examples=150, deadline=None)
@given(values=record, other=record)
def test_echo_of_our_own_write_stops_after_one_hop(values, other):
    """erp changes -> golden -> queued to crm -> crm returns exactly that: nothing more happens."""
    hub = MiniHub(RULESETS["priority"])
    hub.receive("erp", other, "2026-11-01T00:00:00+00:00")
    hub.receive("crm", other, "2026-11-01T00:00:01+00:00")
    hub.receive("erp", values, "2026-11-01T00:00:02+00:00")
    echo = {f: hub.golden.get(f) for f in FIELDS}
    out = hub.receive("crm", echo, "2026-11-01T00:00:03+00:00")
    assert not out.changes and not out.propagate and not out.conflicts
