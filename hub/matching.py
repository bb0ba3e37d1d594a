"""Fuzzy identity resolution inside the sync (SPEC section 5, ``matching.<entity>.fuzzy``).

Each new source record without an xref is compared only with the golden
records that share a blocking key with it (:mod:`hub.matching_blocking`; the
keys live in ``match_key`` and are kept in step with golden values by
:meth:`FuzzyMatcher.index`), and with the records before it in the same
batch. Pairs are scored field by field (:mod:`hub.matching_scoring`); a score
of ``link_at`` or more links, ``review_at`` up to ``link_at`` opens a match
candidate for a steward, below that the record is new. Every step is one
query per batch and key type, never one per record.

A steward's "not the same" (``match_reject``) holds while the fingerprints of
both records' material fields are unchanged; the matcher does not propose
such a pair again, and the memory is dropped when either record changes.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import Connection, func, or_, select

from hub.canonical import ENTITIES
from hub.golden import table_of
from hub.matching_blocking import BROAD, IDENTIFYING, key_fields, key_rows, record_keys
from hub.matching_index import (MAX_BLOCK, fingerprint, index_all, index_records, lookup_keys,  # noqa: F401
                                material_fields, small_blocks)
from hub.matching_scoring import DUPLICATES_PER_RECORD, MIN_STORE, Params, Scorer
from hub.models import AuditLog, MatchCandidate, MatchKey, MatchReject, SourceState
from hub.sqlutil import chunks, upsert

log = logging.getLogger(__name__)

MAX_CANDIDATES = 12      # golden records scored per incoming record (those sharing the most, rarest keys)
TRAIN_ACTION = "matches.train"
@dataclass
class MatchDecision:
    """What the matcher says about one incoming record.

    Attributes:
        record_id: link to this golden record.
        same_as: the same entity as this earlier element of the batch (which is new).
        candidates: (golden record id, score, details) pairs for a steward to review.
        score: the best score seen (None: nothing to compare with).
    """

    record_id: str | None = None
    same_as: int | None = None
    candidates: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    score: float | None = None


def load_params(conn: Connection, entity: str, fields: list[str]) -> Params:
    """The latest trained parameters (`triad matches train`, kept in the audit log), else the defaults."""
    at = AuditLog.__table__
    row = conn.execute(select(at.c.after).where(at.c.action == TRAIN_ACTION, at.c.target == entity,
                                                 at.c.outcome == "ok").order_by(at.c.seq.desc()).limit(1)).first()
    if row is None or not isinstance(row[0], dict):
        return Params.defaults(entity, fields)
    return Params.from_json(entity, fields, row[0])


class FuzzyMatcher:
    """Scores incoming records against golden candidates found through blocking keys.

    Args:
        entity: the canonical entity.
        fuzzy: ``matching.<entity>.fuzzy`` (fields and weights, link_at, review_at).
        params: Fellegi-Sunter parameters; by default the latest trained ones are loaded on first use.
    """

    def __init__(self, entity: str, fuzzy: Any, params: Params | None = None) -> None:
        self.entity = entity
        self.link_at, self.review_at = float(fuzzy.link_at), float(fuzzy.review_at)
        self.scorer = Scorer(entity, dict(fuzzy.fields), params)
        self._params_loaded = params is not None
        self._feature_cache: dict[tuple, tuple] = {}
        self._fields = sorted(set(self.scorer.fields) | set(key_fields(entity)) | set(material_fields(entity))
                              | ({"customer_type", "country"} & set(ENTITIES[entity].fields)))

    # --- matching -------------------------------------------------------------------------------

    def match_batch(self, conn: Connection, values_list: Sequence[dict[str, Any]],
                    ids: Sequence[str] | None = None) -> list[MatchDecision]:
        """Decide for each record (encoded canonical values): link, same as an earlier one, or new.

        Args:
            ids: the provisional ids the caller gives new records; with them, review candidates
                between two new records of the batch are reported too.
        """
        if not values_list:
            return []
        if not self._params_loaded:
            params = load_params(conn, self.entity, self.scorer.fields)
            if not params.trained:   # the default prior scales with the store
                t = table_of(self.entity)
                n = conn.scalar(select(func.count()).select_from(t).where(t.c.merged_into.is_(None))) or 0
                params.lam = DUPLICATES_PER_RECORD / max(n, MIN_STORE)
            self.scorer.set_params(params)
            self._params_loaded = True
        feats = [self.scorer.features(v) for v in values_list]
        keys = [record_keys(self.entity, v) for v in values_list]
        blocks = self._lookup(conn, keys)
        per_record = [self._candidates(k, blocks) for k in keys]
        golden = self._golden(conn, {rid for c in per_record for rid in c})
        in_batch = _batch_blocks(keys)
        which: list[dict[str, int]] = []   # per record: golden id -> the version that scored best
        scored: list[list[tuple[str, float]]] = []
        earlier: list[list[tuple[int, float]]] = []
        for i in range(len(values_list)):
            best = {rid: self._best(feats[i], golden[rid]) for rid in per_record[i] if rid in golden}
            which.append({rid: b[1] for rid, b in best.items()})
            scored.append([(rid, b[0]) for rid, b in best.items()])
            earlier.append([(j, self.scorer.score(feats[i], feats[j])) for j in _earlier(i, keys[i], in_batch)])
        decisions = self._decide(scored, earlier, ids)
        self._explain_and_filter(conn, values_list, feats, golden, which, decisions)
        self._index_links(conn, values_list, decisions)
        return decisions

    def _index_links(self, conn: Connection, values_list: Sequence[dict[str, Any]],
                     decisions: list[MatchDecision]) -> None:
        """A record linked to an existing golden record adds its own keys to it at once.

        The pipeline re-indexes golden records whose values change; a link that
        changes nothing would otherwise leave this version of the record unfindable.
        """
        rows = key_rows(self.entity, [(d.record_id, v) for d, v in zip(decisions, values_list) if d.record_id])
        if rows:
            upsert(conn, MatchKey.__table__, list({(r["record_id"], r["key_type"], r["key_value"]): r
                                                   for r in rows}.values()),
                   ["entity", "record_id", "key_type", "key_value"], [])

    def _lookup(self, conn: Connection, keys: list[set[tuple[str, str]]]) -> dict[tuple[str, str], list[str]]:
        wanted: dict[str, set[str]] = {}
        for ks in keys:
            for kt, kv in ks:
                wanted.setdefault(kt, set()).add(kv)
        found: dict[tuple[str, str], list[str]] = {}
        for kt, values in wanted.items():
            for part in chunks(sorted(values)):
                if kt in BROAD:   # a large block is never fetched: at most MAX_BLOCK + 1 index entries are read
                    part = small_blocks(conn, self.entity, kt, part)
                    if not part:
                        continue
                for kv, rid in lookup_keys(conn, self.entity, kt, part):
                    found.setdefault((kt, kv), []).append(rid)
        return found

    @staticmethod
    def _candidates(ks: set[tuple[str, str]], blocks: dict[tuple[str, str], list[str]]) -> list[str]:
        votes: Counter[str] = Counter()
        for k in ks:
            rids = blocks.get(k)
            if not rids or (len(rids) > MAX_BLOCK and k[0] not in IDENTIFYING):
                continue
            weight = _key_weight(k[0], len(rids))
            for rid in rids:
                votes[rid] += weight
        return [rid for rid, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]]

    def _golden(self, conn: Connection, rids: set[str]) -> dict[str, list[tuple[dict[str, Any], tuple]]]:
        """Candidate golden records as their versions: [(values, features)], the golden values first,
        then each distinct version a source system sent (a duplicate may resemble any of them)."""
        from hub.values import encode
        t, st = table_of(self.entity), SourceState.__table__
        cols = [t.c.id, t.c.merged_into] + [t.c[f] for f in self._fields]
        out: dict[str, list[tuple[dict[str, Any], tuple]]] = {}
        seen: dict[str, set[tuple]] = {}
        if len(self._feature_cache) > 400_000:
            self._feature_cache.clear()
        ordered = sorted(rids)
        for part in chunks(ordered):
            # tombstones are dropped here, not in SQL: SQLite would scan the merged_into index instead
            for r in conn.execute(select(*cols).where(t.c.id.in_(part))):
                if r[1] is not None:
                    continue
                values = {f: encode(v) for f, v in zip(self._fields, r[2:])}
                out[r[0]] = [self._version(values)]
                seen[r[0]] = {tuple(values.values())}
        for part in chunks([rid for rid in ordered if rid in out]):
            for rid, values in conn.execute(select(st.c.record_id, st.c["values"]).where(
                    st.c.entity == self.entity, st.c.record_id.in_(part))):
                if not isinstance(values, dict):
                    continue
                values = {f: values.get(f) for f in self._fields}
                sig = tuple(values.values())
                if sig not in seen[rid]:
                    seen[rid].add(sig)
                    out[rid].append(self._version(values))
        return out

    def _version(self, values: dict[str, Any]) -> tuple[dict[str, Any], tuple]:
        sig = tuple(values.values())
        feats = self._feature_cache.get(sig)
        if feats is None:
            feats = self._feature_cache[sig] = self.scorer.features(values)
        return values, feats

    def _best(self, feats: tuple, versions: list[tuple[dict[str, Any], tuple]]) -> tuple[float, int]:
        best, at = -1.0, 0
        for n, (_, vf) in enumerate(versions):
            sc = self.scorer.score(feats, vf)
            if sc > best:
                best, at = sc, n
        return best, at

    def _decide(self, scored: list[list[tuple[str, float]]], earlier: list[list[tuple[int, float]]],
                ids: Sequence[str] | None) -> list[MatchDecision]:
        """Records of the batch that link to each other (directly or through one another) form one group;
        a group joins the golden record its members match best, else its first record is the new one."""
        n = len(scored)
        parent = list(range(n))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        for i in range(n):
            for j, sc in earlier[i]:
                if sc >= self.link_at:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
        target: dict[int, tuple[float, str]] = {}
        for i in range(n):
            best = max(scored[i], key=lambda x: (x[1], x[0]), default=None)
            if best and best[1] >= self.link_at:
                root = find(i)
                if root not in target or (best[1], best[0]) > target[root]:
                    target[root] = (best[1], best[0])
        decisions = []
        for i in range(n):
            root = find(i)
            d = MatchDecision(score=max([x for _, x in scored[i]] + [x for _, x in earlier[i]], default=None))
            if root in target:
                d.record_id = target[root][1]
            elif root != i:
                d.same_as = root
            d.candidates = [(rid, sc, {}) for rid, sc in sorted(scored[i], key=lambda x: -x[1])
                            if sc >= self.review_at and rid != d.record_id]
            if ids is not None:   # review pairs inside the batch, named by the provisional ids
                for j, sc in earlier[i]:
                    rj = find(j)
                    if sc >= self.review_at and rj != root:
                        other = target[rj][1] if rj in target else ids[rj]
                        if other != d.record_id:
                            d.candidates.append((other, sc, {"_batch": j}))
            decisions.append(d)
        return decisions

    def _explain_and_filter(self, conn: Connection, values_list: Sequence[dict[str, Any]], feats: list[tuple],
                            golden: dict[str, list], which: list[dict[str, int]],
                            decisions: list[MatchDecision]) -> None:
        """Drop pairs a steward rejected (fingerprints unchanged) or that are already open; add details."""
        anchors = {d.record_id for d in decisions if d.record_id and d.candidates}
        others = {c[0] for d in decisions for c in d.candidates}
        blocked = self._known_pairs(conn, anchors, others, golden) if anchors else set()
        seen: set[tuple[str, str]] = set()
        for i, d in enumerate(decisions):
            anchor = d.record_id or (f"#{d.same_as}" if d.same_as is not None else f"#{i}")
            kept = []
            for other, s, extra in d.candidates:
                pair = (min(anchor, other), max(anchor, other))
                if pair in blocked or pair in seen:
                    continue
                seen.add(pair)
                if "_batch" in extra:
                    j = extra["_batch"]
                    details = self.scorer.explain(feats[i], feats[j], values_list[i], values_list[j])
                else:
                    vals, vf = golden[other][which[i].get(other, 0)]
                    details = self.scorer.explain(feats[i], vf, values_list[i], vals)
                kept.append((other, round(s, 6), details))
            d.candidates = kept

    def _known_pairs(self, conn: Connection, anchors: set[str], others: set[str],
                     golden: dict[str, list]) -> set[tuple[str, str]]:
        ct, rt = MatchCandidate.__table__, MatchReject.__table__
        ids = sorted(anchors)
        pairs: set[tuple[str, str]] = set()
        for part in chunks(ids):
            q = select(ct.c.record_a, ct.c.record_b).where(ct.c.entity == self.entity, ct.c.status == "open",
                                                             or_(ct.c.record_a.in_(part), ct.c.record_b.in_(part)))
            for a, b in conn.execute(q):
                pairs.add((min(a, b), max(a, b)))
            q = select(rt.c.record_a, rt.c.record_b, rt.c.fingerprint_a, rt.c.fingerprint_b).where(
                rt.c.entity == self.entity, or_(rt.c.record_a.in_(part), rt.c.record_b.in_(part)))
            for a, b, fa, fb in conn.execute(q):
                ga, gb = golden.get(a), golden.get(b)
                if ga is None or gb is None:
                    pairs.add((min(a, b), max(a, b)))     # not loaded here: trust the memory (index() cleans it)
                elif fingerprint(self.entity, ga[0][0]) == fa and fingerprint(self.entity, gb[0][0]) == fb:
                    pairs.add((min(a, b), max(a, b)))
        return pairs

    # --- keeping keys in step -------------------------------------------------------------------

    def index(self, conn: Connection, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Replace the blocking keys of new or changed golden records; forget rejects they invalidate."""
        index_records(conn, self.entity, records)


def _key_weight(key_type: str, block: int) -> float:
    """How much sharing a key says: rarer keys more (a pair's candidates are ranked by the sum)."""
    return math.log2(1 + MAX_BLOCK / block) + (8.0 if key_type in IDENTIFYING else 0.0)


def _batch_blocks(keys: list[set[tuple[str, str]]]) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for i, ks in enumerate(keys):
        for k in ks:
            out.setdefault(k, []).append(i)
    return out


def _earlier(i: int, ks: set[tuple[str, str]], blocks: dict[tuple[str, str], list[int]]) -> list[int]:
    """Earlier records of the batch sharing a key with record ``i``, those sharing the most first."""
    votes: Counter[int] = Counter()
    for k in ks:
        members = blocks[k]
        if len(members) > MAX_BLOCK and k[0] not in IDENTIFYING:
            continue
        weight = _key_weight(k[0], len(members))
        for j in members:
            if j >= i:
                break
            votes[j] += weight
    return [j for j, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]]
