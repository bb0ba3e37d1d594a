"""Edges of the admin commands: token lifetimes, user names, config users, the last admin,
time filters, a removed audit tail and the targets of audited refusals."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, insert, select

from cli import main
from hub.context import Context
from hub.errors import UsageError
from hub.models import AuditLog, Principal, PrincipalRole, StreamState
from hub.types import utcnow

CONFIG_USERS = """
roles:
  steward_sales: {entities: [customer, order], fields_denied: [credit_limit], can: [read, resolve, merge]}
  finance: {entities: [payment, contract, customer], can: [read, resolve]}
users:
  alice: [admin]
  bob: [steward_sales]
"""


def _init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, users: str | None) -> Path:
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    monkeypatch.delenv("TRIAD_USER", raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "p")]).exit_code == 0
    cfg = tmp_path / "p" / "triad.yaml"
    if users is not None:
        cfg.write_text(cfg.read_text(encoding="utf-8").split("\nroles:")[0] + users, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """alice (admin) and bob (steward_sales) in triad.yaml, on SQLite."""
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    return _init(tmp_path, monkeypatch, CONFIG_USERS)


@pytest.fixture
def single(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No users anywhere: single-user mode, on SQLite."""
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    return _init(tmp_path, monkeypatch, None)


def run(user: str, *args: str, code: int = 0):  # noqa: ANN201
    r = CliRunner().invoke(main, ["--user", user, "--json", *args])
    assert r.exit_code == code, (args, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception   # no traceback
    return json.loads(r.stdout) if code == 0 and r.stdout.strip() else r.output


# --- 1. token lifetimes --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["0d", "0h", "0s", "0.0000001s"])
def test_a_zero_lifetime_is_refused_not_taken_for_never(configured: Path, text: str):
    out = run("alice", "tokens", "create", "--user", "bob", "--expires", text, code=2)
    assert "--expires" in out and "more than 0" in out
    assert run("alice", "tokens", "list", "--all")["tokens"] == []


@pytest.mark.parametrize("text", ["99999999999d", "9" * 400 + "d", "36501d"])
def test_a_lifetime_beyond_the_bound_is_refused(configured: Path, text: str):
    out = run("alice", "tokens", "create", "--user", "bob", "--expires", text, code=2)
    assert "too far in the future" in out and "36500 days" in out


def test_lifetimes_that_work():
    from hub.tokens import parse_ttl
    assert parse_ttl("30d") == timedelta(days=30) and parse_ttl("1s") == timedelta(seconds=1)
    assert parse_ttl("never") is None and parse_ttl(None) is None
    with pytest.raises(UsageError, match="expected a positive duration"):
        parse_ttl("-3h")


# --- 2. user names and the first user --------------------------------------------------------------

@pytest.mark.parametrize("name", ["", "a b", "tab\there", "new\nline", " alice", "x" * 129, "bell\x07"])
def test_a_bad_user_name_is_refused(single: Path, name: str):
    out = run("root", "users", "add", name, code=2)
    assert "user name" in out and "printable characters without spaces" in out
    with Context().engine().connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Principal.__table__)) == 0


def test_good_names_pass_and_the_first_user_makes_its_adder_admin(single: Path):
    run("root", "users", "add", "erp-sync@example.com")
    run("root", "users", "add", "王芳")
    users = {u["name"]: u["roles"] for u in run("root", "users", "list")["users"]}
    assert users == {"erp-sync@example.com": [], "王芳": [], "root": ["admin"]}


def test_a_store_with_principals_is_not_empty_whatever_their_names(single: Path):
    """A principal whose name is falsy (written before names were checked) still counts as one."""
    now = utcnow()
    with Context().engine().begin() as conn:
        conn.execute(insert(Principal.__table__), [{"name": "", "created_at": now, "disabled": False},
                                                   {"name": "root", "created_at": now, "disabled": False}])
        conn.execute(insert(PrincipalRole.__table__), [{"principal": "root", "role": "admin"}])
    run("root", "users", "add", "carol")   # not taken for the first user: root is not inserted again
    assert "carol" in {u["name"] for u in run("root", "users", "list")["users"]}


# --- 3. users defined in triad.yaml ----------------------------------------------------------------

def test_a_config_user_is_not_added_to_the_database(configured: Path):
    out = run("alice", "users", "add", "bob", code=2)
    assert "user 'bob' is defined in" in out and "triad.yaml" in out and "`users:`" in out


def test_a_grant_to_a_config_user_is_refused_not_silently_ignored(configured: Path):
    with Context().engine().begin() as conn:   # a row from before bob was listed in triad.yaml
        conn.execute(insert(Principal.__table__), [{"name": "bob", "created_at": utcnow(), "disabled": False}])
    out = run("alice", "users", "grant", "bob", "finance", code=2)
    assert "user 'bob' is defined in" in out and "`users:`" in out and "change bob's roles there" in out
    with Context().engine().connect() as conn:
        assert conn.execute(select(PrincipalRole.__table__)).all() == []
    run("alice", "users", "add", "carol")
    run("alice", "users", "grant", "carol", "finance")   # a database user still takes grants
    run("carol", "records", "list", "payment")


# --- 4. the last admin -----------------------------------------------------------------------------

def test_the_last_admin_cannot_be_revoked(single: Path):
    run("root", "users", "add", "bob")
    out = run("root", "users", "revoke", "root", "admin", code=2)
    assert "would leave no admin" in out and "root is the last one" in out and "users grant" in out
    assert {u["name"]: u["roles"] for u in run("root", "users", "list")["users"]}["root"] == ["admin"]
    run("root", "users", "grant", "bob", "admin")
    run("root", "users", "revoke", "root", "admin")   # bob is admin now
    run("bob", "users", "revoke", "bob", "admin", code=2)
    run("bob", "users", "list")


def test_an_admin_role_counts_and_cannot_be_redefined_away_from_the_last_admin(single: Path):
    run("root", "users", "add", "bob")
    run("root", "users", "role", "ops", "--can", "admin")
    run("root", "users", "grant", "root", "ops")
    run("root", "users", "revoke", "root", "admin")   # ops still makes root an admin
    out = run("root", "users", "role", "ops", "--can", "read", code=2)
    assert "would leave no admin" in out
    run("root", "users", "list")


def test_config_admins_count(configured: Path):
    from hub.users import revoke
    ctx = Context()
    now = utcnow()
    with ctx.engine().begin() as conn:
        conn.execute(insert(Principal.__table__), [{"name": "ops", "created_at": now, "disabled": False}])
        conn.execute(insert(PrincipalRole.__table__), [{"principal": "ops", "role": "admin"}])
    with ctx.engine().begin() as conn:   # alice stays admin in triad.yaml: ops may lose it
        revoke(conn, "alice", "ops", "admin", cfg=ctx.config())
    with ctx.engine().connect() as conn:
        assert conn.execute(select(PrincipalRole.__table__)).all() == []


# --- 5. time filters -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["yesterday", "infh", "nanh", "-3h", "1e9d", "3"])
def test_since_names_itself_and_the_iso_form(configured: Path, text: str):
    out = run("alice", "audit", "list", "--since", text, code=2)
    assert f"--since {text!r}" in out and "ISO-8601" in out and "--older-than" not in out


@pytest.mark.parametrize("text,says", [("0h", "more than 0"), ("0s", "more than 0"), ("99999999d", "too far back")])
def test_since_refuses_a_zero_or_endless_age(configured: Path, text: str, says: str):
    assert says in run("alice", "audit", "list", "--since", text, code=2)


@pytest.mark.parametrize("text,says", [("infh", "positive duration"), ("-3h", "positive duration"),
                                       ("0h", "more than 0"), ("99999999d", "too far back")])
def test_older_than_is_checked_the_same_way(configured: Path, text: str, says: str):
    out = run("alice", "conflicts", "list", "--older-than", text, code=2)
    assert f"--older-than {text!r}" in out and says in out


def test_since_takes_ages_and_iso_times(configured: Path):
    run("bob", "tokens", "list", code=2)   # one audited entry
    assert run("alice", "audit", "list", "--since", "1h")["entries"]
    assert run("alice", "audit", "list", "--since", "2000-01-01")["entries"]
    assert run("alice", "audit", "list", "--since", "2000-01-01T00:00:00Z")["entries"]
    assert run("alice", "audit", "list", "--since", "2999-01-01")["entries"] == []


# --- 6. a removed tail ---------------------------------------------------------------------------

@pytest.fixture
def any_store(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    return _init(tmp_path, monkeypatch, CONFIG_USERS)


def _delete_newest() -> None:
    t = AuditLog.__table__
    with Context().engine().begin() as conn:
        conn.execute(delete(t).where(t.c.seq == select(func.max(t.c.seq)).scalar_subquery()))


def test_verify_sees_a_removed_last_entry_also_after_new_ones(any_store: Path):
    assert run("alice", "audit", "verify")["ok"] is True   # empty log, no head: fine
    for _ in range(3):
        run("bob", "tokens", "list", code=2)
    assert run("alice", "audit", "verify")["entries"] == 3
    _delete_newest()
    broken = json.loads(run("alice", "audit", "verify", code=1))
    assert broken["ok"] is False and "removed" in broken["detail"] and broken["entries"] == 2
    run("bob", "tokens", "list", code=2)   # a new entry does not paper over the gap
    broken = json.loads(run("alice", "audit", "verify", code=1))
    assert "does not follow" in broken["detail"]


def test_verify_sees_a_missing_head_and_an_emptied_log(configured: Path):
    run("bob", "tokens", "list", code=2)
    st = StreamState.__table__
    with Context().engine().begin() as conn:   # a log from before heads were kept, or one whose head was deleted
        conn.execute(delete(st).where(st.c.connector == "__audit__"))
    assert "head of the chain" in json.loads(run("alice", "audit", "verify", code=1))["detail"]
    run("bob", "tokens", "list", code=2)   # the next entry records the head again
    assert run("alice", "audit", "verify")["entries"] == 2
    with Context().engine().begin() as conn:
        conn.execute(delete(AuditLog.__table__))
    assert "every entry was removed" in json.loads(run("alice", "audit", "verify", code=1))["detail"]


# --- 7. audited refusals name what was refused -------------------------------------------------------

@pytest.mark.parametrize("args,target", [
    (("tokens", "create", "--user", "bob"), "tokens create"),
    (("tokens", "list"), "tokens list"),
    (("tokens", "revoke", "01J9ZTOKEN"), "token:01J9ZTOKEN"),
    (("subscriptions", "add", "billing", "https://b.example.com/h", "-e", "customer", "--secret-env", "S"),
     "subscription:billing"),
    (("subscriptions", "list"), "subscriptions list"),
    (("subscriptions", "remove", "billing"), "subscription:billing"),
])
def test_refused_admin_commands_are_audited_with_their_target(configured: Path, args: tuple[str, ...], target: str):
    run("bob", *args, code=2)
    entry = run("alice", "audit", "list", "--user", "bob")["entries"][0]
    assert (entry["action"], entry["target"], entry["outcome"]) == ("denied:admin", target, "denied")
