"""Singer messages (SCHEMA, RECORD, STATE) into Triad batches whose cursor is the tap's STATE.

The rule that makes a crash harmless: a batch's cursor is a STATE the tap
emitted *after* every record up to the batch's end. Records arrive and are
collected; a STATE closes the batch collected so far and becomes its cursor.
When more records arrive than a batch holds before the next STATE, the full
batch goes out with the STATE seen before those records, so committing it
never skips anything; records after the last STATE likewise carry the
previous STATE and are read again next run (the pipeline finds them unchanged).

Nothing is dropped unseen: a RECORD whose ``record`` is not an object, and a
RECORD line that is not valid JSON (a tap that cut it short), go on as unreadable
rows (their line of output kept) that the pipeline quarantines in the batch the
next STATE closes; and a run whose records all carried stream names not wanted
fails before its STATE is handed out, since committing it would skip those
records for good. A line the output ends inside (a killed tap) stays a warning:
no STATE follows it, so no cursor passes it and the next run reads it again.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from hub.connector import Batch
from hub.errors import FatalError

log = logging.getLogger(__name__)

# keys of a row that could not be read: the pipeline quarantines it whole (see hub.pipeline._map)
ERROR, LINE, RAW = "__error__", "__line__", "__raw__"
RAW_LIMIT = 2000          # a quarantined line stays small even when a tap sends a huge broken record
# what a line cut short still shows of its message: its type and stream, when they come before the cut
_OBJECT = re.compile(r'\{\s*"')
_TYPE = re.compile(r'"type"\s*:\s*"([^"\\]*)"')
_STREAM = re.compile(r'"stream"\s*:\s*("(?:[^"\\]|\\.)*")')


@dataclass
class StreamInfo:
    """What the tap declared about a stream in its SCHEMA message."""

    schema: dict[str, Any] = field(default_factory=dict)
    key_properties: list[str] = field(default_factory=list)
    bookmark_properties: list[str] = field(default_factory=list)


@dataclass
class Reading:
    """Counters and declarations of one tap run (for logs and tests)."""

    records: int = 0                 # RECORD messages of the wanted streams
    unreadable: int = 0              # of those, the ones not valid JSON or not an object (quarantined)
    other_records: int = 0           # RECORD messages of streams this read does not want
    other_streams: set[str] = field(default_factory=set)   # the stream names those carried
    states: int = 0
    bad_lines: int = 0
    schemas: dict[str, StreamInfo] = field(default_factory=dict)


def parse_line(line: str, reading: Reading, name: str) -> dict[str, Any] | None:
    """One stdout line as a message; None for blank lines and JSON that is no Singer message.

    Raises:
        ValueError: the line is not JSON (see :func:`_cut_record`).
    """
    text = line.strip()
    if not text:
        return None
    msg = json.loads(text)
    if not isinstance(msg, dict) or "type" not in msg:
        reading.bad_lines += 1
        log.warning("tap output line is JSON but not a Singer message: %.120s", text, extra={"connector": name})
        return None
    return msg


def _json_kind(value: Any) -> str:
    if value is None:
        return "missing"
    kinds = {bool: "a boolean", str: "a string", list: "a list", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _record_or_error(msg: dict[str, Any], number: int, line: str, reading: Reading, name: str) -> dict[str, Any]:
    """The RECORD's record; one that is not an object becomes an unreadable row holding its line of output."""
    record = msg.get("record")
    if isinstance(record, dict):
        return record
    reading.unreadable += 1
    problem = (f"line {number} of the tap's output: a RECORD of stream {msg.get('stream')!r} whose record is "
               f"{_json_kind(record)}, not an object")
    log.warning("%s; it goes to the quarantine", problem, extra={"connector": name})
    return {ERROR: problem, LINE: number, RAW: line.strip()[:RAW_LIMIT].replace("\x00", "\\x00")}


def _cut_record(line: str, exc: ValueError, number: int, streams: set[str], reading: Reading,
                name: str) -> dict[str, Any] | None:
    """A line that is not JSON: an unreadable row when it is a RECORD of a wanted stream (or one whose
    type or stream was cut off) on a line the tap ended; else a warning (a log line on stdout, another
    message type, another stream's record, or the line a killed tap's output ends inside)."""
    text = line.strip()
    kind, stream = _TYPE.search(text), _STREAM.search(text)
    label = _json_text(stream.group(1)) if stream else None
    if (not _OBJECT.match(text) or not line.endswith("\n") or (kind and kind.group(1) != "RECORD")
            or (label is not None and label not in streams)):
        reading.bad_lines += 1
        log.warning("tap output line is not a Singer message: %.120s", text, extra={"connector": name})
        return None
    reading.records += 1
    reading.unreadable += 1
    why = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
    of = f" of stream {label!r}" if label is not None else ""
    problem = f"line {number} of the tap's output: a RECORD{of} that is not valid JSON ({why})"
    log.warning("%s; it goes to the quarantine", problem, extra={"connector": name})
    return {ERROR: problem, LINE: number, RAW: text[:RAW_LIMIT].replace("\x00", "\\x00")}


def _json_text(quoted: str) -> str | None:
    try:
        return json.loads(quoted)
    except ValueError:
        return None


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in sorted(names))


def _check_names(reading: Reading, streams: set[str], selected: bool, name: str) -> None:
    """Fail a run whose records all carried names not wanted: committing its STATE would skip them for good."""
    if reading.records or not reading.other_records:
        return
    if not selected and streams & set(reading.schemas):
        return      # without a catalog a tap sends all its streams; this one was declared and had nothing new
    raise FatalError(f"the tap sent {reading.other_records} record(s) under stream name(s) "
                     f"{_names(reading.other_streams)} and none under {_names(streams)}; its STATE was not "
                     f"saved, so none is skipped: name the stream as its records do in `streams:` of connector "
                     f"{name} (or the mapping's `source`)", connector=name)


def batches(lines: Iterable[str], streams: set[str], start_state: Any, batch_size: int, name: str,
            reading: Reading | None = None, *, selected: bool = False) -> Iterator[Batch]:
    """Batches of the wanted streams' records, each with the STATE that covers it as cursor.

    Args:
        lines: the tap's stdout, line by line.
        streams: the Singer stream names to keep (tap_stream_id or stream).
        start_state: the state the tap was started with (the cursor of records before any STATE).
        batch_size: the most records in one batch.
        name: the connector name, for messages.
        reading: collects counters and SCHEMA declarations.
        selected: the tap was given a catalog selecting exactly ``streams``, so it sends no other
            stream on purpose.

    Raises:
        FatalError: the tap sent BATCH messages (files instead of records), which are not supported; or
            every record it sent carried a stream name not in ``streams`` (the final STATE is withheld).
    """
    reading = reading if reading is not None else Reading()
    size = max(1, batch_size)
    current = start_state            # the newest STATE seen: covers every record before it
    sent = start_state               # the cursor of the last batch handed out
    pending: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        row = None
        try:
            msg = parse_line(line, reading, name)
        except ValueError as exc:
            msg, row = None, _cut_record(line, exc, number, streams, reading, name)
        kind = msg["type"] if msg is not None else None
        if kind == "RECORD":
            if msg.get("stream") not in streams:
                reading.other_records += 1
                reading.other_streams.add(str(msg.get("stream")))
                continue
            reading.records += 1
            row = _record_or_error(msg, number, line, reading, name)
        if row is not None:
            pending.append(row)
            if len(pending) >= size:
                yield Batch(pending, cursor=current)
                pending, sent = [], current
            continue
        if kind == "STATE":
            reading.states += 1
            current = msg.get("value")
            if pending:
                yield Batch(pending, cursor=current)
                pending, sent = [], current
        elif kind == "SCHEMA":
            reading.schemas[str(msg.get("stream"))] = StreamInfo(
                msg.get("schema") or {}, list(msg.get("key_properties") or []),
                list(msg.get("bookmark_properties") or []))
        elif kind == "BATCH":
            raise FatalError("the tap sent BATCH messages (records in files), which Triad does not read; "
                             "remove batch_config from the tap's config", connector=name)
        elif kind is not None:       # ACTIVATE_VERSION and future message types carry nothing to sync
            log.debug("ignoring a %s message", kind, extra={"connector": name})
    _check_names(reading, streams, selected, name)
    if pending or current != sent:
        yield Batch(pending, cursor=current)
