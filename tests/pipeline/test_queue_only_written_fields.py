"""A change is queued only for the systems whose mappings write one of the changed fields.

The CRM keeps an account owner, the ERP does not. Before, every golden change was queued to every
other system: the owner the CRM filled in on read-back became one write per other system, each
settled by push as `unchanged`, and, for a record whose create there had failed for good, a new
create that failed again the same way (dead writes piling up each cycle).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main

CRM_MAPPING = """\
source: accounts.csv
key: id
updated_at: updated_at
fields:
  name: name
  tax_id: tax_id
  city: city
  owner: owner
"""
ERP_MAPPING = """\
source: customers.csv
key: no
updated_at: updated_at
fields:
  name: name
  tax_id: tax_id
  city: {from: city, values: {SH: 上海, BJ: 北京}}
"""


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith(("{", "[")) else {}


def run(connector: str) -> dict:
    (result,) = triad("sync", "run", "--connector", connector)["runs"]
    assert result["status"] == "ok", result
    return result


def pending(connector: str) -> list[dict]:
    return [i for i in triad("outbox", "list", "--status", "pending")["items"] if i["connector"] == connector]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)


def accounts(root: Path, *rows: list[str]) -> None:
    write_csv(root / "crm" / "accounts.csv", ["id", "name", "tax_id", "city", "owner", "updated_at"], list(rows))


@pytest.fixture
def project(tmp_path: Path, store_in_env: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The two systems' mappings and exports, on SQLite and on PostgreSQL (the store from the environment)."""
    root = tmp_path / "p"
    for d in ("crm", "erp"):
        (root / d).mkdir(parents=True)
    (root / "crm_customer.yaml").write_text(CRM_MAPPING, encoding="utf-8")
    (root / "erp_customer.yaml").write_text(ERP_MAPPING, encoding="utf-8")
    (root / "triad.yaml").write_text(
        "connectors:\n"
        "  crm: {type: file, path: ./crm, direction: both, entities: {customer: {mapping: crm_customer.yaml}}}\n"
        "  erp: {type: file, path: ./erp, direction: both, entities: {customer: {mapping: erp_customer.yaml}}}\n"
        "matching: {customer: {exact: [tax_id]}}\n", encoding="utf-8")
    monkeypatch.chdir(root)
    write_csv(root / "erp" / "customers.csv", ["no", "name", "tax_id", "city", "updated_at"],
              [["E1", "上海云图科技有限公司", "91310000MA1FL4XQ01", "SH", "2026-11-01 09:00:00"]])
    accounts(root, ["A1", "上海云图科技有限公司", "91310000MA1FL4XQ01", "上海", "王伟", "2026-11-01 09:00:00"],
             ["A2", "深圳蓝海贸易有限公司", "91440300MA5G2K3L4M", "深圳", "李娜", "2026-11-01 09:00:00"])
    triad("db", "upgrade")
    return root


def test_an_owner_change_is_not_queued_to_an_erp_that_keeps_no_owner(project: Path):
    assert run("erp")["created"] == 1
    first = run("crm")
    assert (first["created"], first["linked"]) == (1, 1), first
    # A2 is new to the ERP (a create), and its city has no ERP code: that create fails for good
    push = {p["connector"]: p for p in triad("sync", "push", code=1)["pushes"]}    # exit 1: a write is dead
    assert push["erp"]["dead"] == 1, push["erp"]
    # the owner is filled for the linked record (unknown to the ERP before) and both owners change
    accounts(project, ["A1", "上海云图科技有限公司", "91310000MA1FL4XQ01", "上海", "张敏", "2026-11-02 09:00:00"],
             ["A2", "深圳蓝海贸易有限公司", "91440300MA5G2K3L4M", "深圳", "赵磊", "2026-11-02 09:00:00"])
    owners = run("crm")
    assert (owners["updated"], owners["queued"]) == (2, 0), owners
    assert pending("erp") == []
    push = {p["connector"]: p for p in triad("sync", "push")["pushes"]}
    assert push["erp"]["dead"] == 0, push["erp"]       # no second create failing as the first did
    # a change of a field the ERP keeps is queued to it as before
    accounts(project, ["A1", "上海云图科技股份有限公司", "91310000MA1FL4XQ01", "上海", "张敏", "2026-11-03 09:00:00"],
             ["A2", "深圳蓝海贸易有限公司", "91440300MA5G2K3L4M", "深圳", "赵磊", "2026-11-02 09:00:00"])
    renamed = run("crm")
    assert (renamed["updated"], renamed["queued"]) == (1, 1), renamed
    [row] = pending("erp")
    assert row["record_id"] and "name" in row["fields"], row
