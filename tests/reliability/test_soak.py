"""The fault soak in small (2 simulators, 40 customers each, 6 cycles), the ledger check proving it
can fail, and the lost update the soak once found (a push over a change the hub had not read)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import insert, text

from benchmarks.soak import SoakOptions, linked_pairs, run
from hub.config import load_config
from hub.ledger import Change, check, classify
from hub.models import Xref
from hub.streams import Parts
from hub.types import new_id, utcnow

from .crashkit import World, make_world, settle

def test_soak_under_faults(tmp_path: Path):
    result = run(SoakOptions(records=40, cycles=6, seed=7, workdir=str(tmp_path / "soak")))
    details = result["details"]
    # the run did what it claims: edits on both sides, some concurrent, faults injected and survived
    assert result["changes"] > 100 and result["concurrent"] > 0 and result["inserts"] == 12
    assert result["open_conflict"] + result["auto"] > 0
    injected = result["injected"]
    assert injected["crm"]["failed"] + injected["erp"]["failed"] > 0
    assert injected["crm"]["throttled"] + injected["erp"]["throttled"] > 0
    assert result["settle_rounds"] is not None, "the hub did not settle once the faults stopped"
    assert result["outbox"].get("pending", 0) == 0
    assert sum(result[k] for k in ("golden", "pending", "open_conflict", "auto", "superseded", "quarantined",
                                   "lost")) == result["changes"]
    assert result["duplicates"] == 0, details["duplicate_items"]
    assert result["disagreements"] == 0, details["disagreement_items"]
    assert all(d["error"] for d in details["dead_items"]), "every failed write carries its error"
    assert result["lost"] == 0, details["lost_items"]


@pytest.fixture
def small(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "p", 5, 12)
    try:
        yield w
    finally:
        w.close()


def report(w: World):  # noqa: ANN201
    parts = Parts(load_config(str(w.config)))
    try:
        return check(w.engine, parts, "customer", w.users.ledger, exact_keys=("tax_id",))
    finally:
        parts.close()


def test_the_ledger_finds_every_kind_of_outcome_and_every_failure(small: World):
    w = small
    (crm_sid, erp_sid), (other_crm, other_erp), (third_crm, third_erp) = linked_pairs(w.engine)[:3]
    w.users.change("crm", crm_sid, {"city": w.users.value("city")})          # superseded ...
    w.users.change("crm", crm_sid, {"city": w.users.value("city")})          # ... by this, golden
    w.users.change("erp", erp_sid, {"email": w.users.value("email")})        # two e-mails: a steward decides
    w.users.change("crm", crm_sid, {"email": w.users.value("email")})
    w.users.change("erp", other_erp, {"email": "not an address"})            # cannot be mapped: parked
    w.systems.edit("crm", third_crm, {"BillingCountry": "United Kingdom"})   # the ERP has no GB: a failed write
    w.users.ledger.append(Change("crm", third_crm, "country", "GB", utcnow()))
    settle(w.engine, w.config)
    got = report(w)
    assert got.ok, (got.lost, got.duplicates, got.disagreements)
    assert got.counts["superseded"] == 1 and got.counts["golden"] == 3 and got.counts["open_conflict"] == 1
    assert [(i["source_id"], i["field"]) for i in got.failed_writes] == [(third_erp, "country")]
    assert "FCOUNTRY" in got.failed_writes[0]["error"] and got.dead[0]["error"] == got.failed_writes[0]["error"]
    assert got.counts["quarantined"] == 1 and got.quarantined[0]["quarantine"][0]["kind"] == "mapping"
    assert [(i["source_id"], i["why"]) for i in got.unreadable] == [(other_erp, "unreadable")]

    # a change the hub never saw is lost
    w.users.ledger.append(Change("crm", other_crm, "phone", "+8621600099999", utcnow()))
    # a system changed behind the hub's back disagrees with the golden record
    w.systems.edit("crm", other_crm, {"BillingCity": "无人知晓"})
    # a second CRM record linked to the same golden record is a duplicate
    with w.engine.begin() as conn:
        rid = conn.execute(text("select record_id from xref where system = 'crm' and source_id = :s"),
                           {"s": crm_sid}).scalar_one()
        conn.execute(insert(Xref.__table__), [{"id": new_id(), "entity": "customer", "system": "crm",
                                               "source_id": "001FAKE000000001AAA", "record_id": rid,
                                               "status": "active", "created_at": utcnow(), "updated_at": utcnow()}])
    got = report(w)
    assert not got.ok
    assert [(i["source_id"], i["field"]) for i in got.lost] == [(other_crm, "phone")]
    assert {(i["source_id"], i["field"]) for i in got.disagreements} == {(other_crm, "city"),
                                                                         ("001FAKE000000001AAA", None)}
    assert [(d["kind"], sorted(d["source_ids"])) for d in got.duplicates] == [
        ("linked_twice", sorted([crm_sid, "001FAKE000000001AAA"]))]


def test_a_push_does_not_overwrite_a_change_the_hub_has_not_read(small: World):
    from hub.push import push
    from hub.sync import run_sync
    w = small
    crm_sid, erp_sid = linked_pairs(w.engine)[0]
    w.users.change("erp", erp_sid, {"phone": w.users.value("phone")})      # an ERP user first ...
    w.users.change("crm", crm_sid, {"phone": w.users.value("phone")})      # ... then a CRM user, same field
    erp = w.systems.erp.sim
    parts = Parts(load_config(str(w.config)))
    try:
        erp.options.request_budget = erp.calls          # the ERP's daily call limit is spent: its read fails
        runs = {r.connector: r.status for r in run_sync(w.engine, parts)}
        erp.options.request_budget = None               # the limit resets before the push
        push(w.engine, parts)
    finally:
        parts.close()
    assert runs["crm"] == "ok" and runs["erp"] != "ok"
    settle(w.engine, w.config)
    lost = classify(w.engine, "customer", w.users.ledger).lost
    # expected: the ERP's phone is read, loses to the later CRM phone and is kept in an auto conflict
    assert lost == [], lost
