"""`deleted_when_missing: true`: a complete read (`sync run --full`, or a stream's first run) that ends ok
flags the linked records it did not return as deleted in that system, as if the connector had reported
them; never a record the read returned in any form, never after an incremental or failed read, and never
more at once than the safety limit. On SQLite and PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from hub.models import Outbox, Xref
from hub.store import make_engine

CONFIG = """\
store: {{url: "sqlite:///unused.db"}}
connectors:
  erp:
    type: file
    path: ./erp
    outbox: ./erp_outbox
    direction: {erp_direction}
    entities:
      customer: {{mapping: customer.yaml, batch_size: 2{customer_opts}}}
      order: {{mapping: order.yaml, batch_size: 2{order_opts}}}
  crm:
    type: file
    path: ./crm
    outbox: ./crm_outbox
    direction: both
    propagate_deletes: true
    entities:
      customer: {{mapping: customer.yaml}}
{matching}"""
ON = ", deleted_when_missing: true"
CUSTOMER_MAPPING = """\
source: customers*.csv
key: code
updated_at: updated_at
timezone: UTC
fields:
  code: code
  name: name
  credit_limit: {from: credit_limit, type: decimal}
"""
ORDER_MAPPING = """\
source: orders.csv
key: order_no
fields:
  order_no: order_no
  customer_id: {from: customer_no, ref: customer}
  total_amount: {from: total_amount, type: decimal}
"""


def configure(project: Path, customer_opts: str = ON, order_opts: str = "", erp_direction: str = "in",
              matching: str = "") -> None:
    (project / "triad.yaml").write_text(CONFIG.format(customer_opts=customer_opts, order_opts=order_opts,
                                                      erp_direction=erp_direction, matching=matching),
                                        encoding="utf-8")


def export(project: Path, codes: list[str], bad: tuple[str, ...] = (), name: str = "customers.csv") -> None:
    lines = ["code,name,credit_limit,updated_at"]
    lines += [f"{c},Customer {c},{'not a number' if c in bad else '100.00'},2024-01-01T00:00:00Z" for c in codes]
    (project / "erp" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    for var in ("TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    p = tmp_path / "p"
    for folder in ("erp", "crm"):
        (p / folder).mkdir(parents=True)
    (p / "customer.yaml").write_text(CUSTOMER_MAPPING, encoding="utf-8")
    (p / "order.yaml").write_text(ORDER_MAPPING, encoding="utf-8")
    configure(p)
    monkeypatch.chdir(p)
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    return p


def sync(*args: str, code: int = 0, entity: str = "customer") -> dict:
    r = CliRunner().invoke(main, ["--json", "sync", "run", "-c", "erp", "-e", entity, *args])
    assert r.exit_code == code, r.output
    (run,) = json.loads(r.stdout)["runs"]
    return run


def xrefs(store_url: str, entity: str = "customer") -> dict[str, str]:
    engine = make_engine(store_url)
    xt = Xref.__table__
    try:
        with engine.connect() as conn:
            return dict(conn.execute(select(xt.c.source_id, xt.c.status).where(
                xt.c.system == "erp", xt.c.entity == entity)).all())
    finally:
        engine.dispose()


def deleted_in(code: str) -> list[str] | None:
    r = CliRunner().invoke(main, ["--json", "records", "list", "customer", "--limit", "500"])
    (rec,) = [x for x in json.loads(r.stdout)["records"] if x["fields"]["code"] == code]
    return rec.get("deleted_in")


def deletes_queued(store_url: str) -> int:
    engine = make_engine(store_url)
    ot = Outbox.__table__
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(ot.c.id).where(ot.c.connector == "crm",
                                                           ot.c.operation == "delete")).all())
    finally:
        engine.dispose()


CODES = ["C1", "C2", "C3", "C4", "C5"]


def test_a_full_read_flags_exactly_the_rows_gone_from_the_export(project: Path, store_url: str):
    export(project, CODES)
    first = sync()
    assert (first["status"], first["created"], first["deleted"]) == ("ok", 5, 0)   # a first run: nothing to flag
    export(project, ["C1", "C2", "C3"])
    run = sync("--full")
    assert (run["status"], run["deleted"], run["error"]) == ("ok", 2, None)
    assert run["unchanged"] == 3                     # the rows still there were skipped unmapped, not flagged
    assert xrefs(store_url) == {"C1": "active", "C2": "active", "C3": "active", "C4": "deleted", "C5": "deleted"}
    assert deleted_in("C4") == ["erp"] and deleted_in("C5") == ["erp"] and deleted_in("C1") is None
    assert deletes_queued(store_url) == 2            # crm sets propagate_deletes
    again = sync("--full")                           # already flagged: nothing more
    assert (again["status"], again["deleted"]) == ("ok", 0)
    export(project, ["C1", "C2", "C3", "C4"])        # back in the export: active again
    back = sync("--full")
    assert back["deleted"] == 0 and xrefs(store_url)["C4"] == "active" and deleted_in("C4") is None


def test_a_row_present_but_failing_its_mapping_is_not_flagged(project: Path, store_url: str):
    export(project, CODES)
    sync()
    export(project, ["C1", "C2", "C3", "C5"], bad=("C3",))
    run = sync("--full")
    assert (run["status"], run["quarantined"], run["deleted"]) == ("ok", 1, 1)
    assert xrefs(store_url) == {"C1": "active", "C2": "active", "C3": "active", "C4": "deleted", "C5": "active"}
    again = sync("--full")                           # parked already: read again, still present
    assert (again["status"], again["deleted"]) == ("ok", 0)
    assert xrefs(store_url)["C3"] == "active"


def test_a_row_parked_for_an_unknown_reference_is_not_flagged(project: Path, store_url: str):
    configure(project, order_opts=ON)
    export(project, CODES)
    sync()
    orders = project / "erp" / "orders.csv"
    orders.write_text("order_no,customer_no,total_amount\nO1,C1,10\nO2,C2,20\nO3,C3,30\n", encoding="utf-8")
    assert sync(entity="order")["created"] == 3
    orders.write_text("order_no,customer_no,total_amount\nO1,C1,10\nO2,C9,20\n", encoding="utf-8")
    run = sync("--full", entity="order")
    assert (run["status"], run["quarantined"], run["deleted"]) == ("ok", 1, 1)
    assert xrefs(store_url, "order") == {"O1": "active", "O2": "active", "O3": "deleted"}


def test_an_incremental_read_flags_nothing(project: Path, store_url: str):
    export(project, CODES)
    sync()
    export(project, ["C1", "C2", "C3"])
    run = sync()                                     # from the cursor: not a complete read
    assert (run["status"], run["deleted"]) == ("ok", 0)
    assert set(xrefs(store_url).values()) == {"active"}


def test_a_read_that_fails_flags_nothing(project: Path, store_url: str):
    export(project, CODES)
    sync()
    export(project, ["C1", "C2", "C3"])
    (project / "erp" / "customers_z.csv").write_text("no_code,name\nx,y\n", encoding="utf-8")   # no key column
    run = sync("--full", code=1)
    assert (run["status"], run["deleted"]) == ("error", 0)
    assert set(xrefs(store_url).values()) == {"active"}


def test_a_row_without_a_key_stops_the_flagging(project: Path, store_url: str):
    export(project, CODES)
    sync()
    export(project, ["C1", "C2", "C3", ""])          # a row that may be any record
    run = sync("--full")
    assert (run["status"], run["deleted"]) == ("ok", 0)
    assert "no readable key" in run["error"]
    assert set(xrefs(store_url).values()) == {"active"}


def test_a_dry_run_counts_what_it_would_flag_and_writes_nothing(project: Path, store_url: str):
    export(project, CODES)
    sync()
    export(project, ["C1", "C2", "C3"])
    dry = sync("--full", "--dry-run")
    assert (dry["status"], dry["deleted"]) == ("ok", 2)
    assert set(xrefs(store_url).values()) == {"active"} and deletes_queued(store_url) == 0


def test_the_safety_limit_flags_nothing_when_too_many_are_missing(project: Path, store_url: str):
    codes = [f"C{n:03}" for n in range(60)]
    export(project, codes)
    assert sync()["created"] == 60
    export(project, codes[:9])                       # 51 gone: more than max(50, 10% of 60)
    run = sync("--full")
    assert (run["status"], run["deleted"]) == ("ok", 0)
    assert "51 of 60" in run["error"] and "deleted_when_missing_limit" in run["error"]
    assert set(xrefs(store_url).values()) == {"active"}
    configure(project, customer_opts=ON + ", deleted_when_missing_limit: 60")   # the admin says they are gone
    run = sync("--full")
    assert (run["status"], run["deleted"], run["error"]) == ("ok", 51, None)


def test_without_the_option_nothing_is_flagged(project: Path, store_url: str):
    configure(project, customer_opts="")
    export(project, CODES)
    sync()
    export(project, ["C1", "C2", "C3"])
    run = sync("--full")
    assert (run["status"], run["deleted"]) == ("ok", 0)
    assert set(xrefs(store_url).values()) == {"active"}


def test_the_option_is_checked(project: Path):
    configure(project, customer_opts=", deleted_when_missing_limit: 5")
    r = CliRunner().invoke(main, ["config", "validate"])
    assert r.exit_code == 2 and "deleted_when_missing_limit: set without deleted_when_missing" in r.output
    configure(project, customer_opts=", deleted_when_mising: true")
    r = CliRunner().invoke(main, ["config", "validate"])
    assert r.exit_code == 2 and "did you mean 'deleted_when_missing'" in r.output


@pytest.mark.parametrize("when", ["before", "during"])
def test_a_record_the_hub_created_there_and_never_read_back_is_not_flagged(project: Path, store_url: str, when: str):
    """Pushed before the read (a file outbox the ERP has not imported yet) or while it runs."""
    from hub.config import load_config
    from hub.push import push
    from hub.streams import Parts
    from hub.sync import run_stream
    configure(project, erp_direction="both")
    export(project, CODES)
    sync()
    (project / "crm" / "customers.csv").write_text("code,name,credit_limit,updated_at\n"
                                                   "X1,Customer X1,5.00,2024-01-01T00:00:00Z\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["--json", "sync", "run", "-c", "crm", "-e", "customer"])
    assert r.exit_code == 0, r.output
    engine, parts = make_engine(store_url), Parts(load_config(str(project / "triad.yaml")))
    pushed = push(engine, parts, ("erp",)) if when == "before" else []

    def push_meanwhile(name: str, entity: str, counts: dict) -> None:
        if not pushed:   # between two batches of the read: X1 is created in erp and linked
            pushed.extend(push(engine, parts, ("erp",)))

    try:
        run = run_stream(engine, parts, "erp", "customer", full=True, progress=push_meanwhile)
    finally:
        parts.close()
        engine.dispose()
    assert sum(p.counts["created"] for p in pushed if p.entity == "customer") == 1, [p.as_dict() for p in pushed]
    assert (run.status, run.counts["deleted"]) == ("ok", 0)
    assert xrefs(store_url)["X1"] == "active"


def test_a_table_without_a_change_stamp_is_read_in_full_every_run(project: Path, store_url: str):
    """The sql connector keeps no cursor for such a table: every run is complete, and finds deleted rows."""
    import sqlite3
    (project / "sql_customer.yaml").write_text("source: customers\nkey: code\nfields:\n  code: code\n  name: name\n",
                                               encoding="utf-8")
    (project / "triad.yaml").write_text(
        'store: {url: "sqlite:///unused.db"}\nconnectors:\n'
        '  erp: {type: sql, url: "sqlite:///source.db", direction: in,\n'
        '        entities: {customer: {mapping: sql_customer.yaml, deleted_when_missing: true}}}\n', encoding="utf-8")
    with sqlite3.connect(project / "source.db") as db:
        db.execute("CREATE TABLE customers (code TEXT PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?)", [(c, f"Customer {c}") for c in CODES])
    first = sync()
    assert (first["status"], first["created"], first["cursor"]) == ("ok", 5, None)
    with sqlite3.connect(project / "source.db") as db:
        db.execute("DELETE FROM customers WHERE code IN ('C2', 'C4')")
    run = sync()
    assert (run["status"], run["deleted"], run["unchanged"]) == ("ok", 2, 3)
    assert xrefs(store_url) == {"C1": "active", "C2": "deleted", "C3": "active", "C4": "deleted", "C5": "active"}


def test_a_read_that_returns_no_rows_at_all_flags_nothing(project: Path, store_url: str):
    """A missing or renamed export reads as an empty system: no record is flagged, whatever the limit."""
    export(project, CODES)
    sync()
    (project / "erp" / "customers.csv").rename(project / "customers.csv.tmp")
    run = sync("--full")
    assert (run["status"], run["deleted"]) == ("ok", 0)
    assert "no rows at all" in run["error"]
    assert set(xrefs(store_url).values()) == {"active"} and deletes_queued(store_url) == 0
    configure(project, customer_opts=ON + ", deleted_when_missing_limit: 5")
    assert sync("--full")["deleted"] == 0


def test_the_default_limit_never_flags_more_than_half_of_the_links(project: Path, store_url: str):
    export(project, CODES)
    sync()
    export(project, ["C1", "C2"])                    # 3 of 5 gone: within max(50, 10%), but more than half
    run = sync("--full")
    assert (run["status"], run["deleted"]) == ("ok", 0)
    assert "3 of 5" in run["error"] and "deleted_when_missing_limit" in run["error"]
    assert set(xrefs(store_url).values()) == {"active"} and deletes_queued(store_url) == 0
    configure(project, customer_opts=ON + ", deleted_when_missing_limit: 5")   # the admin says they are gone
    run = sync("--full")
    assert (run["status"], run["deleted"], run["error"]) == ("ok", 3, None)


def crm_ops(project: Path) -> list[tuple[str, str]]:
    """(operation, key) of every change written to crm's outbox folder."""
    ops = []
    for f in sorted((project / "crm_outbox").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            ops.append((row["__op__"], row.get("code")))
    return ops


def push_crm() -> None:
    r = CliRunner().invoke(main, ["--json", "sync", "push", "-c", "crm"])
    assert r.exit_code == 0, r.output


def test_a_record_back_in_its_system_sends_none_of_the_deletes_queued_for_it(project: Path, store_url: str):
    export(project, CODES)
    sync()
    r = CliRunner().invoke(main, ["--json", "sync", "run", "-c", "crm", "-e", "customer"])
    assert r.exit_code == 0, r.output                # crm read once: the hub creates records there
    push_crm()
    assert sorted(op for op, _ in crm_ops(project)) == ["create"] * 5
    export(project, ["C1", "C2", "C3"])
    assert sync("--full")["deleted"] == 2 and deletes_queued(store_url) == 2
    export(project, CODES)                           # back before the deletes went out
    back = sync("--full")
    assert back["status"] == "ok" and deleted_in("C4") is None and deleted_in("C5") is None
    push_crm()
    assert [op for op, _ in crm_ops(project) if op == "delete"] == []
    engine = make_engine(store_url)
    ot = Outbox.__table__
    try:
        with engine.connect() as conn:
            dropped = conn.execute(select(ot.c.status, ot.c.last_error).where(ot.c.operation == "delete")).all()
    finally:
        engine.dispose()
    assert [s for s, _ in dropped] == ["dropped", "dropped"]
    assert all("came back in erp" in (e or "") for _, e in dropped)


def outbox_rows(store_url: str) -> list[tuple[str, str, str, str | None]]:
    """(operation, status, code, last_error) of crm's outbox rows, oldest first."""
    from hub.models import Customer
    engine = make_engine(store_url)
    ot, ct = Outbox.__table__, Customer.__table__
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                select(ot.c.operation, ot.c.status, ct.c.code, ot.c.last_error)
                .join(ct, ct.c.id == ot.c.record_id).where(ot.c.connector == "crm")
                .order_by(ot.c.created_at, ot.c.id))]
    finally:
        engine.dispose()


def c4_deleted_in_erp(project: Path, store_url: str) -> None:
    """Five customers in erp and crm; C4 then gone from erp's export: its delete is queued for crm."""
    export(project, CODES)
    sync()
    r = CliRunner().invoke(main, ["--json", "sync", "run", "-c", "crm", "-e", "customer"])
    assert r.exit_code == 0, r.output
    push_crm()
    export(project, ["C1", "C2", "C3", "C5"])
    assert sync("--full")["deleted"] == 1 and deletes_queued(store_url) == 1


def test_a_delete_claimed_before_the_record_came_back_is_not_sent(project: Path, store_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch):
    from hub import push
    c4_deleted_in_erp(project, store_url)
    deliver = push._deliver

    def back_after_the_claim(engine, parts, name, entity, rows, report):  # noqa: ANN001, ANN202
        if any(r["operation"] == "delete" for r in rows):
            export(project, CODES)
            assert sync("--full")["status"] == "ok" and deleted_in("C4") is None
        return deliver(engine, parts, name, entity, rows, report)

    monkeypatch.setattr(push, "_deliver", back_after_the_claim)
    before = len(crm_ops(project))
    push_crm()
    assert crm_ops(project)[before:] == []
    (delete,) = [(status, err) for op, status, _, err in outbox_rows(store_url) if op == "delete"]
    assert delete[0] == "dropped" and "came back" in delete[1]


def test_a_delete_sent_while_the_record_came_back_puts_its_create_there_before_a_steward(
        project: Path, store_url: str, monkeypatch: pytest.MonkeyPatch):
    from connectors.file.connector import FileConnector
    c4_deleted_in_erp(project, store_url)
    write = FileConnector.write

    def back_while_sending(self, stream, changes):  # noqa: ANN001, ANN202
        if any(ch.delete for ch in changes):        # the delete is on its way: C4 is back in the export
            export(project, CODES)
            assert sync("--full")["status"] == "ok" and deleted_in("C4") is None
        return write(self, stream, changes)

    monkeypatch.setattr(FileConnector, "write", back_while_sending)
    before = len(crm_ops(project))
    push_crm()                                   # the delete landed: crm no longer holds C4
    monkeypatch.setattr(FileConnector, "write", write)
    assert crm_ops(project)[before:] == [("delete", "C4")]
    rows = outbox_rows(store_url)
    assert [(op, status) for op, status, code, _ in rows if code == "C4"] == [("upsert", "done"), ("delete", "done"),
                                                                             ("recreate", "dead")]
    why = rows[-1][3]
    assert "came back" in why and "triad outbox retry" in why    # before a steward, not sent by itself
    push_crm()
    assert crm_ops(project)[before:] == [("delete", "C4")]
    item = why.split("`triad outbox retry ")[1].split("`")[0]
    r = CliRunner().invoke(main, ["outbox", "retry", item])
    assert r.exit_code == 0, r.output
    push_crm()
    assert crm_ops(project)[before:] == [("delete", "C4"), ("create", "C4")]
    assert all(status == "done" for _, status, _, _ in outbox_rows(store_url))
    engine = make_engine(store_url)
    xt = Xref.__table__
    try:
        with engine.connect() as conn:
            links = conn.execute(select(xt.c.status).where(xt.c.system == "crm", xt.c.entity == "customer")).all()
    finally:
        engine.dispose()
    assert [s for (s,) in links] == ["active"] * 5     # C4 linked there again (files key it by its code again)
    push_crm()
    assert len(crm_ops(project)) == before + 2          # and created only once


TAX_MAPPING = CUSTOMER_MAPPING + "  tax_id: tax_id\n"


def tax_export(project: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["code,name,credit_limit,tax_id,updated_at"]
    lines += [f"{c},Customer {c},100.00,{t},2024-01-01T00:00:00Z" for c, t in rows]
    (project / "erp" / "customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def deleted_in_by_tax(tax_id: str) -> list[str] | None:
    r = CliRunner().invoke(main, ["--json", "records", "list", "customer", "--limit", "500"])
    (rec,) = [x for x in json.loads(r.stdout)["records"] if x["fields"].get("tax_id") == tax_id]
    return rec.get("deleted_in")


def test_a_record_still_held_by_another_row_of_the_system_is_not_deleted_there(project: Path, store_url: str):
    """Two erp rows with one tax id hold one golden record: it is deleted in erp when both are gone."""
    configure(project, matching="matching: {customer: {exact: [tax_id]}}\n")
    (project / "customer.yaml").write_text(TAX_MAPPING, encoding="utf-8")
    others = [(c, f"T{c}") for c in ["C2", "C3", "C4", "C5"]]
    tax_export(project, [("E1", "TE"), ("F1", "TF"), ("G1", "TG")] + others)
    assert sync()["created"] == 7
    tax_export(project, [("E1", "TE"), ("E2", "TE"), ("F1", "TF"), ("F2", "TF"), ("G1", "TG"), ("G2", "TG")]
               + others)
    assert sync("--full")["status"] == "ok"
    assert set(xrefs(store_url).values()) == {"active"} and len(xrefs(store_url)) == 10
    tax_export(project, [("E2", "TE"), ("F1", "TF"), ("F2", "TF"), ("G1", "TG"), ("G2", "TG")] + others)
    run = sync("--full")
    assert (run["status"], run["deleted"]) == ("ok", 1)
    assert xrefs(store_url)["E1"] == "deleted" and xrefs(store_url)["E2"] == "active"
    assert deleted_in_by_tax("TE") is None and deletes_queued(store_url) == 0
    tax_export(project, [("F1", "TF")] + others)    # E2 gone (the last); F2 gone, F1 still there; G1+G2 gone
    run = sync("--full")
    assert (run["status"], run["deleted"]) == ("ok", 4)
    assert deleted_in_by_tax("TE") == ["erp"] and deleted_in_by_tax("TG") == ["erp"]
    assert deleted_in_by_tax("TF") is None and deletes_queued(store_url) == 2
    tax_export(project, [("E3", "TE"), ("F1", "TF")] + others)   # a new row linked to it: back in erp
    assert sync("--full")["status"] == "ok"
    assert xrefs(store_url)["E3"] == "active" and deleted_in_by_tax("TE") is None
