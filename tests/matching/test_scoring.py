"""The level-only comparators that score() uses agree with the full ones that explain() shows."""
from __future__ import annotations

import csv
import random
from pathlib import Path

from hub.matching_scoring import FAST_KINDS, KINDS, Scorer, feature

FIXTURE = Path(__file__).parent / "fixtures" / "cn_customers.csv"
FIELDS = {"name": 0.4, "address": 0.2, "phone": 0.2, "city": 0.2}


def _typo(rng: random.Random, s: str) -> str:
    """Drop, double, swap or replace a character, or cut a word: what systems do to one value."""
    if not s:
        return s
    i = rng.randrange(len(s))
    op = rng.randrange(5)
    if op == 0:
        return s[:i] + s[i + 1:]
    if op == 1:
        return s[:i] + s[i] + s[i:]
    if op == 2 and i + 1 < len(s):
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    if op == 3:
        return s[:i] + rng.choice("星新海贸易有限公司上海路号0123456789abcdeknrst ") + s[i + 1:]
    return " ".join(s.split()[:-1]) or s


def _records() -> list[dict[str, str]]:
    rows = list(csv.DictReader(FIXTURE.open(encoding="utf-8")))
    rng = random.Random(11)
    out = []
    for r in rows:
        base = {"name": r["name"], "address": r["address"], "phone": r["phone"], "city": r["city"],
                "customer_type": r["type"]}
        out.append(base)
        for _ in range(6):
            out.append({f: (_typo(rng, v) if f != "customer_type" and rng.random() < 0.6 else v)
                        for f, v in base.items()})
    return out


def test_fast_levels_equal_full_levels_and_scores_match_explanations() -> None:
    records = _records()
    scorer = Scorer("customer", FIELDS)
    feats = [scorer.features(r) for r in records]
    rng = random.Random(5)
    pairs = [(rng.randrange(len(records)), rng.randrange(len(records))) for _ in range(6000)]
    pairs += [(i, i + 1) for i in range(len(records) - 1)]          # near-duplicates side by side
    compared = 0
    for i, j in pairs:
        for f in FIELDS:
            kind = "place" if f == "city" else f
            a, b = (feature(kind, records[i][f], records[i]), feature(kind, records[j][f], records[j]))
            if a is None or b is None:
                continue
            if kind in FAST_KINDS:
                assert KINDS[kind].compare(a, b, fast=True)[0] == KINDS[kind].compare(a, b)[0], (f, a, b)
                compared += 1
        explained = scorer.explain(feats[i], feats[j], records[i], records[j])
        assert round(scorer.score(feats[i], feats[j]), 4) == explained["score"]
    assert compared > 10_000
