"""A config problem names the file, the key path, what was expected and the line the key is on."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from hub.config import parse_config
from hub.config_lines import key_path, with_lines, line_map
from hub.errors import ConfigError

CONFIG = """\
store:
  url: sqlite:///hub.db
connectors:
  erp:
    type: {erp_type}
    path: ./erp
    entities:
      customer: {{}}
  crm:
    type: file
    {crm_key}: in
    path: ./crm
schedules:
  - {{connector: erp, entity: customer, every: {every}}}
"""


def _problems(**kw: str) -> list[str]:
    values = {"erp_type": "file", "crm_key": "direction", "every": "5m", **kw}
    with pytest.raises(ConfigError) as exc:
        parse_config(CONFIG.format(**values), "triad.yaml", env_override=False)
    return str(exc.value).splitlines()


def test_an_unknown_type_names_its_line():
    assert _problems(erp_type="sapp") == [
        "triad.yaml: connectors.erp.type: unknown type 'sapp'; known: file, sql, salesforce, sap, kingdee, yonyou, "
        "dingtalk, feishu, rest, singer (line 5)"]


def test_a_misspelt_option_and_a_bad_list_item_name_their_lines():
    assert _problems(crm_key="direcion") == [
        "triad.yaml: connectors.crm.direcion: not an option of a file connector; did you mean 'direction'? (line 11)"]
    assert _problems(every="5x")[0].startswith("triad.yaml: schedules[0]: every '5x'")
    assert _problems(every="5x")[0].endswith("(line 14)")


def test_config_validate_gives_the_line_of_a_problem_found_when_building(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    (tmp_path / "triad.yaml").write_text(CONFIG.format(erp_type="file", crm_key="direction", every="5m").replace(
        "      customer: {}\n", "      customer: {mapping: nope.yaml}\n"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["--json", "config", "validate"])
    doc = json.loads(r.output)
    assert r.exit_code == 2, r.output
    [problem] = doc["problems"]
    assert problem.startswith("connectors.erp.entities.customer.mapping: mapping file") and problem.endswith("(line 8)")


def test_a_value_from_the_environment_gets_no_line_of_the_file():
    message = "triad.yaml: store.url: not a database URL (x) (from $TRIAD_DATABASE_URL)"
    assert with_lines(message, line_map("store:\n  url: sqlite:///x.db\n"), "triad.yaml") == message


def test_a_message_without_a_key_path_is_left_as_it_is():
    lines = line_map("store: {url: 'sqlite:///x.db'}\n")
    for message in ("triad.yaml: the top level must be a mapping of keys (store, connectors, ...)",
                    "triad.yaml: line 3, column 2: invalid YAML: found a tab"):
        assert with_lines(message, lines, "triad.yaml") == message


@pytest.mark.parametrize("text, path", [
    ("store.url", ("store", "url")), ("schedules[0].cron", ("schedules", 0, "cron")), ("users", ("users",)),
    ("the top level", None), ("", None), ("a..b", None), (".a", None),
])
def test_key_paths(text, path):
    assert key_path(text) == path


@pytest.mark.parametrize("kind, options", [
    ("yonyou", "base_url: http://127.0.0.1:1, app_key: a, app_secret: b"),
    ("kingdee", "base_url: http://127.0.0.1:1/k3cloud, acct_id: x, username: u, password: p"),
])
def test_propagate_deletes_on_a_connector_that_cannot_delete_is_refused(kind, options):
    text = f"connectors:\n  tgt: {{type: {kind}, {options}, propagate_deletes: true, entities: {{customer: {{}}}}}}\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "triad.yaml", env_override=False)
    assert str(exc.value) == (f"triad.yaml: connectors.tgt.propagate_deletes: a {kind} connector cannot delete "
                              "records in its system; the deletes would only fail (leave it false) (line 2)")
    parse_config(text.replace("propagate_deletes: true", "propagate_deletes: false"), "triad.yaml", env_override=False)
