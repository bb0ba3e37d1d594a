"""Hostile command-line arguments: ids with SQL meta-characters, traversal and NUL get a clean "not
found" (exit 1), odd `--where` values are compared literally or refused (exit 2), unknown entities are
bad usage (exit 2), and data that looks like terminal markup is printed, never interpreted."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import SQL_ID, Project, clean

HOSTILE_IDS = [SQL_ID, "%", "_", "../../etc/passwd", "/etc/passwd", "a\\b", "\x00", "x" * 10_000, "",
               "01J9Z' OR '1'='1"]
NOT_FOUND = {
    ("records", "show", "customer"): "no customer",
    ("conflicts", "show"): "no conflict",
    ("conflicts", "resolve"): "no conflict",
    ("quarantine", "show"): "no quarantine item",
    ("quarantine", "drop"): "no quarantine item",
    ("outbox", "retry"): "no outbox item",
    ("outbox", "drop"): "no outbox item",
    ("runs", "show"): "no run",
    ("flows", "show"): "no flow run",
}


@pytest.fixture(scope="module")
def synced(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The sample project synced once: records, conflicts, quarantine, outbox (shared, read mostly)."""
    mp = pytest.MonkeyPatch()
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        mp.delenv(var, raising=False)
    root = tmp_path_factory.mktemp("synced") / "p"
    shutil.copytree(template, root)
    project = Project(root)
    try:
        project.sync(codes=(0,))
        yield project
    finally:
        mp.undo()


def _tables_intact(project: Project) -> None:
    for table in ("customer", "order", "xref", "conflict", "quarantine", "outbox", "audit_log"):
        assert project.scalar("select count(*) from sqlite_master where type='table' and name=:t", t=table) == 1
    assert project.scalar("select count(*) from customer") == 5


@pytest.mark.parametrize("command", sorted(NOT_FOUND), ids=lambda c: " ".join(c))
def test_hostile_ids_are_not_found(synced: Project, command: tuple[str, ...]):
    for hostile in HOSTILE_IDS:
        extra = ["--keep"] if command[-1] == "resolve" else []
        out = clean(synced.triad(*command, hostile, *extra), 1)
        assert NOT_FOUND[command] in out.stderr, out.describe()
    _tables_intact(synced)


@pytest.mark.parametrize("where,expected", [
    (f"code={SQL_ID}", 0), ("code=%", 0), ("code=_", 0), ("code=C%", 0), ("code=\x00", 0), ("code=" + "x" * 50_000, 0),
    ("code==C0001", 0), ("id=" + SQL_ID, 0), ("code=C0001", 1), ("name= 上海星海贸易有限公司", 0),
    ("credit_limit=1e999999", 0), ("credit_limit=-0", 0)])
def test_where_values_are_compared_literally(synced: Project, where: str, expected: int):
    assert len(synced.customers(where)) == expected
    _tables_intact(synced)


@pytest.mark.parametrize("where", ["code", "=C0001", "nosuch=1", f"{SQL_ID}=1", "lines=x", "deleted_in=x",
                                   "merged_into=x", "updated_at=2026"])
def test_where_with_a_bad_shape_or_unknown_field_is_usage_error(synced: Project, where: str):
    out = clean(synced.triad("records", "list", "customer", "--where", where), 2)
    assert "--where" in out.stderr


@pytest.mark.parametrize("where", ["credit_limit=abc", "credit_limit=1,5", "created_at=yesterday"])
def test_where_value_of_the_wrong_type_is_usage_error(synced: Project, where: str):
    out = clean(synced.triad("records", "list", "customer", "--where", where), 2)
    assert where.split("=")[0] in out.stderr


@pytest.mark.parametrize("args", [
    ["records", "list", "nosuch"], ["records", "list", SQL_ID], ["records", "list", "../customer"],
    ["records", "show", "nosuch", "x"], ["records", "show", "", "x"], ["records", "history", "nosuch", "x"],
    ["conflicts", "list", "--entity", "nosuch"], ["quarantine", "list", "--entity", SQL_ID],
    ["records", "history", "customer", "x", "--field", SQL_ID], ["conflicts", "list", "--status", "bogus"],
    ["conflicts", "list", "--older-than", "forever"], ["records", "list", "customer", "--limit", "lots"]],
    ids=lambda a: " ".join(a)[:40])
def test_unknown_entities_fields_and_options_are_usage_errors(synced: Project, args: list[str]):
    clean(synced.triad(*args), 2)
    _tables_intact(synced)


@pytest.mark.parametrize("option", ["--limit", "--offset"])
def test_out_of_range_paging_is_usage_error(synced: Project, option: str):
    clean(synced.triad("records", "list", "customer", option, "99999999999999999999"), 2)


def test_retry_of_an_unknown_quarantine_id_is_not_found(synced: Project):
    out = clean(synced.triad("quarantine", "retry", SQL_ID), 1)
    assert "no quarantine item" in out.stderr


def test_hostile_user_names_are_refused_or_stored_literally(project: Project):
    clean(project.triad("--user", SQL_ID, "records", "list", "customer"), 0)   # single-user mode: anyone is admin
    clean(project.triad("--user", "alice", "users", "add", "alice"), 0)        # the first user: an admin
    out = clean(project.triad("--user", "alice", "users", "add", SQL_ID), 2)     # a name has no spaces
    assert "user name" in out.stderr
    assert SQL_ID not in {u["name"] for u in project.ok("--user", "alice", "users", "list")["users"]}
    out = clean(project.triad("--user", "nobody", "records", "list", "customer"), 2)
    assert "permission denied" in out.stderr
    clean(project.triad("--user", "alice", "users", "grant", SQL_ID, "'; DROP TABLE users;--"), 1, 2)
    assert project.ok("audit", "verify")["ok"] is True


# --- terminal markup in data and arguments (rich renders `[...]` as style) ---------------------------

MARKUP = ["[/x]", "[bold red]SPOOF[/bold red]", "[link=file:///etc/passwd]click[/link]"]


@pytest.fixture
def marked(project: Project) -> Project:
    header = "customer_no,name,type,tax_id,email,phone,country,province,city,address,postal_code,currency," \
             "credit_limit,payment_terms,status,updated_at\n"
    rows = "".join(f"M{n},\"{text}\",company,,m{n}@bad.example.cn,,CN,,,,,CNY,100,NET30,active,2026-11-01 09:00:00\n"
                   for n, text in enumerate(MARKUP))
    (project.erp / "customers.csv").write_text(header + rows, encoding="utf-8")
    assert project.sync("-c", "erp", "-e", "customer", codes=(0,))[("erp", "customer")]["created"] == 3
    return project


def test_markup_in_data_is_kept_in_json(marked: Project):
    assert {c["fields"]["name"] for c in marked.customers()} == set(MARKUP)


def test_markup_in_data_is_printed_literally(marked: Project):
    out = clean(marked.triad("records", "list", "customer"), 0)
    for text in MARKUP:
        assert text in out.stdout
    rid = marked.customers("code=M0")[0]["id"]
    clean(marked.triad("records", "show", "customer", rid), 0)
    clean(marked.triad("records", "history", "customer", rid), 0)


def test_markup_in_an_id_argument_is_printed_literally(synced: Project):
    out = clean(synced.triad("records", "history", "customer", "[/x]"), 1)
    assert "no customer [/x]" in out.output

