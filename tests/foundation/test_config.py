"""Config errors name the file, the key path and what was expected; secrets never show."""
from __future__ import annotations

import logging

import pytest

from hub.config import load_config, parse_config
from hub.errors import ConfigError


def err(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "conf/triad.yaml")
    return str(exc.value)


def test_unknown_connector_type_names_key_and_known_types():
    msg = err("connectors: {erp: {type: sapp}}")
    assert msg.startswith("conf/triad.yaml: connectors.erp.type: unknown type 'sapp'; known: file, sql, salesforce")
    assert "singer" in msg


def test_bad_yaml_names_its_line():
    msg = err("store:\n  url: x\nconnectors: [a,\n  b: c\n")
    assert "conf/triad.yaml: line " in msg and "invalid YAML" in msg


@pytest.mark.parametrize("text, expected", [
    ("connectors: {erp: {direction: in}}", "connectors.erp.type: required key is missing"),
    ("connectors: {erp: {type: file, batch_size: lots}}", "connectors.erp.batch_size:"),
    ("stor: {url: x}", "stor: unknown key"),
    ("connectors: {erp: {type: file, entities: {client: {}}}}", "unknown entity 'client'"),
    ("survivorship: {customer: {default: newest}}", "survivorship.customer.default:"),
    ("connectors: {erp: {type: file}}\nsurvivorship: {customer: {fields: {credit_limit: {owner: sap}}}}",
     "survivorship.customer.fields.credit_limit.owner: unknown connector 'sap'"),
    ("schedules: [{connector: erp, every: often}]", "schedules[0]"),
    ("users: {bob: [wizard]}", "users.bob[0]: unknown role 'wizard'"),
])
def test_errors_name_the_key_path(text, expected):
    assert expected in err(text)


def test_interpolation_and_defaults(monkeypatch):
    monkeypatch.setenv("SF_URL", "https://example.test")
    cfg = parse_config("connectors: {crm: {type: salesforce, base_url: '${SF_URL}', api_version: '${SF_API:-60.0}'}}")
    assert cfg.connectors["crm"].options == {"base_url": "https://example.test", "api_version": "60.0"}


def test_missing_variable_is_an_error(monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    assert "connectors.crm.base_url: environment variable NOPE_NOT_SET is not set" in err(
        "connectors: {crm: {type: salesforce, base_url: '${NOPE_NOT_SET}'}}")


def test_database_url_env_overrides(monkeypatch):
    monkeypatch.setenv("TRIAD_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert parse_config("store: {url: 'sqlite:///x.db'}").store.url == "postgresql+psycopg://u@h/db"


def test_config_is_found_through_env(monkeypatch, tmp_path):
    p = tmp_path / "elsewhere.yaml"
    p.write_text("store: {url: 'sqlite:///data/hub.db'}\n")
    monkeypatch.setenv("TRIAD_CONFIG", str(p))
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    cfg = load_config()
    assert cfg.path == p.resolve()
    assert cfg.store.url == f"sqlite:///{tmp_path / 'data' / 'hub.db'}"  # relative to the config file


def test_secrets_are_masked_in_printable_config_and_logs(monkeypatch, caplog):
    monkeypatch.setenv("SF_SECRET", "hunter2-very-secret")
    cfg = parse_config("connectors: {crm: {type: salesforce, auth: {client_id: abc, client_secret: '${SF_SECRET}'}}}")
    printable = str(cfg.printable())
    assert "hunter2" not in printable and "***" in printable
    from hub.context import install_redaction
    install_redaction(cfg)
    with caplog.at_level(logging.INFO):
        logging.getLogger("triad.test").info("token call with %s", "hunter2-very-secret")
    assert "hunter2" not in caplog.text


def test_secrets_of_two_configs_in_one_process_are_both_masked_whole(monkeypatch, caplog):
    from hub.context import install_redaction
    from hub.secrets import RedactingFilter
    root = logging.getLogger()
    monkeypatch.setattr(root, "filters", [f for f in root.filters if not isinstance(f, RedactingFilter)])
    install_redaction(parse_config("store: {url: 'postgresql+psycopg://u:secret@127.0.0.1/db'}"))
    monkeypatch.setenv("SF_SECRET", "hunter2-very-secret")
    install_redaction(parse_config("connectors: {crm: {type: salesforce, auth: {client_id: abc, "
                                   "client_secret: '${SF_SECRET}'}}}"))
    with caplog.at_level(logging.INFO):
        logging.getLogger("triad.test").info("token %s, then %s", "hunter2-very-secret", "secret")
    assert "hunter2" not in caplog.text and "secret" not in caplog.text.replace("triad.test", "")
    assert sum(isinstance(f, RedactingFilter) for f in root.filters) == 1


def test_a_token_minted_at_run_time_is_masked_in_logged_urls(caplog):
    from hub.context import install_redaction
    install_redaction(parse_config("connectors: {}"))     # no configured secret: the filter is there all the same
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("urllib3.connectionpool").debug(
            '%s "%s %s HTTP/1.1" %s', "http://127.0.0.1:1", "POST",
            "/yonbip/digitalModel/merchant/newlist?access_token=71f257bf7bbc0e658b&x=1", 200)
        logging.getLogger("urllib3.connectionpool").debug(
            "GET /open-auth/getAccessToken?appKey=triad-client&timestamp=1&signature=2Ww%2Be3ZSW HTTP/1.1")
    assert "71f257bf" not in caplog.text and "2Ww" not in caplog.text
    assert "access_token=***&x=1" in caplog.text and "appKey=triad-client&timestamp=1&signature=***" in caplog.text


def test_variables_inside_flow_maps_as_spec_writes_them(monkeypatch):
    monkeypatch.setenv("SF_CLIENT_ID", "abc: not # yaml")
    cfg = parse_config("connectors:\n  crm:\n    type: salesforce\n    base_url: http://${SF_HOST:-127.0.0.1}:8701\n"
                       "    auth: {client_id: ${SF_CLIENT_ID}, client_secret: ${SF_CLIENT_SECRET:-s3cret}}\n")
    opts = cfg.connectors["crm"].options
    assert opts["base_url"] == "http://127.0.0.1:8701"
    assert opts["auth"]["client_id"] == "abc: not # yaml" and opts["auth"]["client_secret"].reveal() == "s3cret"
