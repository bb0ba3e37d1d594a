"""Line numbers for config problems: `triad.yaml: connectors.erp.type: ...` gains `(line 5)`.

The problems are found on the parsed config (pydantic, the cross-section checks, building each
connector), which no longer knows where a key was written; the key path each message starts with
is looked up in the file's own line map instead. The line is appended, so the message as the
contract words it (file, key path, what was expected) reads the same.
"""
from __future__ import annotations

import re

import yaml

from hub.mapping_yaml import KeyPath, LineMap, parse_yaml

_NAME = r"[^.\[\]\s:]+"
_PATH = re.compile(rf"{_NAME}(?:\.{_NAME}|\[\d+\])*")
_PART = re.compile(rf"({_NAME})|\[(\d+)\]")


def line_map(text: str) -> LineMap | None:
    """The lines of ``text``'s keys, or None when it is not YAML (its error has a line of its own)."""
    try:   # `{a: ${X}}` is YAML once its variable is a plain word (as the config is parsed)
        return parse_yaml(re.sub(r"\$\{[^}\n]*\}", "VAR", text)).lines
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


def key_path(text: str) -> KeyPath | None:
    """``connectors.erp.entities.customer`` / ``schedules[0].cron`` -> a key path; None if it is not one."""
    if not _PATH.fullmatch(text):
        return None
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART.finditer(text))


def written_line(lines: LineMap, path: KeyPath) -> int | None:
    """The line of ``path`` or of its nearest ancestor written in the file; None if only the file is."""
    while path and path not in lines.lines:
        path = path[:-1]
    return lines.lines[path] if path else None


def with_lines(message: str, lines: LineMap | None, file: str) -> str:
    """Each line of ``message`` that names a key path of the config, with that key's line appended."""
    if lines is None:
        return message
    return "\n".join(_with_line(m, lines, file) for m in message.split("\n"))


def _with_line(message: str, lines: LineMap, file: str) -> str:
    rest = message.removeprefix(f"{file}: ")
    head, sep, _ = rest.partition(": ")
    path = key_path(head) if sep else None
    # a value taken from the environment was not written at that line
    if path is None or "(from $" in message or re.search(r"\(line \d+\)$", message):
        return message
    line = written_line(lines, path)
    return f"{message} (line {line})" if line else message
