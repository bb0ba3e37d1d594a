"""The ``file`` connector: CSV / XLSX / JSON-lines exports in a folder, changes out to an outbox folder.

Reading streams the files a stream's source names (a file name or a glob
inside the folder) in batches; values are the exact text of the file.
Incremental reads use the mapping's ``updated_at`` column: rows stamped at or
after the cursor are yielded (closed bound; the pipeline drops unchanged rows
by hash), older rows are skipped, and a file without that column is read in
full every time. Export files are rarely sorted by change time, so only the
last batch of a read moves the cursor (to the newest timestamp seen, never
past the run's start): a crash half-way re-reads the file instead of skipping
older rows that follow newer ones. The cursor also records the files read in
full; an incremental read passes over those not written since (see
:mod:`connectors.file.cursor`). Keys listed in ``<source stem>.deleted.csv``
are reported as deleted.
"""
from __future__ import annotations

import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from connectors.file.cursor import FileCursor, file_mark
from connectors.file.paths import deleted_pattern, matching_files
from connectors.file.readers import (ERROR, error_record, iter_csv, iter_deleted_keys, iter_jsonl,
                                     iter_xlsx, Row)
from connectors.file.settings import FileSettings
from connectors.file.timestamps import cap, parse_timestamp
from connectors.file.writer import OutboxLayout, OutboxWriter
from hub.canonical import ENTITIES
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError

log = logging.getLogger(__name__)


class FileConnector(Connector):
    """Files in one folder: ``path``, ``format``, ``encoding``, ``delimiter``, ``outbox``, ``direction``.

    Per-entity options (``entities.<entity>`` in ``triad.yaml``) may override
    ``format``, ``encoding``, ``delimiter``, ``sheet`` (XLSX worksheet name) and
    ``outbox_format``; reads and outbox files of that entity both follow them.
    """

    type_name = "file"
    entities = tuple(ENTITIES)     # a generic source: any canonical entity, opportunities and approvals too
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"path", "outbox", "outbox_format", "format", "encoding", "delimiter", "sheet"})
    entity_option_keys = frozenset({"format", "encoding", "delimiter", "sheet", "outbox_format"})
    writes_visible = False     # writes land in the outbox folder; the exports change only when the system imports them

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.settings = FileSettings.from_options(name, options, base_dir)
        self._writer = OutboxWriter(self.settings.outbox, connector=name, within=self.settings.folder)

    @classmethod
    def validate_options(cls, name: str, options: dict[str, Any], base_dir: str = ".") -> list[str]:
        """Problems of a connector block, found without touching the folder (for `triad config validate`)."""
        try:
            FileSettings.from_options(name, options, base_dir)
        except ConfigError as exc:
            return [exc.message]
        return []

    @classmethod
    def option_warnings(cls, name: str, options: dict[str, Any], base_dir: str = ".") -> list[str]:
        """What `triad config validate` warns of: a valid block whose folder is not there (yet)."""
        try:
            folder = FileSettings.from_options(name, options, base_dir).folder
        except ConfigError:
            return []      # validate_options reports it
        if folder.is_dir():
            return []
        return [f"connectors.{name}.path: folder {folder} does not exist (yet): `triad sync run` fails for {name} "
                f"until it does"]

    def check(self) -> CheckResult:
        """The folder exists and can be listed; for writes, the outbox can be created."""
        folder = self.settings.folder
        if not folder.is_dir():
            return CheckResult(False, f"folder {folder} does not exist", {"path": str(folder)})
        try:
            files = sum(1 for p in folder.iterdir() if p.is_file())
        except OSError as exc:
            return CheckResult(False, f"folder {folder} cannot be read: {exc}", {"path": str(folder)})
        if not os.access(folder, os.R_OK | os.X_OK):
            return CheckResult(False, f"folder {folder} is not readable", {"path": str(folder)})
        info: dict[str, Any] = {"path": str(folder), "files": files}
        if self.settings.direction in ("out", "both"):
            outbox = self.settings.outbox
            probe = outbox if outbox.exists() else _existing_parent(outbox)
            if not os.access(probe, os.W_OK | os.X_OK):
                return CheckResult(False, f"outbox {outbox} is not writable", info)
            info["outbox"] = str(outbox)
        return CheckResult(True, f"folder {folder} readable, {files} file(s)", info)

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Batches of at most ``stream.batch_size`` records changed at or after ``cursor``.

        Raises:
            ConfigError: the folder is missing, the source leaves the folder,
                or the connector is outbound only.
            FatalError: a file's header lacks the key column, or a workbook is unreadable.
        """
        if self.settings.direction == "out":
            raise ConfigError(f"connector '{self.name}' has direction out; it is not read", entity=stream.entity)
        settings = self.settings.for_stream(stream.options)
        folder = settings.folder
        if not folder.is_dir():
            raise ConfigError(f"connectors.{self.name}.path: folder {folder} does not exist", entity=stream.entity)
        files = matching_files(folder, stream.source, connector=self.name)
        if not files:   # a misspelt source or a renamed export: say so in the run, not only in the log
            note = f"no file matches '{stream.source}' in {folder}: nothing was read"
            log.warning("%s/%s: %s", self.name, stream.entity, note)
            yield Batch([], None, notes=[note])
            return
        last = FileCursor.parse(cursor)
        since = last.since
        newest: datetime | None = None
        counts = {"read": 0, "skipped": 0, "errors": 0, "unchanged files": 0}
        batch: list[dict[str, Any]] = []
        key, updated_at = stream.key, stream.updated_at
        read_in_full: dict[str, str] = {}
        started = time.time()
        for path in files:
            name, mark = path.relative_to(folder).as_posix(), file_mark(path, started)   # stat before reading
            if mark is not None:
                read_in_full[name] = mark
                if cursor is not None and last.files.get(name) == mark:
                    counts["unchanged files"] += 1
                    continue
            for line, record in self._rows(path, settings, stream):
                if ERROR not in record and record.get(key) in (None, ""):
                    record = error_record(path.name, line, f"line {line}: empty key '{key}'")
                if ERROR in record:
                    counts["errors"] += 1
                elif updated_at and updated_at in record:
                    ts = parse_timestamp(record[updated_at], stream.timezone)
                    if ts is not None:
                        if since is not None and ts < since:
                            counts["skipped"] += 1
                            continue
                        newest = ts if newest is None or ts > newest else newest
                counts["read"] += 1
                batch.append(record)
                if len(batch) > stream.batch_size:  # one record of look-ahead: the last batch is never empty
                    yield Batch(records=batch[:-1], cursor=cursor)
                    batch = batch[-1:]
        final_cursor = FileCursor(self._final_cursor(since, newest, stream), read_in_full).to_json()
        yielded_final = False
        deleted: list[str] = []
        for gone in self._deleted_keys(folder, settings, stream):
            deleted.append(gone)
            if len(deleted) >= stream.batch_size:
                yield Batch(records=batch, cursor=final_cursor, deleted=deleted)
                batch, deleted, yielded_final = [], [], True
        if batch or deleted or (not yielded_final and final_cursor != cursor):
            yield Batch(records=batch, cursor=final_cursor, deleted=deleted)
        log.info("%s/%s: read %d record(s) (%d bad), skipped %d older than the cursor, from %d file(s) "
                 "(%d not written since the last read)", self.name, stream.entity, counts["read"], counts["errors"],
                 counts["skipped"], len(files), counts["unchanged files"])

    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Append ``changes`` as one new file in the outbox; one result per change.

        Raises:
            ConfigError: the connector is inbound only.
        """
        if self.settings.direction == "in":
            raise ConfigError(f"connector '{self.name}' has direction in; it is not written", entity=stream.entity)
        settings = self.settings.for_stream(stream.options)   # the system imports each entity as it exports it
        layout = OutboxLayout(settings.outbox_format, settings.encoding, settings.delimiter)
        return self._writer.write(stream, changes, layout)

    def _rows(self, path: Path, settings: FileSettings, stream: StreamSpec) -> Iterator[Row]:
        fmt = settings.format_of(path)
        log.debug("%s/%s: reading %s as %s", self.name, stream.entity, path, fmt)
        if fmt == "csv":
            return iter_csv(path, encoding=settings.read_encoding, delimiter=settings.delimiter_of(path),
                            required=(stream.key,))
        if fmt == "xlsx":
            return iter_xlsx(path, sheet=settings.sheet, required=(stream.key,))
        return iter_jsonl(path, encoding=settings.read_encoding)

    def _deleted_keys(self, folder: Path, settings: FileSettings, stream: StreamSpec) -> Iterator[str]:
        for path in matching_files(folder, deleted_pattern(stream.source), connector=self.name, deleted=True):
            yield from iter_deleted_keys(path, stream.key, encoding=settings.read_encoding,
                                         delimiter=settings.delimiter_of(path))

    @staticmethod
    def _final_cursor(since: datetime | None, newest: datetime | None, stream: StreamSpec) -> datetime | None:
        capped = cap(newest, stream.run_started_at)
        if since is None:
            return capped
        return since if capped is None or capped < since else capped


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
