"""A database role cannot hide a field that does not exist; a subscriber's URL never shows its secrets."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--json", *args])


def test_a_denied_field_must_exist_on_the_roles_entities(init_project: Path):
    r = run("users", "role", "no_mail", "--entity", "customer", "--deny-field", "emial", "--can", "read")
    assert r.exit_code == 2 and "--deny-field emial: not a field of customer; did you mean 'email'?" in r.output
    r = run("users", "role", "orders", "--entity", "order", "--deny-field", "credit_limit", "--can", "read")
    assert r.exit_code == 2 and "not a field of order" in r.output
    assert run("users", "role", "no_mail", "--entity", "customer", "--deny-field", "email", "--can", "read").exit_code == 0


def test_a_subscribers_url_is_shown_without_its_secrets(init_project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOOK_SECRET", "s")
    r = run("subscriptions", "add", "billing", "http://u:p4ss@127.0.0.1:9/x?token=abc&kind=1", "-e", "customer",
            "--secret-env", "HOOK_SECRET")
    assert r.exit_code == 0, r.output
    listed = run("subscriptions", "list").stdout + run("audit", "list").stdout
    assert "p4ss" not in listed and "token=abc" not in listed
    assert "http://u:***@127.0.0.1:9/x?token=***&kind=1" in json.dumps(json.loads(run("subscriptions", "list").stdout))
