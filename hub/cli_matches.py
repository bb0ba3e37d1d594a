"""`triad matches ...`: possible duplicates for a steward (list, merge, unmerge, reject) and `train`.

Registered on the main command group with ``main.add_command(matches)``.
"""
from __future__ import annotations

from typing import Any

import click

from hub.clikit import emit, pass_ctx, reporting
from hub.context import Context


def _who(ctx: Context) -> Any:
    from hub.rbac import principal
    return principal(ctx.engine(), ctx.config(), ctx.user)


def _parts(ctx: Context) -> Any:
    from hub.streams import Parts
    return Parts(ctx.config())


@click.group("matches")
def matches() -> None:
    """Possible duplicates: review, merge, unmerge, reject; train the match weights."""


@matches.command("list")
@click.option("--status", type=click.Choice(["open", "merged", "rejected"]), default="open", show_default=True)
@click.option("--entity", help="Only this entity.")
@click.option("--merges", is_flag=True, help="List merges (for `unmerge`) instead of candidates.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0, 10**12))
@reporting
@pass_ctx
def matches_list(ctx: Context, status: str, entity: str | None, merges: bool, limit: int, offset: int) -> None:
    """Candidates best first: score, field-by-field comparison, both records side by side.

    \b
    Examples:
      triad matches list
      triad matches list --entity customer --json
      triad matches list --merges
    """
    from hub import render
    from hub.matches import list_candidates, list_merges
    from hub.rbac import require
    engine, who = ctx.engine(), _who(ctx)
    require(engine, who, "read", entity)
    allowed = None if who.single_user else who.allowed_entities("read")
    if merges:
        rows = [m for m in list_merges(engine, entity=entity, limit=limit) if allowed is None or m["entity"] in allowed]
        emit(ctx, {"merges": rows}, lambda: (
            render.table("merges", ["id", "entity", "winner", "loser", "status", "by", "at"],
                         [(m["id"], m["entity"], m["winner_id"], m["loser_id"], m["status"], m["merged_by"],
                           m["merged_at"]) for m in rows]),
            render.hint("undo one: triad matches unmerge MERGE_ID") if rows else None))
        return
    from hub.canonical import ENTITIES
    from hub.matches import xrefs_text
    denied = {e: who.denied_fields(e) for e in ENTITIES}
    rows = list_candidates(engine, ctx.config(), status=status, entity=entity, limit=limit, offset=offset,
                           entities=allowed, denied=denied)

    def human() -> None:
        if not rows:
            render.say(f"no {status} match candidates")
            return
        for c in rows:
            a, b = c["records"]["a"] or {}, c["records"]["b"] or {}
            title = (f"candidate {c['id']}  {c['entity']}  score {c['score']:.3f}"
                     + (f" (now {c['score_now']:.3f})" if c["score_now"] is not None else ""))
            fields = sorted(set((a.get("fields") or {})) | set((b.get("fields") or {})))
            cmp = c["comparison"]
            rows_ = [(f, (a.get("fields") or {}).get(f), (b.get("fields") or {}).get(f),
                      (cmp.get(f) or {}).get("label", ""), (cmp.get(f) or {}).get("weight", ""))
                     for f in fields if (a.get("fields") or {}).get(f) is not None
                     or (b.get("fields") or {}).get(f) is not None]
            render.table(title, ["field", f"A {c['record_a']}", f"B {c['record_b']}", "comparison", "weight"], rows_)
            render.say(f"A in {xrefs_text(c['xrefs']['a']) or '-'}  B in {xrefs_text(c['xrefs']['b']) or '-'}")
        if status == "open":
            render.hint("triad matches merge A B  |  triad matches reject CANDIDATE_ID")
    emit(ctx, {"candidates": rows}, human)


@matches.command("merge")
@click.argument("winner_or_candidate")
@click.argument("loser", required=False)
@click.option("--entity", default="customer", show_default=True, help="Entity of the two records.")
@click.option("--note", help="Why (kept in the audit log).")
@reporting
@pass_ctx
def matches_merge(ctx: Context, winner_or_candidate: str, loser: str | None, entity: str, note: str | None) -> None:
    """Merge record B into record A (A survives; B stays as a tombstone pointing at A).

    With one argument, merges the records of that match candidate (the older
    golden record survives). xrefs move to the survivor, fields are settled by
    the survivorship rules, history and the audit log record it, and the
    systems are told. `triad matches unmerge` undoes it.

    \b
    Examples:
      triad matches merge 01J9ZWINNER... 01J9ZLOSER...
      triad matches merge CANDIDATE_ID --note "same USCC, confirmed by sales"
    """
    from hub import render
    from hub.matches import get_candidate, merge, visible
    from hub.rbac import require
    engine, who, parts = ctx.engine(), _who(ctx), _parts(ctx)
    candidate_id = None
    if loser is None:
        with engine.connect() as conn:
            c = get_candidate(conn, winner_or_candidate)
        candidate_id, entity = c["id"], c["entity"]
        winner, loser = sorted((c["record_a"], c["record_b"]))   # ids sort by creation: the older survives
    else:
        winner = winner_or_candidate
    require(engine, who, "merge", entity, target=f"{entity}:{winner}")
    with engine.begin() as conn:
        result = merge(conn, entity, winner, loser, user=who.name, rules=parts.rules(entity),
                       out_systems=parts.out_systems(entity), candidate_id=candidate_id, note=note)
    result = visible(result, who.denied_fields(entity))
    emit(ctx, result, lambda: (
        render.say(f"merged {entity} {loser} into {winner} (merge {result['merge_id']}): "
                   f"{result['xrefs_moved']} xref(s) moved, {result['references_moved']} reference(s) repointed, "
                   f"{result['queued']} change(s) queued"),
        render.table("fields taken from the merged record", ["field", "old", "new", "rule"],
                     [(f, v["old"], v["new"], v["rule"]) for f, v in result["changed"].items()]),
        render.table("conflicts", ["id", "field", "status", "rule", "values", "what happened"],
                     [(c["id"], c["field"], c["status"], c["rule"], c["values"], c["action"])
                      for c in result["conflicts"]]) if result["conflicts"] else None,
        render.hint(f"undo: triad matches unmerge {result['merge_id']}   send: triad sync push"
                    + ("   decide: triad conflicts list --status open" if any(
                        c["status"] == "open" for c in result["conflicts"]) else ""))))


@matches.command("unmerge")
@click.argument("merge_id")
@click.option("--force", is_flag=True, help="Also when the survivor changed since (later changes are kept; refused "
                                            "when a faithful restore is impossible).")
@click.option("--note", help="Why (kept in the audit log).")
@reporting
@pass_ctx
def matches_unmerge(ctx: Context, merge_id: str, force: bool, note: str | None) -> None:
    """Undo a merge: both records, their xrefs, references and conflicts as they were before it.

    A source record given back to the restored record keeps what its system
    changed after the merge; that change is not written back over.

    \b
    Examples:
      triad matches unmerge 01J9ZMERGE...
      triad matches list --merges
    """
    from sqlalchemy import select

    from hub import render
    from hub.errors import NotFound
    from hub.matches import unmerge, visible
    from hub.models import MergeLog
    from hub.rbac import require
    engine, who, parts = ctx.engine(), _who(ctx), _parts(ctx)
    mt = MergeLog.__table__
    with engine.connect() as conn:
        entity = conn.scalar(select(mt.c.entity).where(mt.c.id == merge_id))
    if entity is None:
        raise NotFound(f"no merge {merge_id} (see `triad matches list --merges`)")
    require(engine, who, "merge", entity, target=f"merge:{merge_id}")
    with engine.begin() as conn:
        result = unmerge(conn, merge_id, user=who.name, out_systems=parts.out_systems(entity), force=force,
                         note=note, rules=parts.rules(entity))
    result = visible(result, who.denied_fields(entity))
    emit(ctx, result, lambda: (
        render.say(f"unmerged {entity} {result['loser']} from {result['winner']}"
                   + (" (forced: later changes to the survivor kept)" if result["forced"] else "")
                   + f"; {result['queued']} change(s) queued"),
        render.table("survivor fields restored", ["field", "was", "now"],
                     [(f, v["old"], v["new"]) for f, v in result["restored"].items()]) if result["restored"] else None,
        render.table("kept: changed in a system after the merge", ["source record", "fields"],
                     [(src, fields) for src, fields in result["source_changes"].items() if fields])
        if any(result["source_changes"].values()) else None,
        render.hint("send: triad sync push")))


@matches.command("reject")
@click.argument("candidate_id")
@click.option("--note", help="Why (kept in the audit log).")
@reporting
@pass_ctx
def matches_reject(ctx: Context, candidate_id: str, note: str | None) -> None:
    """Not the same: close the candidate; the pair is not proposed again while neither record changes.

    \b
    Example:
      triad matches reject 01J9ZCAND... --note "different branch, separate account"
    """
    from hub import render
    from hub.matches import get_candidate, reject
    from hub.rbac import require
    engine, who = ctx.engine(), _who(ctx)
    with engine.connect() as conn:
        c = get_candidate(conn, candidate_id)
    require(engine, who, "merge", c["entity"], target=f"match_candidate:{candidate_id}")
    with engine.begin() as conn:
        result = reject(conn, candidate_id, user=who.name, note=note)
    emit(ctx, result, lambda: render.say(f"rejected: {result['record_a']} and {result['record_b']} are different"))


@matches.command("train")
@click.option("--entity", default="customer", show_default=True)
@click.option("--max-records", default=200_000, show_default=True, help="Source records read for training.")
@reporting
@pass_ctx
def matches_train(ctx: Context, entity: str, max_records: int) -> None:
    """Estimate the match weights (m/u probabilities, prior) from the store with EM; the matcher uses them next run.

    \b
    Example:
      triad matches train --entity customer
    """
    from hub import render
    from hub.matches import train_entity
    from hub.rbac import require
    engine, who = ctx.engine(), _who(ctx)
    require(engine, who, "merge", entity, target=f"matches.train:{entity}")
    with engine.begin() as conn:
        report = train_entity(conn, ctx.config(), entity, user=who.name, max_records=max_records)
    report.pop("params")

    def human() -> None:
        render.say(f"trained {entity} on {report['pairs']} pairs of {report['records']} records "
                   f"({report['iterations']} EM iterations{'' if report['converged'] else ', not converged'})")
        render.table("weights", ["field", "m by level", "u by level"],
                     [(f, report["m"][f], report["u"][f]) for f in report["m"]])
        if report["kept_defaults"]:
            render.hint(f"kept defaults for: {', '.join(report['kept_defaults'])}")
    emit(ctx, report, human)
