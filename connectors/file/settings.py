"""The file connector's options, validated once when the connector is built."""
from __future__ import annotations

import codecs
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connectors.file.lines import ascii_compatible
from hub.errors import ConfigError

FORMATS = ("csv", "xlsx", "jsonl")
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
              ".jsonl": "jsonl", ".ndjson": "jsonl"}
DIRECTIONS = ("in", "out", "both")
OUTBOX_FORMATS = ("jsonl", "csv")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ",", "pipe": "|"}


@dataclass(frozen=True)
class FileSettings:
    """Resolved options; ``for_stream`` applies an entity's own overrides."""

    connector: str
    folder: Path
    outbox: Path
    format: str = "auto"
    encoding: str = "utf-8"
    delimiter: str = ","
    delimiter_set: bool = False
    direction: str = "both"
    outbox_format: str = "jsonl"
    sheet: str | None = None

    @property
    def read_encoding(self) -> str:
        """UTF-8 with or without a byte order mark reads the same."""
        return "utf-8-sig" if codecs.lookup(self.encoding).name in ("utf-8", "utf-8-sig") else self.encoding

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any], base_dir: str | Path = ".") -> "FileSettings":
        """Validate the connector block of ``triad.yaml``.

        Raises:
            ConfigError: naming ``connectors.<name>.<option>`` and what was expected.
        """
        path = options.get("path")
        if not path or not isinstance(path, (str, Path)):
            raise ConfigError(f"connectors.{name}.path: required, the folder holding the files")
        if "\x00" in str(path):
            raise ConfigError(f"connectors.{name}.path: a folder name cannot hold a NUL byte")
        base = Path(base_dir)
        folder = (base / Path(path).expanduser()).resolve()
        outbox_opt = options.get("outbox")
        outbox = (base / Path(outbox_opt).expanduser()).resolve() if outbox_opt else folder / "outbox"
        direction = options.get("direction", "both")
        if direction not in DIRECTIONS:
            raise ConfigError(f"connectors.{name}.direction: '{direction}'; expected one of {', '.join(DIRECTIONS)}")
        base_settings = cls(connector=name, folder=folder, outbox=outbox, direction=direction)
        return base_settings.for_stream(options, where=f"connectors.{name}")

    def for_stream(self, options: dict[str, Any], where: str | None = None) -> "FileSettings":
        """These settings with per-entity overrides of format, encoding, delimiter, sheet and outbox format.

        Raises:
            ConfigError: an override is not valid.
        """
        where = where or f"connectors.{self.connector}.entities"
        changes: dict[str, Any] = {}
        if "format" in options:
            fmt = str(options["format"]).lower()
            if fmt != "auto" and fmt not in FORMATS:
                raise ConfigError(f"{where}.format: '{fmt}'; expected auto, {', '.join(FORMATS)}")
            changes["format"] = fmt
        if "encoding" in options:
            changes["encoding"] = _check_encoding(str(options["encoding"]), where)
        if "delimiter" in options:
            delim = str(options["delimiter"])
            delim = _DELIMITER_NAMES.get(delim.lower(), delim)
            if len(delim) != 1 or delim in '"\r\n':
                raise ConfigError(f"{where}.delimiter: {options['delimiter']!r}; expected one character such as , ; | or tab")
            changes.update(delimiter=delim, delimiter_set=True)
        if options.get("sheet"):
            changes["sheet"] = str(options["sheet"])
        if "outbox_format" in options:
            outbox_format = options["outbox_format"]
            if outbox_format not in OUTBOX_FORMATS:
                raise ConfigError(f"{where}.outbox_format: '{outbox_format}'; "
                                  f"expected one of {', '.join(OUTBOX_FORMATS)}")
            changes["outbox_format"] = outbox_format
        return replace(self, **changes) if changes else self

    def format_of(self, path: Path) -> str:
        """The reader for one file: the configured format, else by extension.

        Raises:
            ConfigError: ``auto`` and the extension is unknown.
        """
        if self.format != "auto":
            return self.format
        fmt = EXTENSIONS.get(path.suffix.lower())
        if fmt is None:
            raise ConfigError(f"{path.name}: cannot tell the format from '{path.suffix}'; "
                              f"set format: csv, xlsx or jsonl", connector=self.connector)
        return fmt

    def delimiter_of(self, path: Path) -> str:
        if not self.delimiter_set and path.suffix.lower() == ".tsv":
            return "\t"
        return self.delimiter


def _check_encoding(encoding: str, where: str) -> str:
    expected = "expected e.g. utf-8, gbk, gb18030, utf-16"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"{where}.encoding: unknown encoding '{encoding}'; {expected}") from None
    try:
        ascii_compatible(encoding)    # UTF-16/32 are read too (as a stream); only codecs that are not for text fail
    except LookupError:
        raise ConfigError(f"{where}.encoding: '{encoding}' is not a text encoding; {expected}") from None
    return encoding
