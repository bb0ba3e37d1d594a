"""YAML loading that remembers where each key was written, for error messages with a line."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from hub.yamlio import SafeLoader

KeyPath = tuple  # a YAML key path: str keys and int list indexes


@dataclass(frozen=True)
class MappingIssue:
    """One problem in a mapping file: where (file, line, key path) and what."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


def format_path(path: KeyPath) -> str:
    """``('fields', 'phone', 'transform', 1)`` -> ``fields.phone.transform[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class LineMap:
    """Line numbers (1-based) of the keys and list items of one YAML document."""

    def __init__(self) -> None:
        self.lines: dict[KeyPath, int] = {(): 1}

    def line(self, path: KeyPath) -> int:
        """The line of ``path``, else of its nearest ancestor that was written in the file."""
        while path not in self.lines:
            path = path[:-1]
        return self.lines[path]


class YamlDocument:
    """A parsed YAML document with its line map and the problems found while parsing."""

    def __init__(self, data: Any, lines: LineMap, problems: list[tuple[KeyPath, str, int]]) -> None:
        self.data = data
        self.lines = lines
        self.problems = problems


def scalar_key(value: Any) -> str:
    """How a source value or a YAML key compares in ``values`` maps: as a string, booleans as true/false."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document safely, recording the line of every key and list item.

    Raises:
        yaml.YAMLError: the text is not valid YAML (``problem_mark`` holds the position).
    """
    node = yaml.compose(text, Loader=SafeLoader)
    lines = LineMap()
    problems: list[tuple[KeyPath, str, int]] = []   # (path, message, line)
    if node is None:
        return YamlDocument(None, lines, problems)
    constructor = SafeLoader("")

    def build(n: yaml.Node, path: KeyPath) -> Any:
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = build(key_node, path)
                if isinstance(key, (dict, list)):
                    problems.append((path, "a key must be a plain value", key_node.start_mark.line + 1))
                    continue
                # values-map keys compare as strings: `true` and "true" are the same key
                sub = (*path, scalar_key(key))
                if sub in lines.lines:
                    problems.append((sub, f"duplicate key '{sub[-1]}'", key_node.start_mark.line + 1))
                lines.lines.setdefault(sub, key_node.start_mark.line + 1)
                out[key] = build(value_node, sub)
            return out
        if isinstance(n, yaml.SequenceNode):
            items = []
            for i, item in enumerate(n.value):
                lines.lines.setdefault((*path, i), item.start_mark.line + 1)
                items.append(build(item, (*path, i)))
            return items
        return constructor.construct_object(n, deep=True)

    return YamlDocument(build(node, ()), lines, problems)
