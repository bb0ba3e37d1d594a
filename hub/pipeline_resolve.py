"""The changed rows of a batch: validated, their references resolved, their golden record found."""
from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from hub.models import Xref
from hub.pipeline_types import StreamContext, _Item
from hub.quarantine import QuarantineWriter
from hub.sqlutil import among, key_parts
from hub.types import new_id
from hub.values import values_hash

log = logging.getLogger("hub.pipeline")   # the batch's log lines keep one logger name


def _validate(ctx: StreamContext, items: list[_Item], quarantine: "QuarantineWriter") -> list[_Item]:
    if not items or ctx.validator is None:
        return items
    result = ctx.validator.validate([i.python_values for i in items])
    for table_failure in getattr(result, "table_failures", []):
        log.warning("batch-level expectation failed for %s/%s: %s", ctx.system, ctx.entity, table_failure)
    bad = result.row_failures
    keep = []
    for n, item in enumerate(items):
        if n in bad:
            quarantine.park(item.raw, item.source_id, "validation",
                            [dict(f, reason="validation") for f in bad[n]])
        else:
            keep.append(item)
    return keep


def _resolve_refs(conn: Connection, ctx: StreamContext, items: list[_Item],
                  quarantine: "QuarantineWriter") -> list[_Item]:
    """Replace reference fields' source ids with canonical ids (same system's xref); park the unresolved."""
    wanted: dict[str, set[str]] = {}
    for item in items:
        for f, ref_entity in list(item.refs.items()):
            if ctx.synced and ref_entity not in ctx.synced:
                # this connector does not sync that entity: the reference could never resolve, so it is left out
                item.values[f] = None
                del item.refs[f]
                continue
            wanted.setdefault(ref_entity, set()).add(str(item.values[f]))
    if not wanted:
        return items
    xt = Xref.__table__
    found: dict[tuple[str, str], str] = {}
    for ref_entity, sids in wanted.items():
        for part in key_parts(conn, sorted(sids)):
            for r in conn.execute(select(xt.c.source_id, xt.c.record_id).where(
                    xt.c.entity == ref_entity, xt.c.system == ctx.system, among(conn, xt.c.source_id, part))):
                found[(ref_entity, r.source_id)] = r.record_id
    keep = []
    for item in items:
        missing = []
        for f, ref_entity in item.refs.items():
            rid = found.get((ref_entity, str(item.values[f])))
            if rid is None:
                missing.append({"reason": "unresolved_ref", "field": f, "entity": ref_entity,
                                "source_id": item.values[f],
                                "message": f"{ref_entity} {item.values[f]} of {ctx.system} is not known yet"})
            else:
                item.values[f] = rid
        if missing:
            quarantine.park(item.raw, item.source_id, "unresolved_ref", missing)
        else:
            if item.refs:
                item.hash = values_hash(item.values, item.deleted)
            keep.append(item)
    return keep


def _resolve_identity(conn: Connection, ctx: StreamContext, items: list[_Item]) -> None:
    """Records without an xref: link by exact normalized keys, then by the fuzzy matcher, else new.

    A fuzzy score between ``review_at`` and ``link_at`` creates a new record and
    opens a match candidate for a steward (collected in ``item.candidates``).
    Records of one batch that share an exact key end up on one golden record.
    A record whose exact keys point at two golden records links to the first and
    opens a candidate between them (:func:`_exact_candidates`).
    """
    unlinked = [i for i in items if i.record_id is None]
    if not unlinked:
        return
    from hub.identity import exact_hits, lock_exact_keys, split_keys
    from hub.normalize import exact_key
    lock_exact_keys(conn, ctx.entity, ctx.exact_keys, [i.values for i in unlinked])
    hits = exact_hits(conn, ctx.entity, ctx.exact_keys, [i.values for i in unlinked])
    splits = [split_keys(ctx.exact_keys, hit, i.values) for hit, i in zip(hits, unlinked)]
    matches: list[str | None] = [linked for linked, _ in splits]
    provisional: dict[int, str] = {}          # batch position -> the id a new record would get
    in_batch: dict[tuple[str, str], int] = {}  # normalized key -> first batch position holding it
    same_as: dict[int, int] = {}              # batch position -> earlier position it shares a key with
    for n, item in enumerate(unlinked):
        keys = [(k, exact_key(k, item.values.get(k))) for k in ctx.exact_keys]
        keys = [(k, v) for k, v in keys if v]
        if matches[n] is None:
            earlier = next((in_batch[kv] for kv in keys if kv in in_batch), None)
            if earlier is not None:
                same_as[n] = earlier
            else:
                provisional[n] = new_id()
        for kv in keys:
            in_batch.setdefault(kv, n)
    fuzzy = [n for n in provisional]          # only records no exact key placed
    if ctx.matcher is not None and fuzzy:
        decisions = ctx.matcher.match_batch(conn, [unlinked[n].values for n in fuzzy],
                                            ids=[provisional[n] for n in fuzzy])
        for n, d in zip(fuzzy, decisions):
            if d.record_id is not None:
                matches[n] = d.record_id
                del provisional[n]
            elif d.same_as is not None:       # an earlier record of this batch
                same_as[n] = fuzzy[d.same_as]
                del provisional[n]
            unlinked[n].candidates = list(d.candidates)

    def final(n: int) -> tuple[str, bool]:
        seen = set()
        while n in same_as and n not in seen:   # follow in-batch links to the record that decides
            seen.add(n)
            n = same_as[n]
        if matches[n] is not None:
            return matches[n], True
        return provisional.setdefault(n, new_id()), False

    _exact_candidates(conn, ctx, unlinked, splits, matches)
    for n, item in enumerate(unlinked):
        rid, existing = (matches[n], True) if matches[n] is not None else final(n)
        item.record_id = rid
        first_of_new = not existing and n in provisional and provisional[n] == rid
        item._new = first_of_new  # type: ignore[attr-defined]
        item.linked_now = not first_of_new
        if first_of_new:
            item.base = None


def _exact_candidates(conn: Connection, ctx: StreamContext, unlinked: list[_Item],
                      splits: list[tuple[str | None, dict[str, dict]]], matches: list[str | None]) -> None:
    """Open a candidate between the golden record a record's exact keys linked it to and each other one
    they pointed at: never merged automatically (an exact key two companies share may be a data error).
    Once per pair: not if open already (in the store or this batch), rejected or unmerged."""
    from hub.matching_bridges import exact_candidates
    pairs: dict[tuple[str, str], dict] = {}
    first: dict[tuple[str, str], int] = {}   # pair -> the record of the batch that opens it
    for n, (linked, others) in enumerate(splits):
        for other, keys in others.items():
            if (linked, other) not in pairs and (other, linked) not in pairs:
                pairs[(linked, other)] = keys
                first[(linked, other)] = n
    if not pairs:
        return
    batch = {(rid, other) for rid, i in zip(matches, unlinked) if rid for other, _, _ in i.candidates}   # fuzzy
    pairs = {p: k for p, k in pairs.items() if p not in batch and p[::-1] not in batch}
    for (linked, other), details in exact_candidates(conn, ctx.entity, pairs).items():
        # scored 1.0, the keys' word: the fuzzy fields may not see it (`matches list` shows both)
        unlinked[first[(linked, other)]].candidates.append((other, 1.0, details))
