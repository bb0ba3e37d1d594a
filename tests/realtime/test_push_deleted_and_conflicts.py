"""Delivery respects deletes and open manual conflicts (SPEC §5), three `file` systems a, b, c (all both ways).

A system whose link to a record is deleted gets no create and no update for it; a propagated delete marks
the target's link deleted; a field with an open manual conflict is not written until it is resolved.
"""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from cli import main
from hub.config import load_config
from hub.models import Conflict, Outbox, Xref
from hub.push import push
from hub.store import make_engine
from hub.streams import Parts
from hub.sync import run_stream

from .helpers import write_project

MAPPING = """source: customers.csv
key: id
updated_at: updated_at
fields:
  name: name
  tax_id: tax_id
  email: {from: email, transform: email}
  city: city
"""
HEADER = "id,name,tax_id,email,city,updated_at"


def make_hub(tmp_path: Path, url: str, c_extra: str = ""):
    root = tmp_path / "p"
    (root / "mappings").mkdir(parents=True)
    conns = []
    for s in "abc":
        (root / "exports" / s).mkdir(parents=True)
        (root / "mappings" / f"{s}.yaml").write_text(MAPPING, encoding="utf-8")
        extra = c_extra if s == "c" else ""
        conns.append(f"  {s}: {{type: file, path: ./exports/{s}, direction: both{extra}, "
                     f"entities: {{customer: {{mapping: mappings/{s}.yaml}}}}}}")
    cfg_path = write_project(root, "connectors:\n" + "\n".join(conns) + """
survivorship: {customer: {default: most_recent, priority: [a, b, c], fields: {email: manual}}}
matching: {customer: {exact: [tax_id]}}
""", url)
    cfg = load_config(str(cfg_path))
    return root, cfg_path, make_engine(cfg.store.url), Parts(cfg)


def export(root: Path, system: str, rows: list[str], deleted: list[str] | None = None) -> None:
    folder = root / "exports" / system
    (folder / "customers.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    if deleted is not None:
        (folder / "customers.deleted.csv").write_text("\n".join(["id", *deleted]) + "\n", encoding="utf-8")


def sync(engine, parts: Parts, system: str):
    report = run_stream(engine, parts, system, "customer")
    assert report.status == "ok", report.error
    return report


def sent(root: Path, system: str) -> list[dict]:
    """Every change written to the system's outbox folder, oldest file first."""
    out = []
    for path in sorted((root / "exports" / system / "outbox").glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def xref_status(engine, system: str) -> list[str]:
    xt = Xref.__table__
    with engine.connect() as conn:
        return list(conn.scalars(select(xt.c.status).where(xt.c.system == system)))


def outbox_rows(engine, system: str) -> list:
    ot = Outbox.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(ot.c.status, ot.c.last_error, ot.c["fields"], ot.c.operation)
                                 .where(ot.c.connector == system).order_by(ot.c.created_at, ot.c.id)))


def seed(root: Path, engine, parts: Parts) -> None:
    """One customer known to all three systems, the outbox drained."""
    for s in "abc":
        export(root, s, [f"{s}1,Acme,91310000AB0001,acme@x.cn,Shanghai,2026-01-01 08:00:00"])
        sync(engine, parts, s)
    push(engine, parts)
    assert sorted(xref_status(engine, "b")) == ["active"]


def test_a_record_deleted_in_a_system_is_not_created_or_updated_there(tmp_path: Path, store_url: str):
    root, cfg_path, engine, parts = make_hub(tmp_path, store_url)
    seed(root, engine, parts)
    before = len(sent(root, "b"))
    export(root, "b", [], deleted=["b1"])
    sync(engine, parts, "b")
    assert xref_status(engine, "b") == ["deleted"]

    export(root, "a", ["a1,Acme Renamed,91310000AB0001,acme@x.cn,Shanghai,2026-01-02 08:00:00"])
    sync(engine, parts, "a")
    reports = {r.connector: r for r in push(engine, parts)}
    assert len(sent(root, "b")) == before                       # no create, no update for b
    assert [c["name"] for c in sent(root, "c")][-1] == "Acme Renamed"
    assert xref_status(engine, "b") == ["deleted"]              # the link stays deleted: no loop
    assert reports["b"].counts["skipped"] == 1 and reports["b"].counts["written"] == 0
    row = outbox_rows(engine, "b")[-1]
    assert row.status == "dropped" and "deleted in b" in row.last_error

    listed = CliRunner().invoke(main, ["--config", str(cfg_path), "--json", "outbox", "list", "--connector", "b",
                                       "--status", "dropped"])
    assert listed.exit_code == 0, listed.output
    assert "deleted in b" in json.loads(listed.stdout)["items"][0]["last_error"]


def test_a_propagated_delete_marks_the_target_link_deleted(tmp_path: Path, store_url: str):
    root, _, engine, parts = make_hub(tmp_path, store_url, c_extra=", propagate_deletes: true")
    seed(root, engine, parts)
    export(root, "a", [], deleted=["a1"])
    sync(engine, parts, "a")
    push(engine, parts)
    assert sent(root, "c")[-1]["__op__"] == "delete"
    assert xref_status(engine, "c") == ["deleted"]
    n = len(sent(root, "c"))

    export(root, "b", ["b1,Acme B,91310000AB0001,acme@x.cn,Shanghai,2026-01-03 08:00:00"])
    sync(engine, parts, "b")
    push(engine, parts)
    assert len(sent(root, "c")) == n                            # told to delete it: no update afterwards
    assert outbox_rows(engine, "c")[-1].status == "dropped"


def test_a_field_with_an_open_manual_conflict_is_held(tmp_path: Path, store_url: str):
    root, cfg_path, engine, parts = make_hub(tmp_path, store_url)
    seed(root, engine, parts)
    n_b, n_c = len(sent(root, "b")), len(sent(root, "c"))
    export(root, "a", ["a1,Acme,91310000AB0001,a-new@x.cn,Shanghai,2026-01-02 08:00:00"])
    sync(engine, parts, "a")                                    # email queued to b and c
    export(root, "b", ["b1,Acme B,91310000AB0001,b-new@x.cn,Shanghai,2026-01-02 09:00:00"])
    sync(engine, parts, "b")                                    # concurrent email: an open manual conflict
    ct = Conflict.__table__
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ct).where(ct.c.status == "open",
                                                                      ct.c.field == "email")) == 1
    push(engine, parts)
    assert not any("email" in c for c in sent(root, "b")[n_b:])  # held while the conflict is open
    assert not any("email" in c for c in sent(root, "c")[n_c:])
    assert [c["name"] for c in sent(root, "c")[n_c:]] == ["Acme B"]   # the other field still goes out
    held = [r for r in outbox_rows(engine, "c") if r.fields == {"email": "a-new@x.cn"}]
    assert held and held[0].status == "dropped" and "open manual conflict" in held[0].last_error

    with engine.connect() as conn:
        cid = conn.scalar(select(ct.c.id).where(ct.c.status == "open"))
    r = CliRunner().invoke(main, ["--config", str(cfg_path), "conflicts", "resolve", cid, "--take", "b"])
    assert r.exit_code == 0, r.output
    push(engine, parts)
    assert sent(root, "c")[-1]["email"] == "b-new@x.cn"         # the decision goes out once resolved
    assert sent(root, "a")[-1]["email"] == "b-new@x.cn"
