"""Fuzzy identity resolution inside the sync (SPEC section 5, ``matching.<entity>.fuzzy``).

Each new source record without an xref is compared only with the golden
records that share a blocking key with it (:mod:`hub.matching_blocking`; the
keys live in ``match_key`` and are kept in step with golden values by
:meth:`FuzzyMatcher.index`), and with the records before it in the same
batch. Pairs are scored field by field (:mod:`hub.matching_scoring`); a score
of ``link_at`` or more links, ``review_at`` up to ``link_at`` opens a match
candidate for a steward, below that the record is new. Every step is one
query per batch and key type, never one per record.

A record that scores ``link_at`` or more against two golden records proves
them one entity; after the batch's writes :meth:`FuzzyMatcher.settle` merges
them (:mod:`hub.matching_bridges`).

A steward's "not the same" (``match_reject``) holds while the fingerprints of
both records' material fields are unchanged; the matcher does not propose
such a pair again, and the memory is dropped when either record changes.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any, Sequence

from sqlalchemy import Connection, func, or_, select

from hub.canonical import ENTITIES
from hub.golden import table_of
from hub.matching_blocking import BROAD, IDENTIFYING, key_fields, record_keys
from hub.matching_bridges import Bridge, consistent, find_bridges
from hub.gc_pause import cyclic_gc_paused
from hub.graph import connected_groups
from hub.matching_index import (MAX_BLOCK, fingerprint, golden_rows, index_all, index_records,  # noqa: F401
                                insert_keys, lookup_keys, material_fields, small_blocks, source_versions)
from hub.matching_scoring import DUPLICATES_PER_RECORD, MIN_STORE, Params, Scorer
from hub.models import AuditLog, MatchCandidate, MatchReject
from hub.sqlutil import chunks

log = logging.getLogger(__name__)

MAX_CANDIDATES = 8      # golden records scored per incoming record (those sharing the most, rarest keys)
TRAIN_ACTION = "matches.train"
FEATURE_CACHE = 400_000  # feature vectors of golden versions kept between batches
VERSION_FLOOR = 0.001    # below this, a candidate's golden values are too unlike the record for its
                         # versions to matter, unless it was found through one of them
VERSION_KEYS = frozenset(IDENTIFYING + ("nm", "nl", "np", "nz", "nc", "nw", "nk"))   # name and identifier keys

_first = itemgetter(0)

# a candidate golden record, as the versions it is compared in: [(values, features)], golden values first
Versions = list[tuple[dict[str, Any], tuple]]


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

    One matcher serves one stream: per batch the pipeline calls :meth:`match_batch`,
    then (with the batch's golden writes) :meth:`index`, and after all of the
    batch's writes :meth:`settle`.

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
        self._feature_cache: dict[tuple, tuple[dict[str, Any], tuple]] = {}
        self._keys_cache: dict[int, tuple[dict[str, Any], set[tuple[str, str]]]] = {}   # see _own_keys
        self._fields = sorted(set(self.scorer.fields) | set(key_fields(entity)) | set(material_fields(entity))
                              | ({"customer_type", "country"} & set(ENTITIES[entity].fields)))
        # what the last batch decided, for index() and settle()
        self._linked: dict[str, tuple] = {}    # golden id linked to -> its values (signature) when scored
        self._new_ids: set[str] = set()        # ids of the new golden records the batch's records create
        self._bridges: list[Bridge] = []
        self._read_versions: set[str] = set()   # golden ids whose versions this batch has read

    # --- matching -------------------------------------------------------------------------------

    def match_batch(self, conn: Connection, values_list: Sequence[dict[str, Any]],
                    ids: Sequence[str] | None = None) -> list[MatchDecision]:
        """Decide for each record (encoded canonical values): link, same as an earlier one, or new.

        Args:
            ids: the provisional ids the caller gives new records; with them, review candidates
                between two new records of the batch are reported too.
        """
        self._linked, self._new_ids, self._bridges, self._read_versions = {}, set(), [], set()
        if not values_list:
            return []
        with cyclic_gc_paused():
            return self._match(conn, values_list, ids)

    def _match(self, conn: Connection, values_list: Sequence[dict[str, Any]],
               ids: Sequence[str] | None) -> list[MatchDecision]:
        self._load_params(conn)
        feats = [self.scorer.features(v) for v in values_list]
        keys = [record_keys(self.entity, v) for v in values_list]
        blocks = self._lookup(conn, keys)
        weights = _block_weights(blocks)
        per_record = [_candidates(k, blocks, weights) for k in keys]
        golden, several = self._golden(conn, {rid for c in per_record for rid in c})
        scored, which = self._score(conn, feats, keys, blocks, per_record, golden, several)
        in_batch = _batch_blocks(keys)
        score = self.scorer.score
        earlier = [[(j, score(feats[i], feats[j])) for j in _earlier(i, keys[i], in_batch)]
                   for i in range(len(values_list))]
        decisions = self._decide(scored, earlier, ids)
        if self.scorer.params.trained:   # merges need calibrated weights (see hub.matching_bridges)
            bridges = find_bridges(scored, decisions, self.link_at)
            if bridges:   # the two records are compared with each other in every version
                self._versions(conn, golden, {x for b in bridges for x in (b.a, b.b)} & several)
                self._bridges = consistent(bridges, golden, self.scorer)
        self._explain_and_filter(conn, values_list, feats, golden, which, decisions)
        self._index_links(conn, keys, blocks, decisions)
        self._remember(golden, decisions, ids)
        return decisions

    def _load_params(self, conn: Connection) -> None:
        if self._params_loaded:
            return
        params = load_params(conn, self.entity, self.scorer.fields)
        if not params.trained:   # the default prior scales with the store
            t = table_of(self.entity)
            n = conn.scalar(select(func.count()).select_from(t).where(t.c.merged_into.is_(None))) or 0
            params.lam = DUPLICATES_PER_RECORD / max(n, MIN_STORE)
        self.scorer.set_params(params)
        self._params_loaded = True

    def _remember(self, golden: dict[str, Versions], decisions: list[MatchDecision],
                  ids: Sequence[str] | None) -> None:
        """Note which golden records the batch links to (and their values then) and which it creates."""
        for i, d in enumerate(decisions):
            if d.record_id is not None and d.record_id in golden:
                values = golden[d.record_id][0][0]
                self._linked[d.record_id] = tuple(values.get(f) for f in self._fields)
            elif d.record_id is None and d.same_as is None and ids is not None:
                self._new_ids.add(ids[i])

    def _index_links(self, conn: Connection, keys: list[set[tuple[str, str]]],
                     blocks: dict[tuple[str, str], list[str]], decisions: list[MatchDecision]) -> None:
        """A record linked to an existing golden record adds its own keys to it at once.

        The pipeline re-indexes golden records whose values change; a link that
        changes nothing would otherwise leave this version of the record unfindable.
        Keys through which the record found its golden record are there already.
        """
        wanted: dict[tuple[str, str, str], dict[str, str]] = {}
        for ks, d in zip(keys, decisions):
            rid = d.record_id
            if rid is None:
                continue
            for kt, kv in ks:
                if rid not in blocks.get((kt, kv), ()):
                    wanted[(kt, kv, rid)] = {"entity": self.entity, "key_type": kt, "key_value": kv, "record_id": rid}
        insert_keys(conn, list(wanted.values()), upsert=True)

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
                # rows come grouped by key value (as the index is walked); a value split in two still gets all
                for kv, rows in groupby(lookup_keys(conn, self.entity, kt, part), _first):
                    found.setdefault((kt, kv), []).extend([r[1] for r in rows])
        return found

    def _score(self, conn: Connection, feats: list[tuple], keys: list[set[tuple[str, str]]],
               blocks: dict[tuple[str, str], list[str]], per_record: list[list[str]], golden: dict[str, Versions],
               several: set[str]) -> tuple[list[list[tuple[str, float]]], list[dict[str, int]]]:
        """Each record against its candidates: (golden id, best score) per record, and which version scored it.

        Candidates are scored in their golden values first. The versions the systems sent
        (:meth:`_versions`) are read only where they can change the outcome: for candidates
        linked in several systems that score below ``link_at`` and either are not far from
        the record (``VERSION_FLOOR``) or share a key with it that their golden values lack
        (found through a system's own spelling: a name another system has since changed).
        """
        score = self.scorer.score
        scored: list[list[tuple[str, float]]] = []
        recheck: list[tuple[int, int]] = []   # (record, position in scored[record]) to score in every version
        own_keys: dict[str, set[tuple[str, str]]] = {}
        for i, fi in enumerate(feats):
            best = []
            for rid in per_record[i]:
                versions = golden.get(rid)
                if versions is None:
                    continue
                s = score(fi, versions[0][1])
                best.append((rid, s))
                if rid in several and s < self.link_at and (s >= VERSION_FLOOR or self._found_through_a_version(
                        rid, keys[i], blocks, versions[0][0], own_keys)):
                    recheck.append((i, len(best) - 1))
            scored.append(best)
        which: list[dict[str, int]] = [{} for _ in feats]
        if recheck:
            self._versions(conn, golden, {scored[i][n][0] for i, n in recheck})
            for i, n in recheck:
                rid = scored[i][n][0]
                s, at = _best(score, feats[i], golden[rid])
                scored[i][n] = (rid, s)
                which[i][rid] = at
        return scored, which

    def _found_through_a_version(self, rid: str, ks: set[tuple[str, str]], blocks: dict[tuple[str, str], list[str]],
                                 values: dict[str, Any], own_keys: dict[str, set[tuple[str, str]]]) -> bool:
        """Whether a name or identifier key the record shares with golden record ``rid`` comes from one of
        its versions, not from its golden values (a neighbour at the same address is not worth a read)."""
        shared = [k for k in ks if k[0] in VERSION_KEYS and rid in blocks.get(k, ())]
        if not shared:
            return False
        mine = own_keys.get(rid)
        if mine is None:
            mine = own_keys[rid] = self._own_keys(values)
        return any(k not in mine for k in shared)

    def _own_keys(self, values: dict[str, Any]) -> set[tuple[str, str]]:
        """The keys of one cached version's values (kept with it: a golden record is a candidate of many)."""
        cached = self._keys_cache.get(id(values))
        if cached is not None and cached[0] is values:   # the entry holds the dict, so its id is not reused
            return cached[1]
        keys = record_keys(self.entity, values)
        self._keys_cache[id(values)] = (values, keys)
        return keys

    def _golden(self, conn: Connection, rids: set[str]) -> tuple[dict[str, Versions], set[str]]:
        """Candidate golden records in their golden values ([(values, features)], versions are added
        by :meth:`_versions`), and those linked in more than one system (only they can have versions
        that differ from the golden values, short of a steward's edit)."""
        out: dict[str, Versions] = {}
        several: set[str] = set()
        if len(self._feature_cache) > FEATURE_CACHE:
            self._feature_cache.clear()
            self._keys_cache.clear()
        for rid, merged_into, links, sig in golden_rows(conn, self.entity, self._fields, sorted(rids)):
            if merged_into is None:
                out[rid] = [self._version(sig)]
                if links > 1:
                    several.add(rid)
        return out, several

    def _versions(self, conn: Connection, golden: dict[str, Versions], rids: set[str]) -> None:
        """Add each distinct version the systems sent of these golden records to their versions (once)."""
        rids = rids - self._read_versions
        self._read_versions |= rids
        seen = {rid: {tuple(golden[rid][0][0].values())} for rid in rids}
        for rid, values in source_versions(conn, self.entity, sorted(rids)):
            sig = tuple(values.get(f) for f in self._fields)
            if sig not in seen[rid]:
                seen[rid].add(sig)
                golden[rid].append(self._version(sig))

    def _version(self, sig: tuple) -> tuple[dict[str, Any], tuple]:
        """(values, features) of one version, by its values in ``_fields`` order (cached: read only)."""
        version = self._feature_cache.get(sig)
        if version is None:
            values = dict(zip(self._fields, sig))
            version = self._feature_cache[sig] = (values, self.scorer.features(values))
        return version

    def _decide(self, scored: list[list[tuple[str, float]]], earlier: list[list[tuple[int, float]]],
                ids: Sequence[str] | None) -> list[MatchDecision]:
        """Records of the batch that link to each other (directly or through one another) form one group;
        a group joins the golden record its members match best, else its first record is the new one."""
        n = len(scored)
        groups = connected_groups(range(n), ((i, j) for i in range(n) for j, sc in earlier[i] if sc >= self.link_at))
        first = {i: g[0] for g in groups for i in g}     # a group's first record in the batch
        target: dict[int, tuple[float, str]] = {}
        for i in range(n):
            best = max(scored[i], key=lambda x: (x[1], x[0]), default=None)
            if best and best[1] >= self.link_at:
                root = first[i]
                if root not in target or (best[1], best[0]) > target[root]:
                    target[root] = (best[1], best[0])
        decisions = []
        for i in range(n):
            root = first[i]
            d = MatchDecision(score=max([x for _, x in scored[i]] + [x for _, x in earlier[i]], default=None))
            if root in target:
                d.record_id = target[root][1]
            elif root != i:
                d.same_as = root
            d.candidates = [(rid, sc, {}) for rid, sc in sorted(scored[i], key=lambda x: -x[1])
                            if sc >= self.review_at and rid != d.record_id]
            if ids is not None:   # review pairs inside the batch, named by the provisional ids
                for j, sc in earlier[i]:
                    rj = first[j]
                    if sc >= self.review_at and rj != root:
                        other = target[rj][1] if rj in target else ids[rj]
                        if other != d.record_id:
                            d.candidates.append((other, sc, {"_batch": j}))
            decisions.append(d)
        return decisions

    def _explain_and_filter(self, conn: Connection, values_list: Sequence[dict[str, Any]], feats: list[tuple],
                            golden: dict[str, Versions], which: list[dict[str, int]],
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
                     golden: dict[str, Versions]) -> set[tuple[str, str]]:
        ct, rt = MatchCandidate.__table__, MatchReject.__table__
        ids = sorted(anchors)
        pairs: set[tuple[str, str]] = set()
        for part in chunks(ids):
            q = select(ct.c.record_a, ct.c.record_b).where(ct.c.entity == self.entity, ct.c.status == "open",
                                                             or_(ct.c.record_a.in_(part), ct.c.record_b.in_(part)))
            for a, b in conn.execute(q).all():
                pairs.add((min(a, b), max(a, b)))
            q = select(rt.c.record_a, rt.c.record_b, rt.c.fingerprint_a, rt.c.fingerprint_b).where(
                rt.c.entity == self.entity, or_(rt.c.record_a.in_(part), rt.c.record_b.in_(part)))
            for a, b, fa, fb in conn.execute(q).all():
                ga, gb = golden.get(a), golden.get(b)
                if ga is None or gb is None:
                    pairs.add((min(a, b), max(a, b)))     # not loaded here: trust the memory (index() cleans it)
                elif fingerprint(self.entity, ga[0][0]) == fa and fingerprint(self.entity, gb[0][0]) == fb:
                    pairs.add((min(a, b), max(a, b)))
        return pairs

    # --- keeping keys in step -------------------------------------------------------------------

    def index(self, conn: Connection, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Keep the blocking keys of new or changed golden records in step; forget rejects they invalidate.

        A golden record the last batch linked to whose values did not change keeps
        its keys (the link added the new version's own keys); a record the batch
        created gets its keys without looking for old ones; any other is re-indexed.
        """
        fresh, changed = [], []
        for rid, values in records:
            if rid in self._new_ids:
                fresh.append((rid, values))
            elif self._linked.get(rid) != tuple(values.get(f) for f in self._fields):
                changed.append((rid, values))
        with cyclic_gc_paused():
            index_records(conn, self.entity, fresh, fresh=True)
            index_records(conn, self.entity, changed)
        self._linked, self._new_ids = {}, set()

    def settle(self, conn: Connection, rules: Any, out_systems: tuple[str, ...]) -> list[dict[str, Any]]:
        """Merge the golden records that a record of the last batch proved one (after the batch's writes).

        Returns the merges made (see :func:`hub.matching_bridges.merge_bridges`).
        """
        from hub.matching_bridges import merge_bridges
        bridges, self._bridges = self._bridges, []
        if not bridges:
            return []
        return merge_bridges(conn, self.entity, bridges, rules=rules, out_systems=out_systems)


def _best(score: Any, feats: tuple, versions: Versions) -> tuple[float, int]:
    """The best score of ``feats`` against any version, and that version's position."""
    best, at = -1.0, 0
    for n, (_, vf) in enumerate(versions):
        sc = score(feats, vf)
        if sc > best:
            best, at = sc, n
    return best, at


def _block_weights(blocks: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], float]:
    """The vote of each block worth voting with (once per batch, not once per record sharing it)."""
    return {k: _key_weight(k[0], len(rids)) for k, rids in blocks.items()
            if rids and (len(rids) <= MAX_BLOCK or k[0] in IDENTIFYING)}


def _candidates(ks: set[tuple[str, str]], blocks: dict[tuple[str, str], list[str]],
                weights: dict[tuple[str, str], float]) -> list[str]:
    """The golden records a record is scored against: those sharing the most, rarest keys with it."""
    votes: dict[str, float] = {}
    get = votes.get
    for k in ks:
        weight = weights.get(k)
        if weight is None:
            continue
        for rid in blocks[k]:
            votes[rid] = get(rid, 0.0) + weight
    if len(votes) <= MAX_CANDIDATES:
        return sorted(votes)
    return [rid for rid, _ in sorted(votes.items(), key=_by_votes)[:MAX_CANDIDATES]]


def _by_votes(item: tuple[str, float]) -> tuple[float, str]:
    return -item[1], item[0]


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
        if members[0] >= i or (len(members) > MAX_BLOCK and k[0] not in IDENTIFYING):
            continue
        weight = _key_weight(k[0], len(members))
        for j in members:
            if j >= i:
                break
            votes[j] += weight
    if len(votes) <= MAX_CANDIDATES:
        return sorted(votes)
    return [j for j, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]]
