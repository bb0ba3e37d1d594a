"""A misspelt or unknown key fails the config (exit 2) instead of silently changing nothing.

Every case starts from the template `triad init` writes, so each one is a config
that used to validate with "ok".
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from hub import connector as connector_mod
from hub.config import load_config, parse_config
from hub.connector import Connector
from hub.errors import ConfigError
from hub.setup import TEMPLATE

BASE = TEMPLATE.read_text(encoding="utf-8")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def edited(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def err(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "conf/triad.yaml")
    return str(exc.value)


def test_the_template_itself_validates():
    cfg = parse_config(BASE, "conf/triad.yaml")
    assert set(cfg.connectors) == {"erp", "crm"}


@pytest.mark.parametrize("old, new, expected", [
    ("    direction: both", "    direcion: in",
     "conf/triad.yaml: connectors.erp.direcion: not an option of a file connector; did you mean 'direction'?"),
    ("    direction: both", "    direction: both\n    propagate_delete: true",
     "conf/triad.yaml: connectors.erp.propagate_delete: not an option of a file connector; "
     "did you mean 'propagate_deletes'?"),
    ("customer: {mapping: mappings/erp_customer.yaml}", "customer: {mapings: mappings/erp_customer.yaml}",
     "conf/triad.yaml: connectors.erp.entities.customer.mapings: not an option of a file connector's entity; "
     "did you mean 'mapping'?"),
    ("    path: ./exports/erp ", "    path: ./exports/erp\n    encodng: gbk\n   ",
     "connectors.erp.encodng: not an option of a file connector; did you mean 'encoding'?"),
    ("can: [read, resolve, merge]", "can: [read, fly]",
     "conf/triad.yaml: roles.steward_sales.can[1]: unknown permission 'fly'; known: admin, merge, read, resolve, retry"),
    ("fields_denied: [credit_limit]", "fields_denied: [credit_limt]",
     "conf/triad.yaml: roles.steward_sales.fields_denied[0]: 'credit_limt' is not a field of customer, order; "
     "did you mean 'credit_limit'?"),
    ('cron: "*/10 * * * *"', 'cron: "*/10 * *"',
     "conf/triad.yaml: schedules[1].cron: '*/10 * *' is not a crontab expression (Wrong number of fields"),
    ('cron: "*/10 * * * *"', 'cron: "61 * * * *"', "schedules[1].cron: '61 * * * *' is not a crontab expression"),
    ("{push: all, every: 30s}", "{push: all, evry: 30s}", "schedules[2].evry: unknown key; did you mean 'every'?"),
    ("  url: sqlite:///triad.db", "  url: sqlite:///triad.db\n  uri: x", "store.uri: unknown key; known: url"),
])
def test_a_typo_in_the_template_is_an_error(old: str, new: str, expected: str):
    assert expected in err(edited(old, new))


def test_config_validate_exits_2_naming_file_key_and_hint(tmp_path: Path):
    cfg = tmp_path / "triad.yaml"
    cfg.write_text(edited("    direction: both", "    direcion: in"), encoding="utf-8")
    r = CliRunner().invoke(main, ["--config", str(cfg), "config", "validate"])
    assert r.exit_code == 2, r.output
    assert f"{cfg}: connectors.erp.direcion:" in r.output and "did you mean 'direction'?" in r.output
    assert "ok" not in r.output.split()


def test_an_option_without_a_near_miss_lists_what_the_type_knows():
    msg = err("connectors: {db: {type: sql, url: 'sqlite://', flavour: x}}")
    assert "connectors.db.flavour: not an option of a sql connector; known: batch_size, direction, entities, " in msg
    assert "touch_updated_at" in msg and "url" in msg


def test_a_denied_field_of_any_of_the_roles_entities_is_accepted():
    cfg = parse_config("roles: {r: {entities: [customer, payment], fields_denied: [credit_limit, amount],"
                       " can: [read, admin]}}")
    assert cfg.roles["r"].fields_denied == ["credit_limit", "amount"]
    assert "'amount' is not a field of customer" in err("roles: {r: {entities: [customer], fields_denied: [amount]}}")


def test_a_good_cron_is_kept():
    cfg = parse_config("connectors: {erp: {type: file, path: .}}\n"
                       "schedules: [{connector: erp, cron: '0 3 * * mon-fri'}]")
    assert cfg.schedules[0].cron == "0 3 * * mon-fri"


@pytest.mark.parametrize("every, accepted", [("1.5h", True), ("2w", True), ("30s", True), ("0s", False),
                                              ("99999999999d", False), ("5 fortnights", False)])
def test_a_schedule_interval_is_read_by_the_schedulers_own_parser(every: str, accepted: bool):
    """What `config validate` accepts, `scheduler start` can run, and what it refuses fails at load."""
    text = f"connectors: {{erp: {{type: file, path: .}}}}\nschedules: [{{connector: erp, every: '{every}'}}]"
    if accepted:
        assert parse_config(text, "conf/triad.yaml").schedules[0].every == every
    else:
        message = err(text)
        assert message.startswith(f"conf/triad.yaml: schedules[0]: every '{every}': "), message
        assert any(hint in message for hint in ("like 30m", "e.g. 30m", "at most 36500 days")), message


def test_generic_webhook_keys_only_where_the_generic_webhook_reads_them():
    parse_config("connectors: {erp: {type: file, path: ., webhook_secret: s, webhook_token: t}}")
    msg = err("connectors: {crm: {type: salesforce, base_url: 'https://x', webhook_secret: s}}")
    assert "conf/triad.yaml: connectors.crm.webhook_secret: not an option of a salesforce connector" in msg


# each type with the options its connector reads (the module docstrings' examples and more)
LEGITIMATE: dict[str, str] = {
    "file": "{type: file, path: ./x, outbox: ./o, outbox_format: csv, format: csv, encoding: gbk, delimiter: tab,"
            " entities: {customer: {mapping: m.yaml, batch_size: 5, format: xlsx, sheet: S, encoding: utf-8,"
            " delimiter: ';'}}}",
    "sql": "{type: sql, url: 'sqlite://', password: p, schema: s, touch_updated_at: false, entities: [customer]}",
    "salesforce": "{type: salesforce, base_url: 'https://x', api_version: '60.0', auth: {grant: password},"
                  " verify: false, external_id_field: X__c, retry: {attempts: 2}, webhook_token: t,"
                  " organization_id: o, webhook_records: message, webhook_objects: {Account: customer},"
                  " entities: {order: {children: {lines: OrderItems}}}}",
    "sap": "{type: sap, base_url: 'https://x', auth: {token: t}, verify: true, page_size: 10, overlap_seconds: 5,"
           " timeout: 3, retry: {attempts: 2}, services: [A], entities: {customer: {service: S, expand: [a],"
           " first: {_a: a}, filter: x, select: false, overlap_seconds: 1, page_size: 2}}}",
    "kingdee": "{type: kingdee, base_url: 'https://x', acct_id: a, username: u, password: p, app_id: i,"
               " app_secret: s, lcid: 2052, org_num: 0, auth: password, body_style: named, timeout: 3, retries: 1,"
               " backoff: 0.1, verify: true, overlap_seconds: 1, org_number: '100', write_batch_size: 5,"
               " auto_audit: true, webhook_secret: w,"
               " entities: {customer: {number_field: FNumber, entry_fields: [a], filter: x, page_size: 3}}}",
    "yonyou": "{type: yonyou, base_url: 'https://x', app_key: k, app_secret: s, tenant_id: t, gateway_url: g,"
              " token_url: u, timeout: 3, retries: 1, backoff: 0.1, verify: true, overlap_seconds: 1,"
              " org_code: o, entities: {order: {page_size: 10}}}",
    "dingtalk": "{type: dingtalk, app_key: k, app_secret: s, base_url: 'https://x', oapi_url: 'https://y',"
                " token_api: legacy, process_codes: [P], default_process_code: P, default_originator: u,"
                " dedupe_component: c, dedupe_window_hours: 1, dept_id: 1, agent_id: 2, callback_token: t,"
                " callback_aes_key: a, callback_owner_key: o, since_days: 1, window_days: 1, overlap_seconds: 1,"
                " fetch_concurrency: 2, retries: 1, backoff: 0.1, timeout: 3, verify: true,"
                " entities: {approval: {process_codes: [Q], since_days: 2}}}",
    "feishu": "{type: feishu, app_id: i, app_secret: s, base_url: 'https://x', user_id_type: open_id,"
              " approval_codes: [A], default_approval_code: A, default_user_id: u, dedupe_window_hours: 1,"
              " verification_token: v, encrypt_key: e, since_days: 1, window_days: 1, overlap_seconds: 1,"
              " fetch_concurrency: 2, retries: 1, backoff: 0.1, timeout: 3, verify: true,"
              " entities: {approval: {approval_codes: [B], widgets: {w: amount}}}}",
    "rest": "{type: rest, api: hubspot, base_url: 'https://x', auth: {token: t}, headers: {X: y}, verify: false,"
            " timeout: 3, retries: 1, backoff: 0.1, webhook_token: t, entities: [customer]}",
    "singer": "{type: singer, direction: in, tap: tap-jsonl, command: [x], config: {a: b}, config_file: c.json,"
              " catalog: discover, catalog_flag: --properties, discover_timeout: 5, env: {A: b},"
              " streams: {customers: customer},"
              " entities: {customer: {replication_key: ts, replication_method: INCREMENTAL}}}",
}


@pytest.mark.parametrize("kind", sorted(LEGITIMATE))
def test_every_option_a_type_reads_is_accepted(kind: str):
    cfg = parse_config(f"connectors:\n  x: {LEGITIMATE[kind]}\n")
    assert cfg.connectors["x"].type == kind


@pytest.mark.parametrize("kind", sorted(LEGITIMATE))
def test_every_type_rejects_an_unknown_option(kind: str):
    assert "connectors.x.nonsense_key: not an option of a" in err(
        f"connectors:\n  x: {LEGITIMATE[kind][:-1]}, nonsense_key: 1}}\n")


def test_shipped_configs_validate(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIAD_DEMO_OA_AES_KEY", "x" * 43)
    for name in ("triad.example.yaml", "demo.yaml"):
        load_config(str(CONFIG_DIR / name))


class _Plugin(Connector):
    """A third-party type that does not declare its options."""

    type_name = "acme"

    def check(self) -> Any: ...
    def read(self, stream: Any, cursor: Any) -> Any: ...
    def write(self, stream: Any, changes: Any) -> Any: ...


def test_options_of_a_type_that_declares_none_are_trusted(monkeypatch: pytest.MonkeyPatch):
    from connectors.file.connector import FileConnector

    class Subclass(FileConnector):   # inherits the file declaration, may read more: not checked either
        type_name = "acmefile"

    plugins = {"acme": _Plugin, "acmefile": Subclass}
    real = connector_mod.load_registry
    monkeypatch.setattr(connector_mod, "known_types", lambda: ["file", *plugins])
    monkeypatch.setattr(connector_mod, "load_registry",
                        lambda only=None: {**real(only=set(only or ()) - set(plugins)), **plugins})
    cfg = parse_config("connectors:\n  a: {type: acme, anything: 1, entities: {customer: {whatever: 2}}}\n"
                       "  b: {type: acmefile, path: ., sheet_name: x}\n")
    assert cfg.connectors["a"].options == {"anything": 1}
    assert cfg.connectors["a"].entities["customer"].options == {"whatever": 2}
    assert "connectors.c.shee: not an option of a file connector; did you mean 'sheet'?" in err(
        "connectors:\n  a: {type: acme, anything: 1}\n  c: {type: file, path: ., shee: x}\n")


@pytest.mark.parametrize("serve, expected", [
    ("{window_ms: abc}", "serve.window_ms: Input should be a valid number"),
    ("{wroker: false}", "serve.wroker: unknown key; did you mean 'worker'?"),
    ("{max_rows: 0}", "serve.max_rows"),
])
def test_the_serve_section_is_checked(serve: str, expected: str):
    assert expected in err(f"serve: {serve}\n")


def test_serve_settings_are_typed_and_an_oidc_typo_fails_validate(tmp_path: Path, monkeypatch):
    assert parse_config("serve: {window_ms: '50', worker: false}").serve.window_ms == 50.0
    (tmp_path / "triad.yaml").write_text("serve: {oidc: {issuer: 'https://idp', audince: triad}}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["config", "validate"])
    assert r.exit_code == 2 and "serve.oidc.audince: unknown key" in r.output, r.output


@pytest.mark.parametrize("connector, message", [
    ("{type: sap, base_url: 'http://127.0.0.1:9', auth: {usr: a, password: b}}",
     "connectors.x.auth.usr: not an auth setting of a sap connector; did you mean 'user'?"),
    ("{type: salesforce, base_url: 'http://127.0.0.1:9', auth: {client_id: a, client_secrt: b}}",
     "connectors.x.auth.client_secrt: not an auth setting of a salesforce connector; did you mean 'client_secret'?"),
    ("{type: salesforce, base_url: 'http://127.0.0.1:9', auth: {grant: pasword, client_id: a, client_secret: b}}",
     "connectors.x.auth.grant: unknown grant 'pasword'; did you mean 'password'?"),
    ("{type: sap, base_url: 'http://127.0.0.1:9', auth: basic}", "connectors.x.auth: expected a map of"),
])
def test_a_typo_in_an_auth_block_is_refused(tmp_path, connector, message):
    cfg = tmp_path / "triad.yaml"
    cfg.write_text(f"store: {{url: 'sqlite:///{tmp_path / 'h.db'}'}}\nconnectors:\n  x: {connector}\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["--config", str(cfg), "config", "validate"])
    assert r.exit_code == 2 and message in r.output, r.output
