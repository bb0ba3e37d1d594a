"""Adding `flows:` to a hub that already holds data does not replay its past: flows react to the golden
changes made after they are configured."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main

from .test_flows_automatic import FLOWS, OPP_HEADER, make_project, opportunity


def triad(cfg: Path, *args: str) -> dict:
    r = CliRunner().invoke(main, ["--config", str(cfg), "--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout) if r.stdout.strip() else {}


def test_flows_added_later_start_no_run_for_past_changes(tmp_path: Path, sqlite_url: str):
    root = tmp_path / "p"
    cfg = make_project(root, sqlite_url, extra="", opportunities=[
        opportunity("Qualification", "2026-11-01T00:00:00Z", 1), opportunity("Qualification", "2026-11-01T00:00:00Z", 2)])
    triad(cfg, "sync", "run")
    (root / "crm" / "opportunities.csv").write_text("\n".join([
        OPP_HEADER, opportunity("Proposal", "2026-11-02T00:00:00Z", 1),
        opportunity("Qualification", "2026-11-01T00:00:00Z", 2)]) + "\n", encoding="utf-8")
    triad(cfg, "sync", "run")                       # O1 reached Proposal long before any flow existed

    cfg.write_text(cfg.read_text(encoding="utf-8") + FLOWS, encoding="utf-8")
    result = triad(cfg, "sync", "run")
    assert result["flows"]["started"] == 0
    assert triad(cfg, "flows", "run")["started"] == 0
    assert triad(cfg, "flows", "list")["runs"] == []
    assert triad(cfg, "outbox", "list")["items"] == []

    # a change made now starts its run
    (root / "crm" / "opportunities.csv").write_text("\n".join([
        OPP_HEADER, opportunity("Proposal", "2026-11-02T00:00:00Z", 1),
        opportunity("Proposal", "2026-11-03T00:00:00Z", 2)]) + "\n", encoding="utf-8")
    result = triad(cfg, "sync", "run")
    assert result["flows"]["started"] == 1 and result["flows"]["waiting"] == 1
    (run,) = triad(cfg, "flows", "list")["runs"]
    assert run["record_id"] == triad(cfg, "records", "list", "opportunity", "--where", "opportunity_no=O2")[
        "records"][0]["id"]
