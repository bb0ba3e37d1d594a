"""Cases an end-to-end audit found with three `file` connectors a, b, c (direction both): an owner's empty
value, a second value on an open manual conflict, and a record that comes back after a delete."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from hub.merge import FieldRule, Incoming, Rules, merge

from .minihub import MiniHub

T1, T2 = "2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00"
HEADER = "id,name,tax_id,email,phone,city,credit_limit,tier,updated_at"
MAPPING = """source: customers.csv
key: id
updated_at: updated_at
fields:
  name: name
  tax_id: {from: tax_id, transform: tax_id_cn}
  email: {from: email, transform: email}
  phone: {from: phone, transform: "phone_e164:CN"}
  city: city
  credit_limit: {from: credit_limit, type: decimal}
  tier: tier
"""
CONFIG = """store:
  url: sqlite:///triad.db
connectors:
""" + "".join(f"""  {s}:
    type: file
    path: ./exports/{s}
    direction: both
    entities: {{customer: {{mapping: mappings/{s}_customer.yaml}}}}
""" for s in "abc") + """survivorship:
  customer:
    default: most_recent
    priority: [a, b, c]
    fields:
      credit_limit: {owner: a}
      email: manual
      tier: {rule: priority}
matching:
  customer:
    exact: [tax_id]
"""
TAX = "91310000MA1FL4XQ14"


# --- the pure merge ---------------------------------------------------------------------------------

OWNER = Rules(default="most_recent", priority=("a", "b", "c"), fields={"credit_limit": FieldRule("owner", "a")})


def _writes(hub: MiniHub, field: str) -> list[tuple[str, object]]:
    return sorted((target, values[field]) for target, values in hub.outbox if field in values)


def test_an_owner_with_an_empty_value_erases_nothing_in_either_arrival_order():
    a = {"name": "Yuntu", "credit_limit": None}
    b = {"name": "Yuntu", "credit_limit": "300000"}
    ab, ba = MiniHub(OWNER), MiniHub(OWNER)
    ab.receive("a", a, T1)
    out = ab.receive("b", b, T2)
    assert "credit_limit" not in out.send_back           # not {"credit_limit": None}: b keeps its value
    assert [c.rule for c in out.conflicts] == ["owner"]  # the refused value can still be found
    ba.receive("b", b, T2)
    ba.receive("a", a, T1)
    assert ab.golden == ba.golden and ab.golden.get("credit_limit") is None
    assert _writes(ab, "credit_limit") == _writes(ba, "credit_limit") == []


def test_an_owner_value_is_still_written_back_over_a_non_owner_change():
    out = merge({"credit_limit": "1000"}, {"*": ["a", T1]}, {"credit_limit": "1000"},
                Incoming("b", {"credit_limit": "5"}, T2), OWNER)
    assert out.send_back == {"credit_limit": "1000"} and not out.changes


# --- through the pipeline ---------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path: Path, store_in_env: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "p"
    assert CliRunner().invoke(main, ["init", str(root)]).exit_code == 0
    for s in "abc":
        (root / "exports" / s).mkdir(parents=True, exist_ok=True)
        (root / "mappings").mkdir(exist_ok=True)
        (root / "mappings" / f"{s}_customer.yaml").write_text(MAPPING, encoding="utf-8")
        export(root, s)
    (root / "triad.yaml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(root)
    return root


def export(root: Path, system: str, *rows: str) -> None:
    (root / "exports" / system / "customers.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def row(sid: str, *, email: str = "ap@yuntu.cn", credit: str = "", ts: str = "2026-01-01T00:00:00Z") -> str:
    return f"{sid},Yuntu Tech,{TAX},{email},010-8888 2020,Beijing,{credit},Silver,{ts}"


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else {}


def only_record() -> dict:
    (rec,) = triad("records", "list", "customer")["records"]
    return rec


def queued() -> list[tuple[str, str, object]]:
    """(connector, field, value) of every pending write."""
    return sorted((i["connector"], f, v) for i in triad("outbox", "list", "--status", "pending")["items"]
                  for f, v in (i["fields"] or {}).items())


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_owner_empty_value_is_not_written_over_a_non_owner_in_the_pipeline(project: Path, order: str):
    export(project, "a", row("A2"))
    export(project, "b", row("B2", credit="300000"))
    for system in order:
        triad("sync", "run", "-c", system)
    rec = only_record()
    assert rec["fields"]["credit_limit"] is None
    assert [w for w in queued() if w[1] == "credit_limit"] == []   # b's 300000 is not erased with null
    (c,) = [c for c in triad("conflicts", "list")["conflicts"] if c["field"] == "credit_limit"]
    assert (c["status"], c["rule"], c["values"]["b"]) == ("auto", "owner", "300000")


def open_email_conflict(project: Path) -> dict:
    """a and b change one customer's email concurrently (a manual field): the open conflict."""
    export(project, "a", row("A2"))
    export(project, "b", row("B2"))
    triad("sync", "run")
    export(project, "a", row("A2", email="x@yuntu.cn", ts="2026-02-01T00:00:00Z"))
    export(project, "b", row("B2", email="y@yuntu.cn", ts="2026-02-01T00:00:00Z"))
    triad("sync", "run")
    (conflict,) = triad("conflicts", "list", "--status", "open")["conflicts"]
    return conflict


def test_a_new_value_on_an_open_manual_conflict_updates_it_and_take_uses_it(project: Path):
    first = open_email_conflict(project)
    assert first["values"] == {"b": "y@yuntu.cn", "a": "x@yuntu.cn"}

    export(project, "a", row("A2", email="x2@yuntu.cn", ts="2026-03-01T00:00:00Z"))
    triad("sync", "run", "-c", "a")
    (still,) = triad("conflicts", "list", "--status", "open")["conflicts"]
    assert still["id"] == first["id"] and still["values"] == {"b": "y@yuntu.cn", "a": "x2@yuntu.cn"}

    (done,) = triad("conflicts", "resolve", first["id"], "--take", "a")["resolved"]
    assert done["new"] == "x2@yuntu.cn"                     # a's value now, not the x it had when it opened
    assert only_record()["fields"]["email"] == "x2@yuntu.cn"
    assert {(t, v) for t, f, v in queued() if f == "email"} >= {("b", "x2@yuntu.cn"), ("c", "x2@yuntu.cn")}
    assert ("a", "email", "x2@yuntu.cn") not in queued()     # a holds the value taken from it already
    assert triad("conflicts", "list", "--status", "open")["conflicts"] == []


def test_a_value_an_open_conflict_held_can_be_found_after_its_system_replaced_it(project: Path):
    first = open_email_conflict(project)
    export(project, "b", row("B2", email="y2@yuntu.cn", ts="2026-03-01T00:00:00Z"))
    triad("sync", "run", "-c", "b")
    (still,) = triad("conflicts", "list", "--status", "open")["conflicts"]
    assert still["id"] == first["id"] and still["values"]["b"] == "y2@yuntu.cn"
    (kept,) = [c for c in triad("conflicts", "list", "--status", "auto")["conflicts"] if c["field"] == "email"]
    assert (kept["values"], kept["rule"], kept["record_id"]) == ({"b": "y@yuntu.cn"}, "manual", first["record_id"])
    shown = json.dumps(triad("records", "show", "customer", first["record_id"]), ensure_ascii=False)
    assert "y@yuntu.cn" in shown.replace("y2@yuntu.cn", "")


def test_a_system_catching_up_on_an_open_conflict_shows_in_it(project: Path):
    first = open_email_conflict(project)            # golden keeps a's x (a ranks first), b said y
    assert only_record()["fields"]["email"] == "x@yuntu.cn"
    export(project, "b", row("B2", email="x@yuntu.cn", ts="2026-03-01T00:00:00Z"))
    triad("sync", "run", "-c", "b")
    (still,) = triad("conflicts", "list", "--status", "open")["conflicts"]
    # what the steward is shown is what --take would apply: b holds x now
    assert still["values"] == {"a": "x@yuntu.cn", "b": "x@yuntu.cn"}
    (done,) = triad("conflicts", "resolve", first["id"], "--take", "b")["resolved"]
    assert done["new"] == "x@yuntu.cn"
    assert [c["values"] for c in triad("conflicts", "list", "--status", "auto")["conflicts"]
            if c["field"] == "email"] == [{"b": "y@yuntu.cn"}]


def test_two_records_of_one_system_on_one_golden_record_keep_both_values_in_their_conflicts(project: Path):
    export(project, "a", row("A2"), row("A3", email="other@yuntu.cn").replace(",Silver,", ",Gold,"))
    triad("sync", "run", "-c", "a")
    conflicts = {c["field"]: c for c in triad("conflicts", "list")["conflicts"]}
    # the golden side came from a too: keyed apart, not folded into a's entry
    assert conflicts["email"]["status"] == "open"
    assert conflicts["email"]["values"] == {"a": "other@yuntu.cn", "golden": "ap@yuntu.cn"}
    assert conflicts["tier"]["values"] == {"a": "Gold", "golden": "Silver"}


def test_take_uses_the_systems_current_value_when_the_conflict_holds_an_older_one(project: Path, store_url: str):
    c = open_email_conflict(project)
    from sqlalchemy import create_engine, text
    engine = create_engine(store_url)
    with engine.begin() as conn:   # a conflict stored before a's newer value reached it (an older hub)
        conn.execute(text("UPDATE source_state SET " + '"values"' + " = :v WHERE system = 'a'"),
                     {"v": json.dumps(dict(email="x3@yuntu.cn", tax_id=TAX))})
    engine.dispose()
    triad("conflicts", "resolve", c["id"], "--take", "a")
    assert only_record()["fields"]["email"] == "x3@yuntu.cn"


def test_a_record_back_after_a_delete_writes_history(project: Path):
    export(project, "a", row("A2"))
    export(project, "b", row("B2"))
    triad("sync", "run")
    (project / "exports" / "b" / "customers.deleted.csv").write_text("id\nB2\n", encoding="utf-8")
    triad("sync", "run", "-c", "b")
    rid = only_record()["id"]
    assert only_record()["deleted_in"] == ["b"]
    (project / "exports" / "b" / "customers.deleted.csv").unlink()
    export(project, "b", row("B2", ts="2026-02-01T00:00:00Z"))
    triad("sync", "run", "-c", "b")
    assert only_record()["deleted_in"] is None
    last = [h for h in triad("records", "history", "customer", rid)["history"] if h["field"] == "deleted_in"]
    assert [(h["old"], h["new"], h["reason"]) for h in last][-1] == (["b"], None, "undeleted")
    assert ("b" in [h["system"] for h in last])


def test_two_open_values_for_one_field_in_one_batch_make_one_conflict():
    from hub.pipeline import _Writes
    w = _Writes()
    base = {"record_id": "R", "field": "email", "status": "open", "rule": "manual"}
    w.add_conflict({**base, "id": "1", "values": {"b": "y", "a": "x"}, "timestamps": {"b": T1, "a": T1}})
    w.add_conflict({**base, "id": "2", "values": {"a": "x2"}, "timestamps": {"a": T2}})
    w.add_conflict({**base, "id": "3", "status": "auto", "rule": "owner", "values": {"b": "1"}, "timestamps": {}})
    assert [c["id"] for c in w.conflicts if c["status"] == "open"] == ["1"]
    assert w.conflicts[0]["values"] == {"b": "y", "a": "x2"} and w.conflicts[0]["timestamps"]["a"] == T2
    # a's earlier x is kept: an automatic conflict a's later value won
    assert [(c["values"], c["winner"]) for c in w.conflicts if c["status"] == "auto" and c["rule"] == "manual"] == [
        ({"a": "x"}, "a")]


def test_a_key_written_another_way_links_without_a_conflict_or_a_write_back(project: Path):
    # c's mapping takes the tax id as it comes: spaces and lower case, the same key once normalized
    plain = MAPPING.replace("{from: tax_id, transform: tax_id_cn}", "tax_id")
    (project / "mappings" / "c_customer.yaml").write_text(plain, encoding="utf-8")
    export(project, "a", row("A2"))
    spaced = "9131 0000 ma1f l4xq14"
    export(project, "c", row("C2").replace(TAX, spaced))
    triad("sync", "run", "-c", "a")
    before = queued()
    ran = triad("sync", "run", "-c", "c")["runs"][0]
    assert (ran["linked"], ran["created"]) == (1, 0)
    rec = only_record()
    assert rec["fields"]["tax_id"] == TAX and sorted(rec["xrefs"]) == ["a", "c"]
    assert [c for c in triad("conflicts", "list")["conflicts"] if c["field"] == "tax_id"] == []
    assert [w for w in queued() if w[1] == "tax_id" and w not in before] == []    # c's read queued no tax id
    again = triad("sync", "run", "-c", "c", "--full")["runs"][0]      # the same export read again: nothing
    assert (again["updated"], again["conflicts"], again["queued"]) == (0, 0, 0)
