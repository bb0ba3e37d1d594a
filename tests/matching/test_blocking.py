"""Blocking never misses an exact-key match, however the key is spelled and however crowded the store."""
from __future__ import annotations

import random

from sqlalchemy import insert

from hub import golden
from hub.config import Fuzzy
from hub.identity import exact_matches
from hub.matching import MAX_BLOCK, FuzzyMatcher, _block_weights, _candidates, index_all
from hub.matching_blocking import record_keys
from hub.types import new_id, utcnow

ALNUM = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _respell(rng: random.Random, field: str, v: str) -> str:
    if field == "tax_id":
        s = v.lower() if rng.random() < 0.5 else v
        s = " ".join(s[i:i + 4] for i in range(0, len(s), 4)) if rng.random() < 0.5 else s
        return s.translate({cp: cp + 0xFEE0 for cp in range(0x21, 0x7F)}) if rng.random() < 0.3 else s
    if field == "email":
        return v.upper() if rng.random() < 0.5 else f" mailto:{v} "
    return f"{v[3:6]}-{v[6:10]}-{v[10:]}"     # +86138... typed nationally


def test_exact_keys_always_reach_their_record(hub) -> None:
    rng = random.Random(3)
    t = golden.table_of("customer")
    now = utcnow()
    rows = []
    for i in range(MAX_BLOCK + 60):   # one city and one name word shared by more records than a block holds
        rows.append({"id": new_id(), "name": f"上海星海{i:04d}贸易有限公司", "city": "上海", "customer_type": "company",
                     "tax_id": "9131" + "".join(rng.choice(ALNUM) for _ in range(14)),
                     "email": f"user{i}@xinghai{i % 7}.cn", "phone": f"+86138{rng.randrange(10**7, 10**8)}",
                     "provenance": {}, "updated_at": now, "version": 1, "deleted_in": None, "merged_into": None})
    with hub.engine.begin() as conn:
        conn.execute(insert(t), rows)
        index_all(conn, "customer")
    matcher = FuzzyMatcher("customer", Fuzzy(fields={"name": 1.0}))
    probes = []
    for r in rng.sample(rows, 60):
        field = rng.choice(("tax_id", "email", "phone"))
        probes.append((r["id"], field, {"name": "完全不同的名字", field: _respell(rng, field, r[field])}))
    with hub.engine.connect() as conn:
        blocks = matcher._lookup(conn, [record_keys("customer", v) for _, _, v in probes])
        weights = _block_weights(blocks)
        for rid, field, values in probes:
            assert rid in _candidates(record_keys("customer", values), blocks, weights), (field, values)
            assert exact_matches(conn, "customer", [field], [values]) == [rid], (field, values)


def test_exact_key_links_in_the_sync_whatever_the_spelling(hub) -> None:
    hub.feed("erp", [{"customer_no": "E1", "name": "星海贸易", "tax_id": "91310000MA1FL1234X", "city": "上海"}])
    hub.feed("crm", [{"customer_no": "C1", "name": "Completely Different", "tax_id": "9131 0000 ma1f l123 4x"}])
    assert hub.record_of("crm", "C1") == hub.record_of("erp", "E1")
