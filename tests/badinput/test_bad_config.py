"""Hostile triad.yaml files (corpus/config): every one exits 2 naming the file and the key path or line,
never with a traceback, whichever command reads the config first."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import CORPUS, Project, clean, run_cli

# case -> what the message must contain (besides the file's name)
REFUSED = {
    "tabs.yaml": ["line 2", "invalid YAML"],
    "unclosed_bracket.yaml": ["line 2", "invalid YAML"],
    "binary_garbage.yaml": ["cannot read"],
    "utf16.yaml": ["cannot read"],
    "python_tag.yaml": ["invalid YAML", "python/object"],
    "nul_byte.yaml": ["invalid YAML"],
    "top_level_list.yaml": ["top level must be a mapping"],
    "wrong_type_connectors.yaml": ["connectors:", "dictionary"],
    "wrong_type_batch_size.yaml": ["connectors.erp.batch_size", "integer"],
    "unknown_top_key.yaml": ["stor: unknown key"],
    "unknown_type.yaml": ["connectors.erp.type", "unknown type 'sapp'", "known: file"],
    "unknown_entity.yaml": ["connectors.erp.entities", "unknown entity"],
    "bad_direction.yaml": ["connectors.erp.direction"],
    "env_missing.yaml": ["connectors.erp.path", "TRIAD_BADINPUT_UNSET_VAR is not set"],
    "schedule_bad.yaml": ["schedules[0]", "5 fortnights"],
    "users_unknown_role.yaml": ["users.alice[0]", "unknown role"],
    "survivorship_unknown.yaml": ["survivorship.customer.priority[0]", "unknown connector '../erp'"],
}

# refused by `config validate` through the mapping they point at (the mapping's own file and line)
MAPPING_REFS = {
    "mapping_traversal.yaml": ["passwd:1:", "a mapping file must be a YAML map"],
    "mapping_absolute.yaml": ["/etc/passwd:1:", "a mapping file must be a YAML map"],
    "mapping_missing.yaml": ["connectors.erp.entities.customer.mapping", "does not exist"],
}

# file connector options: refused by `config validate` and where the connector is built (connectors check, sync run)
FILE_OPTIONS = {
    "file_path_not_text.yaml": "connectors.erp.path",
    "file_encoding_unknown.yaml": "connectors.erp.encoding",
    "file_encoding_not_text.yaml": "connectors.erp.encoding",
    "file_delimiter_bad.yaml": "connectors.erp.delimiter",
    "file_format_bad.yaml": "connectors.erp.format",
}


def _copy(tmp_path: Path, name: str) -> Path:
    """The corpus file in a scratch folder (relative paths in it resolve there, nothing lands in the repo)."""
    (tmp_path / "exports").mkdir(exist_ok=True)
    target = tmp_path / "triad.yaml"
    shutil.copyfile(CORPUS / "config" / name, target)
    return target


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path, name: str):
    cfg = _copy(tmp_path, name)
    for command in (["config", "validate"], ["status"], ["sync", "run"]):
        out = clean(run_cli(*command, config=cfg), 2)
        assert str(cfg) in out.stderr, out.describe()
        for needle in REFUSED[name]:
            assert needle in out.stderr, f"{command}: {needle!r} missing\n{out.describe()}"
    assert "owned" not in out.output       # a python tag is never constructed
    assert not (tmp_path / "hub.db").exists()  # nothing was created on the way out


@pytest.mark.parametrize("name", sorted(MAPPING_REFS))
def test_config_pointing_at_bad_mapping_files_exits_2(tmp_path: Path, name: str):
    cfg = _copy(tmp_path, name)
    out = clean(run_cli("--json", "config", "validate", config=cfg), 2)
    problems = "\n".join(out.json["problems"])
    for needle in MAPPING_REFS[name]:
        assert needle in problems, problems
    assert "root:" not in out.output     # the content of a file outside the project is never echoed


@pytest.mark.parametrize("command", [("connectors", "check", "erp"), ("sync", "run"), ("sync", "push")])
@pytest.mark.parametrize("name", sorted(FILE_OPTIONS))
def test_file_connector_options_are_refused_where_the_connector_is_built(tmp_path: Path, name: str,
                                                                         command: tuple[str, ...]):
    """A setting found wrong only where the connector is built is a config error (2) before any stream runs."""
    cfg = _copy(tmp_path, name)
    if command[0] == "sync":
        clean(run_cli("db", "upgrade", config=cfg), 0)
    out = clean(run_cli(*command, config=cfg), 2)
    assert FILE_OPTIONS[name] in out.stderr, out.describe()
    assert "sync_run" not in out.output


@pytest.mark.parametrize("name", sorted(FILE_OPTIONS))
def test_config_validate_checks_file_connector_options(tmp_path: Path, name: str):
    cfg = _copy(tmp_path, name)
    out = clean(run_cli("config", "validate", config=cfg), 2)
    assert FILE_OPTIONS[name] in out.stderr


def test_config_validate_leaves_the_folder_to_connectors_check(tmp_path: Path):
    """Options are checked as text: a folder that does not exist yet (or a UTF-16 encoding) is valid config."""
    cfg = tmp_path / "triad.yaml"
    cfg.write_text("connectors:\n  erp:\n    type: file\n    path: ./not-yet\n    encoding: utf-16\n"
                   "    delimiter: tab\n    format: csv\n    entities: [customer]\n", encoding="utf-8")
    clean(run_cli("config", "validate", config=cfg), 0)
    out = clean(run_cli("connectors", "check", "erp", config=cfg), 1)
    assert "not-yet does not exist" in out.output


def test_five_megabyte_config_is_read_and_refused_with_its_line(tmp_path: Path):
    cfg = tmp_path / "triad.yaml"
    cfg.write_text("# " + "x" * (5 * 1024 * 1024) + "\nstore: {url: 'sqlite:///hub.db'}\nconectors: {}\n",
                   encoding="utf-8")
    out = clean(run_cli("config", "validate", config=cfg), 2)
    assert "conectors: unknown key" in out.stderr


def test_env_default_and_valid_config_pass(tmp_path: Path):
    """The control: the same shapes written correctly are accepted (the refusals above are not blanket)."""
    (tmp_path / "exports").mkdir()
    cfg = tmp_path / "triad.yaml"
    cfg.write_text("connectors:\n  erp:\n    type: file\n    path: ${TRIAD_BADINPUT_UNSET_VAR:-./exports}\n"
                   "    entities: [customer]\n", encoding="utf-8")
    clean(run_cli("config", "validate", config=cfg), 0)


def test_missing_config_file_and_a_directory_as_config(tmp_path: Path):
    out = clean(run_cli("config", "validate", config=tmp_path / "nope.yaml"), 2)
    assert "no such config file" in out.stderr
    out = clean(run_cli("config", "validate", config=tmp_path), 2)
    assert str(tmp_path) in out.stderr


def test_file_connector_path_that_is_a_file_is_a_clear_stream_error(project: Project):
    """`path` outside the project is the admin's choice; one that is not a folder fails the stream clearly."""
    project.edit("triad.yaml", "path: ./exports/erp", "path: /etc/passwd")
    out = clean(project.triad("connectors", "check", "erp"), 1)
    assert "/etc/passwd does not exist" in out.output
    runs = project.sync()
    assert runs[("erp", "customer")]["status"] == "error"
    assert "/etc/passwd" in runs[("erp", "customer")]["error"]
    assert runs[("crm", "customer")]["status"] == "ok"          # the other connector still ran


# --- findings: each flips to XPASS (and fails, strict) once the hub is fixed -------------------------

@pytest.mark.parametrize("name", ["duplicate_top_key.yaml", "duplicate_connector.yaml"])
def test_duplicate_keys_are_refused(tmp_path: Path, name: str):
    out = clean(run_cli("config", "validate", config=_copy(tmp_path, name)), 2)
    assert "duplicate key" in out.stderr


def test_unterminated_variable_is_refused(tmp_path: Path):
    out = clean(run_cli("config", "validate", config=_copy(tmp_path, "unterminated_var.yaml")), 2)
    assert "connectors.erp.path" in out.stderr and "${" in out.stderr


@pytest.mark.parametrize("name", ["recursive_alias.yaml", "deep_nesting.yaml", "huge_int.yaml"])
def test_pathological_yaml_is_refused_not_crashed(tmp_path: Path, name: str):
    out = clean(run_cli("config", "validate", config=_copy(tmp_path, name)), 2)
    assert "triad.yaml" in out.stderr


def test_nul_in_file_connector_path_is_refused(tmp_path: Path):
    out = clean(run_cli("connectors", "check", "erp", config=_copy(tmp_path, "file_path_nul.yaml")), 2)
    assert "connectors.erp.path" in out.stderr


@pytest.mark.parametrize("where", ["under_a_file", "a_folder"])
def test_unopenable_store_is_a_config_error(tmp_path: Path, where: str):
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    (tmp_path / "afolder").mkdir()
    db = tmp_path / "afile" / "hub.db" if where == "under_a_file" else tmp_path / "afolder"
    cfg = tmp_path / "triad.yaml"
    cfg.write_text(f"store: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")
    out = clean(run_cli("status", config=cfg), 2)
    assert "store.url" in out.stderr


def test_file_and_sql_connectors_offer_every_canonical_entity(tmp_path: Path):
    """Opportunities and approvals from a file or a table: `config validate` accepts what `sync run` reads."""
    (tmp_path / "exports").mkdir()
    (tmp_path / "o.yaml").write_text("source: rows.csv\nkey: id\nfields:\n  name: name\n", encoding="utf-8")
    (tmp_path / "a.yaml").write_text("source: rows.csv\nkey: id\nfields:\n  status: status\n", encoding="utf-8")
    entities = "    entities: {opportunity: {mapping: o.yaml}, approval: {mapping: a.yaml}}\n"
    cfg = tmp_path / "triad.yaml"
    cfg.write_text("connectors:\n  crm:\n    type: file\n    path: ./exports\n" + entities +
                   "  db:\n    type: sql\n    url: sqlite:///source.db\n" + entities, encoding="utf-8")
    clean(run_cli("config", "validate", config=cfg), 0)
