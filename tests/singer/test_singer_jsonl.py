"""tap-jsonl (a real tap from PyPI, offline over files) through `triad sync run`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from singer_helpers import CUSTOMER_MAPPING, write_customers
from rest_helpers import plugin_dir

from cli import main
from connectors.singer.connector import SingerConnector
from hub.connector import StreamSpec

CONFIG = """
store: {url: 'sqlite:///hub.db'}
connectors:
  legacy:
    type: singer
    direction: in
    tap: tap-jsonl                       # installed next to Triad's Python (pyproject dev extra)
    config:
      path: exports/*.jsonl              # relative to this file's folder: the tap runs there
      stream_name: customers
      primary_keys: [id]
    streams: {customers: customer}
    batch_size: 20
    entities:
      customer: {mapping: legacy_customer.yaml}
"""
MAPPING = CUSTOMER_MAPPING


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("tap-jsonl", path=str(Path(__import__("sys").executable).parent)) is None:
        pytest.fail("tap-jsonl is not installed next to this Python (pip install tap-jsonl)")
    plugins = plugin_dir(tmp_path / "plugins")
    if plugins:
        monkeypatch.syspath_prepend(plugins)
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "p"
    (root / "exports").mkdir(parents=True)
    (root / "triad.yaml").write_text(CONFIG, encoding="utf-8")
    (root / "legacy_customer.yaml").write_text(MAPPING, encoding="utf-8")
    write_customers(root / "exports" / "part-1.jsonl", 30)
    write_customers(root / "exports" / "part-2.jsonl", 25, start=31)
    monkeypatch.chdir(root)
    return root


def triad(*args: str, code: int = 0) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}


def test_sync_run_over_jsonl_files(project: Path) -> None:
    triad("db", "upgrade")
    assert "discovered 1 stream(s): customers" in json.dumps(triad("connectors", "check", "legacy"))
    (first,) = triad("sync", "run")["runs"]
    assert (first["status"], first["read"], first["created"], first["quarantined"]) == ("ok", 55, 55, 0)
    assert first["cursor"]["bookmarks"]["customers"]["partitions"]       # the tap's STATE, committed by Triad
    codes = sorted(r["fields"]["code"] for r in triad("records", "list", "customer", "--limit", "100")["records"])
    assert codes == [f"C{i:05d}" for i in range(1, 56)]

    # tap-jsonl 0.3.1 does not skip files it has read (it looks its bookmark up under another key), so
    # a second run reads everything again: the pipeline finds every record unchanged
    write_customers(project / "exports" / "part-2.jsonl", 25, start=31, suffix=" (neu)")
    (second,) = triad("sync", "run")["runs"]
    assert second["status"] == "ok" and second["created"] == 0 and second["updated"] == 25
    assert second["read"] >= 55


def test_a_tap_error_reaches_the_run_report(project: Path) -> None:
    config = (project / "triad.yaml").read_text(encoding="utf-8")
    (project / "triad.yaml").write_text(config.replace("stream_name: customers", "stream_name: customers\n"
                                                       "      encoding: no-such-codec"), encoding="utf-8")
    triad("db", "upgrade")
    (run,) = triad("sync", "run", code=1)["runs"]
    assert run["status"] == "error" and "tap-jsonl exited with code 1" in run["error"]
    assert "its stderr ends with" in run["error"] and "no-such-codec" in run["error"]


def test_the_connector_reads_the_tap_directly(tmp_path: Path) -> None:
    write_customers(tmp_path / "a.jsonl", 7)
    conn = SingerConnector("legacy", {"tap": "tap-jsonl", "config": {"path": "*.jsonl", "stream_name": "customers"},
                                      "catalog": "none"}, base_dir=str(tmp_path))
    spec = StreamSpec(entity="customer", source="customers", key="id", updated_at=None, batch_size=3)
    batches = list(conn.read(spec, None))
    # two STATEs end the run (progress markers, then the final bookmark): the second one comes alone
    assert [len(b.records) for b in batches] == [3, 3, 1, 0] and batches[0].cursor is None
    assert "progress_markers" in json.dumps(batches[2].cursor) and "progress_markers" not in json.dumps(
        batches[3].cursor)
    assert batches[2].records[0]["_sdc_filename"].endswith("a.jsonl")
