"""The file connector's outbox files: each entity's own encoding, delimiter and format; readable by other users."""
from __future__ import annotations

import codecs
import json
import os
import stat
from pathlib import Path

import pytest

from connectors.file.connector import FileConnector
from hub.config import parse_config
from hub.connector import StreamSpec, WriteChange
from hub.errors import ConfigError


def stream(**options) -> StreamSpec:
    return StreamSpec(entity="customer", source="customer-*.csv", key="customer_no", updated_at=None,
                      fields=("customer_no", "name", "city"), options=options)


def changes() -> list[WriteChange]:
    return [WriteChange("ch1", "REC1", "C1", {"name": "上海贸易", "city": "上海"}),
            WriteChange("ch2", "REC2", None, {"customer_no": "C2", "name": "Tab\tand, comma"})]


def outbox_files(outbox: Path) -> list[Path]:
    return sorted(outbox.iterdir())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "exports"
    path.mkdir()
    return path


def test_outbox_csv_follows_the_entity_encoding_and_delimiter(folder: Path, tmp_path: Path) -> None:
    outbox = tmp_path / "to-erp"
    conn = FileConnector("erp", {"path": str(folder), "outbox": str(outbox), "outbox_format": "csv"})
    spec = stream(encoding="utf-16", delimiter="tab")
    assert all(r.ok for r in conn.write(spec, changes()))
    (path,) = outbox_files(outbox)
    raw = path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF16_LE) and raw.count(codecs.BOM_UTF16_LE) == 1   # one mark, at the top
    lines = raw.decode("utf-16").splitlines()
    assert lines[0] == "customer_no\tname\tcity\t__op__\t__change_id__"
    assert lines[1] == "C1\t上海贸易\t上海\tupdate\tch1"
    assert lines[2] == 'C2\t"Tab\tand, comma"\t\tcreate\tch2'
    # the connector reads its own outbox file back with the same entity options
    back = FileConnector("erp-import", {"path": str(outbox)})
    records = [r for b in back.read(stream(encoding="utf-16", delimiter="tab"), None) for r in b.records]
    assert [(r["customer_no"], r["name"], r["city"]) for r in records] == [
        ("C1", "上海贸易", "上海"), ("C2", "Tab\tand, comma", "")]


def test_entities_keep_their_own_outbox_settings(folder: Path, tmp_path: Path) -> None:
    outbox = tmp_path / "to-erp"
    conn = FileConnector("erp", {"path": str(folder), "outbox": str(outbox), "encoding": "gbk", "delimiter": ";"})
    conn.write(stream(outbox_format="csv"), changes())                  # connector's gbk and ';', entity's csv
    conn.write(stream(), changes()[:1])                                 # connector's jsonl
    csv_file, jsonl_file = sorted(outbox_files(outbox), key=lambda p: p.suffix)
    assert csv_file.suffix == ".csv" and jsonl_file.suffix == ".jsonl"
    assert csv_file.read_bytes().decode("gbk").splitlines()[1] == "C1;上海贸易;上海;update;ch1"
    assert json.loads(jsonl_file.read_text(encoding="utf-8"))["name"] == "上海贸易"


def test_entity_outbox_format_is_an_accepted_option_and_checked(folder: Path, tmp_path: Path) -> None:
    parse_config("connectors: {erp: {type: file, path: ., entities: {customer: {outbox_format: csv}}}}")
    conn = FileConnector("erp", {"path": str(folder), "outbox": str(tmp_path / "o")})
    with pytest.raises(ConfigError, match="outbox_format: 'xml'; expected one of jsonl, csv"):
        conn.write(stream(outbox_format="xml"), changes())
    with pytest.raises(ConfigError, match="connectors.erp.outbox_format: 'xml'"):
        FileConnector("erp", {"path": str(folder), "outbox_format": "xml"})


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)],
                         ids=["umask022", "umask027", "umask002"])
def test_outbox_file_gets_the_mode_the_umask_gives(folder: Path, tmp_path: Path, umask: int, mode: int) -> None:
    outbox = tmp_path / "to-erp"
    conn = FileConnector("erp", {"path": str(folder), "outbox": str(outbox)})
    previous = os.umask(umask)
    try:
        assert all(r.ok for r in conn.write(stream(), changes()))
    finally:
        os.umask(previous)
    (path,) = outbox_files(outbox)          # no temp file left beside it
    assert stat.S_IMODE(path.stat().st_mode) == mode
