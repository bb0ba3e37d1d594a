"""A labelled fixture of Chinese company (and a few person) records with known duplicates, scored.

tests/matching/fixtures/cn_customers.csv: 35 records of 21 customers in three
systems; look-alikes that must stay apart (上海星海 / 上海新海, 华信 / 华兴, a
head office and its branch, two people named 张伟, 天河 in two cities) and
duplicates typed differently (legal form, region prefix, full-width, pinyin
and English names, national phone formats).
"""
from __future__ import annotations

import csv
from itertools import combinations
from pathlib import Path

from .helpers import CONFIG, make_hub

FIXTURE = Path(__file__).parent / "fixtures" / "cn_customers.csv"
FIELDS = CONFIG.replace("fuzzy: {{fields: {{name: 0.6, city: 0.2, phone: 0.2}}",
                        "fuzzy: {{fields: {{name: 0.5, city: 0.15, phone: 0.2, address: 0.15}}")


def _pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {p for ids in groups.values() for p in combinations(sorted(ids), 2)}


def test_labelled_chinese_fixture(tmp_path: Path) -> None:
    hub = make_hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, FIELDS)
    rows = list(csv.DictReader(FIXTURE.open(encoding="utf-8")))
    truth: dict[str, list[str]] = {}
    for system in ("crm", "erp", "legacy"):
        batch = [{k: v for k, v in r.items() if k not in ("system", "entity") and v} | {"customer_no": r["source_id"]}
                 for r in rows if r["system"] == system]
        hub.feed(system, batch)
    found: dict[str, list[str]] = {}
    for r in rows:
        key = f"{r['system']}:{r['source_id']}"
        truth.setdefault(r["entity"], []).append(key)
        found.setdefault(hub.record_of(r["system"], r["source_id"]), []).append(key)
    true_pairs, got = _pairs(truth), _pairs(found)
    precision = len(true_pairs & got) / len(got)
    recall = len(true_pairs & got) / len(true_pairs)
    wrong = sorted(got - true_pairs)
    missed = sorted(true_pairs - got)
    assert precision == 1.0, f"wrong links: {wrong}"            # linking two customers' money is the worse error
    assert recall >= 0.85, f"recall {recall:.2f}; missed: {missed}"
    # what was not linked is at least offered to a steward or is a cross-language pair
    offered = {frozenset((c["record_a"], c["record_b"])) for c in hub.candidates()}
    rid = {k: rid for rid, keys in found.items() for k in keys}
    for a, b in missed:
        assert frozenset((rid[a], rid[b])) in offered or "legacy" in a + b or "E16" in a + b, (a, b)
