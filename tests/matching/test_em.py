"""`matches train`: EM estimates weights from the store; the matcher then uses them."""
from __future__ import annotations

import random

from sqlalchemy import insert

from hub.config import Fuzzy
from hub.matches import train_entity
from hub.matching import FuzzyMatcher, load_params
from hub.models import SourceState
from hub.types import utcnow

SYL = "安 宝 博 晨 成 达 德 东 丰 福 光 国 海 汉 和 恒 宏 华 辉 佳 嘉 建 金 锦 凯 康 科 力 利 隆 明 南 鹏 荣 瑞 盛 顺 泰 天 通 万 伟 文 祥 信 星 兴 旭 阳 益 永 远 源 云 泽 振 正 志 中".split()
CITIES = ["上海", "北京", "深圳", "广州", "杭州", "成都"]


def _store(hub, n: int = 400) -> None:
    rng = random.Random(5)
    rows = []
    now = utcnow()
    for i in range(n):
        name = rng.choice(CITIES) + "".join(rng.choice(SYL) for _ in range(2)) + rng.choice(["贸易", "科技", "实业"])
        city, phone = name[:2], f"+86139{rng.randrange(10**7, 10**8)}"
        base = {"name": name + "有限公司", "city": city, "phone": phone, "customer_type": "company"}
        rows.append(("erp", f"E{i}", base))
        if i % 2 == 0:   # half of them also in the CRM, typed differently
            dup = dict(base, name=name if rng.random() < 0.5 else name[2:] + "公司",
                       phone=phone if rng.random() < 0.6 else None)
            rows.append(("crm", f"C{i}", dup))
    with hub.engine.begin() as conn:
        conn.execute(insert(SourceState.__table__), [
            {"entity": "customer", "system": s, "source_id": sid, "record_id": f"R{sid}", "values": v,
             "row_hash": "x", "source_ts": None, "seen_at": now, "run_id": None} for s, sid, v in rows])


def test_training_estimates_sensible_weights_and_the_matcher_uses_them(hub) -> None:
    _store(hub)
    with hub.engine.begin() as conn:
        report = train_entity(conn, hub.cfg, "customer", user="steward")
    m, u = report["m"], report["u"]
    for f, factor in (("name", 10), ("phone", 10), ("city", 3)):   # six cities only: agreement says less
        assert m[f][-1] > u[f][-1] * factor, f      # exact agreement: far likelier for the same company
    assert u["name"][0] > 0.9 and u["phone"][0] > 0.9   # two records at random disagree
    assert 0 < report["lambda"] < 0.01
    with hub.engine.connect() as conn:
        params = load_params(conn, "customer", ["name", "city", "phone"])
        assert params.trained and abs(params.lam - report["lambda"]) < 1e-6
        matcher = FuzzyMatcher("customer", Fuzzy(fields={"name": 0.6, "city": 0.2, "phone": 0.2}))
        matcher.match_batch(conn, [{"name": "x"}])
        assert matcher.scorer.params.trained


def test_training_needs_data(hub) -> None:
    import pytest

    from hub.errors import TriadError
    with hub.engine.begin() as conn, pytest.raises(TriadError, match="at least") as failed:
        train_entity(conn, hub.cfg, "customer", user="steward")
    assert failed.value.exit_code == 1    # the command ran; the store has too little to train on (not bad usage)
