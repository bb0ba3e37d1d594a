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

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select

from hub import normalize as norm
from hub.canonical import ENTITIES
from hub.golden import table_of
from hub.matching_blocking import BROAD, IDENTIFYING, key_fields, key_rows, record_keys
from hub.matching_scoring import Params, Scorer
from hub.models import AuditLog, MatchCandidate, MatchKey, MatchReject, SourceState
from hub.sqlutil import chunks, upsert

log = logging.getLogger(__name__)

MAX_BLOCK = 200          # a non-identifying key shared by more golden records than this says too little
MAX_CANDIDATES = 40      # golden records scored per incoming record (those sharing the most keys)
TRAIN_ACTION = "matches.train"
MATERIAL = {"customer": ("name", "customer_type", "tax_id", "email", "phone", "country", "province", "city",
                         "address", "postal_code")}


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


def material_fields(entity: str) -> tuple[str, ...]:
    return MATERIAL.get(entity) or key_fields(entity)


def fingerprint(entity: str, values: dict[str, Any]) -> str:
    """A digest of a record's material fields in normalized form: formatting changes keep it."""
    parts = []
    for f in material_fields(entity):
        v = values.get(f)
        if f == "name":
            n = norm.name(v, "person" if values.get("customer_type") == "person" else None)
            parts.append(f"{n.full}|{n.branch}" if n else None)
        elif f == "address":
            a = norm.address(v)
            parts.append(a.full if a else None)
        elif f in ("tax_id", "email", "phone", "postal_code"):
            parts.append(norm.exact_key(f, v))
        else:
            parts.append(norm.text(v) or None)
    payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


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
            self.scorer.set_params(load_params(conn, self.entity, self.scorer.fields))
            self._params_loaded = True
        feats = [self.scorer.features(v) for v in values_list]
        keys = [record_keys(self.entity, v) for v in values_list]
        blocks = self._lookup(conn, keys)
        per_record = [self._candidates(k, blocks) for k in keys]
        golden = self._golden(conn, {rid for c in per_record for rid in c})
        in_batch = _batch_blocks(keys)
        decisions: list[MatchDecision] = []
        which: list[dict[str, int]] = []   # per record: golden id -> the version that scored best
        for i in range(len(values_list)):
            best = {rid: self._best(feats[i], golden[rid]) for rid in per_record[i] if rid in golden}
            which.append({rid: b[1] for rid, b in best.items()})
            scored = [(rid, b[0]) for rid, b in best.items()]
            earlier = [(j, self.scorer.score(feats[i], feats[j])) for j in _earlier(i, keys[i], in_batch)]
            decisions.append(self._decide(i, scored, earlier, decisions, ids))
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
        kt_col = MatchKey.__table__.c
        wanted: dict[str, set[str]] = {}
        for ks in keys:
            for kt, kv in ks:
                wanted.setdefault(kt, set()).add(kv)
        found: dict[tuple[str, str], list[str]] = {}
        for kt, values in wanted.items():
            for part in chunks(sorted(values)):
                base = (kt_col.entity == self.entity, kt_col.key_type == kt)
                if kt in BROAD:   # count first (index only): a large block is never fetched
                    q = (select(kt_col.key_value).where(*base, kt_col.key_value.in_(part))
                         .group_by(kt_col.key_value).having(func.count() <= MAX_BLOCK))
                    part = [r[0] for r in conn.execute(q)]
                    if not part:
                        continue
                q = select(kt_col.key_value, kt_col.record_id).where(*base, kt_col.key_value.in_(part))
                for kv, rid in conn.execute(q):
                    found.setdefault((kt, kv), []).append(rid)
        return found

    @staticmethod
    def _candidates(ks: set[tuple[str, str]], blocks: dict[tuple[str, str], list[str]]) -> list[str]:
        votes: Counter[str] = Counter()
        for k in ks:
            rids = blocks.get(k)
            if not rids or (len(rids) > MAX_BLOCK and k[0] not in IDENTIFYING):
                continue
            weight = 3 if k[0] in IDENTIFYING else 1
            for rid in rids:
                votes[rid] += weight
        return [rid for rid, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]]

    def _golden(self, conn: Connection, rids: set[str]) -> dict[str, list[tuple[dict[str, Any], tuple]]]:
        """Candidate golden records as their versions: [(values, features)], the golden values first,
        then each distinct version a source system sent (a duplicate may resemble any of them)."""
        from hub.values import encode
        t, st = table_of(self.entity), SourceState.__table__
        cols = [t.c.id] + [t.c[f] for f in self._fields]
        out: dict[str, list[tuple[dict[str, Any], tuple]]] = {}
        seen: dict[str, set[tuple]] = {}
        if len(self._feature_cache) > 400_000:
            self._feature_cache.clear()
        ordered = sorted(rids)
        for part in chunks(ordered):
            for r in conn.execute(select(*cols).where(t.c.id.in_(part), t.c.merged_into.is_(None))):
                values = {f: encode(v) for f, v in zip(self._fields, r[1:])}
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

    def _decide(self, i: int, scored: list[tuple[str, float]], earlier: list[tuple[int, float]],
                decisions: list[MatchDecision], ids: Sequence[str] | None) -> MatchDecision:
        d = MatchDecision()
        best_g = max(scored, key=lambda x: (x[1], x[0]), default=None)
        best_b = max(earlier, key=lambda x: (x[1], -x[0]), default=None)
        d.score = max([s for _, s in scored] + [s for _, s in earlier], default=None)
        if best_g and best_g[1] >= self.link_at and (not best_b or best_g[1] >= best_b[1]):
            d.record_id = best_g[0]
        elif best_b and best_b[1] >= self.link_at:
            prior = decisions[best_b[0]]
            if prior.record_id is not None:
                d.record_id = prior.record_id
            else:
                d.same_as = prior.same_as if prior.same_as is not None else best_b[0]
        d.candidates = [(rid, s, {}) for rid, s in sorted(scored, key=lambda x: -x[1])
                        if s >= self.review_at and rid != d.record_id]
        if ids is not None:   # review pairs inside the batch, named by the provisional ids
            for j, s in earlier:
                if s >= self.review_at and not (best_b and j == best_b[0] and s >= self.link_at):
                    other = decisions[j].record_id or ids[decisions[j].same_as if decisions[j].same_as is not None else j]
                    if other != d.record_id:
                        d.candidates.append((other, s, {"_batch": j}))
        return d

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


def index_records(conn: Connection, entity: str, records: Sequence[tuple[str, dict[str, Any]]],
                  *, fresh: bool = False) -> int:
    """Set-based: delete the old keys of these ids, insert the new ones, drop stale rejects."""
    if not records:
        return 0
    kt = MatchKey.__table__
    ids = [rid for rid, _ in records]
    if not fresh:
        for part in chunks(ids):
            conn.execute(delete(kt).where(kt.c.entity == entity, kt.c.record_id.in_(part)))
    rows = _dedupe(key_rows(entity, list(records) + _source_versions(conn, entity, ids)))
    if rows:
        conn.execute(insert(kt), rows)
    if not fresh:
        _forget_stale_rejects(conn, entity, dict(records))
    return len(rows)


def _source_versions(conn: Connection, entity: str, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The values each system last sent for these golden records (their keys find the record too)."""
    st = SourceState.__table__
    out = []
    for part in chunks(ids):
        for rid, values in conn.execute(select(st.c.record_id, st.c["values"]).where(
                st.c.entity == entity, st.c.record_id.in_(part))):
            if isinstance(values, dict):
                out.append((rid, values))
    return out


def _dedupe(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return list({(r["record_id"], r["key_type"], r["key_value"]): r for r in rows}.values())


def _forget_stale_rejects(conn: Connection, entity: str, values: dict[str, dict[str, Any]]) -> None:
    rt = MatchReject.__table__
    stale = []
    for part in chunks(sorted(values)):
        q = select(rt.c.record_a, rt.c.record_b, rt.c.fingerprint_a, rt.c.fingerprint_b).where(
            rt.c.entity == entity, or_(rt.c.record_a.in_(part), rt.c.record_b.in_(part)))
        for a, b, fa, fb in conn.execute(q):
            if (a in values and fingerprint(entity, values[a]) != fa) or \
               (b in values and fingerprint(entity, values[b]) != fb):
                stale.append({"_a": a, "_b": b})
    if stale:
        conn.execute(delete(rt).where(rt.c.entity == entity, rt.c.record_a == bindparam("_a"),
                                      rt.c.record_b == bindparam("_b")), stale)
        log.info("forgot %d rejected %s pair(s): a record changed materially", len(stale), entity)


def index_all(conn: Connection, entity: str, *, page: int = 5000) -> int:
    """Rebuild the blocking keys of every live golden record of ``entity``; returns the number of keys."""
    from hub.values import encode
    kt = MatchKey.__table__
    conn.execute(delete(kt).where(kt.c.entity == entity))
    t = table_of(entity)
    fields = key_fields(entity)
    cols = [t.c.id] + [t.c[f] for f in fields]
    last, total = "", 0
    while True:
        rows = conn.execute(select(*cols).where(t.c.id > last, t.c.merged_into.is_(None))
                            .order_by(t.c.id).limit(page)).all()
        if not rows:
            return total
        total += index_records(conn, entity, [(r[0], {f: encode(v) for f, v in zip(fields, r[1:])}) for r in rows],
                               fresh=True)
        last = rows[-1][0]


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
        weight = 3 if k[0] in IDENTIFYING else 1
        for j in members:
            if j >= i:
                break
            votes[j] += weight
    return [j for j, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]]
