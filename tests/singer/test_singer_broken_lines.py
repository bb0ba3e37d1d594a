"""A RECORD line a tap cut short (not valid JSON) goes to the quarantine with its text, its line number
and the JSON error, in the batch the next STATE closes; a log line on stdout stays a warning, and so does
a last line the output ends inside (no STATE can follow it, so the cursor never passes it)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from singer_helpers import CUSTOMER_MAPPING, query, sync_here

from connectors.singer.messages import Reading, batches

# prints its config's `output` file as it is (broken lines included), then exits with `exit`
SCRIPTED_TAP = """
import json, sys
config = json.load(open(sys.argv[sys.argv.index("--config") + 1], encoding="utf-8"))
sys.stdout.write(open(config["output"], encoding="utf-8").read())
sys.exit(config.get("exit", 0))
"""


def rec(n: int, stream: str = "customers") -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": {
        "id": f"C{n:05d}", "name": f"Kunde {n}", "email": f"c{n}@example.de", "city": "Berlin",
        "updated_at": "2026-01-02T08:00:00Z"}}) + "\n"


def state(n: int) -> str:
    return json.dumps({"type": "STATE", "value": {"line": n}}) + "\n"


def cut(line: str, keep: int = 60) -> str:
    """The start of a message line, ended as a tap ends every line it writes."""
    return line[:keep] + "\n"


def test_a_cut_record_line_is_an_unreadable_row_closed_by_the_next_state() -> None:
    reading = Reading()
    lines = [rec(1), cut(rec(2)), "INFO a log line on stdout\n", cut(rec(3, "orders")), rec(4), state(4)]
    (batch,) = batches(lines, {"customers"}, None, 10, "legacy", reading)
    assert batch.cursor == {"line": 4}
    assert [r.get("id") for r in batch.records] == ["C00001", None, "C00004"]
    broken = batch.records[1]
    assert broken["__line__"] == 2 and broken["__raw__"] == lines[1].strip()
    assert broken["__error__"].startswith("line 2 of the tap's output: a RECORD of stream 'customers' that is "
                                          "not valid JSON (Unterminated string")
    # the log line and the cut line of a stream not read here stay warnings
    assert (reading.records, reading.unreadable, reading.bad_lines) == (3, 1, 2)


def test_a_cut_record_without_a_visible_stream_is_kept_too() -> None:
    (batch,) = batches([cut(rec(1), 20), state(1)], {"customers"}, None, 10, "legacy")
    [row] = batch.records
    assert "a RECORD that is not valid JSON" in row["__error__"] and batch.cursor == {"line": 1}


def test_the_line_the_output_ends_inside_is_read_again_next_run() -> None:
    reading = Reading()
    lines = [rec(1), state(1), rec(2)[:40]]                 # a killed tap: the last line has no end
    assert [(len(b.records), b.cursor) for b in batches(lines, {"customers"}, None, 10, "legacy", reading)] == \
        [(1, {"line": 1})]
    assert (reading.unreadable, reading.bad_lines) == (0, 1)


def sync(root: Path, output: str, exit_code: int = 0) -> Any:
    (root / "tap.py").write_text(SCRIPTED_TAP, encoding="utf-8")
    (root / "out.jsonl").write_text(output, encoding="utf-8")
    (root / "legacy_customer.yaml").write_text(CUSTOMER_MAPPING, encoding="utf-8")
    (root / "triad.yaml").write_text(json.dumps({
        "store": {"url": "sqlite:///hub.db"},
        "connectors": {"legacy": {"type": "singer", "direction": "in", "catalog": "none", "batch_size": 3,
                                  "command": [sys.executable, str(root / "tap.py")],
                                  "config": {"output": str(root / "out.jsonl"), "exit": exit_code},
                                  "streams": {"customers": "customer"},
                                  "entities": {"customer": {"mapping": "legacy_customer.yaml"}}}}}),
        encoding="utf-8")
    return sync_here(root)


def test_a_cut_record_line_is_quarantined_and_the_state_after_it_is_saved(tmp_path: Path) -> None:
    broken = cut(rec(3))
    output = "".join([rec(1), rec(2), state(2), broken, rec(4), rec(5), state(5), rec(6)])
    report = sync(tmp_path, output)
    assert report.status == "ok", report.error
    assert report.counts["read"] == 6 and report.counts["quarantined"] == 1
    assert [r[0] for r in query(tmp_path, "select code from customer order by code")] == \
        ["C00001", "C00002", "C00004", "C00005", "C00006"]
    ((kind, raw, reasons),) = query(tmp_path, "select kind, raw, reasons from quarantine")
    raw, reasons = json.loads(raw), json.loads(reasons)
    assert kind == "read" and raw["__line__"] == 4 and raw["__raw__"] == broken.strip()
    assert "line 4 of the tap's output" in reasons[0]["message"] and "not valid JSON" in reasons[0]["message"]
    # the STATE after the cut line went in with it; the record after the last STATE is read again next run
    (cursor,) = query(tmp_path, "select cursor from stream_state where connector = 'legacy'")[0]
    assert json.loads(cursor) == {"line": 5}
    again = sync(tmp_path, output)
    assert again.status == "ok" and len(query(tmp_path, "select id from quarantine")) == 1
