"""A steward's `matches merge` / `unmerge` keep SPEC section 5: the field rules hold, every overwritten value
is kept in a conflict, a manual field waits for a steward, no open conflict is left on a merged-away record,
an unmerge keeps what a system changed after the merge, and a caller sees only the fields their roles allow.

Three `file` connectors erp / crm / shop (the shipped customer mapping); erp's E1 and crm's C1 are the same
tea company written two ways, close enough for a match candidate but not for a link.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

HEADER = ("customer_no,name,type,tax_id,email,phone,country,province,city,address,postal_code,currency,"
          "credit_limit,payment_terms,status,tier,owner,updated_at")
CONFIG = """store: {url: "sqlite:///triad.db"}
connectors:
  erp: {type: file, path: ./erp, direction: both, entities: [customer]}
  crm: {type: file, path: ./crm, direction: both, entities: [customer]}
  shop: {type: file, path: ./shop, direction: both, entities: [customer]}
survivorship:
  customer:
    default: most_recent
    priority: [erp, crm, shop]
    fields:
      credit_limit: {owner: erp}
      email: manual
      tier: manual
matching:
  customer:
    exact: [tax_id]
    fuzzy: {fields: {name: 0.6, city: 0.2, phone: 0.2}, link_at: 0.999, review_at: 0.5}
roles:
  steward: {entities: [customer, order], fields_denied: [credit_limit], can: [read, resolve, merge, retry]}
  viewer: {entities: [customer, order], can: [read]}
users:
  alice: [admin]
  bob: [steward]
  carol: [viewer]
"""
TAX = "91310000MA1FL4XQ01"
PHONE, EDITED_PHONE = "0571-8777 4040", "0571-8777 9999"


def row(code: str, name: str, *, tax: str = "", email: str = "tea@xihu-tea.cn", phone: str = PHONE,
        tier: str = "", credit: str = "", ts: str = "2026-11-03 11:00:00") -> str:
    return (f"{code},{name},company,{tax},{email},{phone},CN,浙江,杭州,西湖区龙井路8号,310000,CNY,{credit},"
            f",active,{tier},,{ts}")


ERP = row("E1", "杭州西湖茶业有限公司", tier="VIP", credit="80000")
CRM = row("C1", "杭州西湖茶叶有限公司", tier="Bronze", ts="2026-11-06 04:00:00")


def export(root: Path, system: str, *rows: str) -> None:
    (root / system / "customers.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project on SQLite and on PostgreSQL."""
    return _project(tmp_path, store_url, monkeypatch)


@pytest.fixture
def lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project on SQLite only (for what does not depend on the store)."""
    return _project(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", monkeypatch)


def _project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    for var in ("TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "p"
    for system in ("erp", "crm", "shop"):
        (root / system).mkdir(parents=True)
        export(root, system)
    export(root, "erp", ERP)
    export(root, "crm", CRM)
    (root / "triad.yaml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(root)
    triad("alice", "db", "upgrade", json_out=False)
    return root


def triad(user: str, *args: str, code: int = 0, json_out: bool = True):  # noqa: ANN201
    r = CliRunner().invoke(main, ["--user", user, *(["--json"] if json_out else []), *args])
    assert r.exit_code == code, r.output
    if json_out and code == 0 and r.stdout.strip().startswith("{"):
        return json.loads(r.stdout)
    return r.output


def record_of(system: str, source_id: str) -> dict:
    return next(r for r in triad("alice", "records", "list", "customer")["records"]
                if source_id in r["xrefs"].get(system, []))


def candidate() -> dict:
    (c,) = triad("alice", "matches", "list")["candidates"]
    return c


def writes(root: Path, system: str) -> list[dict]:
    """What the hub wrote to ``system`` and the system has not taken in yet (its outbox folder)."""
    return [json.loads(line) for f in sorted((root / system / "outbox").glob("customer-*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


def take_in(root: Path, system: str, ts: str) -> None:
    """The system imports the hub's writes and exports its records again, stamped ``ts``."""
    for change in writes(root, system):
        edit(root, system, change["customer_no"], ts, **{k: v for k, v in change.items() if not k.startswith("__")})
    for f in (root / system / "outbox").glob("customer-*.jsonl"):
        f.rename(f.with_suffix(".done"))


def edit(root: Path, system: str, code: str, ts: str, **fields: object) -> None:
    """Someone changes record ``code`` in ``system`` (its next export shows it, stamped ``ts``)."""
    path = root / system / "customers.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    (target,) = [r for r in rows if r["customer_no"] == code]
    target.update({k: "" if v is None else str(v) for k, v in fields.items() if k in target}, updated_at=ts)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, HEADER.split(","))
        out.writeheader()
        out.writerows(rows)


def conflicts(status: str | None = None) -> list[dict]:
    return triad("alice", "conflicts", "list", *(["--status", status] if status else []))["conflicts"]


# --- the field rules hold in a merge ---------------------------------------------------------------

def test_a_merge_opens_a_manual_conflict_and_keeps_every_overwritten_value(project: Path):
    triad("alice", "sync", "run")
    c = candidate()
    merged = triad("bob", "matches", "merge", c["id"])
    survivor = merged["winner"]
    opened = {x["field"]: x for x in merged["conflicts"]}
    assert (opened["tier"]["status"], opened["tier"]["rule"]) == ("open", "manual")
    assert opened["tier"]["values"] == {"erp": "VIP", "crm": "Bronze"}
    assert opened["name"]["status"] == "auto"          # most_recent: crm's name won, erp's is kept
    assert set(opened["name"]["values"].values()) == {"杭州西湖茶业有限公司", "杭州西湖茶叶有限公司"}
    (held,) = conflicts("open")
    assert (held["record_id"], held["field"]) == (survivor, "tier")
    assert record_of("crm", "C1")["fields"]["tier"] == "VIP"   # the golden value stays until decided

    triad("alice", "sync", "push")
    sent = writes(project, "erp") + writes(project, "crm")
    assert sent and all("tier" not in w for w in sent)       # not propagated while the conflict is open

    triad("bob", "conflicts", "resolve", held["id"], "--take", "crm")
    triad("alice", "sync", "push")
    assert {w["customer_no"]: w.get("tier") for w in writes(project, "erp") + writes(project, "crm")
            if "tier" in w} == {"E1": "Bronze"}             # crm holds the value taken from it already


def test_a_merged_away_records_open_conflicts_move_to_the_survivor_and_come_back_on_unmerge(project: Path):
    export(project, "crm", row("C1", "杭州西湖茶叶有限公司", tax=TAX, tier="Bronze", ts="2026-11-06 04:00:00"))
    export(project, "shop", row("S1", "杭州西湖茶叶有限公司", tax=TAX, email="boss@xihu-tea.cn", tier="Gold",
                                ts="2026-11-07 10:00:00"))
    triad("alice", "sync", "run")
    loser = record_of("crm", "C1")["id"]
    before = {x["id"]: x for x in conflicts() if x["record_id"] == loser}
    assert {x["field"] for x in before.values() if x["status"] == "open"} == {"email", "tier"}

    merged = triad("bob", "matches", "merge", candidate()["id"])
    survivor = merged["winner"]
    assert loser == merged["loser"]
    now = {x["id"]: x for x in conflicts()}
    assert set(before) <= set(now)               # every one of them is listed: none is left open on the tombstone
    assert not [x for x in now.values() if x["record_id"] == loser and x["status"] == "open"]
    email = next(x for x in before.values() if x["field"] == "email")
    assert (now[email["id"]]["record_id"], now[email["id"]]["status"]) == (survivor, "open")   # moved
    tier = next(x for x in before.values() if x["field"] == "tier")
    assert now[tier["id"]]["status"] == "resolved"                                              # superseded
    (open_tier,) = [x for x in now.values() if x["field"] == "tier" and x["status"] == "open"]
    assert open_tier["record_id"] == survivor
    assert open_tier["values"] == {"erp": "VIP", "crm": "Bronze", "shop": "Gold"}              # nothing lost
    shown = triad("alice", "conflicts", "show", tier["id"])
    assert survivor in shown["note"] and "superseded" in shown["note"]

    triad("bob", "matches", "unmerge", merged["merge_id"])
    after = {x["id"]: x for x in conflicts()}
    for cid, was in before.items():
        assert {k: after[cid][k] for k in ("record_id", "status", "values")} == \
               {k: was[k] for k in ("record_id", "status", "values")}
    assert after[open_tier["id"]]["status"] == "resolved"    # the merge's own conflict is withdrawn
    assert [x["record_id"] for x in conflicts("open")] == [loser, loser]


def test_resolving_a_moved_conflict_updates_the_survivor_and_creates_nothing(lite: Path):
    export(lite, "crm", row("C1", "杭州西湖茶叶有限公司", tax=TAX, tier="VIP", ts="2026-11-06 04:00:00"))
    export(lite, "shop", row("S1", "杭州西湖茶叶有限公司", tax=TAX, email="boss@xihu-tea.cn", tier="VIP",
                                ts="2026-11-07 10:00:00"))
    triad("alice", "sync", "run")
    merged = triad("bob", "matches", "merge", candidate()["id"])
    triad("alice", "sync", "push")
    (email,) = conflicts("open")
    assert (email["field"], email["record_id"]) == ("email", merged["winner"])
    triad("bob", "conflicts", "resolve", email["id"], "--take", "shop")
    pushed = triad("alice", "sync", "push")["pushes"]
    assert sum(p["created"] for p in pushed) == 0
    assert {w["customer_no"] for w in writes(lite, "erp") + writes(lite, "crm") + writes(lite, "shop")
            if w.get("email") == "boss@xihu-tea.cn"} == {"E1", "C1"}       # shop holds it already


# --- unmerge keeps what a system changed after the merge ------------------------------------------

def _merged_then_edited_in_crm(project: Path) -> dict:
    triad("alice", "sync", "run")
    merged = triad("bob", "matches", "merge", candidate()["id"])
    triad("alice", "sync", "push")
    for system in ("erp", "crm"):
        take_in(project, system, "2026-11-08 10:00:00")
    triad("alice", "sync", "run")
    edit(project, "crm", "C1", "2026-11-09 10:00:00", phone=EDITED_PHONE)
    triad("alice", "sync", "run")
    assert record_of("crm", "C1")["fields"]["phone"] == "+8657187779999"   # an informed change of the survivor
    return merged


def test_unmerge_force_keeps_a_source_edit_made_after_the_merge(project: Path):
    merged = _merged_then_edited_in_crm(project)
    out = triad("bob", "matches", "unmerge", merged["merge_id"], code=2, json_out=False)
    assert "phone" in out and "--force" in out
    undone = triad("bob", "matches", "unmerge", merged["merge_id"], "--force")
    assert undone["source_changes"] == {"crm:C1": {"phone": "+8657187779999"}}
    triad("alice", "sync", "push")

    assert all(w.get("phone", "+8657187779999") == "+8657187779999" for w in writes(project, "crm"))
    loser, survivor = record_of("crm", "C1"), record_of("erp", "E1")
    assert loser["id"] == merged["loser"] and loser["fields"]["phone"] == "+8657187779999"
    # the survivor had crm's edit only through the merge: it and erp go back to erp's own number
    assert survivor["fields"]["phone"] == "+8657187774040"
    assert [w["phone"] for w in writes(project, "erp") if "phone" in w] == []   # erp never left its number
    assert not [w for w in writes(project, "crm") if w["__op__"] != "update"]   # nothing created twice


def test_unmerge_is_refused_when_a_record_given_back_was_deleted_since(lite: Path):
    triad("alice", "sync", "run")
    merged = triad("bob", "matches", "merge", candidate()["id"])
    (lite / "crm" / "customers.deleted.csv").write_text("customer_no\nC1\n", encoding="utf-8")
    triad("alice", "sync", "run")
    out = triad("bob", "matches", "unmerge", merged["merge_id"], "--force", code=2, json_out=False)
    assert "deleted in crm" in out
    assert triad("alice", "matches", "list", "--merges")["merges"][0]["status"] == "merged"


# --- candidates, roles, output ---------------------------------------------------------------------

def test_a_rejected_candidate_is_not_merged(lite: Path):
    triad("alice", "sync", "run")
    c = candidate()
    triad("bob", "matches", "reject", c["id"])
    out = triad("bob", "matches", "merge", c["id"], code=2, json_out=False)
    assert "rejected" in out
    assert [x["id"] for x in triad("alice", "matches", "list", "--status", "rejected")["candidates"]] == [c["id"]]
    assert triad("alice", "matches", "list", "--merges")["merges"] == []


def test_merge_and_unmerge_reports_hide_the_fields_a_role_denies(lite: Path):
    triad("alice", "sync", "run")
    crm_record, erp_record = record_of("crm", "C1")["id"], record_of("erp", "E1")["id"]
    merged = triad("bob", "matches", "merge", crm_record, erp_record)   # credit_limit comes from erp's record
    assert "credit_limit" not in merged["changed"] and merged["hidden_fields"] == ["credit_limit"]
    assert "80000" not in json.dumps(merged)
    human = triad("bob", "matches", "unmerge", merged["merge_id"], json_out=False)
    assert "80000" not in human and "credit_limit" not in human
    again = triad("alice", "matches", "merge", crm_record, erp_record)
    assert again["changed"]["credit_limit"]["new"] == "80000"
    undone = triad("bob", "matches", "unmerge", again["merge_id"])
    assert "credit_limit" not in undone["restored"] and "80000" not in json.dumps(undone)


def test_matches_list_shows_the_records_ids_as_records_list_does(lite: Path):
    triad("alice", "sync", "run")
    out = triad("alice", "matches", "list", json_out=False)
    assert "A in crm:C1" in out and "B in erp:E1" in out and "{'" not in out
