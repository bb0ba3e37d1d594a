"""Row readers for CSV, XLSX and JSON lines: exact text, streamed, bad rows surfaced.

Readers never infer types: a CSV cell is the exact string in the file, an
XLSX cell the text a user sees (integer-valued numbers without ``.0``, dates
as ISO strings), a JSON number the digits as written. Each reader yields
``(line, record)`` pairs one at a time, so memory is bounded by what the
caller keeps. A row that cannot be read becomes an error record (keys
``__error__``, ``__line__``, ``__file__``, ``__raw__``) instead of aborting the
file; the pipeline quarantines it.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any, Iterator

from hub.errors import FatalError

log = logging.getLogger(__name__)

ERROR = "__error__"
LINE = "__line__"
FILE = "__file__"
RAW = "__raw__"
RAW_LIMIT = 2000          # keep quarantined payloads small when a "line" is a whole broken file

Row = tuple[int, dict[str, Any]]


def error_record(file: str, line: int, message: str, raw: str = "") -> dict[str, Any]:
    """A record that stands for a row that could not be read."""
    return {ERROR: message, LINE: line, FILE: file, RAW: raw[:RAW_LIMIT]}


def is_error(record: dict[str, Any]) -> bool:
    return ERROR in record


class _Lines:
    """Bytes lines decoded one at a time; undecodable lines are set aside with their numbers.

    ``csv.reader`` pulls exactly the lines of one record per row, so
    ``row_start`` tells where the record the reader just returned began.
    """

    def __init__(self, fh: IO[bytes], encoding: str) -> None:
        self._it = iter(fh)
        # utf-8-sig decodes through a slow Python wrapper; plain utf-8 and one BOM check are the same
        self._bom = encoding == "utf-8-sig"
        self.encoding = "utf-8" if self._bom else encoding
        self.physical = 0
        self.row_start: int | None = None
        self.bad: list[tuple[int, UnicodeDecodeError, bytes]] = []

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        while True:
            raw = next(self._it)
            self.physical += 1
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                self.bad.append((self.physical, exc, raw))
                continue
            if self._bom:
                self._bom = False
                text = text.removeprefix("\ufeff")
            if self.row_start is None:
                self.row_start = self.physical
            return text

    def take_start(self) -> int:
        start = self.row_start if self.row_start is not None else self.physical
        self.row_start = None
        return start

    def drain_bad(self, file: str) -> Iterator[Row]:
        while self.bad:
            line, exc, raw = self.bad.pop(0)
            msg = (f"line {line}: cannot decode byte 0x{raw[exc.start]:02x} at column {exc.start + 1} "
                   f"as {self.encoding}")
            yield line, error_record(file, line, msg, raw.decode(self.encoding, errors="replace").rstrip("\r\n"))


def _header(cells: list[str], file: str, required: tuple[str, ...]) -> list[str]:
    names = [c.strip() for c in cells]
    seen: set[str] = set()
    for n in names:
        if n and n in seen:
            raise FatalError(f"{file}: column '{n}' appears twice in the header", file=file)
        seen.add(n)
    missing = [r for r in required if r not in seen]
    if missing:
        raise FatalError(f"{file}: no column {', '.join(repr(m) for m in missing)} in the header "
                         f"({', '.join(n for n in names if n)})", file=file)
    return names


def _blank(cells: list[str]) -> bool:
    for c in cells:  # usually decided by the first cell
        if c and not c.isspace():
            return False
    return True


def iter_csv(path: Path, *, encoding: str, delimiter: str, required: tuple[str, ...] = ()) -> Iterator[Row]:
    """Records of a delimited text file whose first non-blank row is the header.

    Raises:
        FatalError: the header lacks a required column or repeats one.
    """
    file = path.name
    with path.open("rb") as fh:
        lines = _Lines(fh, encoding)
        reader = csv.reader(lines, delimiter=delimiter, strict=False)
        header: list[str] | None = None
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over the size limit; the reader resets per row
                start = lines.take_start()
                yield from lines.drain_bad(file)
                yield start, error_record(file, start, f"line {start}: {exc}")
                continue
            start = lines.take_start()
            yield from lines.drain_bad(file)
            if _blank(cells):
                continue
            if header is None:
                header = _header(cells, file, required)
                continue
            if len(cells) != len(header):
                raw = delimiter.join(cells)
                yield start, error_record(
                    file, start, f"line {start}: expected {len(header)} columns, got {len(cells)}", raw)
                continue
            yield start, {h: v for h, v in zip(header, cells) if h}
        yield from lines.drain_bad(file)


def iter_jsonl(path: Path, *, encoding: str = "utf-8-sig") -> Iterator[Row]:
    """Records of a JSON-lines file; numbers stay the digits as written."""
    file = path.name
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    with path.open("rb") as fh:
        for line, raw in enumerate(fh, start=1):
            try:
                text = raw.decode(codec)
                if line == 1:
                    text = text.removeprefix("\ufeff")
            except UnicodeDecodeError as exc:
                yield line, error_record(file, line, f"line {line}: cannot decode byte 0x{raw[exc.start]:02x} at "
                                         f"column {exc.start + 1} as {codec}",
                                         raw.decode(codec, errors="replace").rstrip("\r\n"))
                continue
            if not text.strip():
                continue
            try:
                value = json.loads(text, parse_float=str, parse_int=str, parse_constant=str)
            except ValueError as exc:
                yield line, error_record(file, line, f"line {line}: invalid JSON: {exc}", text.rstrip("\r\n"))
                continue
            if not isinstance(value, dict):
                yield line, error_record(file, line, f"line {line}: expected a JSON object, got "
                                         f"{type(value).__name__}", text.rstrip("\r\n"))
                continue
            yield line, value


_QUOTED = re.compile(r'"[^"]*"|\[[^\]]*\]')


def _has_time(number_format: str | None) -> bool:
    fmt = _QUOTED.sub("", (number_format or "").lower())
    return "h" in fmt or "s" in fmt


def cell_text(value: Any, number_format: str | None = None) -> str:
    """The text a spreadsheet user sees for a cell value (numbers unformatted)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0) and not _has_time(number_format):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def iter_xlsx(path: Path, *, sheet: str | None = None, required: tuple[str, ...] = ()) -> Iterator[Row]:
    """Records of one worksheet (the first unless ``sheet`` names one), streamed in read-only mode.

    Raises:
        FatalError: the file is not a readable workbook, the sheet does not
            exist, or the header lacks a required column.
    """
    import openpyxl  # heavy: only when a workbook is read

    file = path.name
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException for broken files
        raise FatalError(f"{file}: not a readable XLSX workbook: {exc}", file=file) from exc
    try:
        if sheet:
            if sheet not in wb.sheetnames:
                raise FatalError(f"{file}: no sheet '{sheet}' (sheets: {', '.join(wb.sheetnames)})", file=file)
            ws = wb[sheet]
        else:
            ws = wb.worksheets[0]
        header: list[str] | None = None
        for number, row in enumerate(ws.iter_rows(), start=1):
            line = getattr(row[0], "row", None) or number if row else number
            cells = [cell_text(c.value, getattr(c, "number_format", None)) for c in row]
            while cells and cells[-1] == "":
                cells.pop()
            if _blank(cells):
                continue
            if header is None:
                header = _header(cells, file, required)
                continue
            if len(cells) > len(header):
                yield line, error_record(file, line, f"row {line}: expected {len(header)} columns, got {len(cells)}",
                                         "\t".join(cells))
                continue
            cells += [""] * (len(header) - len(cells))  # a sheet drops trailing empty cells
            yield line, {h: v for h, v in zip(header, cells) if h}
    finally:
        wb.close()


def iter_deleted_keys(path: Path, key: str, *, encoding: str, delimiter: str) -> Iterator[str]:
    """Keys listed in a ``<stem>.deleted.csv`` side file: one column, header optional."""
    with path.open("rb") as fh:
        lines = _Lines(fh, encoding)
        column: int | None = None
        reader = csv.reader(lines, delimiter=delimiter, strict=False)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:   # a damaged line (a field over the csv limit, say): skip it, say where
                log.warning("%s line %d: skipped: %s", path.name, reader.line_num, exc)
                continue
            if _blank(cells):
                continue
            if column is None:
                names = [c.strip() for c in cells]
                column = names.index(key) if key in names else 0
                if key in names:
                    continue
            if column < len(cells) and cells[column].strip():
                yield cells[column].strip()
        for line, _exc, _raw in lines.bad:
            log.warning("%s line %d: undecodable as %s, skipped", path.name, line, encoding)
