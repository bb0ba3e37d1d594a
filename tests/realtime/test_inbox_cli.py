"""Webhook events that could not be read stay visible: `triad status` counts and names them, `triad inbox
list` lists them without their bodies, `triad inbox show ID` prints one (admin only)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from hub.config import load_config
from hub.inbox import store
from hub.inbox_processor import InboxProcessor
from hub.store import make_engine
from hub.streams import Parts

from .helpers import ADMIN_AND_VIEWER, customer_row, rows, write_project

UNREADABLE = [b"not json", b"[1,2]", b'{"entity":5}', b'{"entity": "order", "records": [{"order_no": "O1"}]}']


@pytest.fixture
def project(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch):
    for var in ("TRIAD_CONFIG", "TRIAD_USER", "TRIAD_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    path = write_project(tmp_path / "p", ADMIN_AND_VIEWER, store_url)
    cfg = load_config(str(path))
    engine = make_engine(cfg.store.url)
    good = json.dumps({"entity": "customer", "records": [customer_row(1, "Fine")]}).encode()
    ids = [store(engine, "erp", {"content-type": "application/json"}, body).id for body in UNREADABLE + [good]]
    parts = Parts(cfg)
    proc = InboxProcessor(engine, parts, worker="t")
    proc.run_once()
    proc.close()
    parts.close()
    store(engine, "erp", {}, good.replace(b"C0001", b"C0002"))   # still pending: no worker runs here
    yield path, engine, ids
    engine.dispose()


def triad(path: Path, *args: str, user: str = "alice"):
    return CliRunner().invoke(main, ["--config", str(path), "--user", user, *args])


def test_status_counts_the_inbox_and_points_at_the_errors(project):
    path, engine, _ = project
    assert rows(engine, "select count(*) n from inbox where status = 'error'")[0].n == len(UNREADABLE)
    r = triad(path, "status", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["inbox"] == {"pending": 1, "error": len(UNREADABLE)}
    assert data["outbox"]["pending"] >= 0 and "records" in data          # the other keys are as they were
    assert any("triad inbox list --status error" in h for h in data["hints"])
    human = triad(path, "status")
    assert human.exit_code == 0 and "4 webhook event(s) could not be read" in human.output, human.output
    assert "triad inbox list --status error" in human.output


def test_list_names_the_error_rows_without_their_bodies(project):
    path, _, ids = project
    r = triad(path, "inbox", "list", "--status", "error", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["more"] is False
    assert {i["id"] for i in data["items"]} == set(ids[: len(UNREADABLE)])
    for item in data["items"]:
        assert set(item) == {"id", "connector", "status", "error", "received_at"}
        assert item["status"] == "error" and item["connector"] == "erp" and item["error"]
    every = json.loads(triad(path, "inbox", "list", "--json").stdout)["items"]
    assert sorted(i["status"] for i in every) == ["done"] + ["error"] * len(UNREADABLE) + ["pending"]
    cut = json.loads(triad(path, "inbox", "list", "--limit", "2", "--json").stdout)
    assert len(cut["items"]) == 2 and cut["more"] is True
    human = triad(path, "inbox", "list", "--status", "error")
    assert human.exit_code == 0 and ids[0] in human.output and "triad inbox show ID" in human.output


def test_show_prints_the_stored_body(project):
    path, _, ids = project
    r = triad(path, "inbox", "show", ids[0], "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["body"] == "not json" and row["status"] == "error" and row["error"]
    assert row["headers"] == {"content-type": "application/json"} and row["body_encoding"] == "utf-8"
    human = triad(path, "inbox", "show", ids[2])
    assert human.exit_code == 0 and '{"entity":5}' in human.output
    missing = triad(path, "inbox", "show", "nope")
    assert missing.exit_code == 1 and "no inbox row" in missing.output


def test_a_user_without_admin_is_refused(project):
    path, _, ids = project
    for args in (("inbox", "list"), ("inbox", "show", ids[0])):
        r = triad(path, *args, user="bob")
        assert r.exit_code == 2 and "missing permission 'admin'" in r.output, r.output
