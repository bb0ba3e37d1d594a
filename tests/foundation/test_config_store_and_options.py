"""What `config validate` must catch before a run does (SPEC section 3: a bad config fails fast, exit 2,
naming the file and the key path): a store URL nothing can open, a connector missing a required option,
and `${VAR:-default}` of a variable set but empty (the shell's rule: the default)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from hub.config import parse_config
from hub.errors import ConfigError
from hub.setup import TEMPLATE

BASE = TEMPLATE.read_text(encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "p")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def _with(project: Path, old: str, new: str) -> None:
    cfg = project / "triad.yaml"
    text = cfg.read_text(encoding="utf-8")
    assert old in text
    cfg.write_text(text.replace(old, new, 1), encoding="utf-8")


def _json(*args: str) -> tuple[int, dict]:
    r = CliRunner().invoke(main, ["--json", *args])
    return r.exit_code, json.loads(r.stdout)


@pytest.mark.parametrize("url, says", [
    ("garbage", "not a database URL"),
    ("postgresql+psycopg://u:secret@127.0.0.1:notaport/db", "not a database URL"),
    ("nosuchdb://x/y", "unknown database kind 'nosuchdb'"),
    ("mysql://x/y", "the driver for 'mysql' is not installed"),
])
def test_a_store_url_nothing_can_open_is_a_config_error_of_every_command(project, url, says):
    _with(project, "url: sqlite:///triad.db", f"url: '{url}'")
    for args in (["config", "validate"], ["status"], ["sync", "run", "--dry-run"]):
        code, doc = _json(*args)
        assert code == 2 and doc["ok"] is False, (args, doc)     # not a traceback with an empty stdout
        assert "triad.yaml: store.url: " + says in doc["error"], doc["error"]
        assert "secret" not in doc["error"]


def test_a_store_url_from_the_environment_says_so(project, monkeypatch):
    monkeypatch.setenv("TRIAD_DATABASE_URL", "garbage")
    code, doc = _json("status")
    assert code == 2 and "store.url: not a database URL" in doc["error"] and "$TRIAD_DATABASE_URL" in doc["error"]


def test_config_validate_reports_every_connector_missing_a_required_option(project):
    _with(project, "connectors:\n", "connectors:\n"
          "  sf: {type: salesforce, auth: {client_id: a, client_secret: b}, entities: {customer: {}}}\n"
          "  db1: {type: sql, entities: {customer: {}}}\n"
          "  files: {type: file, entities: {customer: {}}}\n")
    code, doc = _json("config", "validate")
    assert code == 2 and doc["ok"] is False, doc
    problems = doc["problems"]
    assert any("connectors.sf.base_url: required" in p for p in problems), problems
    assert any("connectors.db1.url: required" in p for p in problems), problems
    files_line = _line_of((project / "triad.yaml").read_text(encoding="utf-8"), "files: {type: file")
    # the missing key's line is its connector's
    assert any(p.endswith(f"connectors.files.path: required, the folder holding the files (line {files_line})")
               and "connectors.files: connectors.files" not in p for p in problems), problems


def test_a_default_applies_to_a_variable_set_but_empty(monkeypatch):
    text = BASE.replace("url: sqlite:///triad.db", "url: ${HUB_URL:-sqlite:///fallback.db}", 1)
    monkeypatch.setenv("HUB_URL", "")
    assert parse_config(text, "triad.yaml", env_override=False).store.url == "sqlite:///fallback.db"
    monkeypatch.setenv("HUB_URL", "sqlite:///given.db")
    assert parse_config(text, "triad.yaml", env_override=False).store.url == "sqlite:///given.db"
    monkeypatch.setenv("HUB_URL", "")    # without a default an empty value is the value
    plain = BASE.replace("url: sqlite:///triad.db", "url: sqlite:///x${HUB_URL}.db", 1)
    assert parse_config(plain, "triad.yaml", env_override=False).store.url == "sqlite:///x.db"


def test_every_unset_variable_is_named_not_only_the_first(monkeypatch):
    for var in ("HUB_URL", "ERP_DIR"):
        monkeypatch.delenv(var, raising=False)
    text = BASE.replace("url: sqlite:///triad.db", "url: ${HUB_URL}", 1).replace(
        "path: ./exports/erp", "path: ${ERP_DIR}", 1)
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "triad.yaml", env_override=False)
    lines = str(exc.value).splitlines()
    url_line, path_line = (_line_of(text, "url: ${HUB_URL}"), _line_of(text, "path: ${ERP_DIR}"))
    assert lines == ["triad.yaml: store.url: environment variable HUB_URL is not set (set it, or write "
                     f"${{HUB_URL:-default}}) (line {url_line})",
                     "triad.yaml: connectors.erp.path: environment variable ERP_DIR is not set "
                     f"(set it, or write ${{ERP_DIR:-default}}) (line {path_line})"]


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("weights, says", [
    ("{name: -1, city: 0.5}", "weights are numbers of 0 or more"),
    ("{name: .inf}", "weights are numbers of 0 or more"),
    ("{name: 0, city: 0}", "at least one field with a weight above 0"),
    ("{}", "at least one field with a weight above 0"),
])
def test_fuzzy_weights_that_cannot_share_out_a_score_are_refused(weights, says):
    text = BASE.replace("    exact: [tax_id, email]", f"    exact: [tax_id, email]\n    fuzzy: {{fields: {weights}}}", 1)
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "triad.yaml", env_override=False)
    assert "matching.customer.fuzzy" in str(exc.value) and says in str(exc.value), str(exc.value)


def test_validate_names_the_store_and_warns_when_it_cannot_be_opened_now(project, monkeypatch):
    code, doc = _json("config", "validate")
    assert code == 0 and doc["warnings"] == [] and doc["store"]["problem"] is None
    assert doc["store"]["url"].endswith("/p/triad.db") and doc["store"]["from_env"] is False

    # a valid config whose store is down or not made yet: still exit 0 (nothing to fix in the file), but said
    monkeypatch.setenv("TRIAD_DATABASE_URL", "postgresql+psycopg://postgres:secret@127.0.0.1:1/nodb")
    code, doc = _json("config", "validate")
    assert code == 0 and doc["ok"] is True and doc["store"]["from_env"] is True
    assert len(doc["warnings"]) == 1 and doc["warnings"][0].startswith("store.url: cannot open the store at")
    assert "Connection refused" in doc["warnings"][0] and "secret" not in json.dumps(doc)
    r = CliRunner().invoke(main, ["config", "validate"])
    assert r.exit_code == 0 and "(from $TRIAD_DATABASE_URL)" in r.stdout and "Connection refused" in r.stdout

    monkeypatch.delenv("TRIAD_DATABASE_URL")
    (project / "triad.db").rename(project / "elsewhere.db")
    code, doc = _json("config", "validate")
    assert code == 0 and doc["warnings"] == [doc["store"]["problem"]]
    assert "no store at" in doc["store"]["problem"] and "triad db upgrade" in doc["store"]["problem"]
    assert not (project / "triad.db").exists()     # validating made no store


def test_a_store_file_that_is_no_database_is_a_config_error_not_a_traceback(project):
    (project / "triad.db").write_bytes(b"garbage, not a database\n" * 100)
    for args in (["status"], ["records", "list", "customer"], ["db", "upgrade"], ["config", "validate"]):
        r = CliRunner().invoke(main, ["--json", *args])
        assert r.exit_code == 2, (args, r.output, r.exception)
        doc = json.loads(r.stdout)
        text = doc["error"] if "error" in doc else " ".join(doc["problems"])
        assert "store.url:" in text and "is not a SQLite database" in text, (args, doc)


def test_validate_warns_of_a_file_connector_whose_folder_is_not_there(project):
    (project / "exports" / "crm").rename(project / "exports" / "crm-moved")
    code, doc = _json("config", "validate")
    assert code == 0 and doc["ok"] is True       # a folder made later is fine: a warning, not a problem
    said = [w for w in doc["warnings"] if w.startswith("connectors.crm.path: folder ")]
    assert len(said) == 1 and said[0].startswith(
        f"connectors.crm.path: folder {project / 'exports' / 'crm'} does not exist (yet): `triad sync run` fails "
        f"for crm until it does (line ")
