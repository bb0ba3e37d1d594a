"""`lag_seconds`: each stream's cursor stays that far behind the run's start, so a row that reaches the
source late under an earlier stamp (a long transaction, a clock behind) is read by the next run."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

MAPPING = "source: 'customers*.csv'\nkey: id\nupdated_at: ts\nfields:\n  code: id\n  name: name\n"


def stamp(minutes_ago: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sync(root: Path) -> dict:
    r = CliRunner().invoke(main, ["--config", str(root / "triad.yaml"), "--json", "sync", "run"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.stdout)["runs"]
    return run


@pytest.mark.parametrize("lag, late_row_read", [(0, False), (3600, True)])
def test_a_row_stamped_before_the_last_run_is_read_when_within_the_lag(tmp_path: Path, monkeypatch, lag: int,
                                                                     late_row_read: bool):
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    (tmp_path / "src").mkdir()
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    (tmp_path / "triad.yaml").write_text(
        f"store: {{url: 'sqlite:///{tmp_path / 'hub.db'}'}}\nlag_seconds: {lag}\n"
        "connectors:\n  src: {type: file, path: ./src, direction: in, entities: {customer: {mapping: m.yaml}}}\n",
        encoding="utf-8")
    CliRunner().invoke(main, ["--config", str(tmp_path / "triad.yaml"), "db", "upgrade"], catch_exceptions=False)
    (tmp_path / "src" / "customers_1.csv").write_text(
        f"id,name,ts\nA,甲公司,{stamp(600)}\nB,乙公司,{stamp(10)}\n", encoding="utf-8")
    assert sync(tmp_path)["created"] == 2
    # committed late: stamped 20 minutes ago, before the run above read B (stamped 10 minutes ago)
    (tmp_path / "src" / "customers_2.csv").write_text(f"id,name,ts\nC,丙公司,{stamp(20)}\n", encoding="utf-8")
    run = sync(tmp_path)
    assert run["created"] == (1 if late_row_read else 0), run
    if late_row_read:     # the window read again: what is unchanged is skipped, not written twice
        assert run["unchanged"] >= 1 and run["updated"] == 0
