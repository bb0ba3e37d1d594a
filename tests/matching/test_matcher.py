"""Fuzzy identity inside the sync: links, in-system duplicates, review candidates, reject memory, keys."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from hub.models import MatchKey, MatchReject

from .helpers import CONFIG, make_hub

CRM = {"customer_no": "C1", "name": "上海星海贸易有限公司", "phone": "13800138000", "city": "上海"}
ERP = {"customer_no": "E1", "name": "上海星海贸易", "phone": "021-5555 1234", "city": "上海市",
       "tax_id": "91310000MA1FL1234X"}
LEGACY = {"customer_no": "L1", "name": "Shanghai Xinghai Trading Co., Ltd.", "city": "Shanghai"}


def test_one_company_in_three_systems_is_one_golden_record(hub) -> None:
    hub.feed("crm", [CRM])
    stats = hub.feed("erp", [ERP])
    assert stats.counts["linked"] == 1
    hub.feed("legacy", [LEGACY])
    rid = hub.record_of("crm", "C1")
    assert hub.record_of("erp", "E1") == rid
    assert hub.record_of("legacy", "L1") == rid


def test_a_look_alike_company_is_not_linked(hub) -> None:
    hub.feed("crm", [CRM])
    hub.feed("erp", [{"customer_no": "E9", "name": "上海新海贸易有限公司", "phone": "021-6666 0000", "city": "上海"}])
    assert hub.record_of("erp", "E9") != hub.record_of("crm", "C1")


def test_duplicates_inside_one_system_in_one_batch_and_across_batches(hub) -> None:
    hub.feed("crm", [CRM, dict(CRM, customer_no="C2", name="上海星海贸易（有限公司）", phone="138 0013 8000"),
                     {"customer_no": "C3", "name": "北京远景科技有限公司", "city": "北京"}])
    assert hub.record_of("crm", "C2") == hub.record_of("crm", "C1")
    assert hub.record_of("crm", "C3") != hub.record_of("crm", "C1")
    hub.feed("crm", [dict(CRM, customer_no="C4", name="ＳＨＡＮＧＨＡＩ星海贸易有限公司")])
    assert hub.record_of("crm", "C4") == hub.record_of("crm", "C1")


def test_links_found_through_any_system_version(hub) -> None:
    """A record that resembles only the ERP spelling still finds the golden record the CRM created."""
    hub.feed("crm", [{"customer_no": "C1", "name": "星海贸易", "phone": "13800138000", "city": "上海"}])
    hub.feed("erp", [{"customer_no": "E1", "name": "星海贸易有限公司", "phone": "021-5555 1234", "city": "上海"}])
    rid = hub.record_of("crm", "C1")
    assert hub.record_of("erp", "E1") == rid
    hub.feed("legacy", [{"customer_no": "L7", "name": "Xinghai Trading", "phone": "+86 21 5555 1234",
                         "city": "Shanghai"}])
    assert hub.record_of("legacy", "L7") == rid


def test_blocking_keys_follow_golden_changes(hub) -> None:
    hub.feed("crm", [CRM])
    rid = hub.record_of("crm", "C1")
    hub.feed("crm", [dict(CRM, name="上海星海国际物流有限公司")])
    with hub.engine.connect() as conn:
        keys = {(r.key_type, r.key_value) for r in conn.execute(
            select(MatchKey.__table__).where(MatchKey.__table__.c.record_id == rid))}
    assert ("nm", "上海星海国际物流") in keys
    assert ("nm", "上海星海贸易") not in keys     # no system holds the old name any more


STRICT = CONFIG.replace("link_at: 0.92, review_at: 0.75", "link_at: 0.999, review_at: 0.5")


def test_review_band_opens_a_candidate_with_a_comparison(tmp_path: Path) -> None:
    hub = make_hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, STRICT)
    hub.feed("crm", [CRM])
    hub.feed("legacy", [LEGACY])
    crm, legacy = hub.record_of("crm", "C1"), hub.record_of("legacy", "L1")
    assert crm != legacy
    (c,) = hub.candidates()
    assert {c["record_a"], c["record_b"]} == {crm, legacy}
    assert 0.5 <= c["score"] < 0.999
    assert c["details"]["fields"]["name"]["label"] == "similar"    # cross-script: never "exact"
    assert c["details"]["fields"]["city"]["label"] == "exact"
    hub.feed("legacy", [dict(LEGACY, customer_no="L2")])          # the same pair again: no second candidate
    assert hub.record_of("legacy", "L2") == legacy
    assert len(hub.candidates()) == 1


def test_reject_memory_holds_until_a_record_changes_materially(tmp_path: Path) -> None:
    from hub.matches import reject
    hub = make_hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, STRICT)
    hub.feed("crm", [CRM])
    hub.feed("legacy", [LEGACY])
    (c,) = hub.candidates()
    with hub.engine.begin() as conn:
        reject(conn, c["id"], user="steward")
    assert hub.candidates() == [] and len(hub.candidates("rejected")) == 1
    hub.feed("legacy", [dict(LEGACY, customer_no="L2")])          # links to the legacy record: pair not proposed
    assert hub.candidates() == []
    hub.feed("crm", [dict(CRM, city="上海 ")])                      # formatting only: memory kept
    with hub.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(MatchReject.__table__)) == 1
    hub.feed("crm", [dict(CRM, phone="13900139000")])                # material change: memory dropped
    with hub.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(MatchReject.__table__)) == 0
    hub.feed("legacy", [dict(LEGACY, customer_no="L3")])
    assert len(hub.candidates()) == 1


def test_whole_sync_with_validation_links_across_systems(tmp_path: Path) -> None:
    from hub.sync import run_sync
    hub = make_hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)
    header = "customer_no,name,type,tax_id,phone,city,updated_at\n"
    (tmp_path / "crm" / "customers.csv").write_text(
        header + "C1,上海星海贸易有限公司,company,,13800138000,上海,2024-01-01 08:00:00\n"
                 "C2,北京远景科技有限公司,company,,13900139000,北京,2024-01-01 08:00:00\n", encoding="utf-8")
    (tmp_path / "erp" / "customers.csv").write_text(
        header + "E1,上海星海贸易,company,91310000MA1FL1234X,021-55551234,上海,2024-01-01 08:00:00\n",
        encoding="utf-8")
    reports = run_sync(hub.engine, hub.parts, entities=("customer",))
    assert [r.status for r in reports] == ["ok", "ok", "ok"]
    assert sum(r.counts["linked"] for r in reports) == 1
    assert hub.record_of("erp", "E1") == hub.record_of("crm", "C1")
