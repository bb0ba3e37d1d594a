"""Each case of SPEC section 5's merge, and each survivorship rule, on one field."""
from __future__ import annotations

from hub.merge import FieldRule, Incoming, Rules, merge

from .minihub import MiniHub

T1, T2, T3 = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00"
PRIO = Rules(default="priority", priority=("erp", "crm"))
RECENT = Rules(default="most_recent", priority=("erp", "crm"))


def test_case_1_unchanged_value_does_nothing():
    out = merge({"phone": "+1"}, {"*": ["erp", T1]}, {"phone": "+1"}, Incoming("erp", {"phone": "+1"}, T2), PRIO)
    assert not out.changes and not out.conflicts and not out.propagate and not out.send_back


def test_case_2a_caught_up_echo_changes_nothing():
    # crm had +1, golden became +2 (we wrote it to crm); crm now returns +2
    out = merge({"phone": "+2"}, {"phone": ["erp", T2]}, {"phone": "+1"}, Incoming("crm", {"phone": "+2"}, T3), PRIO)
    assert not out.changes and not out.conflicts and not out.propagate and not out.history


def test_case_2b_informed_change_applies_and_propagates():
    out = merge({"phone": "+1"}, {"*": ["erp", T1]}, {"phone": "+1"}, Incoming("crm", {"phone": "+9"}, T2), PRIO)
    assert out.changes == {"phone": "+9"} and out.propagate == {"phone": "+9"}
    assert out.provenance["phone"] == ["crm", T2]
    assert [(h.field, h.old, h.new, h.reason) for h in out.history] == [("phone", "+1", "+9", "informed")]
    assert not out.conflicts


def test_case_2c_priority_higher_system_wins_and_conflict_is_recorded():
    # golden +2 came from crm; erp (higher) changed concurrently from its base +1 to +3
    out = merge({"phone": "+2"}, {"phone": ["crm", T2]}, {"phone": "+1"}, Incoming("erp", {"phone": "+3"}, T1), PRIO)
    assert out.changes == {"phone": "+3"} and out.propagate == {"phone": "+3"}
    (c,) = out.conflicts
    assert (c.status, c.rule, c.winner, c.values) == ("auto", "priority", "erp", {"erp": "+3", "crm": "+2"})


def test_case_2c_priority_lower_system_loses_and_is_overwritten_back():
    out = merge({"phone": "+2"}, {"phone": ["erp", T2]}, {"phone": "+1"}, Incoming("crm", {"phone": "+3"}, T3), PRIO)
    assert not out.changes
    assert out.send_back == {"phone": "+2"}
    (c,) = out.conflicts
    assert (c.status, c.winner) == ("auto", "erp")


def test_case_2c_most_recent_later_timestamp_wins():
    out = merge({"phone": "+2"}, {"phone": ["erp", T2]}, {"phone": "+1"}, Incoming("crm", {"phone": "+3"}, T3), RECENT)
    assert out.changes == {"phone": "+3"}
    assert out.conflicts[0].winner == "crm"
    older = merge({"phone": "+2"}, {"phone": ["erp", T2]}, {"phone": "+1"}, Incoming("crm", {"phone": "+3"}, T1), RECENT)
    assert not older.changes and older.send_back == {"phone": "+2"}


def test_case_2c_most_recent_tie_goes_to_priority():
    out = merge({"phone": "+2"}, {"phone": ["crm", T2]}, {"phone": "+1"}, Incoming("erp", {"phone": "+3"}, T2), RECENT)
    assert out.changes == {"phone": "+3"}


def test_case_2c_manual_opens_a_conflict_and_holds_the_field():
    rules = Rules(default="most_recent", priority=("erp", "crm"), fields={"email": FieldRule("manual")})
    out = merge({"email": "a@x.cn"}, {"email": ["erp", T1]}, {"email": "old@x.cn"},
                Incoming("crm", {"email": "b@x.cn"}, T3), rules)
    assert not out.changes and not out.propagate and not out.send_back
    (c,) = out.conflicts
    assert (c.status, c.rule, c.values) == ("open", "manual", {"crm": "b@x.cn", "erp": "a@x.cn"})


def test_owner_field_only_changes_from_its_owner():
    rules = Rules(default="most_recent", priority=("crm", "erp"), fields={"credit_limit": FieldRule("owner", "erp")})
    hub = MiniHub(rules)
    hub.receive("erp", {"credit_limit": "1000"}, T1)
    out = hub.receive("crm", {"credit_limit": "9999"}, T3)       # newer, higher priority, still not the owner
    assert hub.golden["credit_limit"] == "1000" and out.send_back == {"credit_limit": "1000"}
    hub.receive("crm", {"credit_limit": "5"}, T3)                 # an "informed" change by a non-owner is refused too
    assert hub.golden["credit_limit"] == "1000"
    hub.receive("erp", {"credit_limit": "2000"}, T2)
    assert hub.golden["credit_limit"] == "2000"


def test_first_link_differing_values_are_concurrent_and_empty_values_say_nothing():
    hub = MiniHub(PRIO)
    hub.receive("crm", {"phone": "+2", "email": "c@x.cn", "city": None}, T1)
    out = hub.receive("erp", {"phone": "+1", "email": None, "city": "上海"}, T2)
    assert hub.golden == {"phone": "+1", "email": "c@x.cn", "city": "上海"}
    assert [c.field for c in out.conflicts] == ["phone"]


def test_a_new_record_takes_non_empty_values_and_queues_them():
    hub = MiniHub(PRIO)
    out = hub.receive("erp", {"name": "星海", "email": None}, T1)
    assert hub.golden == {"name": "星海"} and out.propagate == {"name": "星海"}
    assert out.history[0].reason == "create"


def test_steward_value_outranks_a_concurrent_system_change():
    hub = MiniHub(PRIO)
    hub.receive("erp", {"phone": "+1"}, T1)
    hub.provenance["phone"] = ["user:alice", T2]
    hub.golden["phone"] = "+5"
    hub.receive("erp", {"phone": "+7"}, T3)     # base +1 != golden +5: concurrent with the steward
    assert hub.golden["phone"] == "+5"


def test_an_echo_of_our_write_is_no_witness_of_the_value():
    # golden +2 from erp at T1, written to crm (a file outbox); crm exports it at T3
    without = merge({"phone": "+2"}, {"phone": ["erp", T1]}, {}, Incoming("crm", {"phone": "+2"}, T3), RECENT)
    assert without.provenance["phone"] == ["crm", T3]          # crm's own word: the later witness
    echo = merge({"phone": "+2"}, {"phone": ["erp", T1]}, {}, Incoming("crm", {"phone": "+2"}, T3), RECENT,
                 echoes={"phone": ["+2"]})
    assert echo.provenance["phone"] == ["erp", T1]
    assert not echo.changes and not echo.conflicts and not echo.send_back and not echo.history


def test_an_older_write_of_ours_coming_back_late_changes_nothing():
    # we wrote +1 then +2 to crm; crm shows +1 with a later stamp than golden's: not crm's edit
    late = merge({"phone": "+2"}, {"phone": ["erp", T1]}, {"phone": "+0"}, Incoming("crm", {"phone": "+1"}, T3),
                 RECENT, echoes={"phone": ["+1", "+2"]})
    assert not late.changes and not late.conflicts and not late.send_back   # +2 is on its way to crm
    lossy = merge({"status": "blocked"}, {"status": ["erp", T1]}, {"status": "active"},
                  Incoming("crm", {"status": "inactive"}, T3), RECENT, echoes={"status": ["inactive"]})
    assert not lossy.changes and not lossy.conflicts and not lossy.send_back  # our write, as crm's map reads it
    mine = merge({"phone": "+2"}, {"phone": ["erp", T1]}, {"phone": "+0"}, Incoming("crm", {"phone": "+7"}, T3),
                 RECENT, echoes={"phone": ["+1", "+2"]})
    assert mine.changes == {"phone": "+7"}                                  # crm's own edit, later: it wins


def test_what_a_system_filled_in_on_a_record_we_created_there_is_not_its_edit():
    # we created the order in crm (sent status only); crm numbered it and computed a total itself
    golden = {"order_no": "SO-1", "total_amount": "500", "status": "draft", "tracking_no": None}
    prov = {"*": ["erp", T1]}
    base = {"status": "draft"}                       # what we wrote: crm has not been read since
    seen = Incoming("crm", {"order_no": "CRM-9", "total_amount": "0", "status": "draft", "tracking_no": "T7"}, T3)
    out = merge(golden, prov, base, seen, RECENT, created_by_us=True)
    assert out.changes == {"tracking_no": "T7"}      # an empty golden value takes it
    assert not out.conflicts and not out.send_back
    later = merge(golden, prov, base, seen, RECENT)   # the same values read as crm's own edits
    assert later.changes["order_no"] == "CRM-9" and later.changes["total_amount"] == "0"
    owned = merge(golden, prov, base, seen, Rules(default="most_recent", fields={"total_amount": FieldRule("owner", "crm")}),
                  created_by_us=True)
    assert owned.changes["total_amount"] == "0"      # unless that system owns the field
