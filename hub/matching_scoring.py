"""Field-by-field comparison and Fellegi-Sunter scoring of candidate pairs.

Each compared field has a *kind* (name, address, place, postal, phone ...)
that says how its values are normalized and compared. A comparison yields a
level, from 0 (disagree) up to the kind's top level (agree exactly), or None
when either side is empty (no evidence either way). Each level carries m (how
often true duplicates compare at that level) and u (how often different
records do); log2(m/u) summed over the fields plus the prior odds is the
match weight, and its logistic the score in [0, 1] that ``link_at`` and
``review_at`` cut. u is how often two records taken at random compare at a level, and the
prior is the probability that two records taken at random are the same
entity, so the score does not depend on how a pair was found. Defaults hold
until ``triad matches train`` estimates them from the store
(:mod:`hub.matching_em`).

The configured field weights scale each field's evidence relative to the
others (``weight / mean weight``): equal weights are plain Fellegi-Sunter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from hub import normalize as norm
from hub.canonical import ENTITIES

CUSTOMER_KINDS = {
    "name": "name", "address": "address", "city": "place", "province": "region", "country": "region",
    "postal_code": "postal", "phone": "phone", "email": "email", "tax_id": "taxid", "code": "code",
    "customer_type": "category", "status": "category", "currency": "category", "tier": "category",
    "payment_terms": "category", "owner": "text",
}


def kind_of(entity: str, f: str) -> str:
    """The comparison kind of a field of an entity."""
    if entity == "customer" and f in CUSTOMER_KINDS:
        return CUSTOMER_KINDS[f]
    edef = ENTITIES[entity]
    if f == edef.natural_key:
        return "code"
    if f.endswith("_id") or edef.fields.get(f) != "string" or f in edef.enums:
        return "category"
    return "text"


def _is_person(values: dict[str, Any]) -> str | None:
    return "person" if values.get("customer_type") == "person" else None


# kind -> feature of a raw value (given the whole record, for context such as the phone's country)
FEATURES: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "name": lambda v, r: norm.name(v, _is_person(r)),
    "address": lambda v, r: norm.address(v),
    "place": lambda v, r: norm.place(v),
    "region": lambda v, r: norm.place(v),
    "postal": lambda v, r: norm.postal_code(v),
    "phone": lambda v, r: norm.phone(v, r.get("country") or "CN"),
    "email": lambda v, r: norm.email(v),
    "taxid": lambda v, r: norm.tax_id(v),
    "category": lambda v, r: norm.text(v) or None,
    "code": lambda v, r: norm.exact_key("code", v),
    "text": lambda v, r: norm.text(v) or None,
}


def feature(kind: str, value: Any, record: dict[str, Any]) -> Any:
    if value in (None, "", []):
        return None
    return FEATURES[kind](str(value), record)


# --- comparators: (a, b) -> (level, similarity 0..1) ------------------------------------------------

def _sim_tokens(a: str, b: str, cut: float = 0) -> float:
    return max(fuzz.token_sort_ratio(a, b, score_cutoff=cut),
               fuzz.ratio(a.replace(" ", ""), b.replace(" ", ""), score_cutoff=cut)) / 100.0


def _levels(sim: float, cuts: tuple[float, ...]) -> int:
    """Level index for a similarity: cuts are ascending thresholds for levels 1..len(cuts)."""
    level = 0
    for i, c in enumerate(cuts, start=1):
        if sim >= c:
            level = i
    return level


def compare_name(a: norm.Name, b: norm.Name, fast: bool = False) -> tuple[int, float]:
    """``fast``: the level only (similarities below the lowest cut come back as 0)."""
    if a.full == b.full and a.branch == b.branch:
        # a Chinese person's name of two or three characters is shared by thousands (张伟): no proof alone
        return (2 if a.person and a.cjk and len(a.full) <= 3 else 4), 1.0
    cut = 70 if fast else 0
    if a.cjk == b.cjk:
        sim = _sim_tokens(a.full, b.full, cut) if not a.cjk else fuzz.ratio(a.full, b.full, score_cutoff=cut) / 100.0
        cap = 3
    else:   # different scripts: transliteration is lossy (星海 and 新海 are both xinghai): at most "similar"
        sim = _sim_tokens(" ".join(a.latin), " ".join(b.latin), cut)
        cap = 2
    if bool(a.region) != bool(b.region) and a.core and a.core == b.core:
        # 星海贸易 vs 上海星海贸易: one name omits its registration region
        body_a = [t for t in a.latin if t != a.region]
        body_b = [t for t in b.latin if t != b.region]
        sim = max(sim, _sim_tokens(" ".join(body_a), " ".join(body_b), cut))
    level = _levels(sim, (0.70, 0.85, 0.92))
    if level == 0 and _partial(a.latin, b.latin):   # "jack" vs "jack berry": one name lacks a word
        level = 1
    if a.branch != b.branch:   # head office vs branch, or two branches: related but distinct accounts
        cap = 1 if a.branch and b.branch else 2
    return min(level, cap), sim


def _partial(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Every word of the shorter name is (nearly) a word of the longer one."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if not short or len(short) == len(long_):
        return False
    for w in short:
        for x in long_:
            if fuzz.ratio(w, x, score_cutoff=80):   # 0 below the cut
                break
        else:
            return False
    return True


def compare_address(a: norm.Address, b: norm.Address, fast: bool = False) -> tuple[int, float]:
    """``fast``: the level only (similarities below the lowest cut come back as 0)."""
    if a.full == b.full:
        return 3, 1.0
    cut = 75 if fast else 0
    if a.cjk == b.cjk:
        if a.cjk:
            sim = fuzz.ratio(a.full, b.full, score_cutoff=cut) / 100.0
        else:   # "kingsburykstreet" vs "kingsbury street": compare the unabbreviated forms too
            sim = max(_sim_tokens(a.full, b.full, cut), fuzz.ratio(a.raw, b.raw, score_cutoff=cut) / 100.0)
        cap = 2
    else:
        sim = _sim_tokens(" ".join(a.latin), " ".join(b.latin), cut)
        cap = 1
    if a.number and b.number and a.number != b.number:
        cap = min(cap, 1)
    level = _levels(sim, (0.75, 0.90))
    if level == 0 and fuzz.token_set_ratio(a.full, b.full, score_cutoff=90) >= 90:   # one address has an extra line
        level = 1
    return min(level, cap), sim


def compare_place(a: str, b: str) -> tuple[int, float]:
    if a == b:
        return 2, 1.0
    sim = JaroWinkler.similarity(a, b)
    return (1 if sim >= 0.90 else 0), sim


def compare_postal(a: str, b: str) -> tuple[int, float]:
    if a == b:
        return 2, 1.0
    d = DamerauLevenshtein.distance(a, b)
    return (1 if d <= 1 and len(a) == len(b) else 0), 1.0 - d / max(len(a), len(b))


def compare_phone(a: str, b: str, fast: bool = False) -> tuple[int, float]:
    """``fast``: the level only (the similarity comes back as 0 unless the numbers agree)."""
    if a == b:
        return 2, 1.0
    da, db = a.lstrip("+"), b.lstrip("+")
    if len(da) >= 8 and len(db) >= 8 and da[-8:] == db[-8:]:
        return 1, 0.9
    if fast:   # the level needs the distance only for numbers of one length
        return (1 if len(da) == len(db) and DamerauLevenshtein.distance(da, db, score_cutoff=1) <= 1 else 0), 0.0
    d = DamerauLevenshtein.distance(da, db)
    return (1 if d <= 1 and len(da) == len(db) else 0), 1.0 - d / max(len(da), len(db), 1)


def compare_email(a: str, b: str) -> tuple[int, float]:
    if a == b:
        return 2, 1.0
    la, _, da = a.rpartition("@")
    lb, _, db = b.rpartition("@")
    if (la and la == lb) or (da and da == db and da not in norm.lex.FREE_MAIL):
        return 1, 0.5
    return 0, 0.0


def compare_taxid(a: str, b: str) -> tuple[int, float]:
    if a == b:
        return 2, 1.0
    d = DamerauLevenshtein.distance(a, b)
    # a typo in a code that passes its check digit is unlikely: two valid codes are two entities
    typo = d <= 1 and not (norm.tax_id_valid(a) and norm.tax_id_valid(b))
    return (1 if typo else 0), 1.0 - d / max(len(a), len(b))


def compare_exact(a: str, b: str) -> tuple[int, float]:
    return (1, 1.0) if a == b else (0, 0.0)


def compare_text(a: str, b: str) -> tuple[int, float]:
    if a == b:
        return 3, 1.0
    sim = _sim_tokens(a, b)
    return _levels(sim, (0.75, 0.90)), sim


@dataclass(frozen=True)
class Kind:
    compare: Callable[[Any, Any], tuple[int, float]]
    labels: tuple[str, ...]     # one per level, 0 = disagree
    m: tuple[float, ...]        # default P(level | same entity)
    u: tuple[float, ...]        # default P(level | different entities), among blocked candidates


FAST_KINDS = frozenset({"name", "address", "phone"})   # comparators with a level-only mode (``fast``)

# Defaults before `triad matches train`: u is how often two records taken at random compare at a level.
KINDS: dict[str, Kind] = {
    "name": Kind(compare_name, ("different", "partial", "similar", "very similar", "exact"),
                 (0.04, 0.08, 0.10, 0.18, 0.60), (0.9955, 0.003, 0.001, 0.0003, 0.0002)),
    "address": Kind(compare_address, ("different", "similar", "very similar", "exact"),
                    (0.10, 0.15, 0.25, 0.50), (0.9985, 0.001, 0.0003, 0.0002)),
    "place": Kind(compare_place, ("different", "typo", "exact"), (0.08, 0.08, 0.84), (0.985, 0.002, 0.013)),
    "region": Kind(compare_place, ("different", "typo", "exact"), (0.05, 0.03, 0.92), (0.75, 0.01, 0.24)),
    "postal": Kind(compare_postal, ("different", "one digit off", "exact"), (0.05, 0.10, 0.85), (0.985, 0.01, 0.005)),
    "phone": Kind(compare_phone, ("different", "close", "exact"), (0.30, 0.10, 0.60), (0.9999, 0.00005, 0.00005)),
    "email": Kind(compare_email, ("different", "same mailbox or company domain", "exact"),
                  (0.30, 0.15, 0.55), (0.9999, 0.00008, 0.00002)),
    "taxid": Kind(compare_taxid, ("different", "one character off", "exact"), (0.05, 0.05, 0.90),
                  (0.99998, 0.00001, 0.00001)),
    "category": Kind(compare_exact, ("different", "same"), (0.05, 0.95), (0.50, 0.50)),
    "code": Kind(compare_exact, ("different", "same"), (0.70, 0.30), (0.9999, 0.0001)),
    "text": Kind(compare_text, ("different", "similar", "very similar", "exact"),
                 (0.10, 0.15, 0.25, 0.50), (0.998, 0.001, 0.0005, 0.0005)),
}
# The prior: the probability that two records taken at random are the same entity. Before training it is
# DUPLICATES_PER_RECORD / (records in the store, at least MIN_STORE): a bigger store holds more look-alikes.
DUPLICATES_PER_RECORD = 0.5
MIN_STORE = 1000
DEFAULT_LAMBDA = DUPLICATES_PER_RECORD / MIN_STORE
_CLIP = 1e-4


@dataclass
class Params:
    """Fellegi-Sunter parameters of one entity: prior match probability and m/u per field and level."""

    lam: float
    m: dict[str, list[float]]
    u: dict[str, list[float]]
    trained: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def defaults(cls, entity: str, fields: list[str]) -> "Params":
        kinds = {f: KINDS[kind_of(entity, f)] for f in fields}
        return cls(DEFAULT_LAMBDA, {f: list(k.m) for f, k in kinds.items()}, {f: list(k.u) for f, k in kinds.items()})

    def as_json(self) -> dict[str, Any]:
        return {"v": 1, "lambda": self.lam, "m": self.m, "u": self.u, **self.meta}

    @classmethod
    def from_json(cls, entity: str, fields: list[str], data: dict[str, Any]) -> "Params":
        """Trained values where present and shaped right; defaults for fields trained without them."""
        p = cls.defaults(entity, fields)
        for f in fields:
            m, u = (data.get("m") or {}).get(f), (data.get("u") or {}).get(f)
            if m and u and len(m) == len(p.m[f]) == len(u):
                p.m[f], p.u[f] = list(m), list(u)
        p.lam = float(data.get("lambda", p.lam))
        p.trained = True
        p.meta = {k: v for k, v in data.items() if k not in ("v", "lambda", "m", "u")}
        return p


class Scorer:
    """Compares two feature vectors field by field and turns the levels into a score."""

    def __init__(self, entity: str, weights: dict[str, float], params: Params | None = None) -> None:
        self.entity = entity
        self.fields = list(weights)
        self.kinds = [kind_of(entity, f) for f in self.fields]
        mean = sum(weights.values()) / len(weights) if weights else 1.0
        self.mult = [(weights[f] / mean) if mean > 0 else 1.0 for f in self.fields]
        self.set_params(params or Params.defaults(entity, self.fields))

    def set_params(self, params: Params) -> None:
        self.params = params
        self.prior = math.log2(max(params.lam, _CLIP) / max(1 - params.lam, _CLIP))
        self.bits = []
        for f, mult in zip(self.fields, self.mult):
            m, u = params.m[f], params.u[f]
            self.bits.append([mult * math.log2(max(mi, _CLIP) / max(ui, _CLIP)) for mi, ui in zip(m, u)])
        # score() needs levels only: the comparators that can, skip exact similarities below their cuts
        compare = [partial(KINDS[k].compare, fast=True) if k in FAST_KINDS else KINDS[k].compare for k in self.kinds]
        # the very same feature object on both sides (the normalizers' caches hand out one object per value)
        # is the top level of every kind but names (a short Chinese person's name agrees only as "similar")
        top = [None if k == "name" else len(b) - 1 for k, b in zip(self.kinds, self.bits)]
        self._steps = list(zip(compare, self.bits, top))

    def features(self, values: dict[str, Any]) -> tuple:
        return tuple(feature(k, values.get(f), values) for f, k in zip(self.fields, self.kinds))

    def levels(self, a: tuple, b: tuple) -> list[tuple[int, float] | None]:
        """(level, similarity) per field, None where either side is empty."""
        out: list[tuple[int, float] | None] = []
        for kind, fa, fb in zip(self.kinds, a, b):
            out.append(None if fa is None or fb is None else KINDS[kind].compare(fa, fb))
        return out

    def score(self, a: tuple, b: tuple) -> float:
        w = self.prior
        for (cmp, bits, top), fa, fb in zip(self._steps, a, b):
            if fa is None or fb is None:
                continue
            w += bits[top] if fa is fb and top is not None else bits[cmp(fa, fb)[0]]
        return _logistic(w)

    def explain(self, a: tuple, b: tuple, values_a: dict[str, Any], values_b: dict[str, Any]) -> dict[str, Any]:
        """Per-field comparison for a steward: both values, the level's label, similarity and weight."""
        fields = {}
        w = self.prior
        for i, (f, lv) in enumerate(zip(self.fields, self.levels(a, b))):
            entry: dict[str, Any] = {"a": values_a.get(f), "b": values_b.get(f)}
            if lv is None:
                entry.update(level=None, label="missing", weight=0.0)
            else:
                bits = self.bits[i][lv[0]]
                w += bits
                entry.update(level=lv[0], label=KINDS[self.kinds[i]].labels[lv[0]], similarity=round(lv[1], 3),
                             weight=round(bits, 2))
            fields[f] = entry
        return {"score": round(_logistic(w), 4), "match_weight": round(w, 2), "prior": round(self.prior, 2),
                "trained": self.params.trained, "fields": fields}


def _logistic(w: float) -> float:
    if w > 60:
        return 1.0
    if w < -60:
        return 0.0
    return 1.0 / (1.0 + 2.0 ** (-w))
