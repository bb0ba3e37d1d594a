"""Outbound changes as one new file per call in the outbox folder, written atomically.

Each call writes ``<entity>-<UTC timestamp>-<n>.jsonl`` (or ``.csv``, in the
stream's encoding and delimiter): a temp file in the same folder, flushed and
fsynced, then renamed, so a reader of the folder never sees half a file. The
file gets the permissions of any file the process creates (``0o666`` less the
umask), so an import job running as another user can read it. Every line
carries the system key, the values and two markers, ``__op__``
(create/update/delete) and ``__change_id__`` (the idempotency key, so the
importing system can skip a change it has already applied).
"""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.file.paths import inside
from hub.connector import StreamSpec, WriteChange, WriteResult

log = logging.getLogger(__name__)

OP = "__op__"
CHANGE_ID = "__change_id__"
NEW_ID_PREFIX = "T-"
# encodings whose encoder starts every call with a byte order mark: the mark once, then the lines without one
_BOM_ONCE = {"utf-8-sig": (codecs.BOM_UTF8, "utf-8"), "utf-16": (codecs.BOM_UTF16_LE, "utf-16-le"),
             "utf-32": (codecs.BOM_UTF32_LE, "utf-32-le")}


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a value a file can hold")


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return _json_default(value)


def new_source_id(change: WriteChange, key: str) -> str:
    """The id a created record gets: the key the mapping supplied, else ``T-<record id>``."""
    given = change.values.get(key)
    if given not in (None, ""):
        return str(given)
    return f"{NEW_ID_PREFIX}{change.record_id}"


@dataclass(frozen=True)
class OutboxLayout:
    """How one stream's outbox files are written: ``jsonl`` (always UTF-8) or ``csv`` in an encoding and delimiter."""

    fmt: str = "jsonl"
    encoding: str = "utf-8"
    delimiter: str = ","

    @property
    def bom_and_codec(self) -> tuple[bytes, str]:
        """A byte order mark goes once at the top of the file, not in front of every encoded line."""
        return _BOM_ONCE.get(codecs.lookup(self.encoding).name, (b"", self.encoding))


class OutboxWriter:
    """Writes changes for one connector into its outbox folder."""

    def __init__(self, folder: Path, *, connector: str = "", within: Path | None = None) -> None:
        self.folder = folder
        self.connector = connector
        # the connector's folder when the outbox is in it: a symlink there must not lead the writes out
        self.within = within if within is not None and folder.is_relative_to(within) else None
        self._seq = itertools.count(1)

    def write(self, stream: StreamSpec, changes: list[WriteChange], layout: OutboxLayout) -> list[WriteResult]:
        """One result per change; bad records fail alone, a failed file write fails the call's records (retriable)."""
        results: dict[str, WriteResult] = {}
        rows: list[tuple[WriteChange, dict[str, Any]]] = []
        for ch in changes:
            if ch.delete and not ch.source_id:
                results[ch.change_id] = WriteResult(ch.change_id, ok=False,
                                                    error="cannot delete a record that has no source id")
                continue
            sid = ch.source_id or new_source_id(ch, stream.key)
            op = "delete" if ch.delete else ("update" if ch.source_id else "create")
            values = {} if ch.delete else {k: v for k, v in ch.values.items() if k != stream.key}
            rows.append((ch, {stream.key: sid, **values, OP: op, CHANGE_ID: ch.change_id}))

        lines, header = self._serialize(stream, rows, results, layout)
        if lines:
            try:
                path = self._commit(stream.entity, header, lines, layout)
            except OSError as exc:
                error = (f"cannot write to {self.folder}: folder {self.folder.parent} does not exist"
                         if not self.folder.parent.is_dir() else f"cannot write to {self.folder}: {exc}")
                log.warning("outbox write for %s/%s failed: %s", self.connector, stream.entity, error)
                for ch, _row in rows:
                    if ch.change_id not in results:
                        results[ch.change_id] = WriteResult(ch.change_id, ok=False, retriable=True, error=error)
            else:
                log.info("wrote %d %s change(s) to %s", len(lines), stream.entity, path)
                for ch, row in rows:
                    results.setdefault(ch.change_id, WriteResult(ch.change_id, ok=True, source_id=row[stream.key]))
        return [results[ch.change_id] for ch in changes]

    def _serialize(self, stream: StreamSpec, rows: list[tuple[WriteChange, dict[str, Any]]],
                   results: dict[str, WriteResult], layout: OutboxLayout) -> tuple[list[bytes], bytes]:
        columns: list[str] = []
        if layout.fmt == "csv":
            seen: dict[str, None] = {stream.key: None}
            seen.update((f, None) for f in stream.fields if "." not in f)
            for _ch, row in rows:
                seen.update((k, None) for k in row if k not in (OP, CHANGE_ID))
            columns = [*seen, OP, CHANGE_ID]
        lines: list[bytes] = []
        for ch, row in rows:
            try:
                lines.append(_line(row, columns, layout))
            except (TypeError, ValueError, UnicodeEncodeError) as exc:
                results[ch.change_id] = WriteResult(ch.change_id, ok=False, error=f"record {ch.record_id}: {exc}")
        header = _line({c: c for c in columns}, columns, layout) if columns else b""
        return lines, header

    def _commit(self, entity: str, header: bytes, lines: list[bytes], layout: OutboxLayout) -> Path:
        # only the outbox itself: a missing connector folder (a typo, an unmounted share) made here would
        # no longer be reported by the next read
        self.folder.mkdir(exist_ok=True)
        if self.within is not None:
            inside(self.within, self.folder, connector=self.connector)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        tmp = self.folder / f".{entity}-{uuid.uuid4().hex}.tmp"
        fd = _create(tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                if header:
                    fh.write(layout.bom_and_codec[0] + header)
                fh.writelines(lines)
                fh.flush()
                os.fsync(fh.fileno())
            while True:
                final = self.folder / f"{entity}-{stamp}-{next(self._seq)}.{layout.fmt}"
                if not final.exists():
                    break
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final


def _line(row: dict[str, Any], columns: list[str], layout: OutboxLayout) -> bytes:
    if layout.fmt == "jsonl":
        return (json.dumps(row, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")
    buf = io.StringIO()
    csv.writer(buf, delimiter=layout.delimiter, lineterminator="\r\n").writerow(
        [_csv_text(row.get(c)) for c in columns])
    return buf.getvalue().encode(layout.bom_and_codec[1])


def _create(path: Path) -> int:
    """A new file opened for writing, with the mode the umask gives (``mkstemp`` would make it 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    return os.open(path, flags, 0o666)
