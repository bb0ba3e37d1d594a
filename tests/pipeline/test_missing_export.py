"""A misspelt `source:` or a renamed export reads nothing: the run says so beside its figures (status ok,
exit 0), not only in the log."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main


def test_a_missing_export_is_named_in_the_run(project: Path):
    (project / "exports" / "crm" / "accounts.csv").rename(project / "exports" / "crm" / "accounts-old.csv")
    r = CliRunner().invoke(main, ["--json", "sync", "run", "-c", "crm", "-e", "customer"])
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.stdout)["runs"]
    assert (run["status"], run["read"]) == ("ok", 0)
    assert run["error"].startswith("no file matches 'accounts.csv' in ") and run["error"].endswith("nothing was read")
    shown = CliRunner().invoke(main, ["--json", "runs", "show", run["id"]])
    assert json.loads(shown.stdout)["error"] == run["error"]
    human = CliRunner().invoke(main, ["sync", "run", "-c", "crm", "-e", "customer"])
    assert human.exit_code == 0 and "note: crm/customer: no file matches 'accounts.csv'" in human.stderr
