"""Outbound around a steward's decision (SPEC §5): no create for a record that may be a duplicate while
its match candidate is open, and no write at all for a record merged away (the survivor carries it)."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import insert, select, update

from cli import main
from hub.models import MatchCandidate, Outbox, Xref
from hub.push import push
from hub.types import new_id, utcnow

from .test_push_deleted_and_conflicts import export, make_hub, outbox_rows, sent, sync

def hub_with_a_candidate(tmp_path: Path, store_url: str):
    """Two systems' records of one tea company, not linked; a steward's candidate open on them (as fuzzy
    matching opens one between review_at and link_at)."""
    root, cfg_path, engine, parts = make_hub(tmp_path, store_url)
    export(root, "c", [])
    sync(engine, parts, "c")
    export(root, "a", ["a1,杭州西湖茶业有限公司,,tea@xihu-tea.cn,杭州,2026-01-01 08:00:00"])
    sync(engine, parts, "a")
    export(root, "b", ["b1,杭州西湖茶叶有限公司,,tea@xihu-tea.cn,杭州,2026-01-02 08:00:00"])
    sync(engine, parts, "b")
    xt = Xref.__table__
    with engine.begin() as conn:
        rid = dict(conn.execute(select(xt.c.system, xt.c.record_id)).all())
        assert rid["a"] != rid["b"]
        conn.execute(insert(MatchCandidate.__table__).values(
            id=new_id(), entity="customer", record_a=min(rid.values()), record_b=max(rid.values()), score=0.8,
            details={}, status="open", created_at=utcnow()))
    (candidate,) = triad(cfg_path, "matches", "list")["candidates"]
    return root, cfg_path, engine, parts, candidate


def triad(cfg_path: Path, *args: str) -> dict:
    r = CliRunner().invoke(main, ["--config", str(cfg_path), "--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def due_now(engine) -> None:
    """As if the retry delay had passed."""
    with engine.begin() as conn:
        conn.execute(update(Outbox.__table__).values(next_attempt_at=utcnow()))


def ops(root: Path, system: str) -> list[str]:
    return [c["__op__"] for c in sent(root, system)]


def test_no_create_while_a_steward_has_not_decided_and_none_after_the_merge(tmp_path: Path, store_url: str):
    root, cfg_path, engine, parts, candidate = hub_with_a_candidate(tmp_path, store_url)
    reports = {r.connector: r for r in push(engine, parts)}
    assert ops(root, "a") == [] and ops(root, "b") == []     # each side would be created in the other system
    assert ops(root, "c") == []                             # and both in the third: two records there
    assert reports["b"].counts["deferred"] == 1
    waiting = [r.last_error for r in outbox_rows(engine, "b")]
    assert waiting and all("waiting for a steward" in e for e in waiting)

    merged = triad(cfg_path, "matches", "merge", candidate["id"])
    due_now(engine)
    push(engine, parts)
    assert "create" not in ops(root, "a") + ops(root, "b")    # both linked to the survivor: updates only
    assert ops(root, "c") == ["create"]                       # the one record, once

    # a write queued for the merged-away record (a race with the merge, a store of an older version)
    from hub.outbox import OutboxQueue
    loser = ({candidate["record_a"], candidate["record_b"]} - {merged["winner"]}).pop()
    with engine.begin() as conn:
        queue = OutboxQueue("customer", None, utcnow())
        queue.queue("c", loser, {"city": "Hangzhou"})
        queue.flush(conn)
    report = {r.connector: r for r in push(engine, parts)}["c"]
    assert ops(root, "c") == ["create"] and report.counts["skipped"] == 1
    (dropped,) = [r.last_error for r in outbox_rows(engine, "c") if r.status == "dropped"]
    assert f"customer {loser} was merged into {merged['winner']}" in dropped


def test_a_rejected_candidate_lets_both_records_be_created(tmp_path: Path, store_url: str):
    root, cfg_path, engine, parts, candidate = hub_with_a_candidate(tmp_path, store_url)
    push(engine, parts)
    triad(cfg_path, "matches", "reject", candidate["id"])
    due_now(engine)
    push(engine, parts)
    assert ops(root, "a") == ["create"] and ops(root, "b") == ["create"] and ops(root, "c") == ["create", "create"]

