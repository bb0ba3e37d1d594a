"""Scale cases of the identity benchmark (run through ``benchmarks/matching_febrl.py --scale``).

* ``link_100k``: a store of 100k golden customers (synced from system ``erp``), then 100k records of
  system ``crm`` synced with fuzzy matching on: 80k are the erp customers typed differently (legal
  form dropped or translated, region prefix missing, full-width characters, a typo, phone in another
  format), 20k are new. Times the crm sync (wall, peak RSS) and checks the links.
* ``single_1m``: 1M golden customers inserted set-based and indexed with ``index_all``; then 1000
  single-record ``match_batch`` calls (half near-duplicates of stored customers, half new): p50/p99.

Data are synthetic Chinese company customers made from a fixed seed.
"""
from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYL = "安 宝 博 晨 成 诚 达 德 鼎 东 丰 福 富 光 广 国 海 汉 浩 和 恒 宏 华 辉 汇 佳 嘉 建 金 锦 经 晶 聚 凯 康 科 力 利 联 隆 茂 美 明 南 鹏 启 强 荣 瑞 润 盛 世 顺 思 泰 腾 天 通 万 伟 文 祥 信 星 兴 旭 亚 阳 耀 益 永 友 裕 远 源 悦 云 泽 长 振 正 志 智 中 众 卓".split()
REGIONS = ["上海", "北京", "深圳", "广州", "杭州", "南京", "苏州", "成都", "武汉", "天津", "重庆", "西安"]
INDUSTRY = ["贸易", "科技", "实业", "电子", "机械", "物流", "化工", "信息技术", "国际贸易", "医药"]
LEGAL = ["有限公司", "股份有限公司", "有限责任公司"]
STREETS = ["中山", "人民", "解放", "建设", "和平", "长江", "黄河", "新华", "复兴", "延安", "南京", "淮海"]


def customer(rng: random.Random, i: int, taken: set[str] | None = None) -> dict[str, Any]:
    """A synthetic company; with ``taken``, its registered name (region + core + industry) is unique,
    as registered names within a region are."""
    while True:
        region = rng.choice(REGIONS)
        core = "".join(rng.choice(SYL) for _ in range(rng.choice((2, 3, 3))))
        base = f"{region}{core}{rng.choice(INDUSTRY)}"
        if taken is None or base not in taken:
            break
    if taken is not None:
        taken.add(base)
    name = f"{base}{rng.choice(LEGAL)}"
    return {"customer_no": f"E{i:07d}", "name": name, "city": region,
            "address": f"{rng.choice(STREETS)}路{rng.randrange(1, 999)}号", "postal_code": f"{rng.randrange(100000, 999999)}",
            "phone": f"+86{rng.choice(('138', '139', '186', '135', '150'))}{rng.randrange(10**7, 10**8)}",
            "type": "company"}


def variant(rng: random.Random, c: dict[str, Any], i: int) -> dict[str, Any]:
    """The same customer as another system types it."""
    v = dict(c, customer_no=f"C{i:07d}")
    name = c["name"]
    for form in LEGAL:
        if name.endswith(form) and rng.random() < 0.5:
            name = name[: -len(form)]
            break
    if rng.random() < 0.3 and name.startswith(c["city"]):
        name = name[len(c["city"]):]
    if rng.random() < 0.2:
        name = name.translate({cp: cp + 0xFEE0 for cp in range(0x21, 0x7F)})
    v["name"] = name
    if rng.random() < 0.5:
        v["phone"] = f"{c['phone'][3:6]} {c['phone'][6:10]} {c['phone'][10:]}"
    elif rng.random() < 0.3:
        v["phone"] = ""
    if rng.random() < 0.3:
        v["address"] = c["city"] + "市" + c["address"]
    return v


COLUMNS = ("customer_no", "name", "type", "city", "address", "postal_code", "phone", "updated_at")


def _write(folder: Path, rows: list[dict[str, Any]]) -> None:
    import csv
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "customers.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r.get(c, "") if c != "updated_at" else "2024-01-01 00:00:00" for c in COLUMNS])


def link_100k(n: int = 100_000) -> dict[str, Any]:
    from hub.config import parse_config
    from hub.store import make_engine, upgrade
    from hub.streams import Parts
    from hub.sync import run_sync
    rng = random.Random(7)
    taken: set[str] = set()
    erp = [customer(rng, i, taken) for i in range(n)]
    dup_idx = rng.sample(range(n), int(n * 0.8))
    crm = [variant(rng, erp[k], i) for i, k in enumerate(dup_idx)]
    crm += [dict(customer(rng, n + i, taken), customer_no=f"C{len(dup_idx) + i:07d}") for i in range(n - len(dup_idx))]
    rng.shuffle(crm)
    truth = {f"C{i:07d}": f"E{k:07d}" for i, k in enumerate(dup_idx)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _write(work / "erp", erp)
        _write(work / "crm", crm)
        cfg = parse_config(f"""
store: {{url: "sqlite:///{work / 'hub.db'}"}}
connectors:
  erp: {{type: file, path: "{work / 'erp'}", direction: in, batch_size: 5000, entities: [customer]}}
  crm: {{type: file, path: "{work / 'crm'}", direction: in, batch_size: 5000, entities: [customer]}}
matching:
  customer:
    fuzzy: {{fields: {{name: 0.5, city: 0.15, phone: 0.2, address: 0.15}}, link_at: 0.92, review_at: 0.75}}
""", str(work / "triad.yaml"))
        engine = make_engine(cfg.store.url)
        upgrade(engine)
        parts = Parts(cfg)
        t0 = time.perf_counter()
        run_sync(engine, parts, connectors=("erp",))
        load_s = time.perf_counter() - t0
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0, c0 = time.perf_counter(), time.process_time()
        rep = run_sync(engine, parts, connectors=("crm",))[0]
        link_s, link_cpu = time.perf_counter() - t0, time.process_time() - c0
        from sqlalchemy import select

        from hub.models import Xref
        xt = Xref.__table__
        with engine.connect() as conn:
            rid = {(s, sid): r for s, sid, r in conn.execute(select(xt.c.system, xt.c.source_id, xt.c.record_id))}
        engine.dispose()
    erp_ids = {r for (s, _), r in rid.items() if s == "erp"}
    tp = sum(1 for c, e in truth.items() if rid.get(("crm", c)) == rid.get(("erp", e)))
    linked = sum(1 for (s, _), r in rid.items() if s == "crm" and r in erp_ids)
    return {"golden": n, "incoming": n, "load_s": round(load_s, 1), "link_wall_s": round(link_s, 1),
            "link_cpu_s": round(link_cpu, 1), "load_average": round(__import__("os").getloadavg()[0], 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_after_load_mb": round(rss_before, 1), "linked": linked, "created": rep.counts["created"],
            "true_links_found": tp, "true_links": len(truth), "precision": round(tp / linked, 4) if linked else None,
            "recall": round(tp / len(truth), 4), "status": rep.status}


def single_1m(n: int = 1_000_000, probes: int = 1000) -> dict[str, Any]:
    from sqlalchemy import insert

    from hub.config import Fuzzy
    from hub.golden import table_of
    from hub.matching import FuzzyMatcher, index_all
    from hub.store import make_engine, upgrade
    from hub.types import new_id, utcnow
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'hub.db'}")
        upgrade(engine)
        t = table_of("customer")
        now = utcnow()
        stored = []
        taken: set[str] = set()
        t0 = time.perf_counter()
        with engine.begin() as conn:
            batch = []
            for i in range(n):
                c = customer(rng, i, taken)
                row = {"id": new_id(), "code": c["customer_no"], "name": c["name"], "customer_type": "company",
                       "city": c["city"], "address": c["address"], "postal_code": c["postal_code"],
                       "phone": c["phone"], "provenance": {"*": ["erp", None]}, "updated_at": now, "version": 1,
                       "deleted_in": None, "merged_into": None}
                batch.append(row)
                if i % 1000 == 0:
                    stored.append(c)
                if len(batch) == 20_000:
                    conn.execute(insert(t), batch)
                    batch = []
            if batch:
                conn.execute(insert(t), batch)
        insert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with engine.begin() as conn:
            keys = index_all(conn, "customer")
        index_s = time.perf_counter() - t0
        fuzzy = Fuzzy(fields={"name": 0.5, "city": 0.15, "phone": 0.2, "address": 0.15})
        matcher = FuzzyMatcher("customer", fuzzy)
        lat = []
        linked = 0
        with engine.connect() as conn:
            matcher.match_batch(conn, [{"name": "warm up"}])
            for k in range(probes):
                if k % 2 == 0:
                    v = variant(rng, rng.choice(stored), k)
                else:
                    v = customer(rng, n + k, taken)
                values = {"name": v["name"], "customer_type": "company", "city": v["city"], "address": v["address"],
                          "postal_code": v["postal_code"], "phone": v["phone"] or None}
                s = time.perf_counter()
                d = matcher.match_batch(conn, [values])[0]
                lat.append((time.perf_counter() - s) * 1000)
                linked += d.record_id is not None and k % 2 == 0
            conn.rollback()
        engine.dispose()
    lat.sort()
    return {"golden": n, "match_keys": keys, "insert_s": round(insert_s, 1), "index_all_s": round(index_s, 1),
            "probes": probes, "p50_ms": round(lat[len(lat) // 2], 2), "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 2),
            "max_ms": round(lat[-1], 2), "duplicates_linked": linked, "duplicates": probes // 2,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


CASES: dict[str, Callable[[], dict[str, Any]]] = {"link_100k": link_100k, "single_1m": single_1m}
