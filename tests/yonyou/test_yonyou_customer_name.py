"""The customer name per API (PROTOCOLS 4.3): newinsert takes {"simplifiedName": ..}, batch save {"zh_CN": ..}."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from hub.connector import StreamSpec, WriteChange
from hub.mapping import load_mapping

MAPPING = load_mapping(Path(__file__).resolve().parents[2] / "mappings" / "yonyou" / "customer.yaml", "customer")
INSERT = "/yonbip/digitalModel/merchant/idempotent/newinsert"
BATCH = "/yonbip/digitalModel/batch/merchant/save"


def stream() -> StreamSpec:
    return StreamSpec(entity="customer", source=MAPPING.source, key=MAPPING.key, updated_at=MAPPING.updated_at,
                      timezone=str(MAPPING.timezone), batch_size=25, fields=tuple(MAPPING.source_paths()),
                      run_started_at=datetime.now(timezone.utc))


def test_a_renamed_customer_is_saved_under_zh_cn(sim, make_connector) -> None:
    conn = make_connector(sim)
    target = sim.state["merchants"][3]
    change = WriteChange("rename-1", "r", str(target["id"]), MAPPING.to_source({"name": "改名后有限公司"}))
    (result,) = conn.write(stream(), [change])
    assert result.ok, result.error
    assert target["name"] == {"simplifiedName": "改名后有限公司"}          # lists answer simplifiedName


def test_a_new_customer_still_goes_to_newinsert_as_simplified_name(sim, make_connector) -> None:
    conn = make_connector(sim)
    change = WriteChange("new-1", "r", None, MAPPING.to_source({"code": "NAME-1", "name": "新建名称有限公司"}))
    (result,) = conn.write(stream(), [change])
    assert result.ok, result.error
    assert next(m for m in sim.state["merchants"] if m["code"] == "NAME-1")["name"] == {"simplifiedName": "新建名称有限公司"}


def test_the_simulator_refuses_the_other_apis_name_form(sim) -> None:
    target = sim.state["merchants"][0]
    before = dict(target["name"])
    body = sim.api("POST", BATCH, {"data": [
        {"_status": "Update", "id": target["id"], "name": {"simplifiedName": "未记载写法有限公司"}},
        {"_status": "Update", "id": target["id"], "name": "裸字符串有限公司"}]}).json()
    assert body["code"] == "200" and body["data"]["failCount"] == 2
    assert all("zh_CN" in m for m in body["data"]["messages"]) and target["name"] == before
    refused = sim.api("POST", INSERT, {"data": {"resubmitCheckKey": "zh-1", "createOrgCode": "global00",
                                                "name": {"zh_CN": "新增写法有限公司"}}}).json()
    assert refused["code"] == 0 and "simplifiedName" in refused["message"]
