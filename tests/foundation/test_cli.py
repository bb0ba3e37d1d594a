"""The CLI contract: every command has help with an example; init, db and status work end to end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from cli import main


def walk(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, prefix + (name,))


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    missing = []
    for path, cmd in walk(main):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        if not isinstance(cmd, click.Group) and "Example" not in result.output:
            missing.append(" ".join(path))
    assert missing == []


def triad(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, **(env or {}))
    e.pop("TRIAD_DATABASE_URL", None) if env is None else None
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=120)


def test_init_db_check_status(tmp_path):
    r = triad("init", "demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    demo = tmp_path / "demo"
    assert (demo / "triad.yaml").exists() and (demo / "mappings").is_dir()
    assert triad("db", "check", cwd=demo).returncode == 0
    r = triad("status", "--json", cwd=demo)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["records"]["customer"]["count"] == 0
    assert data["conflicts"]["open"] == 0 and data["outbox"]["pending"] == 0


def test_bad_config_exits_2_with_key_path(tmp_path):
    (tmp_path / "triad.yaml").write_text("connectors: {erp: {type: sapp}}\n")
    r = triad("config", "validate", cwd=tmp_path)
    assert r.returncode == 2
    assert "connectors.erp.type: unknown type 'sapp'; known: file, sql, salesforce" in r.stderr


def test_db_upgrade_and_check_on_postgresql(tmp_path, pg_url):
    env = {"TRIAD_DATABASE_URL": pg_url}
    r = triad("db", "upgrade", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    r = triad("db", "check", "--json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True


def test_db_check_fails_before_upgrade(tmp_path, pg_url):
    r = triad("db", "check", cwd=tmp_path, env={"TRIAD_DATABASE_URL": pg_url})
    assert r.returncode == 1 and "triad db upgrade" in r.stderr


def test_command_on_a_store_not_yet_created_leaves_no_empty_database(tmp_path):
    """A command that needs the store names the missing file and the fix; it does not create an empty
    SQLite file on the way (a mistyped store path would leave stray databases behind)."""
    (tmp_path / "triad.yaml").write_text("store: {url: 'sqlite:///hub.db'}\n")
    r = triad("records", "list", "customer", cwd=tmp_path)
    assert r.returncode == 1
    assert f"no store at {tmp_path / 'hub.db'}: run `triad db upgrade`" in r.stderr
    assert not (tmp_path / "hub.db").exists()
    assert triad("db", "upgrade", cwd=tmp_path).returncode == 0
    assert triad("records", "list", "customer", cwd=tmp_path).returncode == 0


def test_no_command_but_db_upgrade_makes_a_store_or_its_folder(tmp_path):
    """Read-only commands on a store path whose folder does not exist (or on a missing file) make neither."""
    (tmp_path / "triad.yaml").write_text("store: {url: 'sqlite:///data/hub.db'}\n")
    for args in (("status",), ("db", "current"), ("db", "check")):
        r = triad(*args, cwd=tmp_path)
        assert r.returncode == 1, (args, r.stderr)
        assert "no store at " in r.stderr and "run `triad db upgrade`" in r.stderr, (args, r.stderr)
    assert not (tmp_path / "data").exists()
    assert triad("db", "upgrade", cwd=tmp_path).returncode == 0
    assert triad("db", "check", cwd=tmp_path).returncode == 0


def test_help_loads_no_heavy_modules():
    """`triad --help` stays fast because pandas, great-expectations and rich are imported only when used."""
    code = ("import sys, cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('great_expectations', 'pandas', 'rich', 'sqlalchemy.dialects.postgresql')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_db_check_names_each_difference_as_an_admin_reads_it(tmp_path):
    (tmp_path / "triad.yaml").write_text("store: {url: 'sqlite:///hub.db'}\n")
    assert triad("db", "upgrade", cwd=tmp_path).returncode == 0
    import sqlite3
    with sqlite3.connect(tmp_path / "hub.db") as db:
        db.execute("CREATE TABLE zzz_extra (a INTEGER)")
        db.execute("ALTER TABLE customer ADD COLUMN extra_col TEXT")
        db.execute("DROP INDEX ix_customer_email")
    r = triad("db", "check", "--json", cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(json.loads(r.stdout)["differences"]) == [
        "column customer.extra_col: in the database, not in the models",
        "index ix_customer_email on customer(email): in the models, not in the database",
        "table zzz_extra: in the database, not in the models"]


def test_a_one_shot_command_logs_to_the_admin_plainly_and_v_adds_time_and_logger(tmp_path):
    assert triad("init", "p", cwd=tmp_path).returncode == 0
    p = tmp_path / "p"
    assert triad("sync", "run", cwd=p).returncode == 0
    export = p / "exports" / "erp" / "customers.csv"
    lines = export.read_text(encoding="utf-8-sig").splitlines()
    for n in (1, 3):        # older versions, edited, in the first and the second batch of two rows
        lines[n] = lines[n].replace(lines[n].split(",")[1], lines[n].split(",")[1] + " X", 1)
        lines[n] = ",".join(lines[n].split(",")[:-1] + ["2020-01-01T00:00:00"])
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = p / "triad.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("    direction: both", "    direction: both\n"
                                                           "    batch_size: 2", 1), encoding="utf-8")
    plain = triad("sync", "run", "--full", "-c", "erp", "-e", "customer", cwd=p)
    assert plain.returncode == 0
    assert plain.stderr.startswith("warning: erp/customer: 1 row(s) differ"), plain.stderr
    assert plain.stderr.count("differ from the version taken in") == 1, plain.stderr    # once a run, not a batch
    assert "older" in plain.stdout.splitlines()[2] and "still_parked" not in plain.stdout    # a column when there are some
    assert json.loads(triad("--json", "sync", "run", "--full", "-c", "erp", "-e", "customer", cwd=p).stdout
                      )["runs"][0]["older"] == 2
    verbose = triad("-v", "sync", "run", "--full", "-c", "erp", "-e", "customer", cwd=p)
    assert " WARNING hub.pipeline: erp/customer: 1 row(s) differ" in verbose.stderr, verbose.stderr
    assert " INFO hub.pipeline: erp/customer: 1 row(s) differ" in verbose.stderr, verbose.stderr


def test_an_empty_user_name_is_refused_not_taken_for_the_login(tmp_path):
    r = triad("--json", "--user", " ", "status", cwd=tmp_path)
    assert r.returncode == 2 and "--user: a user name cannot be empty" in json.loads(r.stdout)["error"]
