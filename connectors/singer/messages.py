"""Singer messages (SCHEMA, RECORD, STATE) into Triad batches whose cursor is the tap's STATE.

The rule that makes a crash harmless: a batch's cursor is a STATE the tap
emitted *after* every record up to the batch's end. Records arrive and are
collected; a STATE closes the batch collected so far and becomes its cursor.
When more records arrive than a batch holds before the next STATE, the full
batch goes out with the STATE seen before those records, so committing it
never skips anything; records after the last STATE likewise carry the
previous STATE and are read again next run (the pipeline finds them unchanged).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from hub.connector import Batch
from hub.errors import FatalError

log = logging.getLogger(__name__)


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
    other_records: int = 0           # RECORD messages of streams this read does not want
    states: int = 0
    bad_lines: int = 0
    schemas: dict[str, StreamInfo] = field(default_factory=dict)


def parse_line(line: str, reading: Reading, name: str) -> dict[str, Any] | None:
    """One stdout line as a message; None for blank lines and lines that are not JSON messages."""
    text = line.strip()
    if not text:
        return None
    try:
        msg = json.loads(text)
    except ValueError:
        reading.bad_lines += 1       # a log line on stdout, or the cut last line of a killed tap
        log.warning("tap output line is not a Singer message: %.120s", text, extra={"connector": name})
        return None
    if not isinstance(msg, dict) or "type" not in msg:
        reading.bad_lines += 1
        return None
    return msg


def batches(lines: Iterable[str], streams: set[str], start_state: Any, batch_size: int, name: str,
            reading: Reading | None = None) -> Iterator[Batch]:
    """Batches of the wanted streams' records, each with the STATE that covers it as cursor.

    Args:
        lines: the tap's stdout, line by line.
        streams: the Singer stream names to keep (tap_stream_id or stream).
        start_state: the state the tap was started with (the cursor of records before any STATE).
        batch_size: the most records in one batch.
        name: the connector name, for messages.
        reading: collects counters and SCHEMA declarations.

    Raises:
        FatalError: the tap sent BATCH messages (files instead of records), which are not supported.
    """
    reading = reading if reading is not None else Reading()
    size = max(1, batch_size)
    current = start_state            # the newest STATE seen: covers every record before it
    sent = start_state               # the cursor of the last batch handed out
    pending: list[dict[str, Any]] = []
    for line in lines:
        msg = parse_line(line, reading, name)
        if msg is None:
            continue
        kind = msg["type"]
        if kind == "RECORD":
            if msg.get("stream") not in streams:
                reading.other_records += 1
                continue
            record = msg.get("record")
            if not isinstance(record, dict):
                reading.bad_lines += 1
                continue
            reading.records += 1
            pending.append(record)
            if len(pending) >= size:
                yield Batch(pending, cursor=current)
                pending, sent = [], current
        elif kind == "STATE":
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
        else:                        # ACTIVATE_VERSION and future message types carry nothing to sync
            log.debug("ignoring a %s message", kind, extra={"connector": name})
    if pending or current != sent:
        yield Batch(pending, cursor=current)
