"""`sync run` and `sync push` say how often the system failed them: requests sent again are counted
(`retried`, a column when there are any). Before, a run against a flaky org looked like a clean one."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from connectors.salesforce.simulator import create_app
from connectors.simkit import SimOptions, SimServer

CONFIG = """
store: {{url: 'sqlite:///hub.db'}}
connectors:
  erp: {{type: file, path: ./erp, direction: in, entities: {{customer: {{}}}}}}
  crm:
    type: salesforce
    base_url: {url}
    auth: {{grant: password, client_id: triad-client, client_secret: triad-secret,
           username: demo@triad.local, password: triad-pass}}
    direction: both
    retry: {{attempts: 8, backoff: 0.001, max_wait: 0.01, timeout: 10}}
    entities: {{customer: {{}}}}
"""


def triad(*args: str, json_out: bool = True):  # noqa: ANN201
    r = CliRunner().invoke(main, (["--json"] if json_out else []) + list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout) if json_out else r.stdout


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    app = create_app(SimOptions(seed=11, records=40))
    with SimServer(app) as server:
        monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "erp").mkdir()
        (tmp_path / "triad.yaml").write_text(CONFIG.format(url=server.base_url), encoding="utf-8")
        triad("db", "upgrade")
        yield app


def test_requests_sent_again_are_counted_and_shown(flaky, tmp_path: Path):
    (quiet,) = triad("sync", "run", "--connector", "crm")["runs"]
    assert quiet["status"] == "ok" and quiet["retried"] == 0
    assert "retried" not in triad("sync", "run", "--connector", "crm", json_out=False)   # no column when none

    flaky.options.fail_rate = 0.4
    failed_before = flaky.stats["failed"]
    (run,) = triad("sync", "run", "--connector", "crm", "--full")["runs"]
    assert run["status"] == "ok" and run["unchanged"] == run["read"] > 0
    assert run["retried"] == flaky.stats["failed"] - failed_before > 0    # each 503 was sent again once
    assert triad("runs", "show", run["id"])["retried"] == run["retried"]          # kept with the run

    flaky.options.fail_rate = 0.0
    (tmp_path / "erp" / "customers.csv").write_text(
        "customer_no,name,tax_id,updated_at\n" + "".join(
            f"E{n},Flaky Industries {n} Ltd,DE{136695976 + n},2026-11-20 09:00:00\n" for n in range(12)),
        encoding="utf-8")
    triad("sync", "run", "--connector", "erp")
    flaky.options.fail_rate = 0.6          # a push sends few requests (composite creates): fail more of them
    failed_before = flaky.stats["failed"]
    (push,) = [p for p in triad("sync", "push")["pushes"] if p["connector"] == "crm"]
    assert push["created"] == 12 and push["retried"] == flaky.stats["failed"] - failed_before > 0
    flaky.options.fail_rate = 0.0
