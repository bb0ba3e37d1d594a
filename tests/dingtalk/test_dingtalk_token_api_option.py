"""``token_api: legacy`` from triad.yaml: a setting named like a secret, read as plain text."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli import main
from connectors.dingtalk.client import DingTalkClient
from hub.config import load_config
from hub.secrets import Secret


def write_config(tmp_path: Path, sim: Any) -> Path:
    path = tmp_path / "triad.yaml"
    path.write_text(f"""store: {{url: "sqlite:///{tmp_path / 'triad.db'}"}}
connectors:
  oa:
    type: dingtalk
    base_url: {sim.url}
    app_key: triad-client
    app_secret: triad-secret
    token_api: legacy
    callback_token: triad-callback-token
    process_codes: [PROC-TRIAD-BUDGET]
    entities: {{approval: {{}}}}
""", encoding="utf-8")
    return path


def test_connectors_check_with_the_legacy_token_api(sim: Any, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(write_config(tmp_path, sim)), "--json",
                                       "connectors", "check", "oa"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["info"]["token_api"] == "legacy"


def test_the_loaded_option_is_plain_while_credentials_stay_secret(sim: Any, tmp_path: Path) -> None:
    options = load_config(str(write_config(tmp_path, sim))).connectors["oa"].options
    assert options["token_api"] == "legacy"
    assert isinstance(options["app_secret"], Secret) and isinstance(options["callback_token"], Secret)
    client = DingTalkClient(options, "oa")
    try:
        assert client.token_api == "legacy" and client.token()
        assert client.token_fetches == 1
    finally:
        client.close()


def test_the_client_reads_a_wrapped_token_api_as_text(sim: Any) -> None:
    """An options dict built elsewhere may still wrap it: the client reveals the setting before comparing."""
    client = DingTalkClient({"base_url": sim.url, "app_key": "triad-client", "app_secret": Secret("triad-secret"),
                             "token_api": Secret("legacy")}, "oa")
    try:
        assert client.token_api == "legacy" and client.token()
    finally:
        client.close()
