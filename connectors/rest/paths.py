"""JSONPath-like record paths and ``{placeholder}`` templates for API descriptions.

Paths: ``$`` (the whole body), ``results``, ``$.data.items``, ``paging.next.after``,
``data[0].id``, ``items[*]`` (the list itself), ``['odd.key'].value``. A missing
step gives None; nothing is evaluated.

Templates: any string value may hold ``{name}`` or ``{name.sub.path}``; a string
that is exactly one placeholder is replaced by the raw value (a list, a map, a
number), otherwise values are formatted into the text. ``{{`` and ``}}`` are
literal braces.
"""
from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"""\.?(?:([^.\[\]'"]+)|\[(?:(-?\d+)|(\*)|'([^']*)'|"([^"]*)")\])""")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[^{}\s.]+)*)\}")

STAR = object()   # `[*]`: the list at this point, as a list


def compile_path(text: str) -> tuple[Any, ...]:
    """Split a path into steps (str keys, int indexes, STAR).

    Raises:
        ValueError: the text is not a path this module understands.
    """
    t = str(text).strip()
    if t.startswith("$"):
        t = t[1:]
    steps: list[Any] = []
    pos = 0
    while pos < len(t):
        m = _STEP.match(t, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad path '{text}' at character {pos + 1 + (len(str(text).strip()) - len(t))}")
        name, index, star, q1, q2 = m.groups()
        if star:
            steps.append(STAR)
        elif index is not None:
            steps.append(int(index))
        else:
            steps.append(name if name is not None else (q1 if q1 is not None else q2))
        pos = m.end()
    if STAR in steps[:-1]:
        raise ValueError(f"bad path '{text}': [*] may only end a path")
    return tuple(steps)


def get_at(doc: Any, steps: tuple[Any, ...]) -> Any:
    """The value at compiled ``steps`` (None when a step is missing)."""
    node = doc
    for step in steps:
        if step is STAR:
            return node if isinstance(node, list) else None
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return None
            node = node[step]
        elif isinstance(node, dict):
            if step not in node:
                return None
            node = node[step]
        else:
            return None
    return node


def get_path(doc: Any, text: str) -> Any:
    """The value at a path given as text."""
    return get_at(doc, compile_path(text))


def set_path(doc: dict[str, Any], text: str, value: Any) -> None:
    """Store ``value`` at a dotted path of keys, creating maps on the way."""
    steps = compile_path(text)
    if not steps or not all(isinstance(s, str) for s in steps):
        raise ValueError(f"cannot set a value at '{text}': only map keys can be set")
    node = doc
    for step in steps[:-1]:
        nxt = node.get(step)
        if not isinstance(nxt, dict):
            nxt = node[step] = {}
        node = nxt
    node[steps[-1]] = value


def placeholders(template: Any) -> set[str]:
    """Every placeholder named in a template (strings, maps and lists, keys included)."""
    found: set[str] = set()
    if isinstance(template, str):
        found.update(m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1))
    elif isinstance(template, dict):
        for k, v in template.items():
            found |= placeholders(k) | placeholders(v)
    elif isinstance(template, list):
        for v in template:
            found |= placeholders(v)
    return found


def _lookup(name: str, context: dict[str, Any]) -> Any:
    head, _, rest = name.partition(".")
    value = context.get(head)
    for part in rest.split(".") if rest else ():
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def render(template: Any, context: dict[str, Any]) -> Any:
    """Fill a template's placeholders from ``context`` (see the module docstring)."""
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole and whole.group(1):
            return _lookup(whole.group(1), context)

        def sub(m: re.Match) -> str:
            if m.group(1) is None:
                return m.group(0)[0]            # {{ -> {, }} -> }
            return _text(_lookup(m.group(1), context))
        return _PLACEHOLDER.sub(sub, template)
    if isinstance(template, dict):
        return {render(k, context) if isinstance(k, str) else k: render(v, context) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, context) for v in template]
    return template
