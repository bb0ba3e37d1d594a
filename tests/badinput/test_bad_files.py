"""Hostile exports for the file connector (corpus/files) through `triad sync run`: the run goes on, bad
rows are parked with a reason and their line, SQL-looking and path-looking ids are stored literally,
nothing is read or written outside the folder, and a batch is all or nothing."""
from __future__ import annotations

import codecs
import json
import os
import shutil
from pathlib import Path

import pytest

from connectors.file.connector import FileConnector
from connectors.file.readers import iter_csv
from hub.connector import StreamSpec, WriteChange

from .conftest import CORPUS, SQL_ID, Project, clean, tree_snapshot

ERP_CUSTOMER = ("erp", "customer")


def use(project: Project, corpus_name: str, target: str = "customers.csv") -> None:
    """Put a corpus file in the ERP export folder (as the customer export unless ``target`` says otherwise)."""
    if target != "customers.csv":
        (project.erp / "customers.csv").unlink()
        project.erp_source(target)
    shutil.copyfile(CORPUS / "files" / corpus_name, project.erp / target)


def parked(project: Project, connector: str = "erp") -> list[dict]:
    return [i for i in project.quarantine() if i["connector"] == connector and i["entity"] == "customer"]


def messages(items: list[dict]) -> list[str]:
    return sorted(r.get("message", "") for i in items for r in i["reasons"])


def codes(project: Project) -> set[str]:
    return {c["fields"]["code"] for c in project.customers() if "erp" in c["xrefs"]}


def test_ragged_rows_are_parked_with_their_lines(project: Project):
    use(project, "ragged.csv")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert (run["status"], run["read"], run["created"], run["quarantined"]) == ("ok", 4, 2, 2)
    assert messages(parked(project)) == ["line 3: expected 16 columns, got 2", "line 4: expected 16 columns, got 17"]
    assert codes(project) == {"C1", "C5"}
    item = next(i for i in parked(project) if "line 3" in i["reasons"][0]["message"])
    shown = project.ok("quarantine", "show", item["id"])
    assert "C3,Short Row" in str(shown["raw"])          # the raw text is kept for the steward


def test_unbalanced_quote_is_parked_and_the_rest_goes_on(project: Project):
    use(project, "unbalanced_quote.csv")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["created"] == 1 and run["quarantined"] == 1
    assert messages(parked(project))[0].startswith("line 3:")


@pytest.mark.parametrize("name", ["header_only.csv", "empty.csv"])
def test_header_only_and_empty_files_read_nothing(project: Project, name: str):
    use(project, name)
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert (run["status"], run["read"], run["created"], run["quarantined"]) == ("ok", 0, 0, 0)


@pytest.mark.parametrize("name,needle", [("no_key_column.csv", "no column 'customer_no'"),
                                         ("duplicate_column.csv", "column 'name' appears twice")])
def test_unusable_header_fails_the_stream_only(project: Project, name: str, needle: str):
    use(project, name)
    out = clean(project.triad("sync", "run"), 1)
    assert "erp/customer" in out.stderr and needle in out.stderr
    runs = project.sync()
    assert runs[ERP_CUSTOMER]["status"] == "error" and runs[ERP_CUSTOMER]["created"] == 0
    assert runs[("crm", "customer")]["status"] == "ok"
    assert codes(project) == set() and any("crm" in c["xrefs"] for c in project.customers())


def test_gbk_bytes_in_a_utf8_file_are_parked_per_line(project: Project):
    use(project, "gbk_declared_utf8.csv")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["created"] == 2 and run["quarantined"] == 1
    [message] = messages(parked(project))
    assert message.startswith("line 3: cannot decode byte") and message.endswith("as utf-8")
    assert codes(project) == {"C1", "C3"}


def test_utf16_file_fails_the_stream_cleanly(project: Project):
    use(project, "utf16_bom.csv")
    out = clean(project.triad("sync", "run", "-c", "erp", "-e", "customer"), 1)
    assert "customers.csv" in out.stderr
    assert codes(project) == set()


def test_utf16_file_error_names_the_encoding(project: Project):
    use(project, "utf16_bom.csv")
    out = clean(project.triad("sync", "run", "-c", "erp", "-e", "customer"), 1)
    assert "customers.csv: the file is UTF-16 (it starts with a UTF-16 byte order mark), not utf-8" in out.stderr
    assert "set encoding: utf-16" in out.stderr


def test_utf16_file_without_bom_error_names_the_encoding(project: Project):
    use(project, "utf16le_no_bom.csv")
    out = clean(project.triad("sync", "run", "-c", "erp", "-e", "customer"), 1)
    assert "the file is UTF-16-LE" in out.stderr and "set encoding: utf-16-le" in out.stderr
    assert codes(project) == set()


@pytest.mark.parametrize("name,encoding", [("utf16_bom.csv", "utf-16"), ("utf16le_no_bom.csv", "utf-16-le")])
def test_utf16_file_with_its_encoding_declared_is_read(project: Project, name: str, encoding: str):
    project.edit("triad.yaml", "customer: {mapping: mappings/erp_customer.yaml}",
                 f"customer: {{mapping: mappings/erp_customer.yaml, encoding: {encoding}}}")
    clean(project.triad("config", "validate"), 0)
    use(project, name)
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert (run["status"], run["created"], run["quarantined"]) == ("ok", 2, 0)
    assert codes(project) == {"C1", "C2"}
    export = project.erp / "customers.csv"
    lines = export.read_bytes().decode(encoding).splitlines(keepends=True)
    export.write_bytes("".join(line for line in lines if not line.startswith("C2,")).encode(encoding))
    (project.erp / "customers.deleted.csv").write_bytes("customer_no\r\nC2\r\n".encode(encoding))
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["deleted"] == 1
    [c2] = project.customers("code=C2")
    assert c2["deleted_in"] == ["erp"]


def test_utf16_file_keeps_bad_rows_per_line(tmp_path: Path):
    path = tmp_path / "customers.csv"
    lone_surrogate = b"\x00\xd8"
    path.write_bytes("customer_no,name\nC1,ok\nC2,Nul\x00Name\n".encode("utf-16") + lone_surrogate
                     + "C3,x\nC4,ok\n".encode("utf-16-le"))
    rows = list(iter_csv(path, encoding="utf-16", delimiter=",", required=("customer_no",)))
    assert [(line, r.get("customer_no") or r["__error__"]) for line, r in rows] == [
        (2, "C1"), (3, "line 3: column 'name' holds a NUL byte (0x00)"),
        (4, "line 4: cannot decode byte 0x00 at character 1 as utf-16"), (5, "C4")]


def test_utf16_outbox_has_one_byte_order_mark_and_reads_back(tmp_path: Path):
    conn = FileConnector("erp", {"path": str(tmp_path), "encoding": "utf-16", "outbox_format": "csv"})
    spec = StreamSpec(entity="customer", source="customers.csv", key="customer_no", updated_at=None,
                      timezone="UTC", batch_size=10, run_started_at=None, fields=("customer_no", "name"))
    results = conn.write(spec, [WriteChange("ch1", "R1", None, {"customer_no": "C9", "name": "上海"}),
                                WriteChange("ch2", "R2", "C2", {"name": "renamed"})])
    assert all(r.ok for r in results)
    [written] = (tmp_path / "outbox").iterdir()
    data = written.read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE) and data.count(codecs.BOM_UTF16_LE) == 1
    rows = [r for _line, r in iter_csv(written, encoding="utf-16", delimiter=",")]
    assert [(r["customer_no"], r["name"]) for r in rows] == [("C9", "上海"), ("C2", "renamed")]


def test_nul_bytes_never_stop_the_run(project: Project):
    use(project, "nul_bytes.csv")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok"
    assert {"C1", "C4"} <= codes(project)


def test_nul_bytes_are_parked_with_their_lines(project: Project):
    use(project, "nul_bytes.csv")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["quarantined"] == 2 and codes(project) == {"C1", "C4"}
    assert messages(parked(project)) == ["line 3: column 'name' holds a NUL byte (0x00)",
                                         "line 4: column 'customer_no' holds a NUL byte (0x00)"]
    item = next(i for i in parked(project) if "line 3" in i["reasons"][0]["message"])
    assert "C2,Nul\\x00Name," in project.ok("quarantine", "show", item["id"])["raw"]["__raw__"]   # shown, not lost


def test_nul_escape_in_json_lines_is_parked_with_its_line(project: Project):
    (project.erp / "customers.csv").unlink()
    project.erp_source("customers.jsonl")
    rows = [{"customer_no": "C1", "name": "Good", "email": "c1@bad.example.cn"},
            {"customer_no": "C2", "name": "Nul\x00Name", "email": "c2@bad.example.cn"},
            {"customer_no": "C3", "name": "Good", "email": "c3@bad.example.cn"}]
    (project.erp / "customers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["quarantined"] == 1 and codes(project) == {"C1", "C3"}
    assert messages(parked(project)) == ["line 2: field 'name' holds a NUL byte (0x00)"]


@pytest.mark.postgres
def test_nul_bytes_on_postgresql_park_the_row_not_the_batch(project: Project, pg_url: str,
                                                            monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIAD_DATABASE_URL", pg_url)
    clean(project.triad("db", "upgrade"), 0)
    use(project, "nul_bytes.csv")
    run = project.sync("-c", "erp", "-e", "customer")[ERP_CUSTOMER]
    assert run["status"] == "ok" and codes(project) == {"C1", "C4"}


def test_ten_megabyte_field_is_parked_with_its_line(project: Project):
    header = (CORPUS / "files" / "header_only.csv").read_text(encoding="utf-8")
    good = "C1,Acme,company,,c1@bad.example.cn,,CN,,,,,CNY,100,NET30,active,2026-11-01 09:00:00\n"
    huge = "C2," + "x" * (10 * 1024 * 1024) + ",company,,c2@bad.example.cn,,CN,,,,,CNY,100,NET30,active,2026-11-01\n"
    (project.erp / "customers.csv").write_text(header + good + huge + good.replace("C1", "C3").replace("c1@", "c3@"),
                                               encoding="utf-8")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["created"] == 2 and run["quarantined"] == 1
    [message] = messages(parked(project))
    assert message.startswith("line 3:") and "field limit" in message
    [item] = parked(project)
    assert len(str(item)) < 20_000          # the parked payload is bounded, not 10 MB


def test_sql_meta_characters_in_ids_are_stored_literally(project: Project):
    use(project, "sql_meta_ids.csv")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["created"] == 6
    ids = [SQL_ID, "%", "_", "a\\b", 'x" OR "1"="1', "Robert'); DROP TABLE xref;--"]
    for source_id in ids:
        [found] = project.customers(f"code={source_id}")
        assert found["fields"]["code"] == source_id and found["xrefs"] == {"erp": [source_id]}
        out = clean(project.triad("records", "show", "customer", source_id), 1)
        assert f"it is a source id of {found['id']}" in out.stderr
    assert project.customers("code=%%") == [] and project.customers("code=C%") == []   # no LIKE anywhere
    for table in ("customer", "xref", "source_state", "field_history", "quarantine"):
        assert project.scalar("select count(*) from sqlite_master where type='table' and name=:t", t=table) == 1
    assert project.scalar("select count(*) from customer") == 6
    again = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert again["created"] == again["updated"] == 0               # ids compare exactly on the next read


def test_path_like_ids_never_leave_the_outbox_folder(project: Project):
    use(project, "path_ids.csv")
    accounts = ["AccountId,AccountName,TaxNumber,Email,Phone,Country,City,Street,Tier,Owner,Active,LastModified"]
    for n, email in enumerate(["escape", "tmpabsescape", "winescape", "cwindowsx"], 1):
        accounts.append(f"../crm-{n},Linked {n},,{email}@bad.example.cn,+86 21 5555 01{n:02d},CN,上海,Road {n},"
                        f"Gold,Li,true,2026-11-06T02:00:00Z")
    (project.crm / "accounts.csv").write_text("\n".join(accounts) + "\n", encoding="utf-8")
    before = tree_snapshot(project.root.parent, skip=("p/triad.db", "p/exports/erp/outbox", "p/exports/crm/outbox"))
    runs = project.sync("-c", "erp", "-c", "crm", "-e", "customer", codes=(0,))
    assert runs[ERP_CUSTOMER]["created"] == 4 and runs[("crm", "customer")]["linked"] == 4
    pending = project.ok("outbox", "list", "--status", "pending", "--connector", "erp")["items"]
    assert pending, "the CRM's phones should go back to the ERP"
    pushed = project.ok("sync", "push")["pushes"]
    assert all(p["dead"] == 0 for p in pushed)
    after = tree_snapshot(project.root.parent, skip=("p/triad.db", "p/exports/erp/outbox", "p/exports/crm/outbox"))
    assert after == before                     # nothing written anywhere else, nothing created outside
    written = b"".join(p.read_bytes() for p in (project.erp / "outbox").iterdir())
    assert b'"customer_no": "../../escape"' in written and b'"/tmp/abs-escape"' in written
    assert not Path("/tmp/abs-escape").exists()
    assert all(p.parent == project.erp / "outbox" for p in (project.erp / "outbox").rglob("*"))


@pytest.mark.parametrize("name,needle", [("garbage_zip.xlsx", "not a readable XLSX workbook"),
                                         ("text_renamed.xlsx", "not a readable XLSX workbook")])
def test_broken_workbooks_fail_their_stream_only(project: Project, name: str, needle: str):
    use(project, name, target="customers.xlsx")
    out = clean(project.triad("sync", "run"), 1)
    assert "erp/customer" in out.stderr and needle in out.stderr and "customers.xlsx" in out.stderr
    runs = project.sync()
    assert runs[ERP_CUSTOMER]["status"] == "error"
    assert runs[("crm", "customer")]["status"] == "ok" and runs[("erp", "order")]["status"] == "ok"


def test_broken_json_lines_are_parked_with_their_lines(project: Project):
    use(project, "broken.jsonl", target="customers.jsonl")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["created"] == 2
    assert codes(project) == {"C1", "C4"}
    found = messages(parked(project))
    for line in (2, 3, 4, 5, 6):
        assert any(m.startswith(f"line {line}: ") for m in found), (line, found)
    assert any("expected a single value, got a list" in m for m in found)       # name: [..]
    assert any("not a finite decimal number" in m for m in found)               # credit_limit: NaN
    assert any("got a dict" in m for m in found)                                # a key that is an object
    assert run["quarantined"] == len(parked(project)) == 8


@pytest.mark.parametrize("source,needle", [
    ("../../../../etc/passwd", "leaves the folder"), ("/etc/passwd", "is absolute"),
    ("..\\..\\customers.csv", "leaves the folder"), ("C:\\customers.csv", "is absolute"),
    ("sub/../../customers.csv", "leaves the folder"), ("../*.csv", "leaves the folder")])
def test_mapping_source_outside_the_folder_is_refused(project: Project, source: str, needle: str):
    project.erp_source(source)
    runs = project.sync()
    assert runs[ERP_CUSTOMER]["status"] == "error" and needle in runs[ERP_CUSTOMER]["error"]
    assert runs[ERP_CUSTOMER]["read"] == 0 and codes(project) == set()
    assert runs[("crm", "customer")]["status"] == "ok"


@pytest.mark.parametrize("layout", ["file", "folder", "glob"])
def test_symlinks_out_of_the_folder_are_refused(project: Project, layout: str):
    outside = project.root.parent / "outside"
    outside.mkdir()
    shutil.copyfile(CORPUS / "files" / "sql_meta_ids.csv", outside / "customers.csv")   # six readable rows
    (project.erp / "customers.csv").unlink()
    if layout == "file":
        os.symlink(outside / "customers.csv", project.erp / "customers.csv")
    elif layout == "folder":
        os.symlink(outside, project.erp / "linked")
        project.erp_source("linked/customers.csv")
    else:
        os.symlink(outside / "customers.csv", project.erp / "zz.csv")
        project.erp_source("*.csv")
    runs = project.sync("-c", "erp", "-e", "customer")
    assert runs[ERP_CUSTOMER]["status"] == "error" and "outside the folder" in runs[ERP_CUSTOMER]["error"]
    assert runs[ERP_CUSTOMER]["read"] == 0 and codes(project) == set()


def test_a_batch_is_all_or_nothing(project: Project):
    """Batches of 2; the fourth row cannot be mapped safely. Whatever the hub does with that row, each
    batch's rows are either all accounted for (stored or parked) or none of them are."""
    project.edit("triad.yaml", "customer: {mapping: mappings/erp_customer.yaml}",
                 "customer: {mapping: mappings/erp_customer.yaml, batch_size: 2}")
    header = (CORPUS / "files" / "header_only.csv").read_text(encoding="utf-8")
    rows = []
    for n in range(1, 9):
        stamp = "99999999999999999999" if n == 4 else "2026-11-01 09:00:00"
        rows.append(f"C{n},Acme {n},company,,c{n}@bad.example.cn,,CN,,,,,CNY,100,NET30,active,{stamp}")
    (project.erp / "customers.csv").write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    run = project.sync("-c", "erp", "-e", "customer")[ERP_CUSTOMER]
    stored = codes(project)
    parked_ids = {i["source_id"] for i in parked(project)}
    accounted = stored | parked_ids
    for batch in ({"C1", "C2"}, {"C3", "C4"}, {"C5", "C6"}, {"C7", "C8"}):
        assert batch <= accounted or not (batch & accounted), (batch, stored, parked_ids)
    assert run["created"] == len(stored) == project.scalar("select count(*) from customer")
    assert project.scalar("select count(*) from xref where entity='customer'") == len(stored)
    assert project.scalar("select count(*) from source_state where entity='customer'") == len(stored)


@pytest.mark.parametrize("name", ["bad_dates.csv", "huge_epoch.csv"])
def test_out_of_range_timestamps_are_parked(project: Project, name: str):
    use(project, name)
    run = project.sync("-c", "erp", "-e", "customer")[ERP_CUSTOMER]
    assert run["status"] == "ok" and codes(project) == {"C1", "C3"} and run["quarantined"] == 1


def test_preview_of_out_of_range_timestamps_does_not_crash(project: Project):
    use(project, "huge_epoch.csv")
    doc = project.ok("mappings", "preview", "erp", "customer", "--limit", "3")
    assert "error" in doc["records"][1]


def test_deleted_side_file_with_hostile_keys(project: Project):
    project.sync("-c", "erp", "-e", "customer", codes=(0,))
    (project.erp / "customers.deleted.csv").write_bytes(
        b"customer_no\n" + SQL_ID.encode() + b"\nC0001\n\xff\xfe\n%\n")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["deleted"] == 1            # only C0001 was known
    [c1] = project.customers("code=C0001")
    assert c1["deleted_in"] == ["erp"]
    assert project.scalar("select count(*) from sqlite_master where name='customer'") == 1


def test_huge_line_in_deleted_side_file_does_not_stop_the_stream(project: Project):
    (project.erp / "customers.deleted.csv").write_text("customer_no\n" + "x" * 300_000 + "\nC0001\n",
                                                       encoding="utf-8")
    run = project.sync("-c", "erp", "-e", "customer")[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["created"] == 4


def test_control_characters_are_kept_as_data(project: Project):
    use(project, "control_chars.csv")
    run = project.sync("-c", "erp", "-e", "customer", codes=(0,))[ERP_CUSTOMER]
    assert run["status"] == "ok" and run["created"] == 3
    names = {c["fields"]["name"] for c in project.customers()}
    assert {"\x1b[31mred\x1b[0m\x07", "\u202etxt.exe", "=cmd|'/c calc'!A1"} <= names
