"""A value map that is not one to one (SPEC §5 echo suppression): b keeps only active / inactive, so the
hub's `blocked` reaches b as `0` and comes back as `inactive`. That is our write, not b's edit: the golden
value must not flip between blocked and inactive on every cycle."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from hub.mapping import load_mapping
from hub.models import FieldHistory, Outbox, Xref
from hub.push import push

from .helpers import two_file_systems
from .test_push_deleted_and_conflicts import sync

A_MAP = """source: customers.csv
key: id
updated_at: updated_at
fields:
  name: name
  tax_id: tax_id
  status: {from: st, values: {A: active, I: inactive, B: blocked}}
"""
B_MAP = """source: customers.csv
key: id
updated_at: updated_at
fields:
  name: name
  tax_id: tax_id
  status: {from: active, values: {"1": active, "0": inactive}, to: {active: "1", inactive: "0", blocked: "0"}}
"""


def export(root: Path, system: str, header: str, rows: list[str]) -> None:
    (root / "exports" / system / "customers.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def test_read_back_tells_what_a_lossy_map_will_show():
    mapping = load_mapping_text(B_MAP)
    written = mapping.to_source({"status": "blocked", "name": "Acme"})
    assert written == {"active": "0", "name": "Acme"}
    assert mapping.read_back(written) == {"status": "inactive", "name": "Acme", "tax_id": None}


def load_mapping_text(text: str):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.yaml"
        path.write_text(text, encoding="utf-8")
        return load_mapping(str(path), "customer")


def test_blocked_is_not_turned_into_inactive_by_its_own_echo(tmp_path: Path, store_url: str):
    root, engine, parts = two_file_systems(tmp_path, store_url, A_MAP, B_MAP)
    export(root, "b", "id,name,tax_id,active,updated_at", [])
    sync(engine, parts, "b")
    export(root, "a", "id,name,tax_id,st,updated_at", ["a1,Acme,91310000AB0001,B,2026-01-01 08:00:00"])
    sync(engine, parts, "a")
    push(engine, parts)
    with engine.connect() as conn:
        sid = conn.scalar(select(Xref.__table__.c.source_id).where(Xref.__table__.c.system == "b"))
    for day in (2, 3, 4):      # b imports our write and exports it again, day after day; pushes in between
        export(root, "b", "id,name,tax_id,active,updated_at", [f"{sid},Acme,91310000AB0001,0,2026-01-0{day} 08:00:00"])
        sync(engine, parts, "b")
        push(engine, parts)
    ht, ot = FieldHistory.__table__, Outbox.__table__
    with engine.connect() as conn:
        changes = conn.scalar(select(func.count()).select_from(ht).where(ht.c.field == "status"))
        writes = conn.scalar(select(func.count()).select_from(ot))
        status = conn.exec_driver_sql("SELECT status FROM customer").scalar()
    assert status == "blocked" and changes == 0 and writes == 1     # the create only: nothing bounced
