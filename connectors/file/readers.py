"""Row readers for CSV, XLSX and JSON lines: exact text, streamed, bad rows surfaced.

Readers never infer types: a CSV cell is the exact string in the file, an
XLSX cell the text a user sees (integer-valued numbers without ``.0``, dates
as ISO strings), a JSON number the digits as written. Each reader yields
``(line, record)`` pairs one at a time, so memory is bounded by what the
caller keeps. A row that cannot be read becomes an error record (keys
``__error__``, ``__line__``, ``__file__``, ``__raw__``) instead of aborting the
file; the pipeline quarantines it. So does a row holding a NUL byte, which no
store keeps as text.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Iterator

from connectors.file.lines import NUL, LineSource, open_lines
from hub.errors import FatalError

log = logging.getLogger(__name__)

ERROR = "__error__"
LINE = "__line__"
FILE = "__file__"
RAW = "__raw__"
RAW_LIMIT = 2000          # keep quarantined payloads small when a "line" is a whole broken file

Row = tuple[int, dict[str, Any]]


def error_record(file: str, line: int, message: str, raw: str = "") -> dict[str, Any]:
    """A record that stands for a row that could not be read (a NUL in the raw text is shown as ``\\x00``)."""
    return {ERROR: message, LINE: line, FILE: file, RAW: raw[:RAW_LIMIT].replace(NUL, "\\x00")}


def is_error(record: dict[str, Any]) -> bool:
    return ERROR in record


def _set_aside(lines: LineSource, file: str) -> Iterator[Row]:
    """Error records for the lines that could not be decoded since the last call."""
    for line, message, raw in lines.take_bad():
        yield line, error_record(file, line, message, raw)


# --- CSV ------------------------------------------------------------------------------------------

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


def _nul_column(header: list[str], cells: list[str]) -> str | None:
    """The first named column whose cell holds a NUL byte (unnamed columns are not kept, so they do not count)."""
    for name, cell in zip(header, cells):
        if name and NUL in cell:
            return name
    return None


def iter_csv(path: Path, *, encoding: str, delimiter: str, required: tuple[str, ...] = ()) -> Iterator[Row]:
    """Records of a delimited text file whose first non-blank row is the header.

    Raises:
        FatalError: the file is UTF-16/32 but ``encoding`` is not, or the
            header lacks a required column, repeats one or holds a NUL byte.
    """
    file = path.name
    with path.open("rb") as fh:
        lines = open_lines(fh, encoding, file)
        reader = csv.reader(lines, delimiter=delimiter, strict=False)
        header: list[str] | None = None
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over the size limit; the reader resets per row
                start = lines.take_start()
                lines.nul = False
                yield from _set_aside(lines, file)
                yield start, error_record(file, start, f"line {start}: {exc}")
                continue
            start = lines.take_start()
            if lines.bad:
                yield from _set_aside(lines, file)
            if _blank(cells):
                lines.nul = False
                continue
            if header is None:
                if lines.nul:
                    hint = "" if lines.wide else "; if the file is UTF-16 or UTF-32, set encoding: utf-16 (or utf-32)"
                    raise FatalError(f"{file}: line {start}: the header holds a NUL byte (0x00){hint}", file=file)
                header = _header(cells, file, required)
                all_named = all(header)   # the common case: rows become dicts without a filter
                continue
            if len(cells) != len(header):
                lines.nul = False
                raw = delimiter.join(cells)
                yield start, error_record(
                    file, start, f"line {start}: expected {len(header)} columns, got {len(cells)}", raw)
                continue
            if lines.nul:
                lines.nul = False
                column = _nul_column(header, cells)
                if column is not None:
                    yield start, error_record(file, start, f"line {start}: column '{column}' holds a NUL byte "
                                              f"(0x00)", delimiter.join(cells))
                    continue
            yield start, dict(zip(header, cells)) if all_named else {h: v for h, v in zip(header, cells) if h}
        yield from _set_aside(lines, file)


# --- JSON lines -----------------------------------------------------------------------------------

def _nul_field(value: Any, where: str = "") -> str | None:
    """The path of the first key or string value holding a NUL byte, else None."""
    if isinstance(value, str):
        return where if NUL in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{where}.{k}" if where else k
            if NUL in k:
                return here
            found = _nul_field(v, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul_field(v, f"{where}[{i}]")
            if found is not None:
                return found
    return None


def iter_jsonl(path: Path, *, encoding: str = "utf-8-sig") -> Iterator[Row]:
    """Records of a JSON-lines file; numbers stay the digits as written.

    Raises:
        FatalError: the file is UTF-16/32 but ``encoding`` is not.
    """
    file = path.name
    with path.open("rb") as fh:
        lines = open_lines(fh, encoding, file)
        for text in lines:
            line = lines.physical
            yield from _set_aside(lines, file)
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
            # a raw NUL is invalid JSON already; only the escape puts one in a value
            held = _nul_field(value) if "\\u0000" in text else None
            if held is not None:
                yield line, error_record(file, line, f"line {line}: field '{held}' holds a NUL byte (0x00)",
                                         text.rstrip("\r\n"))
                continue
            yield line, value
        yield from _set_aside(lines, file)


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
    """Keys listed in a ``<stem>.deleted.csv`` side file: one column, header optional.

    Raises:
        FatalError: the file is UTF-16/32 but ``encoding`` is not.
    """
    with path.open("rb") as fh:
        lines = open_lines(fh, encoding, path.name)
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
                gone = cells[column].strip()
                if NUL in gone:        # no stored id holds one, and PostgreSQL refuses it as a parameter
                    log.warning("%s line %d: a key holding a NUL byte, skipped", path.name, reader.line_num)
                    continue
                yield gone
        for _line, message, _raw in lines.take_bad():
            log.warning("%s: skipped %s", path.name, message)
