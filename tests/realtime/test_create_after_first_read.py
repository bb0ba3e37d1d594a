"""A system the hub also reads gets no create before its first read (SPEC §5 outbound).

It may hold the record already under its own id: the first read links the two (exact keys, matching),
and the write that was waiting becomes an update of that record instead of a second one.
"""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from hub.models import Xref
from hub.push import push

from .test_push_deleted_and_conflicts import export, make_hub, outbox_rows, sent, sync


def links(engine, system: str) -> list[tuple[str, str]]:
    xt = Xref.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(xt.c.source_id, xt.c.status).where(xt.c.system == system)))


def test_a_create_waits_for_the_first_read_and_then_updates_the_record_found(tmp_path: Path, store_url: str):
    root, cfg_path, engine, parts = make_hub(tmp_path, store_url)
    export(root, "a", ["a1,Acme,91310000AB0001,acme@x.cn,Shanghai,2026-01-01 08:00:00"])
    sync(engine, parts, "a")
    reports = {r.connector: r for r in push(engine, parts)}
    assert sent(root, "b") == [] and reports["b"].counts["deferred"] == 1      # b never read: nothing sent
    (row,) = outbox_rows(engine, "b")
    assert row.status == "pending" and "b/customer has not been read yet" in row.last_error

    listed = CliRunner().invoke(main, ["--config", str(cfg_path), "--json", "outbox", "list", "--connector", "b"])
    assert "waiting for a read" in json.loads(listed.stdout)["items"][0]["last_error"]

    # b holds the customer already, under its own id, with another city
    export(root, "b", ["B-77,Acme,91310000AB0001,acme@x.cn,Hangzhou,2025-12-01 08:00:00"])
    sync(engine, parts, "b")                              # links B-77; the waiting write is due at once
    push(engine, parts)
    assert links(engine, "b") == [("B-77", "active")]     # one record in b, no second one created
    assert [(c["id"], c["__op__"]) for c in sent(root, "b")] == [("B-77", "update")]
    assert {r.status for r in outbox_rows(engine, "b")} == {"done"}   # the waiting write went with it


def test_an_outbound_only_system_is_created_in_at_once(tmp_path: Path, store_url: str):
    root, _, engine, parts = make_hub(tmp_path, store_url, c_extra="")
    text = (root / "triad.yaml").read_text(encoding="utf-8").replace(
        "  c: {type: file, path: ./exports/c, direction: both", "  c: {type: file, path: ./exports/c, direction: out")
    (root / "triad.yaml").write_text(text, encoding="utf-8")
    from hub.config import load_config
    from hub.streams import Parts
    parts = Parts(load_config(str(root / "triad.yaml")))
    export(root, "a", ["a1,Acme,91310000AB0001,acme@x.cn,Shanghai,2026-01-01 08:00:00"])
    sync(engine, parts, "a")
    push(engine, parts)
    assert [c["__op__"] for c in sent(root, "c")] == ["create"]    # nothing to read there first
    assert sent(root, "b") == []
