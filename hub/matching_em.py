"""`triad matches train`: estimate Fellegi-Sunter m/u probabilities from the store with EM.

Training pairs come from the records as the systems sent them
(``source_state``): every pair of records that shares a blocking key, the
same way the matcher finds candidates, so the estimated prior and u
probabilities describe the pairs the matcher will actually score. EM needs no
labels: it fits a two-class mixture (same entity / different entities) to the
comparison levels, assuming the fields independent given the class.
"""
from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from hub.matching_blocking import IDENTIFYING, record_keys
from hub.matching_scoring import KINDS, Params, Scorer
from hub.models import SourceState

log = logging.getLogger(__name__)

TRAIN_BLOCK = 50        # larger blocks are skipped: their pairs are almost all non-matches
MIN_PAIRS = 50


@dataclass
class TrainReport:
    records: int
    pairs: int
    iterations: int
    converged: bool
    params: Params
    kept_defaults: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "pairs": self.pairs, "iterations": self.iterations,
                "converged": self.converged, "lambda": round(self.params.lam, 6),
                "m": {f: [round(x, 5) for x in v] for f, v in self.params.m.items()},
                "u": {f: [round(x, 5) for x in v] for f, v in self.params.u.items()},
                "kept_defaults": self.kept_defaults}


def source_records(conn: Connection, entity: str, limit: int) -> list[dict[str, Any]]:
    st = SourceState.__table__
    q = select(st.c["values"]).where(st.c.entity == entity).order_by(st.c.system, st.c.source_id).limit(limit)
    return [r[0] for r in conn.execute(q) if isinstance(r[0], dict)]


def candidate_pairs(entity: str, records: list[dict[str, Any]], max_pairs: int, seed: int = 0) -> list[tuple[int, int]]:
    """Pairs of records sharing a blocking key (blocks up to TRAIN_BLOCK), sampled down to ``max_pairs``."""
    blocks: dict[tuple[str, str], list[int]] = {}
    for i, values in enumerate(records):
        for k in record_keys(entity, values):
            blocks.setdefault(k, []).append(i)
    pairs: set[tuple[int, int]] = set()
    for k, members in blocks.items():
        if len(members) < 2 or (len(members) > TRAIN_BLOCK and k[0] not in IDENTIFYING):
            continue
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                pairs.add((members[x], members[y]))
    out = sorted(pairs)
    if len(out) > max_pairs:
        out = sorted(random.Random(seed).sample(out, max_pairs))
    return out


def comparison_levels(scorer: Scorer, records: list[dict[str, Any]], pairs: list[tuple[int, int]]) -> list[tuple]:
    feats = [scorer.features(v) for v in records]
    return [tuple(-1 if lv is None else lv[0] for lv in scorer.levels(feats[a], feats[b])) for a, b in pairs]


def estimate(scorer: Scorer, levels: list[tuple], *, max_iter: int = 200, tol: float = 1e-6) -> tuple[Params, int, bool, list[str]]:
    """EM over comparison-level patterns, started from the scorer's current parameters.

    A field whose estimate comes out inverted (its exact level more likely for
    different records than for the same) keeps its defaults: that happens when a
    field is nearly empty or constant, and would otherwise push scores the wrong way.
    """
    import numpy as np
    fields = scorer.fields
    start = scorer.params
    patterns: dict[tuple, int] = {}
    for row in levels:
        patterns[row] = patterns.get(row, 0) + 1
    pat = np.array(list(patterns), dtype=np.int16).reshape(len(patterns), len(fields))
    cnt = np.array(list(patterns.values()), dtype=float)
    nlev = [len(start.m[f]) for f in fields]
    m = [np.array(start.m[f], dtype=float) for f in fields]
    u = [np.array(start.u[f], dtype=float) for f in fields]
    lam = start.lam
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        lm = np.zeros(len(cnt))
        lu = np.zeros(len(cnt))
        for k in range(len(fields)):
            col = pat[:, k]
            ok = col >= 0
            lm[ok] += np.log(m[k][col[ok]])
            lu[ok] += np.log(u[k][col[ok]])
        a = math.log(lam) + lm
        b = math.log(1 - lam) + lu
        g = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        wg, wu = cnt * g, cnt * (1 - g)
        new_lam = float(wg.sum() / cnt.sum())
        delta = abs(new_lam - lam)
        for k in range(len(fields)):
            col = pat[:, k]
            ok = col >= 0
            mk = np.bincount(col[ok], weights=wg[ok], minlength=nlev[k]) + 1e-3
            uk = np.bincount(col[ok], weights=wu[ok], minlength=nlev[k]) + 1e-3
            mk, uk = mk / mk.sum(), uk / uk.sum()
            delta = max(delta, float(np.abs(mk - m[k]).max()), float(np.abs(uk - u[k]).max()))
            m[k], u[k] = mk, uk
        lam = min(max(new_lam, 1e-6), 0.999)
        if delta < tol:
            converged = True
            break
    params = Params(lam, {}, {}, trained=True)
    kept = []
    for k, f in enumerate(fields):
        top = nlev[k] - 1
        if m[k][top] <= u[k][top] or not np.isfinite(m[k]).all():
            params.m[f], params.u[f] = list(start.m[f]), list(start.u[f])
            kept.append(f)
            log.warning("matches train: %s estimated inverted (m=%s u=%s); keeping its defaults", f, m[k], u[k])
        else:
            params.m[f], params.u[f] = [float(x) for x in m[k]], [float(x) for x in u[k]]
    return params, it, converged, kept


def train(conn: Connection, entity: str, fuzzy: Any, *, max_records: int = 200_000, max_pairs: int = 500_000,
          seed: int = 0) -> TrainReport:
    """Estimate parameters for ``entity`` from the store (the caller saves them)."""
    scorer = Scorer(entity, dict(fuzzy.fields))   # start from the defaults, not from an earlier training
    records = source_records(conn, entity, max_records)
    pairs = candidate_pairs(entity, records, max_pairs, seed)
    if len(pairs) < MIN_PAIRS:
        from hub.errors import UsageError
        raise UsageError(f"only {len(pairs)} candidate pairs of {entity} records in the store; "
                         f"training needs at least {MIN_PAIRS} (sync more data first)")
    levels = comparison_levels(scorer, records, pairs)
    params, iterations, converged, kept = estimate(scorer, levels)
    params.meta = {"records": len(records), "pairs": len(pairs), "iterations": iterations,
                   "fields": list(scorer.fields), "kinds": {f: k for f, k in zip(scorer.fields, scorer.kinds)},
                   "levels": {f: list(KINDS[k].labels) for f, k in zip(scorer.fields, scorer.kinds)}}
    return TrainReport(len(records), len(pairs), iterations, converged, params, kept)
