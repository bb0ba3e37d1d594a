"""Steward merge / unmerge: xrefs, bases, references and outbox move; unmerge restores exactly."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub import golden
from hub.matches import merge, unmerge
from hub.matching_unmerge import UnmergeConflict
from hub.models import AuditLog, FieldHistory, MatchKey, Outbox, SourceState, Xref

ALPHA = {"customer_no": "E1", "name": "Alpha Trading Ltd", "phone": "13800138000", "city": "上海",
         "email": "ops@alpha.cn"}
BETA = {"customer_no": "E2", "name": "Beta Logistics GmbH", "city": "北京", "tax_id": "91110108551385082Q",
        "email": "info@beta.de"}


def _state(hub, ids: list[str]) -> dict[str, Any]:
    """Every row a merge touches, as stored."""
    t = golden.table_of("customer")
    ot = golden.table_of("order")
    with hub.engine.connect() as conn:
        def rows(table, *where):  # noqa: ANN001, ANN202
            return sorted((dict(r) for r in conn.execute(select(table).where(*where)).mappings()),
                          key=lambda r: str(sorted(r.items())))
        return {"golden": rows(t, t.c.id.in_(ids)),
                "xref": rows(Xref.__table__, Xref.__table__.c.record_id.in_(ids)),
                "state": rows(SourceState.__table__, SourceState.__table__.c.record_id.in_(ids)),
                "orders": rows(ot, ot.c.customer_id.in_(ids)),
                "keys": rows(MatchKey.__table__, MatchKey.__table__.c.record_id.in_(ids))}


def _setup(hub) -> tuple[str, str]:
    hub.feed("erp", [ALPHA, BETA])
    hub.feed("crm", [{"customer_no": "C2", "name": "Beta Logistik", "email": "INFO@beta.de", "phone": "13900139000"}])
    hub.feed("erp", [{"order_no": "O1", "customer_no": "E2", "status": "confirmed", "order_date": "2024-01-02"}],
             entity="order")
    w, lo = hub.record_of("erp", "E1"), hub.record_of("erp", "E2")
    assert w != lo and hub.record_of("crm", "C2") == lo
    return w, lo


def _round_trip(hub) -> None:
    w, lo = _setup(hub)
    before = _state(hub, [w, lo])
    with hub.engine.begin() as conn:
        out_before = conn.execute(select(Outbox.__table__.c.id)).all()
        result = merge(conn, "customer", w, lo, user="steward", rules=hub.parts.rules("customer"),
                       out_systems=hub.parts.out_systems("customer"))
    with hub.engine.connect() as conn:
        t = golden.table_of("customer")
        assert conn.scalar(select(t.c.merged_into).where(t.c.id == lo)) == w
        assert {r.record_id for r in conn.execute(select(Xref.__table__).where(Xref.__table__.c.source_id.in_(
            ["E1", "E2", "C2"])))} == {w}
        assert conn.scalar(select(golden.table_of("order").c.customer_id)) == w
        assert conn.execute(select(MatchKey.__table__).where(MatchKey.__table__.c.record_id == lo)).first() is None
        merged = golden.load(conn, "customer", [w])[w].values
        assert merged["tax_id"] == "91110108551385082Q" and merged["name"] == "Alpha Trading Ltd"
        hist = {(h.record_id, h.field) for h in conn.execute(select(FieldHistory.__table__).where(
            FieldHistory.__table__.c.reason == "merge"))}
        assert (w, "tax_id") in hist and (lo, "merged_into") in hist
        queued = conn.execute(select(Outbox.__table__)).all()
        assert len(queued) > len(out_before)
        assert {r.connector for r in queued[len(out_before):]} == {"erp", "crm"}
    assert result["xrefs_moved"] == 2 and result["references_moved"] == 1
    with hub.engine.begin() as conn:
        unmerge(conn, result["merge_id"], user="steward", out_systems=hub.parts.out_systems("customer"))
    assert _state(hub, [w, lo]) == before
    with hub.engine.connect() as conn:
        actions = [a.action for a in conn.execute(select(AuditLog.__table__).order_by(AuditLog.__table__.c.seq))]
    assert actions[-2:] == ["matches.merge", "matches.unmerge"]


def test_merge_unmerge_round_trip_is_exact(hub) -> None:
    _round_trip(hub)


@pytest.mark.postgres
def test_merge_unmerge_round_trip_is_exact_on_postgresql(pg_hub) -> None:
    _round_trip(pg_hub)


def test_unmerge_refuses_after_later_changes_unless_forced(hub) -> None:
    w, lo = _setup(hub)
    rules, out = hub.parts.rules("customer"), hub.parts.out_systems("customer")
    with hub.engine.begin() as conn:
        mid = merge(conn, "customer", w, lo, user="s", rules=rules, out_systems=out)["merge_id"]
    hub.feed("erp", [dict(ALPHA, phone="13700137000")])                 # the survivor changes afterwards
    with hub.engine.begin() as conn, pytest.raises(UnmergeConflict, match="phone"):
        unmerge(conn, mid, user="s", out_systems=out)
    with hub.engine.begin() as conn:
        res = unmerge(conn, mid, user="s", out_systems=out, force=True)
    assert res["forced"]
    with hub.engine.connect() as conn:
        rows = golden.load(conn, "customer", [w, lo])
    assert rows[w].values["phone"] == "+8613700137000"                    # the later change is kept
    assert rows[w].values["tax_id"] is None                                # what the merge brought is gone
    assert rows[lo].merged_into is None and rows[lo].values["tax_id"] == "91110108551385082Q"
    assert hub.record_of("crm", "C2") == lo and hub.record_of("erp", "E2") == lo


def test_merge_refuses_tombstones_and_self(hub) -> None:
    from hub.errors import UsageError
    w, lo = _setup(hub)
    rules, out = hub.parts.rules("customer"), hub.parts.out_systems("customer")
    with hub.engine.begin() as conn, pytest.raises(UsageError, match="itself"):
        merge(conn, "customer", w, w, user="s", rules=rules, out_systems=out)
    with hub.engine.begin() as conn:
        merge(conn, "customer", w, lo, user="s", rules=rules, out_systems=out)
    with hub.engine.begin() as conn, pytest.raises(UsageError, match="merged into"):
        merge(conn, "customer", lo, w, user="s", rules=rules, out_systems=out)


def test_a_merged_record_is_not_matched_again_and_sync_lands_on_the_survivor(hub) -> None:
    w, lo = _setup(hub)
    with hub.engine.begin() as conn:
        merge(conn, "customer", w, lo, user="s", rules=hub.parts.rules("customer"),
              out_systems=hub.parts.out_systems("customer"))
    hub.feed("crm", [{"customer_no": "C2", "name": "Beta Logistik", "email": "info@beta.de", "phone": "13900139001"}])
    with hub.engine.connect() as conn:
        assert golden.load(conn, "customer", [w])[w].values["phone"] in ("+8613900139001", "+8613800138000")
    hub.feed("crm", [{"customer_no": "C9", "name": "Somebody Else", "tax_id": "91110108551385082Q"}])
    assert hub.record_of("crm", "C9") == w                                # exact key: the survivor, not the tombstone
