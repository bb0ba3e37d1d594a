"""Steward work on possible duplicates: list candidates, merge, unmerge, reject, train the weights.

`triad matches list` shows each open candidate with its score, the field-by-field
comparison (recomputed with the records as they are now) and both golden
records side by side. Merge lives in :mod:`hub.matching_merge`, unmerge in
:mod:`hub.matching_unmerge`; this module re-exports them so the CLI has one place to call.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select, update

from hub import audit, golden
from hub.canonical import entity as entity_def
from hub.config import Fuzzy, TriadConfig
from hub.errors import NotFound, UsageError
from hub.matching import TRAIN_ACTION, fingerprint, load_params
from hub.matching_merge import merge  # noqa: F401 - part of this module's interface
from hub.matching_scoring import Scorer
from hub.matching_unmerge import unmerge  # noqa: F401 - part of this module's interface
from hub.models import MatchCandidate, MatchReject, MergeLog, Xref
from hub.sqlutil import chunks, upsert
from hub.types import utcnow

STATUSES = ("open", "merged", "rejected")


def fuzzy_config(cfg: TriadConfig, entity: str, *, required: bool = True) -> Fuzzy | None:
    m = cfg.matching.get(entity)
    if m is None or m.fuzzy is None or not m.fuzzy.fields:
        if required:
            raise UsageError(f"matching.{entity}.fuzzy.fields is not configured in triad.yaml; "
                             f"example: fuzzy: {{fields: {{name: 0.6, city: 0.2, phone: 0.2}}}}")
        return None
    return m.fuzzy


def _candidate_row(r: Any) -> dict[str, Any]:
    return {"id": r["id"], "entity": r["entity"], "record_a": r["record_a"], "record_b": r["record_b"],
            "score": r["score"], "status": r["status"], "details": r["details"], "created_at": r["created_at"],
            "decided_at": r["decided_at"], "decided_by": r["decided_by"]}


def get_candidate(conn: Connection, candidate_id: str) -> dict[str, Any]:
    ct = MatchCandidate.__table__
    r = conn.execute(select(ct).where(ct.c.id == candidate_id)).mappings().first()
    if r is None:
        raise NotFound(f"no match candidate {candidate_id} (see `triad matches list`)")
    return _candidate_row(r)


def list_candidates(engine: Engine, cfg: TriadConfig, *, status: str = "open", entity: str | None = None,
                    limit: int = 50, offset: int = 0, entities: frozenset[str] | None = None,
                    denied: dict[str, frozenset[str]] | None = None) -> list[dict[str, Any]]:
    """Candidates, best score first, each with both records side by side and a per-field comparison.

    The comparison is recomputed from the golden records as they are now (the
    stored score is from when the candidate was opened: both are shown).
    """
    if status not in STATUSES:
        raise UsageError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    ct = MatchCandidate.__table__
    q = select(ct).where(ct.c.status == status).order_by(ct.c.score.desc(), ct.c.created_at, ct.c.id)
    if entity:
        entity_def(entity)
        q = q.where(ct.c.entity == entity)
    if entities is not None:
        q = q.where(ct.c.entity.in_(sorted(entities)))
    q = q.limit(limit).offset(offset)
    denied = denied or {}
    with engine.connect() as conn:
        rows = [_candidate_row(r) for r in conn.execute(q).mappings()]
        by_entity: dict[str, set[str]] = {}
        for r in rows:
            by_entity.setdefault(r["entity"], set()).update((r["record_a"], r["record_b"]))
        records = {e: golden.load(conn, e, sorted(ids)) for e, ids in by_entity.items()}
        xrefs = {e: _xrefs(conn, e, sorted(ids)) for e, ids in by_entity.items()}
        scorers = {}
        for e in by_entity:
            fz = fuzzy_config(cfg, e, required=False)
            if fz is not None:
                scorers[e] = Scorer(e, dict(fz.fields), load_params(conn, e, list(fz.fields)))
    out = []
    for r in rows:
        e = r["entity"]
        hidden = denied.get(e, frozenset())
        ga, gb = records[e].get(r["record_a"]), records[e].get(r["record_b"])
        item = dict(r, records={"a": _side(ga, hidden), "b": _side(gb, hidden)},
                    xrefs={"a": xrefs[e].get(r["record_a"], {}), "b": xrefs[e].get(r["record_b"], {})})
        if e in scorers and ga is not None and gb is not None:
            sc = scorers[e]
            exp = sc.explain(sc.features(ga.values), sc.features(gb.values), ga.values, gb.values)
            item["score_now"] = exp["score"]
            item["comparison"] = {f: c for f, c in exp["fields"].items() if f not in hidden}
        else:
            item["score_now"] = None
            item["comparison"] = {f: c for f, c in ((r["details"] or {}).get("fields") or {}).items() if f not in hidden}
        item.pop("details")
        out.append(item)
    return out


def _side(row: golden.GoldenRow | None, hidden: frozenset[str]) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"id": row.id, "fields": {f: v for f, v in row.values.items() if f not in hidden and f != "lines"},
            "merged_into": row.merged_into, "deleted_in": row.deleted_in}


def _xrefs(conn: Connection, entity: str, ids: list[str]) -> dict[str, dict[str, list[str]]]:
    xt = Xref.__table__
    out: dict[str, dict[str, list[str]]] = {}
    for part in chunks(ids):
        for r in conn.execute(select(xt.c.record_id, xt.c.system, xt.c.source_id).where(
                xt.c.entity == entity, xt.c.record_id.in_(part)).order_by(xt.c.system, xt.c.source_id)):
            out.setdefault(r.record_id, {}).setdefault(r.system, []).append(r.source_id)
    return out


def reject(conn: Connection, candidate_id: str, *, user: str, note: str | None = None) -> dict[str, Any]:
    """"Not the same": close the candidate and remember the pair while neither record changes materially."""
    c = get_candidate(conn, candidate_id)
    if c["status"] != "open":
        raise UsageError(f"match candidate {candidate_id} is {c['status']} already "
                         f"(by {c['decided_by']} at {c['decided_at']})")
    entity = c["entity"]
    a, b = sorted((c["record_a"], c["record_b"]))
    rows = golden.load(conn, entity, [a, b], lock=True)
    missing = [x for x in (a, b) if x not in rows]
    if missing:
        raise NotFound(f"the {entity} record(s) {', '.join(missing)} of candidate {candidate_id} no longer exist")
    now = utcnow()
    fa, fb = fingerprint(entity, rows[a].values), fingerprint(entity, rows[b].values)
    upsert(conn, MatchReject.__table__, [{"entity": entity, "record_a": a, "record_b": b, "fingerprint_a": fa,
                                          "fingerprint_b": fb, "decided_by": user, "decided_at": now}],
           ["entity", "record_a", "record_b"])
    ct = MatchCandidate.__table__
    # every open candidate of the same pair closes with it
    conn.execute(update(ct).where(ct.c.entity == entity, ct.c.status == "open",
                                  ((ct.c.record_a == a) & (ct.c.record_b == b)) |
                                  ((ct.c.record_a == b) & (ct.c.record_b == a)))
                 .values(status="rejected", decided_at=now, decided_by=user))
    audit.record(conn, user, "matches.reject", f"match_candidate:{candidate_id}",
                 before={"entity": entity, "record_a": a, "record_b": b, "score": c["score"]},
                 after={"fingerprint_a": fa, "fingerprint_b": fb}, note=note)
    return {"id": candidate_id, "entity": entity, "record_a": a, "record_b": b, "status": "rejected"}


def train_entity(conn: Connection, cfg: TriadConfig, entity: str, *, user: str, max_records: int = 200_000,
                 max_pairs: int = 500_000) -> dict[str, Any]:
    """Estimate m/u weights with EM from the store and make them the matcher's weights (audited).

    The trained parameters are kept as the audit entry of the training
    (action ``matches.train``, target the entity); the matcher loads the latest.
    """
    from hub.matching_em import train
    entity_def(entity)
    fz = fuzzy_config(cfg, entity)
    report = train(conn, entity, fz, max_records=max_records, max_pairs=max_pairs)
    params = report.params.as_json()
    audit.record(conn, user, TRAIN_ACTION, entity, after=params,
                 note=f"EM on {report.pairs} candidate pairs of {report.records} source records")
    return dict(report.as_dict(), entity=entity, params=params)


def visible(report: dict[str, Any], denied: frozenset[str]) -> dict[str, Any]:
    """A merge or unmerge report without the fields the caller's roles deny (SPEC section 8), left out
    as `records show` leaves them out; ``hidden_fields`` names them."""
    if not denied:
        return report
    out = dict(report, hidden_fields=sorted(denied))
    for key in ("changed", "restored"):
        if key in out:
            out[key] = {f: v for f, v in out[key].items() if f not in denied}
    if "conflicts" in out:
        out["conflicts"] = [c for c in out["conflicts"] if c["field"] not in denied]
    if "source_changes" in out:
        out["source_changes"] = {src: {f: v for f, v in fields.items() if f not in denied}
                                 for src, fields in out["source_changes"].items()}
    return out


def xrefs_text(xrefs: dict[str, list[str]]) -> str:
    """``crm:A3; erp:E003,E004``: a record's ids in every system, as `records list` shows them."""
    return "; ".join(f"{system}:{','.join(ids)}" for system, ids in xrefs.items())


def list_merges(engine: Engine, *, entity: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    mt = MergeLog.__table__
    q = select(mt.c.id, mt.c.entity, mt.c.winner_id, mt.c.loser_id, mt.c.status, mt.c.merged_by, mt.c.merged_at,
               mt.c.unmerged_at).order_by(mt.c.merged_at.desc()).limit(limit)
    if entity:
        q = q.where(mt.c.entity == entity)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


__all__ = ["fuzzy_config", "get_candidate", "list_candidates", "list_merges", "merge", "reject",
           "train_entity", "unmerge", "visible", "xrefs_text"]
