"""Every HTTP connector reads its ``retries`` option the same way: a value that is not a whole
number is a configuration error naming the option (exit 2), never a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from badinput.conftest import clean, run_cli

NOWHERE = "http://127.0.0.1:9"     # never contacted: the connector is refused while it is being built

CONNECTORS: dict[str, str] = {
    "kingdee": f"{{type: kingdee, base_url: '{NOWHERE}/k3cloud', acct_id: a, username: u, password: p",
    "yonyou": f"{{type: yonyou, base_url: '{NOWHERE}', app_key: k, app_secret: s",
    "feishu": f"{{type: feishu, app_id: i, app_secret: s, base_url: '{NOWHERE}'",
    "rest": f"{{type: rest, api: hubspot, base_url: '{NOWHERE}', auth: {{token: t}}",
    "dingtalk": f"{{type: dingtalk, app_key: k, app_secret: s, base_url: '{NOWHERE}'",
}


@pytest.fixture(autouse=True)
def _sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def check_with_retries(tmp_path: Path, kind: str, retries: str) -> str:
    """`triad connectors check x` for a ``kind`` connector with ``retries: <retries>``; its output."""
    config = tmp_path / f"{kind}.yaml"
    config.write_text(f"store: {{url: 'sqlite:///{tmp_path / 'triad.db'}'}}\n"
                      f"connectors:\n  x: {CONNECTORS[kind]}, retries: {retries}}}\n", encoding="utf-8")
    return clean(run_cli("connectors", "check", "x", config=config), 2).output


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_a_retries_value_that_is_not_a_number_is_a_config_error(tmp_path: Path, kind: str) -> None:
    output = check_with_retries(tmp_path, kind, "many")
    assert "retries" in output and "'many'" in output, output


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_a_negative_retries_value_is_a_config_error(tmp_path: Path, kind: str) -> None:
    assert "retries" in check_with_retries(tmp_path, kind, "-1")


def test_every_connector_refuses_a_bad_retries_value_with_the_same_words(tmp_path: Path) -> None:
    messages = {kind: check_with_retries(tmp_path, kind, "many").strip() for kind in CONNECTORS}
    assert len(set(messages.values())) == 1, messages


@pytest.mark.parametrize("kind", sorted(CONNECTORS))
def test_config_validate_names_the_connector_of_a_bad_retries_value(tmp_path: Path, kind: str) -> None:
    config = tmp_path / f"{kind}.yaml"
    config.write_text(f"connectors:\n  x: {CONNECTORS[kind]}, retries: many}}\n", encoding="utf-8")
    output = clean(run_cli("config", "validate", config=config), 2).output
    assert "connectors.x.retries: retries (retry attempts) must be a whole number" in output, output


@pytest.mark.parametrize("option", ["lcid: zh", "org_num: first", "write_batch_size: 0", "write_batch_size: ten"])
def test_kingdee_number_options_are_config_errors(tmp_path: Path, option: str) -> None:
    config = tmp_path / "kingdee.yaml"
    config.write_text(f"store: {{url: 'sqlite:///{tmp_path / 'triad.db'}'}}\n"
                      f"connectors:\n  x: {CONNECTORS['kingdee']}, {option}}}\n", encoding="utf-8")
    output = clean(run_cli("connectors", "check", "x", config=config), 2).output
    assert option.split(":")[0] in output, output
