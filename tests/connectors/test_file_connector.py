"""The file connector: encodings, delimiters, XLSX, JSON lines, folder confinement, bad rows, streaming."""
from __future__ import annotations

import json
import os
import time
import tracemalloc
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.file.connector import FileConnector
from hub.connector import StreamSpec, WriteChange, load_registry
from hub.errors import ConfigError, FatalError

HEADER = "customer_no,name,phone,credit_limit,updated_at\n"


def stream(source: str = "customers.csv", *, updated_at: str | None = "updated_at", batch_size: int = 100,
           tz: str = "UTC", run_started_at: datetime | None = None, **options) -> StreamSpec:
    return StreamSpec(entity="customer", source=source, key="customer_no", updated_at=updated_at, timezone=tz,
                      batch_size=batch_size, run_started_at=run_started_at, options=options)


def read(conn: FileConnector, spec: StreamSpec, cursor=None) -> tuple[list[dict], list]:
    batches = list(conn.read(spec, cursor))
    return [r for b in batches for r in b.records], batches


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


def connector(folder: Path, **options) -> FileConnector:
    return FileConnector("erp", {"path": str(folder), **options})


# ---- encodings and dialects ---------------------------------------------------------------------

def test_utf8_bom_is_accepted(folder: Path) -> None:
    (folder / "customers.csv").write_bytes(
        b"\xef\xbb\xbf" + (HEADER + "C1,上海贸易,+862155550001,00123,2024-01-01 10:00:00\n").encode())
    records, _ = read(connector(folder), stream())
    assert records == [{"customer_no": "C1", "name": "上海贸易", "phone": "+862155550001", "credit_limit": "00123",
                        "updated_at": "2024-01-01 10:00:00"}]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_chinese_legacy_encodings(folder: Path, encoding: str) -> None:
    text = HEADER + "C1,北京市朝阳区贸易有限公司,010-5555,1000,2024-01-01\nC2,深圳,0755,2,2024-01-02\n"
    (folder / "customers.csv").write_bytes(text.encode(encoding))
    records, _ = read(connector(folder, encoding=encoding), stream())
    assert [r["name"] for r in records] == ["北京市朝阳区贸易有限公司", "深圳"]


def test_gbk_file_read_as_utf8_reports_each_bad_line(folder: Path) -> None:
    text = HEADER + "C1,ascii only,1,1,2024-01-01\nC2,北京,2,2,2024-01-02\nC3,plain,3,3,2024-01-03\n"
    (folder / "customers.csv").write_bytes(text.encode("gbk"))
    records, _ = read(connector(folder), stream())
    good = [r["customer_no"] for r in records if "__error__" not in r]
    bad = [r for r in records if "__error__" in r]
    assert good == ["C1", "C3"]
    assert len(bad) == 1 and bad[0]["__line__"] == 3
    assert bad[0]["__error__"].startswith("line 3: cannot decode byte 0xb1")


def test_semicolon_and_tab_delimiters(folder: Path) -> None:
    (folder / "customers.csv").write_text("customer_no;name;updated_at\nC1;Müller, GmbH;2024-01-01\n",
                                          encoding="utf-8")
    records, _ = read(connector(folder, delimiter=";"), stream())
    assert records == [{"customer_no": "C1", "name": "Müller, GmbH", "updated_at": "2024-01-01"}]
    (folder / "orders.tsv").write_text("customer_no\tname\nC2\ta;b\n", encoding="utf-8")
    records, _ = read(connector(folder), stream("orders.tsv"))   # .tsv: tab unless a delimiter is set
    assert records == [{"customer_no": "C2", "name": "a;b"}]
    records, _ = read(connector(folder, delimiter="tab"), stream("orders.tsv"))
    assert records[0]["name"] == "a;b"


def test_per_entity_options_override_the_connector(folder: Path) -> None:
    (folder / "customers.csv").write_bytes("customer_no|name\nC1|杭州\n".encode("gb18030"))
    records, _ = read(connector(folder), stream(delimiter="|", encoding="gb18030"))
    assert records == [{"customer_no": "C1", "name": "杭州"}]


def test_values_are_exact_text_and_quoted_newlines_keep_line_numbers(folder: Path) -> None:
    (folder / "customers.csv").write_text(
        HEADER + 'C1,"multi\nline",+8613800138000,1e3,\n'  # lines 2-3
        "C2,short row\n"                                   # line 4
        ",nameless,1,1,2024-01-01\n"                      # line 5: no key
        "C3, spaced ,007,1.50,2024-01-01\n", encoding="utf-8")
    records, _ = read(connector(folder), stream())
    assert records[0] == {"customer_no": "C1", "name": "multi\nline", "phone": "+8613800138000",
                          "credit_limit": "1e3", "updated_at": ""}
    assert records[1]["__error__"] == "line 4: expected 5 columns, got 2" and records[1]["__line__"] == 4
    assert records[1]["__file__"] == "customers.csv" and records[1]["__raw__"] == "C2,short row"
    assert records[2]["__error__"] == "line 5: empty key 'customer_no'"
    assert records[3] == {"customer_no": "C3", "name": " spaced ", "phone": "007", "credit_limit": "1.50",
                          "updated_at": "2024-01-01"}


def test_header_without_the_key_column_stops_the_stream(folder: Path) -> None:
    (folder / "customers.csv").write_text("id,name\n1,a\n", encoding="utf-8")
    with pytest.raises(FatalError, match="no column 'customer_no'"):
        read(connector(folder), stream())
    (folder / "customers.csv").write_text("customer_no,name,name\n1,a,b\n", encoding="utf-8")
    with pytest.raises(FatalError, match="'name' appears twice"):
        read(connector(folder), stream())


# ---- XLSX and JSON lines --------------------------------------------------------------------------

def test_xlsx_cells_as_shown(folder: Path) -> None:
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["customer_no", "name", "credit_limit", "ratio", "opened", "updated_at", "active", "phone", "note"])
    ws.append([123, "Acme", 5000.0, 12.5, date(2024, 3, 1), datetime(2024, 3, 1, 10, 30), True, "+8613800138000"])
    ws.append(["00123", "Beta", 7, None, None, None, False, "021-5555", "x"])
    ws.append([])
    ws.append(["C9", "too wide", 1, 2, 3, 4, 5, 6, 7, "extra"])
    wb.save(folder / "customers.xlsx")
    records, _ = read(connector(folder), stream("customers.xlsx", updated_at=None))
    assert records[0] == {"customer_no": "123", "name": "Acme", "credit_limit": "5000", "ratio": "12.5",
                          "opened": "2024-03-01", "updated_at": "2024-03-01T10:30:00", "active": "TRUE",
                          "phone": "+8613800138000", "note": ""}
    assert records[1] == {"customer_no": "00123", "name": "Beta", "credit_limit": "7", "ratio": "", "opened": "",
                          "updated_at": "", "active": "FALSE", "phone": "021-5555", "note": "x"}
    assert records[2]["__error__"] == "row 5: expected 9 columns, got 10" and records[2]["__line__"] == 5


def test_xlsx_named_sheet(folder: Path) -> None:
    import openpyxl
    wb = openpyxl.Workbook()
    wb.active.append(["other"])
    ws = wb.create_sheet("客户")
    ws.append(["customer_no", "name"])
    ws.append(["C1", "a"])
    wb.save(folder / "customers.xlsx")
    records, _ = read(connector(folder), stream("customers.xlsx", sheet="客户"))
    assert records == [{"customer_no": "C1", "name": "a"}]
    with pytest.raises(FatalError, match="no sheet 'nope'"):
        read(connector(folder), stream("customers.xlsx", sheet="nope"))


def test_jsonl_numbers_as_written_and_bad_lines(folder: Path) -> None:
    lines = [
        '{"customer_no": "C1", "credit_limit": 1000.50, "count": 00, "lines": [{"qty": 2.0}], "vip": true}',
        "",
        '{"customer_no": 42, "credit_limit": 1e3, "big": 12345678901234567890}',
        "{not json",
        "[1, 2]",
    ]
    (folder / "customers.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, _ = read(connector(folder), stream("customers.jsonl"))
    assert records[0]["__error__"].startswith("line 1: invalid JSON")    # 00 is not a JSON number
    assert records[1] == {"customer_no": "42", "credit_limit": "1e3", "big": "12345678901234567890"}
    assert records[2]["__line__"] == 4 and records[2]["__error__"].startswith("line 4: invalid JSON")
    assert records[3]["__error__"] == "line 5: expected a JSON object, got list"
    (folder / "customers.jsonl").write_text(
        '{"customer_no": "C1", "credit_limit": 1000.50, "lines": [{"qty": 2.0}], "vip": true, "x": null}\n',
        encoding="utf-8")
    records, _ = read(connector(folder), stream("customers.jsonl"))
    assert records == [{"customer_no": "C1", "credit_limit": "1000.50", "lines": [{"qty": "2.0"}], "vip": True,
                        "x": None}]


# ---- staying inside the folder --------------------------------------------------------------------

@pytest.mark.parametrize("source", ["../secret.csv", "/etc/passwd", "sub/../../secret.csv", "C:\\x.csv",
                                    "..\\secret.csv", "../*.csv"])
def test_paths_outside_the_folder_are_refused(folder: Path, source: str) -> None:
    (folder.parent / "secret.csv").write_text("customer_no\nS1\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        read(connector(folder), stream(source))


def test_symlinks_leaving_the_folder_are_refused(folder: Path) -> None:
    (folder.parent / "secret.csv").write_text("customer_no\nS1\n", encoding="utf-8")
    (folder / "customers.csv").symlink_to(folder.parent / "secret.csv")
    with pytest.raises(ConfigError, match="outside the folder"):
        read(connector(folder), stream())
    with pytest.raises(ConfigError, match="outside the folder"):
        read(connector(folder), stream("*.csv"))
    (folder / "customers.csv").unlink()
    (folder / "inside.csv").write_text("customer_no\nI1\n", encoding="utf-8")
    (folder / "customers.csv").symlink_to(folder / "inside.csv")   # a link that stays inside is fine
    records, _ = read(connector(folder), stream())
    assert records == [{"customer_no": "I1"}]


# ---- incremental reads, cursors, deletes ----------------------------------------------------------

def write_customers(folder: Path, rows: list[tuple[str, str]], name: str = "customers.csv") -> None:
    (folder / name).write_text(HEADER + "".join(f"{k},n{k},1,1,{ts}\n" for k, ts in rows), encoding="utf-8")


def test_closed_lower_bound_timezone_and_cursor_only_on_the_last_batch(folder: Path) -> None:
    # not in time order: a cursor moved after the first batch would skip C1 on a resumed read
    write_customers(folder, [("C3", "2024-01-03 08:00:00"), ("C2", "2024-01-02 08:00:00"),
                             ("C1", "2024-01-01 08:00:00"), ("C4", "")])
    conn = connector(folder)
    records, batches = read(conn, stream(batch_size=2, tz="Asia/Shanghai"))
    assert [r["customer_no"] for r in records] == ["C3", "C2", "C1", "C4"]
    assert [b.cursor for b in batches] == [None, {"ts": "2024-01-03T00:00:00+00:00", "files": {}}]   # too fresh
    cursor = batches[-1].cursor
    records, _ = read(conn, stream(tz="Asia/Shanghai"), "2024-01-02T00:00:00+00:00")
    assert [r["customer_no"] for r in records] == ["C3", "C2", "C4"]     # >= cursor, and unstamped rows
    records, batches = read(conn, stream(tz="Asia/Shanghai"), cursor)
    assert [r["customer_no"] for r in records] == ["C3", "C4"]
    assert batches[-1].cursor == cursor


def test_cursor_never_passes_the_run_start(folder: Path) -> None:
    write_customers(folder, [("C1", "2024-01-01T10:00:00Z"), ("C2", "2030-01-01T00:00:00+08:00")])
    started = datetime(2025, 6, 1, 12, 0, 0, 500000, tzinfo=timezone.utc)
    records, batches = read(connector(folder), stream(run_started_at=started))
    assert len(records) == 2
    assert batches[-1].cursor["ts"] == "2025-06-01T12:00:00+00:00"


def test_file_without_updated_at_column_is_read_in_full(folder: Path) -> None:
    (folder / "customers.csv").write_text("customer_no,name\nC1,a\nC2,b\n", encoding="utf-8")
    records, batches = read(connector(folder), stream(), "2024-06-01T00:00:00+00:00")   # a cursor of earlier versions
    assert [r["customer_no"] for r in records] == ["C1", "C2"]
    assert batches[-1].cursor["ts"] == "2024-06-01T00:00:00+00:00"


def test_glob_sources_and_deleted_side_files(folder: Path) -> None:
    write_customers(folder, [("C1", "2024-01-01")], "customers-2024-01.csv")
    write_customers(folder, [("C2", "2024-02-01")], "customers-2024-02.csv")
    (folder / "customers-2024-02.deleted.csv").write_text("customer_no\nC7\nC8\n", encoding="utf-8")
    records, batches = read(connector(folder), stream("customers-*.csv"))
    assert [r["customer_no"] for r in records] == ["C1", "C2"]
    assert [k for b in batches for k in b.deleted] == ["C7", "C8"]
    write_customers(folder, [("C1", "2024-01-01")])
    (folder / "customers.deleted.csv").write_text("C5\n C6 \n\n", encoding="utf-8")   # no header row
    _, batches = read(connector(folder), stream(batch_size=1))
    assert [k for b in batches for k in b.deleted] == ["C5", "C6"]
    assert all(len(b.deleted) <= 1 for b in batches)


def settle(path: Path, seconds_ago: float = 60.0) -> None:
    """Date a file's modification back, as an export written a while ago."""
    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp))


def test_files_not_written_since_the_last_read_are_passed_over(folder: Path) -> None:
    write_customers(folder, [("C1", "2024-01-01"), ("C2", "2024-01-02")], "customers-full.csv")
    write_customers(folder, [("C3", "2024-01-03")], "customers-delta1.csv")
    settle(folder / "customers-full.csv")
    settle(folder / "customers-delta1.csv")
    conn = connector(folder)
    records, batches = read(conn, stream("customers-*.csv"))
    assert [r["customer_no"] for r in records] == ["C3", "C1", "C2"]    # files in name order
    cursor = batches[-1].cursor
    assert sorted(cursor["files"]) == ["customers-delta1.csv", "customers-full.csv"]
    # a new delta, with a row older than the cursor (a late export), and a full export rewritten
    write_customers(folder, [("C4", "2024-01-04"), ("C0", "2023-12-31")], "customers-delta2.csv")
    settle(folder / "customers-delta2.csv")
    records, batches = read(conn, stream("customers-*.csv"), cursor)
    assert [r["customer_no"] for r in records] == ["C4"]               # full and delta1 not opened
    cursor = batches[-1].cursor
    assert cursor["ts"] == "2024-01-04T00:00:00+00:00" and len(cursor["files"]) == 3
    write_customers(folder, [("C1", "2024-02-01"), ("C2", "2024-01-02")], "customers-full.csv")
    settle(folder / "customers-full.csv", 30)
    records, batches = read(conn, stream("customers-*.csv"), cursor)
    assert [r["customer_no"] for r in records] == ["C1"]                # rewritten: read again
    assert read(conn, stream("customers-*.csv"), batches[-1].cursor)[0] == []
    records, _ = read(conn, stream("customers-*.csv"), None)           # --full reads every file
    assert len(records) == 5


def test_a_file_written_moments_ago_is_read_again_next_time(folder: Path) -> None:
    # it may still be being written, or its file system keeps whole seconds: not trusted yet
    write_customers(folder, [("C1", "2024-01-01")])
    conn = connector(folder)
    _, batches = read(conn, stream())
    assert batches[-1].cursor["files"] == {}
    settle(folder / "customers.csv")
    records, batches = read(conn, stream(), batches[-1].cursor)
    assert [r["customer_no"] for r in records] == ["C1"]
    assert list(batches[-1].cursor["files"]) == ["customers.csv"]
    assert read(conn, stream(), batches[-1].cursor)[0] == []


def test_a_file_replaced_by_one_of_the_same_size_and_time_is_read_again(folder: Path) -> None:
    write_customers(folder, [("C1", "2024-01-01")])
    settle(folder / "customers.csv")
    conn = connector(folder)
    cursor = read(conn, stream())[1][-1].cursor
    before = (folder / "customers.csv").stat()
    write_customers(folder, [("C2", "2024-01-01")], "next.tmp")        # an export written aside and renamed
    os.utime(folder / "next.tmp", ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(folder / "next.tmp", folder / "customers.csv")
    records, _ = read(conn, stream(), cursor)
    assert [r["customer_no"] for r in records] == ["C2"]


def test_missing_file_reads_nothing_and_bad_cursor_is_a_config_error(folder: Path) -> None:
    records, (batch,) = read(connector(folder), stream())     # one empty batch that says why
    assert records == [] and batch.cursor is None
    assert batch.notes == [f"no file matches 'customers.csv' in {folder}: nothing was read"]
    write_customers(folder, [("C1", "2024-01-01")])
    with pytest.raises(ConfigError, match="not an ISO timestamp"):
        read(connector(folder), stream(), {"page": 3})


# ---- streaming ------------------------------------------------------------------------------------

def test_200k_rows_are_streamed_one_batch_at_a_time(folder: Path) -> None:
    path = folder / "customers.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for i in range(200_000):
            fh.write(f"C{i:06d},Customer number {i} with a longer name,+86215555{i:06d},{i}.00,2024-01-01 00:00:00\n")
    size = path.stat().st_size
    batches = connector(folder).read(stream(batch_size=1000), None)
    tracemalloc.start()
    try:
        first = next(batches)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(first.records) == 1000
    assert peak < size / 4, f"first batch took {peak} bytes for a {size}-byte file"
    with path.open("a", encoding="utf-8") as fh:   # the reader has not reached the end yet: it sees this row
        fh.write("LAST,appended after the first batch,1,1,2024-01-01 00:00:00\n")
    rest = [r for b in batches for r in b.records]
    assert len(rest) == 199_001 and rest[-1]["customer_no"] == "LAST"


# ---- writes ---------------------------------------------------------------------------------------

def changes() -> list[WriteChange]:
    return [
        WriteChange("ch1", "REC1", None, {"name": "新客户", "credit_limit": Decimal("10.50"),
                                          "opened": date(2024, 1, 2), "lines": [{"sku": "A", "qty": Decimal("2")}]}),
        WriteChange("ch2", "REC2", "C2", {"customer_no": "ignored", "name": "renamed"}),
        WriteChange("ch3", "REC3", "C3", {}, delete=True),
        WriteChange("ch4", "REC4", None, {"customer_no": "C-NEW", "name": "keyed"}),
    ]


def test_write_jsonl_outbox(folder: Path) -> None:
    conn = connector(folder)
    spec = stream(fields=("customer_no", "name"))
    results = conn.write(spec, changes())
    assert [(r.change_id, r.ok, r.source_id) for r in results] == [
        ("ch1", True, "T-REC1"), ("ch2", True, "C2"), ("ch3", True, "C3"), ("ch4", True, "C-NEW")]
    files = list((folder / "outbox").iterdir())
    assert len(files) == 1 and files[0].name.startswith("customer-") and files[0].suffix == ".jsonl"
    rows = [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]
    assert rows[0] == {"customer_no": "T-REC1", "name": "新客户", "credit_limit": "10.50", "opened": "2024-01-02",
                       "lines": [{"sku": "A", "qty": "2"}], "__op__": "create", "__change_id__": "ch1"}
    assert rows[1] == {"customer_no": "C2", "name": "renamed", "__op__": "update", "__change_id__": "ch2"}
    assert rows[2] == {"customer_no": "C3", "__op__": "delete", "__change_id__": "ch3"}
    conn.write(spec, changes()[:1])
    assert len(list((folder / "outbox").iterdir())) == 2     # one new file per call, no temp files left


def test_write_csv_outbox_with_encoding_and_per_record_errors(folder: Path, tmp_path: Path) -> None:
    outbox = tmp_path / "to-erp"
    conn = connector(folder, outbox=str(outbox), outbox_format="csv", encoding="gbk", delimiter=";")
    spec = stream(fields=("customer_no", "name", "credit_limit"))
    batch = changes() + [WriteChange("ch5", "REC5", None, {"name": "emoji 😀 not in gbk"}),
                         WriteChange("ch6", "REC6", None, {"name": object()})]
    results = conn.write(spec, batch)
    assert [r.ok for r in results] == [True, True, True, True, False, False]
    assert "gbk" in results[4].error and "REC6" in results[5].error
    (path,) = outbox.iterdir()
    text = path.read_bytes().decode("gbk").splitlines()
    assert text[0] == "customer_no;name;credit_limit;opened;lines;__op__;__change_id__"
    assert text[1] == 'T-REC1;新客户;10.50;2024-01-02;"[{""sku"": ""A"", ""qty"": ""2""}]";create;ch1'
    assert text[3] == "C3;;;;;delete;ch3"


def test_write_refused_for_inbound_connector_and_read_for_outbound(folder: Path) -> None:
    with pytest.raises(ConfigError, match="direction in"):
        connector(folder, direction="in").write(stream(), changes())
    with pytest.raises(ConfigError, match="direction out"):
        read(connector(folder, direction="out"), stream())


def test_unwritable_outbox_fails_every_change_as_retriable(folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the outbox folder should be", encoding="utf-8")
    results = connector(folder, outbox=str(blocker / "outbox")).write(stream(), changes())
    assert all(not r.ok and r.retriable for r in results)


# ---- check and options ----------------------------------------------------------------------------

def test_check(folder: Path, tmp_path: Path) -> None:
    write_customers(folder, [("C1", "2024-01-01")])
    result = connector(folder).check()
    assert result.ok and result.info["files"] == 1
    missing = FileConnector("erp", {"path": "nowhere"}, base_dir=str(tmp_path)).check()
    assert not missing.ok and str(tmp_path / "nowhere") in missing.detail


@pytest.mark.parametrize("options, message", [
    ({}, "connectors.erp.path: required"),
    ({"path": "x", "encoding": "rot13"}, "not a text encoding"),
    ({"path": "x", "encoding": "klingon"}, "unknown encoding"),
    ({"path": "x", "delimiter": ";;"}, "expected one character"),
    ({"path": "x", "format": "parquet"}, "expected auto, csv, xlsx, jsonl"),
    ({"path": "x", "direction": "sideways"}, "direction"),
])
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FileConnector("erp", options)


def test_unknown_extension_needs_a_format(folder: Path) -> None:
    (folder / "customers.dat").write_text("customer_no\nC1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="set format"):
        read(connector(folder), stream("customers.dat"))
    records, _ = read(connector(folder, format="csv"), stream("customers.dat"))
    assert records == [{"customer_no": "C1"}]


def test_relative_path_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    conn = FileConnector("erp", {"path": "exports"}, base_dir=str(tmp_path))
    assert conn.settings.folder == (tmp_path / "exports").resolve()
    assert conn.settings.outbox == (tmp_path / "exports" / "outbox").resolve()


def test_registered_by_entry_point() -> None:
    from connectors.sql.connector import SqlConnector
    registry = load_registry()
    assert registry["file"] is FileConnector and registry["sql"] is SqlConnector
