"""The CLI as a steward test calls it: as a user, with --json."""
from __future__ import annotations

import json

from click.testing import CliRunner, Result

from cli import main


def run(user: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--user", user, "--json", *args])


def ok(user: str, *args: str) -> dict:
    r = run(user, *args)
    assert r.exit_code == 0, (user, args, r.output)
    return json.loads(r.stdout) if r.stdout.strip() else {}
