"""Decoded lines of a text export, one at a time, for the CSV, JSON-lines and deleted-keys readers.

An undecodable line is set aside with its number instead of failing the file,
a line holding a NUL byte is flagged, and a UTF-16 or UTF-32 file read as an
ASCII-compatible encoding is recognised and refused with a clear message
instead of being read as NUL-riddled text. Files in encodings such as UTF-16,
whose line end is not one byte, are decoded as a stream.
"""
from __future__ import annotations

import codecs
import io
import re
from functools import lru_cache
from typing import IO

from hub.errors import FatalError

NUL = "\x00"
# bytes that csv and line splitting rely on; an encoding that writes them as ASCII does is read per byte line
_PROBE = ',;|\t\r\n"'
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),   # UTF-32 LE starts like UTF-16 LE
              (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_HEAD = 4096


@lru_cache(maxsize=64)
def ascii_compatible(encoding: str) -> bool:
    """Whether ``encoding`` writes delimiters, quotes and line ends as ASCII does (UTF-16 and UTF-32 do not).

    Raises:
        LookupError: not a text encoding.
    """
    name = codecs.lookup(encoding).name
    try:
        return _PROBE.encode("utf-8" if name == "utf-8-sig" else name) == _PROBE.encode("ascii")
    except UnicodeError:
        return False


def wide_unicode(head: bytes) -> tuple[str, str] | None:
    """``(encoding, evidence)`` when a file's first bytes show UTF-16 or UTF-32: a byte order mark,
    or ASCII characters with NUL bytes between them on the first line."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return name, f"it starts with a {name.upper()} byte order mark"
    first = head.split(b"\n", 1)[0]
    zeros = first.count(0)
    if len(first) < 4 or zeros * 4 < len(first):   # ASCII as UTF-16 is half NUL bytes, as UTF-32 three quarters
        return None
    width = "utf-32" if zeros * 3 >= len(first) * 2 else "utf-16"
    order = "le" if first[1::2].count(0) >= first[0::2].count(0) else "be"
    return f"{width}-{order}", "NUL bytes sit between the characters of its first line"


def _refuse_wide_unicode(fh: IO[bytes], encoding: str, file: str) -> None:
    """Raises FatalError naming the encoding when the file is UTF-16 or UTF-32; leaves ``fh`` at its start."""
    head = fh.read(_HEAD)
    fh.seek(0)
    found = wide_unicode(head)
    if found is not None:
        name, evidence = found
        configured = "utf-8" if encoding == "utf-8-sig" else encoding
        raise FatalError(f"{file}: the file is {name.upper()} ({evidence}), not {configured}; save it as UTF-8, "
                         f"or set encoding: {name} on the connector or this entity", file=file)


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Error handler: each undecodable byte becomes a lone surrogate (U+DC00 + byte), which no decoder produces."""
    assert isinstance(exc, UnicodeDecodeError)
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start:exc.end]), exc.end


_MARK = "triad-file-mark-undecodable"
codecs.register_error(_MARK, _mark_undecodable)
_MARKED = re.compile("[\udc00-\udcff]")


class LineSource:
    """Decoded lines, one at a time; undecodable lines are set aside with their numbers.

    ``csv.reader`` pulls exactly the lines of one record per row, so
    ``row_start`` tells where the record the reader just returned began and
    ``nul`` whether one of its lines holds a NUL byte (the caller resets it).
    """

    wide = False          # True for encodings read as a stream (UTF-16, UTF-32)

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.physical = 0
        self.row_start: int | None = None
        self.nul = False
        self.bad: list[tuple[int, str, str]] = []      # (line, message, raw text)

    def __iter__(self) -> "LineSource":
        return self

    def __next__(self) -> str:
        raise NotImplementedError

    def take_start(self) -> int:
        start = self.row_start if self.row_start is not None else self.physical
        self.row_start = None
        return start

    def take_bad(self) -> list[tuple[int, str, str]]:
        """The lines set aside since the last call: ``(line, message, raw text)``."""
        if not self.bad:
            return []
        bad, self.bad = self.bad, []
        return bad

    def _accept(self, text: str) -> str:
        if NUL in text:
            self.nul = True
        if self.row_start is None:
            self.row_start = self.physical
        return text


class _ByteLines(LineSource):
    """Lines of an ASCII-compatible encoding: split on the ``\\n`` byte, each decoded alone."""

    def __init__(self, fh: IO[bytes], encoding: str) -> None:
        # utf-8-sig decodes through a slow Python wrapper; plain utf-8 and one BOM check are the same
        self._bom = encoding == "utf-8-sig"
        super().__init__("utf-8" if self._bom else encoding)
        self._it = iter(fh)

    def __next__(self) -> str:
        while True:
            raw = next(self._it)
            self.physical += 1
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                self.bad.append((self.physical, f"line {self.physical}: cannot decode byte 0x{raw[exc.start]:02x} "
                                 f"at column {exc.start + 1} as {self.encoding}",
                                 raw.decode(self.encoding, errors="replace").rstrip("\r\n")))
                continue
            if self._bom:
                self._bom = False
                text = text.removeprefix("\ufeff")
            if NUL in text:      # the hot path of every CSV read: inline, not a call to _accept
                self.nul = True
            if self.row_start is None:
                self.row_start = self.physical
            return text


class _TextLines(LineSource):
    """Lines of an encoding such as UTF-16, whose line end is not one byte: decoded as a stream, split on ``\\n``."""

    wide = True

    def __init__(self, fh: IO[bytes], encoding: str) -> None:
        super().__init__(encoding)
        self._it = io.TextIOWrapper(fh, encoding=encoding, errors=_MARK, newline="\n")

    def __next__(self) -> str:
        while True:
            text = next(self._it)
            self.physical += 1
            if self.physical == 1:
                text = text.removeprefix("\ufeff")     # utf-16-le/-be keep the mark; utf-16 drops it itself
            marked = _MARKED.search(text)
            if marked is not None:
                at = marked.start()
                self.bad.append((self.physical, f"line {self.physical}: cannot decode byte "
                                 f"0x{ord(text[at]) - 0xDC00:02x} at character {at + 1} as {self.encoding}",
                                 _MARKED.sub("\ufffd", text).rstrip("\r\n")))
                continue
            return self._accept(text)


def open_lines(fh: IO[bytes], encoding: str, file: str) -> LineSource:
    """The line source of an open binary file in ``encoding``.

    Raises:
        FatalError: the encoding is ASCII-compatible but the file is UTF-16 or UTF-32.
    """
    if ascii_compatible(encoding):
        _refuse_wide_unicode(fh, encoding, file)
        return _ByteLines(fh, encoding)
    return _TextLines(fh, encoding)
