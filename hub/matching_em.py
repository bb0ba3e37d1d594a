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

from hub.matching_blocking import IDENTIFYING, KEY_FIELDS_OF, record_keys
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
    """The records as the systems last sent them (``source_state``), up to ``limit``."""
    st = SourceState.__table__
    q = select(st.c["values"]).where(st.c.entity == entity).order_by(st.c.system, st.c.source_id).limit(limit)
    return [r[0] for r in conn.execute(q) if isinstance(r[0], dict) and r[0]]   # (none: only written to)


def candidate_pairs(entity: str, records: list[dict[str, Any]]) -> dict[tuple[int, int], set[str]]:
    """Pairs of records sharing a blocking key (blocks up to TRAIN_BLOCK), with the key types they share."""
    blocks: dict[tuple[str, str], list[int]] = {}
    for i, values in enumerate(records):
        for k in record_keys(entity, values):
            blocks.setdefault(k, []).append(i)
    pairs: dict[tuple[int, int], set[str]] = {}
    for k, members in blocks.items():
        if len(members) < 2 or (len(members) > TRAIN_BLOCK and k[0] not in IDENTIFYING):
            continue
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                pairs.setdefault((members[x], members[y]), set()).add(k[0])
    return pairs


def _levels(scorer: Scorer, feats: list[tuple], pairs: list[tuple[int, int]],
            masks: list[frozenset[str]] | None = None) -> list[tuple]:
    out = []
    for n, (a, b) in enumerate(pairs):
        masked = masks[n] if masks else frozenset()
        out.append(tuple(-1 if lv is None or f in masked else lv[0]
                         for f, lv in zip(scorer.fields, scorer.levels(feats[a], feats[b]))))
    return out


def u_from_random_pairs(scorer: Scorer, feats: list[tuple], n_pairs: int, seed: int) -> dict[str, list[float]]:
    """u: how often two records taken at random (almost all different entities) compare at each level."""
    rng = random.Random(seed)
    n = len(feats)
    pairs: set[tuple[int, int]] = set()
    target = min(n_pairs, n * (n - 1) // 2)
    while len(pairs) < target:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    levels = _levels(scorer, feats, sorted(pairs))
    u = {}
    for k, f in enumerate(scorer.fields):
        nlev = len(scorer.params.u[f])
        counts = [0] * nlev
        for row in levels:
            if row[k] >= 0:
                counts[row[k]] += 1
        total = sum(counts)
        # one pseudo-observation spread over the levels keeps unseen levels finite
        u[f] = [(c + 1.0 / nlev) / (total + 1.0) for c in counts]
    return u


def estimate(scorer: Scorer, levels: list[tuple], *, fixed_u: dict[str, list[float]] | None = None,
             max_iter: int = 200, tol: float = 1e-6) -> tuple[Params, int, bool, list[str]]:
    """EM over comparison-level patterns, started from the scorer's current parameters.

    With ``fixed_u`` only the prior and the m probabilities are estimated.

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
    u = [np.array((fixed_u or start.u)[f], dtype=float) for f in fields]
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
            mk, uk = mk / mk.sum(), (uk / uk.sum() if fixed_u is None else u[k])
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


SESSIONS = ("pc", "ct", "nm", "aw", "tx", "ph", "em")   # blocking keys EM sessions are run on


def train(conn: Connection, entity: str, fuzzy: Any, *, max_records: int = 200_000, max_pairs: int = 200_000,
          random_pairs: int = 100_000, seed: int = 0) -> TrainReport:
    """Estimate parameters for ``entity`` from the store (the caller saves them).

    u comes from random pairs of records (almost all of them different
    entities). m and the prior come from EM sessions, one per blocking key
    type (same postal code, same city, same name ...): within a session the
    fields the key is made of are left out, since agreement there is how the
    pairs were picked, not evidence; each field's m is the average over the
    sessions that could see it. The prior is the session that finds the most
    matches, scaled to a pair of records taken at random (the scale u is on).
    """
    import numpy as np
    scorer = Scorer(entity, dict(fuzzy.fields))   # start from the defaults, not from an earlier training
    records = source_records(conn, entity, max_records)
    found = candidate_pairs(entity, records)
    n = len(records)
    feats = [scorer.features(v) for v in records]
    u = u_from_random_pairs(scorer, feats, random_pairs, seed)
    sums: dict[str, list[tuple[float, list[float]]]] = {f: [] for f in scorer.fields}
    best_matches, total_pairs, iterations, converged, sessions = 0.0, 0, 0, True, {}
    for kt in SESSIONS:
        pairs = sorted(p for p, kts in found.items() if kt in kts)
        if len(pairs) < MIN_PAIRS:
            continue
        if len(pairs) > max_pairs:
            pairs = sorted(random.Random(seed).sample(pairs, max_pairs))
        masked = frozenset(KEY_FIELDS_OF[kt])
        levels = _levels(scorer, feats, pairs, [masked] * len(pairs))
        params, it, conv, _ = estimate(scorer, levels, fixed_u=u)
        iterations, converged = iterations + it, converged and conv
        total_pairs += len(pairs)
        matches = params.lam * len([p for p, kts in found.items() if kt in kts])
        best_matches = max(best_matches, matches)
        sessions[kt] = {"pairs": len(pairs), "lambda": round(params.lam, 5), "matches": round(matches, 1)}
        for f in scorer.fields:
            if f not in masked:
                sums[f].append((matches, params.m[f]))
    if total_pairs < MIN_PAIRS:   # the command ran, the store cannot train it yet: exit 1, not bad usage
        from hub.errors import TriadError
        raise TriadError(f"only {len(found)} candidate pairs of {entity} records in the store; "
                         f"training needs at least {MIN_PAIRS} (sync more data first)")
    out = Params(max(best_matches / (n * (n - 1) / 2), 1e-9), {}, {}, trained=True)
    kept = []
    for f in scorer.fields:
        out.u[f] = u[f]
        if sums[f] and sum(w for w, _ in sums[f]) > 0:
            w = np.array([w for w, _ in sums[f]])
            m = (np.array([m for _, m in sums[f]]) * w[:, None]).sum(axis=0) / w.sum()
            out.m[f] = [float(x) for x in m / m.sum()]
        else:
            out.m[f] = list(scorer.params.m[f])
        if out.m[f][-1] <= out.u[f][-1]:
            out.m[f] = list(scorer.params.m[f])
            kept.append(f)
    out.meta = {"records": n, "pairs": total_pairs, "iterations": iterations, "prior_scale": "random pair",
                "sessions": sessions, "fields": list(scorer.fields),
                "kinds": {f: k for f, k in zip(scorer.fields, scorer.kinds)},
                "levels": {f: list(KINDS[k].labels) for f, k in zip(scorer.fields, scorer.kinds)}}
    return TrainReport(n, total_pairs, iterations, converged, out, kept)
