"""Golden records that one incoming record proves to be one entity: merged after the batch.

Records link one at a time, so a duplicate that arrives before the record
bridging it to the rest of its cluster makes a golden record of its own. A
later record that scores high against two golden records shows that they are
one entity: that pair is what clustering all pairs at once (connected
components) would join, and it is merged here.

A merge joins two records that may each carry links, history and references
already, so it asks for more than a link: each of the record's two scores must
carry twice the evidence of an automatic link (log-odds; ``merge_at``, 0.9925
for the shipped ``link_at`` 0.92), and the two golden records compared with
each other (best over their versions) must be more likely the same than not
(``DIRECT_AT``), so that a record which cannot tell two look-alikes apart (a
romanized name is the same for 星海 and 新海) does not make them one. Merges
also need trained weights (``triad matches train``): the default m/u
probabilities do not know how common look-alike names are in a store (where
many companies share a trade name across cities, or homophones, they overrate
a name's agreement). Below that bar, or untrained, the pair is a match
candidate for a steward. Pairs a steward rejected (while that memory holds) or
unmerged are never merged automatically.

Merges go through the steward merge (:mod:`hub.matching_merge`): audited as
user ``matcher``, listed by ``triad matches list --merges`` and undone by
``triad matches unmerge``. The winner is the record linked in the most systems
(then the older one), so the fewest systems see an id change.

A record whose exact keys point at two golden records (its tax id at one, its
e-mail at another) links to the first and proves nothing more: an exact key two
companies share may be a data error, so that pair is only ever a match candidate
(:func:`exact_candidates`), never merged automatically.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Sequence

from sqlalchemy import Connection, func, select

from hub.golden import table_of
from hub.graph import connected_groups
from hub.matching_scoring import Scorer
from hub.models import MatchCandidate, MatchReject, MergeLog, Xref
from hub.sqlutil import chunks

log = logging.getLogger(__name__)

AUTO_USER = "matcher"
DIRECT_AT = 0.5   # the two golden records compared on their own: more likely the same than not


@dataclass(frozen=True)
class Bridge:
    """Golden records ``a`` and ``b``, both scored ``link_at`` or more by one incoming record."""

    a: str
    b: str
    score_a: float
    score_b: float


def merge_at(link_at: float) -> float:
    """The score each of a record's two links needs before it merges their golden records: twice the
    evidence (log-odds) of one automatic link (0.92 -> 0.9925)."""
    if link_at >= 1.0:
        return 1.0
    odds = (link_at / (1.0 - link_at)) ** 2
    return odds / (1.0 + odds)


def find_bridges(scored: Sequence[Sequence[tuple[str, float]]], decisions: Sequence[Any],
                 link_at: float) -> list[Bridge]:
    """Pairs of golden records that one linked record of the batch scored at ``merge_at`` or more.

    Args:
        scored: per record, (golden id, best score) of every candidate it was compared with.
        decisions: per record, the matcher's decision (only linked records bridge).
    """
    bar = merge_at(link_at)
    out = []
    for best, d in zip(scored, decisions):
        if d.record_id is None:
            continue
        high = sorted(((s, rid) for rid, s in best if s >= bar), reverse=True)
        if len(high) < 2:
            continue
        top_score, top = high[0]
        out += [Bridge(top, rid, top_score, s) for s, rid in high[1:]]
    return out


def consistent(bridges: Sequence[Bridge], versions: dict[str, list[tuple[dict[str, Any], tuple]]],
               scorer: Scorer) -> list[Bridge]:
    """The bridges whose two golden records, compared with each other, could be one (see ``_consistent``)."""
    return [b for b in bridges if _consistent(scorer, versions[b.a], versions[b.b])]


def _consistent(scorer: Scorer, a: list[tuple[dict[str, Any], tuple]], b: list[tuple[dict[str, Any], tuple]]) -> bool:
    """Whether two golden records compared with each other (best over their versions) are more likely
    the same than not: a record that cannot tell two look-alikes apart must not make them one."""
    return max(scorer.score(fa, fb) for _, fa in a for _, fb in b) >= DIRECT_AT


def merge_bridges(conn: Connection, entity: str, bridges: Sequence[Bridge], *, rules: Any,
                  out_systems: tuple[str, ...], user: str = AUTO_USER) -> list[dict[str, Any]]:
    """Merge each group of golden records the bridges join into one (inside the caller's transaction)."""
    from hub.matching_merge import merge
    ids = sorted({x for b in bridges for x in (b.a, b.b)})
    live = _live(conn, entity, ids)
    forbidden = _forbidden_pairs(conn, entity, ids)
    usable = [b for b in bridges if b.a in live and b.b in live and _pair(b.a, b.b) not in forbidden]
    why: dict[str, Bridge] = {}
    for b in usable:
        why.setdefault(b.b, b)
        why.setdefault(b.a, b)
    groups = connected_groups(sorted(why), [(b.a, b.b) for b in usable])
    merges = []
    for members in groups:
        if len(members) < 2:
            continue
        if any(_pair(x, y) in forbidden for x, y in combinations(members, 2)):
            log.info("not merging %s %s automatically: a steward kept two of them apart", entity, ", ".join(members))
            continue
        winner = _winner(conn, entity, members)
        for loser in sorted(set(members) - {winner}):
            b = why[loser]
            note = (f"automatic: one incoming {entity} record scored {b.score_a:.4f} against {b.a} and "
                    f"{b.score_b:.4f} against {b.b}")
            merges.append(merge(conn, entity, winner, loser, user=user, rules=rules, out_systems=out_systems,
                                note=note))
            log.info("merged %s %s into %s (%s)", entity, loser, winner, note)
    return merges


def exact_candidates(conn: Connection, entity: str,
                     pairs: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The pairs of golden records one record's exact keys pointed at that become match candidates,
    each with its details ({"exact": the shared normalized key values}).

    Args:
        pairs: (linked record, other record) -> the normalized key values the record shares with them.

    Pairs already open, or that a steward rejected or unmerged, are left out (as from automatic merges),
    and so are pairs with a merged record.
    """
    if not pairs:
        return {}
    ids = sorted({x for p in pairs for x in p})
    live = _live(conn, entity, ids)
    known = _forbidden_pairs(conn, entity, ids) | _open_pairs(conn, entity, ids)
    return {(a, b): {"exact": keys} for (a, b), keys in pairs.items()
            if a in live and b in live and _pair(a, b) not in known}


def _open_pairs(conn: Connection, entity: str, ids: list[str]) -> set[tuple[str, str]]:
    ct = MatchCandidate.__table__
    out: set[tuple[str, str]] = set()
    for part in chunks(ids):
        for a, b in conn.execute(select(ct.c.record_a, ct.c.record_b).where(
                ct.c.entity == entity, ct.c.status == "open",
                ct.c.record_a.in_(part) | ct.c.record_b.in_(part))).all():
            out.add(_pair(a, b))
    return out


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def _live(conn: Connection, entity: str, ids: list[str]) -> set[str]:
    t = table_of(entity)
    out = set()
    for part in chunks(ids):
        out |= {rid for rid, merged in conn.execute(select(t.c.id, t.c.merged_into).where(t.c.id.in_(part))).all()
                if merged is None}
    return out


def _forbidden_pairs(conn: Connection, entity: str, ids: list[str]) -> set[tuple[str, str]]:
    """Pairs among ``ids`` a steward rejected or unmerged."""
    rt, mt = MatchReject.__table__, MergeLog.__table__
    out: set[tuple[str, str]] = set()
    for part in chunks(ids):
        for a, b in conn.execute(select(rt.c.record_a, rt.c.record_b).where(
                rt.c.entity == entity, rt.c.record_a.in_(part) | rt.c.record_b.in_(part))).all():
            out.add(_pair(a, b))
        for a, b in conn.execute(select(mt.c.winner_id, mt.c.loser_id).where(
                mt.c.entity == entity, mt.c.status == "unmerged",
                mt.c.winner_id.in_(part) | mt.c.loser_id.in_(part))).all():
            out.add(_pair(a, b))
    return out


def _winner(conn: Connection, entity: str, members: list[str]) -> str:
    """The record linked in the most systems; the older id on a tie."""
    xt = Xref.__table__
    counts = dict(conn.execute(select(xt.c.record_id, func.count()).where(
        xt.c.entity == entity, xt.c.record_id.in_(members)).group_by(xt.c.record_id)).all())
    return min(members, key=lambda rid: (-counts.get(rid, 0), rid))
