"""A record the hub creates in a system comes back with what that system filled in itself (its own number,
its creation time): those are not edits, and must not replace the golden values (SPEC §5)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.models import Outbox, Xref
from hub.push import push

from .helpers import two_file_systems
from .test_push_deleted_and_conflicts import sync

A_MAP = "source: c.csv\nkey: id\nupdated_at: ts\nfields:\n  code: code\n  name: name\n  tax_id: tax\n"
B_MAP = ("source: c.csv\nkey: id\nupdated_at: ts\nfields:\n  code: {from: number, readonly: true}\n  name: name\n"
         "  tax_id: tax\n  city: city\n")


def test_a_number_the_target_gives_its_new_record_does_not_replace_the_golden_one(tmp_path: Path, store_url: str):
    root, engine, parts = two_file_systems(tmp_path, store_url, A_MAP, B_MAP)
    (root / "exports" / "b" / "c.csv").write_text("id,number,name,tax,city,ts\n", encoding="utf-8")
    sync(engine, parts, "b")
    (root / "exports" / "a" / "c.csv").write_text("id,code,name,tax,ts\na1,C-001,Acme,91310000AB0001,"
                                                  "2026-01-01 08:00:00\n", encoding="utf-8")
    sync(engine, parts, "a")
    push(engine, parts)
    with engine.connect() as conn:
        sid = conn.scalar(select(Xref.__table__.c.source_id).where(Xref.__table__.c.system == "b"))
    # b imported it, numbered it B-900, and exports it with the time of that import; a user then fills a city
    (root / "exports" / "b" / "c.csv").write_text(f"id,number,name,tax,city,ts\n{sid},B-900,Acme,91310000AB0001,,"
                                                  "2026-01-02 08:00:00\n", encoding="utf-8")
    sync(engine, parts, "b")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT code FROM customer").scalar() == "C-001"
        queued = conn.execute(select(Outbox.__table__.c.connector).where(Outbox.__table__.c.status == "pending")).all()
    assert queued == []                              # nothing to send anywhere: nobody changed anything
    (root / "exports" / "b" / "c.csv").write_text(f"id,number,name,tax,city,ts\n{sid},B-900,Acme,91310000AB0001,"
                                                  "杭州,2026-01-03 08:00:00\n", encoding="utf-8")
    sync(engine, parts, "b")
    with engine.connect() as conn:
        assert tuple(conn.exec_driver_sql("SELECT code, city FROM customer").one()) == ("C-001", "杭州")
