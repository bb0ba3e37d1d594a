"""A system is not sent back the value it holds already (SPEC §5 merge, outbound): after a `most_recent`
conflict its winning value goes to the others only, and a steward's `--take S` is not written to S.
The system whose value lost is written, and one that got the record from the hub gets the new value.
Three `file` systems a, b, c (all both ways), as in test_push_deleted_and_conflicts."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from hub.models import Conflict
from hub.push import push

from .test_push_deleted_and_conflicts import export, make_hub, outbox_rows, sent, sync


def seed_a_and_b(root: Path, engine, parts) -> None:
    """Acme read from a and b; c holds nothing of its own and gets Acme from the hub."""
    for s in "ab":
        export(root, s, [f"{s}1,Acme,91310000AB0001,acme@x.cn,Shanghai,2026-01-01 08:00:00"])
        sync(engine, parts, s)
    export(root, "c", [])
    sync(engine, parts, "c")
    push(engine, parts)
    assert [c["city"] for c in sent(root, "c")] == ["Shanghai"]      # created there by the hub


def test_the_most_recent_winner_is_not_written_its_own_value(tmp_path: Path, store_url: str):
    root, _, engine, parts = make_hub(tmp_path, store_url)
    seed_a_and_b(root, engine, parts)
    n_a, n_b, n_c = len(sent(root, "a")), len(sent(root, "b")), len(sent(root, "c"))
    queued = {s: len(outbox_rows(engine, s)) for s in "abc"}
    export(root, "a", ["a1,Acme,91310000AB0001,acme@x.cn,Hangzhou,2026-01-02 08:00:00"])
    sync(engine, parts, "a")                     # an informed change: queued to b and c
    export(root, "b", ["b1,Acme,91310000AB0001,acme@x.cn,Suzhou,2026-01-02 09:00:00"])
    sync(engine, parts, "b")                     # concurrent and later: b wins under most_recent
    push(engine, parts)

    assert [c["city"] for c in sent(root, "a")[n_a:]] == ["Suzhou"]      # the loser takes the winner's value
    assert [c["city"] for c in sent(root, "c")[n_c:]] == ["Suzhou"]      # as does the hub-created copy
    assert sent(root, "b")[n_b:] == []                                   # b holds Suzhou: nothing to write
    rows = {s: outbox_rows(engine, s)[queued[s]:] for s in "abc"}
    assert [(r.status, r.fields) for r in rows["b"]] == [("done", {"city": "Hangzhou"})]   # settled, not sent
    assert [r.fields for r in rows["a"]] == [{"city": "Suzhou"}]          # none for a from its own change
    assert [r.status for r in rows["a"] + rows["c"]] == ["done"] * 3

    # nothing bounces: the winner is unchanged, the others return what they were sent
    for s, city in (("a", "Suzhou"), ("b", "Suzhou"), ("c", "Suzhou")):
        export(root, s, [f"{s}1,Acme,91310000AB0001,acme@x.cn,{city},2026-01-03 08:00:00"])
    for s in "ab":
        assert sync(engine, parts, s).counts["queued"] == 0


def test_a_steward_taking_a_systems_value_does_not_write_it_back_there(tmp_path: Path, store_url: str):
    root, cfg_path, engine, parts = make_hub(tmp_path, store_url)
    seed_a_and_b(root, engine, parts)
    export(root, "a", ["a1,Acme,91310000AB0001,a-new@x.cn,Shanghai,2026-01-02 08:00:00"])
    sync(engine, parts, "a")
    export(root, "b", ["b1,Acme,91310000AB0001,b-new@x.cn,Shanghai,2026-01-02 09:00:00"])
    sync(engine, parts, "b")                     # concurrent email (manual): an open conflict
    push(engine, parts)
    n_a, n_b, n_c = len(sent(root, "a")), len(sent(root, "b")), len(sent(root, "c"))
    before = len(outbox_rows(engine, "b"))

    ct = Conflict.__table__
    with engine.connect() as conn:
        cid = conn.scalar(select(ct.c.id).where(ct.c.status == "open"))
    r = CliRunner().invoke(main, ["--config", str(cfg_path), "--json", "conflicts", "resolve", cid, "--take", "b"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["resolved"][0]["queued"] == 2     # to a and c
    assert len(outbox_rows(engine, "b")) == before          # nothing queued to b, which holds b-new@x.cn
    push(engine, parts)
    assert [c["email"] for c in sent(root, "a")[n_a:]] == ["b-new@x.cn"]
    assert [c["email"] for c in sent(root, "c")[n_c:]] == ["b-new@x.cn"]
    assert sent(root, "b")[n_b:] == []
