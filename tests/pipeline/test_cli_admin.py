"""Admin commands around the pipeline: connectors list/check, mappings validate/preview, runs, status."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--json", *args])


def test_connectors_list_and_check(project: Path):
    data = json.loads(run("connectors", "list").stdout)
    assert {c["name"] for c in data["connectors"]} == {"erp", "crm"}
    types = {t["type"] for t in data["types"]}
    assert {"file", "sql", "salesforce", "sap", "kingdee", "yonyou"} <= types
    r = run("connectors", "check", "erp")
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True
    (project / "triad.yaml").write_text((project / "triad.yaml").read_text().replace("./exports/crm", "./nowhere"))
    r = run("connectors", "check", "crm")
    assert r.exit_code == 1 and json.loads(r.stdout)["ok"] is False
    r = run("connectors", "check", "ghost")
    assert r.exit_code == 2 and "unknown connector 'ghost'" in r.output


def test_mappings_validate_names_file_line_and_key(project: Path):
    assert run("mappings", "validate").exit_code == 0
    bad = project / "mappings" / "crm_customer.yaml"
    bad.write_text(bad.read_text().replace("transform: email", "transform: emial"))
    r = run("mappings", "validate")
    assert r.exit_code == 1
    problems = json.loads(r.stdout)["problems"]
    assert any("crm_customer.yaml:" in p and "fields.email.transform" in p and "emial" in p for p in problems), problems
    r = CliRunner().invoke(main, ["config", "validate"])
    assert r.exit_code == 2 and "emial" in r.output


def test_mappings_preview_writes_nothing(project: Path):
    r = run("mappings", "preview", "crm", "customer", "--limit", "4")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["records"]
    assert len(rows) == 4
    assert rows[0]["canonical"]["tax_id"] == "91310000MA1FL4XQ01" and rows[0]["raw"]["TaxNumber"] == "91310000MA1FL4XQ01"
    assert "error" in rows[3] and rows[3]["field"] == "email"
    assert json.loads(run("records", "list", "customer").stdout)["records"] == []


def test_runs_and_status_after_a_sync(project: Path):
    assert run("sync", "run").exit_code == 0
    runs = json.loads(run("runs", "list").stdout)["runs"]
    assert len(runs) == 4 and all(r["status"] == "ok" for r in runs)
    shown = json.loads(run("runs", "show", runs[0]["id"]).stdout)
    assert shown["id"] == runs[0]["id"] and "read" in shown
    status = json.loads(run("status").stdout)
    assert status["records"]["customer"]["count"] == 5 and status["conflicts"]["open"] == 1
    assert any("triad conflicts list" in h for h in status["hints"])
    assert run("runs", "show", "nope").exit_code == 1


def test_status_shows_a_file_stream_s_cursor_as_its_time_and_files(project: Path):
    import os
    import time
    assert run("sync", "run").exit_code == 0
    past = time.time() - 60
    for path in (project / "exports").rglob("*.csv"):   # exports written a while ago: settled
        os.utime(path, (past, past))
    assert run("sync", "run").exit_code == 0
    streams = json.loads(run("status").stdout)["streams"]
    cursor = next(s["cursor"] for s in streams if s["connector"] == "erp" and s["entity"] == "customer")
    assert cursor["ts"] and cursor["files"]                # the whole cursor in --json
    human = CliRunner().invoke(main, ["status"], terminal_width=200).output
    line = next(ln for ln in human.splitlines() if "erp" in ln and "customer" in ln)
    assert cursor["ts"] in line and "file(s) read in full" in line and "{" not in line


def test_a_config_file_that_is_not_there_is_an_error_not_a_fresh_store(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    for args in (["--config", "./nope.yaml", "db", "upgrade"], ["--config", "./nope.yaml", "sync", "run"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and "nope.yaml: no such config file" in r.output, r.output
    monkeypatch.setenv("TRIAD_CONFIG", "./nope.yaml")
    r = CliRunner().invoke(main, ["status"])
    assert r.exit_code == 2 and "no such config file" in r.output, r.output
    assert list(tmp_path.iterdir()) == []     # no triad.db made on the way


def test_a_store_that_cannot_be_opened_is_one_line_without_its_password(project: Path, monkeypatch):
    monkeypatch.setenv("TRIAD_DATABASE_URL", "postgresql+psycopg://postgres:S3cretPW@127.0.0.1:1/nowhere")
    r = CliRunner().invoke(main, ["status"])
    assert r.exit_code == 1 and "cannot open the store at postgresql+psycopg://postgres:***@127.0.0.1:1" in r.output
    assert "S3cretPW" not in r.output and "Traceback" not in r.output


def test_usage_errors_name_what_exists(project: Path):
    r = run("db", "upgrade", "nonexist")
    assert r.exit_code == 2 and "cannot upgrade to 'nonexist'" in r.output, r.output
    r = run("mappings", "preview", "ghost", "customer")
    assert r.exit_code == 2 and "unknown connector 'ghost'; configured: erp, crm" in r.output, r.output
    r = run("mappings", "preview", "crm", "payment")
    assert r.exit_code == 2 and "connector 'crm' does not sync payment" in r.output, r.output
    r = run("sync", "push", "--connector", "ghost")
    assert r.exit_code == 2 and "unknown connector 'ghost'" in r.output, r.output


def test_preview_shows_raw_and_canonical_side_by_side(project: Path):
    r = CliRunner().invoke(main, ["mappings", "preview", "crm", "customer", "--limit", "1"])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if "TaxNumber" in ln)
    assert "tax_id" in line and line.count("91310000MA1FL4XQ01") == 2
    assert "+86 21 5555 0199" in r.output and "+862155550199" in r.output    # raw phone and its E.164 form


def test_init_over_an_existing_config_is_a_usage_error(project: Path):
    r = CliRunner().invoke(main, ["init", str(project)])
    assert r.exit_code == 2 and "exists already (use --force to overwrite it)" in r.output, r.output


def test_init_force_replaces_the_config_only(project: Path):
    export = project / "exports" / "crm" / "accounts.csv"
    export.write_text("edited", encoding="utf-8")
    (project / "triad.yaml").write_text("# mine\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["init", str(project), "--force"]).exit_code == 0
    assert export.read_text(encoding="utf-8") == "edited"
    assert "connectors:" in (project / "triad.yaml").read_text(encoding="utf-8")


def test_sync_push_fails_when_writes_fail(project: Path):
    assert run("sync", "run").exit_code == 0
    (project / "exports" / "crm" / "outbox").write_text("in the way", encoding="utf-8")
    r = run("sync", "push", "--connector", "crm")
    assert r.exit_code == 1, r.output
    pushes = json.loads(r.stdout)["pushes"]
    assert sum(p["failed"] for p in pushes) > 0 and any(p["error"] for p in pushes), pushes


def test_the_store_password_is_never_printed(project: Path, monkeypatch):
    monkeypatch.setenv("TRIAD_DATABASE_URL", "postgresql+psycopg://postgres:S3cretPW@127.0.0.1:1/db")
    r = run("config", "validate")
    assert json.loads(r.stdout)["effective"]["store"]["url"] == "postgresql+psycopg://postgres:***@127.0.0.1:1/db"
    assert "S3cretPW" not in r.output


def test_without_a_config_no_store_is_made_in_the_current_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    for args in (["outbox", "list"], ["audit", "list"], ["status"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and "triad.yaml: no such config file" in r.output, (args, r.output)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("TRIAD_DATABASE_URL", f"sqlite:///{tmp_path / 'named.db'}")
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".db"] == ["named.db"]


def test_quarantine_list_says_when_it_is_cut(project: Path):
    assert run("sync", "run").exit_code == 0
    everything = json.loads(run("quarantine", "list").stdout)
    assert len(everything["items"]) > 2 and everything["more"] is False
    cut = json.loads(run("quarantine", "list", "--limit", "2").stdout)
    assert [i["id"] for i in cut["items"]] == [i["id"] for i in everything["items"][:2]] and cut["more"] is True
    human = CliRunner().invoke(main, ["quarantine", "list", "--limit", "2"]).output
    assert "the oldest 2 shown" in human


def test_a_push_whose_writes_partly_failed_is_not_reported_ok():
    from hub.push_settle import PushReport
    report = PushReport("crm", "customer")
    report.counts.update(written=3, dead=1)
    assert report.as_dict()["status"] == "partial"
    report.counts.update(dead=0, failed=2)
    assert report.as_dict()["status"] == "partial"
    report.counts.update(failed=0)
    assert report.as_dict()["status"] == "ok"
    report.status = "error"
    report.counts.update(failed=2)
    assert report.as_dict()["status"] == "error"     # the whole call failed: said as such


def test_sync_push_accounts_for_every_pending_row(project: Path):
    """A row settled without a write (the system holds those values already) is counted `unchanged`, not lost
    between the columns: here each record has one pending row, so the columns add up to the rows."""
    assert run("sync", "run").exit_code == 0
    pending: dict[tuple[str, str], int] = {}
    for item in json.loads(run("outbox", "list", "--status", "pending").stdout)["items"]:
        key = (item["connector"], item["entity"])
        pending[key] = pending.get(key, 0) + 1
    r = run("sync", "push")
    assert r.exit_code == 0, r.output
    pushes = {(p["connector"], p["entity"]): p for p in json.loads(r.stdout)["pushes"]}
    outcome = ("written", "unchanged", "failed", "dead", "deferred", "skipped")
    assert {k: sum(p[c] for c in outcome) for k, p in pushes.items() if k in pending} == pending
    assert sum(p["unchanged"] for p in pushes.values()) > 0       # the sample has writes the systems hold already
    assert json.loads(run("outbox", "list", "--status", "pending").stdout)["items"] == []


def test_quarantine_says_what_a_value_failed_not_only_the_checks_name(project: Path):
    assert run("sync", "run").exit_code == 0
    listed = CliRunner().invoke(main, ["quarantine", "list"])
    assert listed.exit_code == 0
    assert "credit_limit=-100 is below 0" in listed.output     # the sample's negative credit limit
    item = next(i for i in json.loads(run("quarantine", "list").stdout)["items"] if i["kind"] == "validation")
    shown = CliRunner().invoke(main, ["quarantine", "show", item["id"]])
    assert "credit_limit=-100 is below 0 (expect_column_values_to_be_between)" in shown.output


def test_a_reason_stored_in_another_shape_still_reads():
    from hub.quarantine_admin import reason_text
    assert reason_text({"expectation": "expect_x", "column": "c", "value": "v", "kwargs": None}) == "c=v fails (expect_x)"
    assert reason_text({"expectation": "expect_column_values_to_be_in_set", "column": "status", "value": "x",
                        "kwargs": {"value_set": ["a", "b"]}}) == \
        "status=x is not one of a, b (expect_column_values_to_be_in_set)"
    assert reason_text("plain text") == "plain text" and reason_text({"message": "m"}) == "m"


def test_a_stream_stopped_by_the_request_limit_is_a_note_not_an_error(project: Path, monkeypatch):
    from connectors.file.connector import FileConnector
    from hub.errors import LimitExceeded

    def spent(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        raise LimitExceeded("the API's daily request budget is spent")
        yield      # a generator, as read is
    monkeypatch.setattr(FileConnector, "read", spent)
    r = CliRunner().invoke(main, ["sync", "run", "-c", "erp", "-e", "customer"])
    assert r.exit_code == 0, r.output        # it resumes next run: nothing failed
    assert "note: erp/customer: request limit reached, resumes next run" in r.stderr, r.stderr
    assert "error:" not in r.stderr, r.stderr
