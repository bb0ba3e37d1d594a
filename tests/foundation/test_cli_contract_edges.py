"""Edges of the CLI contract (SPEC §6): one JSON document under --json, exit 1 for a failure, exit 2 for bad
usage, and no command that accepts what it cannot do."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


def run(*args: str, env: dict | None = None):  # noqa: ANN201 - click.testing.Result
    return CliRunner().invoke(main, list(args), env=env, prog_name="triad")


def json_failure(result, exit_code: int) -> str:  # noqa: ANN001 - click.testing.Result
    """The one failure document on stdout; its error message."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)      # exactly one document: anything more does not parse
    assert doc["ok"] is False and doc["exit_code"] == exit_code
    return doc["error"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- init ---------------------------------------------------------------------------------------

def test_init_with_an_unreachable_store_fails_cleanly_and_takes_back_what_it_wrote(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    down = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/x"
    result = run("--json", "init", "p3", env={"TRIAD_DATABASE_URL": down})
    error = json_failure(result, 1)
    assert error.startswith(f"cannot open the store at {down}: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "p3").exists()
    # the store fixed, a second try needs no --force
    assert run("init", "p3", env={"TRIAD_DATABASE_URL": None}).exit_code == 0
    assert (tmp_path / "p3" / "triad.yaml").exists()


def test_a_failed_init_force_keeps_the_old_config_and_the_users_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "triad.yaml").write_text("# mine\n", encoding="utf-8")
    (tmp_path / "p" / "notes.txt").write_text("keep", encoding="utf-8")
    down = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/x"
    json_failure(run("--json", "init", "--force", "p", env={"TRIAD_DATABASE_URL": down}), 1)
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["notes.txt", "triad.yaml"]
    assert (tmp_path / "p" / "triad.yaml").read_text(encoding="utf-8") == "# mine\n"


def test_init_force_over_a_store_with_data_says_the_store_keeps_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run("--json", "init", "p", env={"TRIAD_DATABASE_URL": None})
    assert first.exit_code == 0 and json.loads(first.stdout)["store_existed"] is False
    again = run("init", "--force", "p", env={"TRIAD_DATABASE_URL": None})
    assert again.exit_code == 0 and "was there already and keeps its data" in again.stdout
    assert json.loads(run("--json", "init", "--force", "p", env={"TRIAD_DATABASE_URL": None}).stdout)["store_existed"]


def test_init_into_a_folder_that_cannot_be_made_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    target = tmp_path / "afile" / "p"
    error = json_failure(run("--json", "init", str(target), env={"TRIAD_DATABASE_URL": None}), 2)
    assert error == f"cannot create the folder {target}: Not a directory"


# ---- Click's own usage errors under --json --------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--json", "conflicts", "list", "--status", "bogus"], "Invalid value for '--status'"),
    (["conflicts", "list", "--status", "bogus", "--json"], "Invalid value for '--status'"),
    (["--json", "records", "list", "customer", "--limit", "0"], "Invalid value for '--limit'"),
    (["--json", "records", "list"], "Missing argument 'ENTITY'."),
    (["--json", "nosuchcmd"], "No such command 'nosuchcmd'."),
    (["--json", "sync", "run", "--bogus"], "No such option '--bogus'."),
    (["--json", "--bogus"], "No such option '--bogus'."),
    (["--json", "conflicts"], "Missing command."),
])
def test_click_usage_errors_under_json_print_one_failure_document(args, message):
    result = run(*args)
    assert message in json_failure(result, 2)
    assert "Usage: triad" in result.stderr          # Click's usage text stays on stderr


def test_without_json_click_errors_help_and_version_are_unchanged():
    assert "No such command" in json_failure(run("--json", "nosuchcmd"), 2)
    for args in (["conflicts", "list", "--status", "bogus"], ["nosuchcmd", "--", "--json"]):   # after `--`: an argument
        result = run(*args)
        assert result.exit_code == 2 and result.stdout == "" and "Usage: triad" in result.stderr
    assert run("--json", "--help").stdout.startswith("Usage: triad")
    assert run("--version").stdout.startswith("triad, version ")


def test_version_under_json_is_one_document():
    for args in (["--json", "--version"], ["--version", "--json"]):
        result = run(*args)
        assert result.exit_code == 0 and json.loads(result.stdout)["version"], result.output
    assert run("--version", "--", "--json").stdout.startswith("triad, version ")   # after `--`: an argument


# ---- simulate -------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--fail-rate", "2"), ("--fail-rate", "-0.5"), ("--rate-limit-rate", "1.5"), ("--truncate-rate", "-1"),
    ("--records", "-5"), ("--latency-ms", "-1"), ("--request-budget", "-1"), ("--token-ttl", "-2"),
])
def test_simulate_refuses_values_out_of_range(option, value, monkeypatch):
    from connectors.simkit import SimServer
    monkeypatch.setattr(SimServer, "serve_forever", lambda self: None)   # a wrongly started server returns at once
    result = run("simulate", "rest", option, value)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.stderr
    assert "listening on" not in result.stdout
    params = {p.name: p.default for p in main.commands["simulate"].params}     # the defaults are kept
    assert (params["records"], params["fail_rate"], params["rate_limit_rate"], params["truncate_rate"],
            params["latency_ms"]) == (100, 0.0, 0.0, 0.0, 0)


# ---- sync run with a selection that reads nothing ----------------------------------------------------

def test_sync_run_of_a_connector_that_does_not_sync_the_entity_is_a_usage_error(init_project: Path):
    error = json_failure(run("--json", "sync", "run", "--connector", "erp", "--entity", "payment"), 2)
    assert error == "connector 'erp' does not sync payment; it syncs customer, order"
    error = json_failure(run("--json", "sync", "run", "-c", "erp", "-e", "customer", "-e", "payment"), 2)
    assert error == "connector 'erp' does not sync payment; it syncs customer, order"
    error = json_failure(run("--json", "sync", "run", "--entity", "payment"), 2)
    assert error.startswith("no connector syncs payment; configured: erp (customer, order)")
    # an entity alone, read by some connectors, still runs those
    result = run("--json", "sync", "run", "--entity", "customer", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert {(r["connector"], r["entity"]) for r in json.loads(result.stdout)["runs"]} == {
        ("erp", "customer"), ("crm", "customer")}


def test_sync_run_of_an_outbound_connector_is_a_usage_error(init_project: Path):
    cfg = init_project / "triad.yaml"
    text = cfg.read_text(encoding="utf-8")
    crm = text.index("  crm:")
    cfg.write_text(text[:crm] + text[crm:].replace("direction: both", "direction: out", 1), encoding="utf-8")
    error = json_failure(run("--json", "sync", "run", "--connector", "crm"), 2)
    assert error == "connector 'crm' has direction out: Triad does not read it"
    error = json_failure(run("--json", "sync", "run", "--connector", "crm", "--entity", "customer"), 2)
    assert error == "connector 'crm' has direction out: Triad does not read it"
    # the scheduler's and worker's selection is unchanged: a connector with no inbound stream reads nothing
    from hub.config import load_config
    from hub.streams import inbound_streams
    assert inbound_streams(load_config(str(cfg)), ("crm",)) == []
