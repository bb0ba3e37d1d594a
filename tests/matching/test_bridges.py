"""A record that links to two golden records proves them one: they merge after the batch (trained weights only)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub import audit
from hub.matches import reject, unmerge
from hub.matching import TRAIN_ACTION
from hub.matching_scoring import Params
from hub.models import AuditLog, MatchCandidate, MergeLog

from .helpers import Hub

# A and B stay apart on their own (0.67: not even a review candidate); R scores 0.997 with A (the phone) and 0.9999
# with B (the name and city): both above merge_at (0.9925)
A = {"customer_no": "C1", "name": "Shanghai Xinghai Trading", "phone": "13800138000"}
B = {"customer_no": "C2", "name": "上海星海贸易有限公司", "city": "上海"}
R = {"customer_no": "C3", "name": "上海星海贸易", "phone": "13800138000", "city": "上海"}


def _trained(hub: Hub) -> None:
    """Trained weights: here the defaults, recorded as `matches train` records its estimate."""
    fields = list(hub.cfg.matching["customer"].fuzzy.fields)
    with hub.engine.begin() as conn:
        audit.record(conn, "steward", TRAIN_ACTION, "customer", after=Params.defaults("customer", fields).as_json())


def _merges(hub: Hub) -> list[dict]:
    with hub.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(MergeLog.__table__)).mappings()]


def _bridge(hub: Hub) -> tuple[str, str]:
    hub.feed("crm", [A])
    hub.feed("crm", [B])
    a, b = hub.record_of("crm", "C1"), hub.record_of("crm", "C2")
    assert a != b
    hub.feed("crm", [R])
    return a, b


def test_a_bridging_record_merges_the_two_golden_records(hub: Hub) -> None:
    _trained(hub)
    a, b = _bridge(hub)
    one = hub.record_of("crm", "C3")
    assert hub.record_of("crm", "C1") == hub.record_of("crm", "C2") == one
    (m,) = _merges(hub)
    assert m["merged_by"] == "matcher" and {m["winner_id"], m["loser_id"]} == {a, b}
    assert hub.candidates("merged") and hub.candidates() == []
    with hub.engine.connect() as conn:
        note = conn.scalar(select(AuditLog.__table__.c.note).where(AuditLog.__table__.c.action == "matches.merge"))
    assert note.startswith("automatic: one incoming customer record scored")
    # a steward undoes it: the records come apart and the pair is never merged automatically again
    with hub.engine.begin() as conn:
        unmerge(conn, m["id"], user="steward", out_systems=hub.parts.out_systems("customer"))
    assert hub.record_of("crm", "C1") != hub.record_of("crm", "C2")
    hub.feed("crm", [dict(R, customer_no="C4")])
    assert len(_merges(hub)) == 1
    assert hub.record_of("crm", "C1") != hub.record_of("crm", "C2")


def test_without_trained_weights_the_pair_goes_to_a_steward(hub: Hub) -> None:
    a, b = _bridge(hub)
    assert _merges(hub) == []
    assert hub.record_of("crm", "C1") != hub.record_of("crm", "C2")
    assert {frozenset((c["record_a"], c["record_b"])) for c in hub.candidates()} == {frozenset((a, b))}


def test_a_pair_a_steward_rejected_is_not_merged(hub: Hub) -> None:
    hub.feed("crm", [A])
    hub.feed("crm", [B])
    hub.feed("crm", [R])                          # untrained: a candidate between A and B
    (c,) = hub.candidates()
    with hub.engine.begin() as conn:
        reject(conn, c["id"], user="steward")
    _trained(hub)
    hub.feed("crm", [dict(R, customer_no="C4")])
    assert _merges(hub) == []
    assert hub.record_of("crm", "C1") != hub.record_of("crm", "C2")


def test_look_alikes_a_record_cannot_tell_apart_stay_apart(hub: Hub) -> None:
    """星海 and 新海: the English name with 星海's phone fits 星海 (0.9998) and 新海 (0.92, a link's worth),
    but not with twice a link's evidence; the two compared directly score 0.52."""
    _trained(hub)
    hub.feed("crm", [{"customer_no": "C1", "name": "上海星海贸易有限公司", "phone": "13800138000", "city": "上海"}])
    hub.feed("crm", [{"customer_no": "C2", "name": "上海新海贸易有限公司", "phone": "13611112222", "city": "上海"}])
    hub.feed("legacy", [{"customer_no": "L1", "name": "Shanghai Xinghai Trading Co. Ltd.", "city": "Shanghai",
                         "phone": "+86 138 0013 8000"}])
    assert _merges(hub) == []
    assert hub.record_of("crm", "C1") != hub.record_of("crm", "C2")


def test_the_sync_merges_as_it_goes(tmp_path: Path) -> None:
    from hub.sync import run_sync

    from .helpers import make_hub
    hub = make_hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)
    _trained(hub)
    header = "customer_no,name,type,phone,city,updated_at\n"
    (tmp_path / "crm" / "customers.csv").write_text(
        header + "C1,Shanghai Xinghai Trading,company,13800138000,,2024-01-01 08:00:00\n"
                 "C2,上海星海贸易有限公司,company,,上海,2024-01-01 08:00:00\n", encoding="utf-8")
    run_sync(hub.engine, hub.parts, connectors=("crm",))
    assert hub.record_of("crm", "C1") != hub.record_of("crm", "C2")
    (tmp_path / "legacy" / "customers.csv").write_text(
        header + "L1,上海星海贸易,company,13800138000,上海,2024-01-01 08:00:00\n", encoding="utf-8")
    run_sync(hub.engine, hub.parts, connectors=("legacy",))
    assert hub.record_of("crm", "C1") == hub.record_of("crm", "C2") == hub.record_of("legacy", "L1")
    with hub.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(MatchCandidate.__table__).where(
            MatchCandidate.__table__.c.status == "open")) == 0


def test_a_webhook_batch_merges_as_a_sync_run_does(hub: Hub) -> None:
    """The inbox worker runs the pipeline's batch alone (no sync around it): the merge happens all the same."""
    from hub.inbox import store
    from hub.inbox_processor import InboxProcessor
    _trained(hub)
    hub.feed("crm", [A])
    hub.feed("crm", [B])
    a, b = hub.record_of("crm", "C1"), hub.record_of("crm", "C2")
    assert a != b
    record = {"updated_at": "2024-01-01 00:00:00", "type": "company", **R}
    store(hub.engine, "crm", {"content-type": "application/json"},
          json.dumps({"entity": "customer", "records": [record]}).encode())
    worker = InboxProcessor(hub.engine, hub.parts, worker="test")
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.done, report.errors) == (1, 0)
    assert hub.record_of("crm", "C1") == hub.record_of("crm", "C2") == hub.record_of("crm", "C3")
    (m,) = _merges(hub)
    assert m["merged_by"] == "matcher" and {m["winner_id"], m["loser_id"]} == {a, b}


@pytest.mark.postgres
def test_bridging_merges_on_postgresql(pg_hub: Hub) -> None:
    _trained(pg_hub)
    _bridge(pg_hub)
    assert len(_merges(pg_hub)) == 1
    assert pg_hub.record_of("crm", "C1") == pg_hub.record_of("crm", "C2") == pg_hub.record_of("crm", "C3")
