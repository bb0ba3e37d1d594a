"""The OData v2 ``$filter`` language, as far as the simulated services need it.

Comparisons (eq ne gt ge lt le), and/or/not, parentheses, typed literals
(``datetime'2026-01-01T00:00:00'``, ``datetimeoffset'2026-01-01T00:00:00Z'``,
``time'PT14H30M00S'``, ``guid'...'``, strings, numbers, true/false/null), member
paths through single-valued navigation properties (``to_Customer/CustomerClassification``)
and the string functions substringof, startswith, endswith, tolower, toupper, trim, length.
Type checks are strict like SAP Gateway: an Edm.DateTime property compares only
with a ``datetime'...'`` literal, an Edm.DateTimeOffset property only with ``datetimeoffset'...'``.
"""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable

from connectors.sap import wire
from connectors.sap.schema import EntitySet

Resolver = Callable[[dict, tuple[str, ...]], Any]
Compiled = tuple[str, Callable[[dict], Any]]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<typed>(?:datetimeoffset|datetime|time|guid|binary|X)'[^']*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[MmDdFfLl]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[(),])
""", re.VERBOSE)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_KINDS = {"Edm.String": "string", "Edm.DateTime": "datetime", "Edm.DateTimeOffset": "datetimeoffset",
          "Edm.Time": "time", "Edm.Guid": "guid", "Edm.Boolean": "bool", "Edm.Decimal": "number",
          "Edm.Double": "number", "Edm.Int32": "number", "Edm.Int64": "number", "Edm.Int16": "number"}
_FUNCTIONS = {  # name -> (argument kinds, result kind, implementation)
    "substringof": (("string", "string"), "bool", lambda a, b: a in b),
    "startswith": (("string", "string"), "bool", lambda a, b: a.startswith(b)),
    "endswith": (("string", "string"), "bool", lambda a, b: a.endswith(b)),
    "tolower": (("string",), "string", str.lower),
    "toupper": (("string",), "string", str.upper),
    "trim": (("string",), "string", str.strip),
    "length": (("string",), "number", lambda a: Decimal(len(a))),
}


class FilterError(ValueError):
    """A $filter that cannot be parsed or does not type-check (HTTP 400)."""


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise FilterError(f"Invalid token detected at position {pos + 1}")
        if match.lastgroup != "ws":
            out.append((match.lastgroup or "", match.group(), pos + 1))
        pos = match.end()
    return out


def _literal(kind: str, text: str, pos: int) -> tuple[str, Any]:
    """(kind, comparable value) of a typed or plain literal."""
    if kind == "string":
        return "string", text[1:-1].replace("''", "'")
    if kind == "number":
        return "number", Decimal(text.rstrip("MmDdFfLl"))
    prefix, _, rest = text.partition("'")
    body = rest[:-1]
    try:
        if prefix == "datetime":
            value = datetime.fromisoformat(body)
            if value.tzinfo is not None:
                raise ValueError("an offset is not allowed in a datetime literal")
            return "datetime", wire.ms_of(value)
        if prefix == "datetimeoffset":
            # '+' arrives as a space when a client forgot to percent-encode it
            value = datetime.fromisoformat(re.sub(r" (\d\d:?\d\d)$", r"+\1", body).replace("Z", "+00:00"))
            if value.tzinfo is None:
                raise ValueError("a datetimeoffset literal needs Z or an offset")
            return "datetimeoffset", wire.ms_of(value)
        if prefix == "time":
            return "time", wire.time_seconds(body)
        if prefix == "guid":
            return "guid", wire.encode("Edm.Guid", body)
    except ValueError as exc:
        raise FilterError(f"Invalid literal {text} at position {pos}: {exc}") from None
    raise FilterError(f"Unsupported literal {text} at position {pos}")


class _Parser:
    def __init__(self, text: str, entity: EntitySet, resolve: Resolver, sets: dict[str, EntitySet]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.entity = entity
        self.resolve = resolve
        self.sets = sets

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            where = tok[2] if tok else "end"
            raise FilterError(f"Invalid filter expression: expected {value or 'an operand'} at position {where}")
        self.i += 1
        return tok

    def parse(self) -> Callable[[dict], bool]:
        kind, fn = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"Invalid token detected at position {self.peek()[2]}")
        if kind != "bool":
            raise FilterError("The $filter expression must be a Boolean expression")
        return lambda rec: fn(rec) is True

    def _bool(self, node: Compiled, op: str) -> Callable[[dict], Any]:
        if node[0] != "bool":
            raise FilterError(f"Invalid parametertype used at function '{op}'")
        return node[1]

    def or_expr(self) -> Compiled:
        left = self.and_expr()
        while (tok := self.peek()) and tok[1] == "or":
            self.take()
            a, b = self._bool(left, "or"), self._bool(self.and_expr(), "or")
            left = ("bool", lambda r, a=a, b=b: a(r) is True or b(r) is True)
        return left

    def and_expr(self) -> Compiled:
        left = self.not_expr()
        while (tok := self.peek()) and tok[1] == "and":
            self.take()
            a, b = self._bool(left, "and"), self._bool(self.not_expr(), "and")
            left = ("bool", lambda r, a=a, b=b: a(r) is True and b(r) is True)
        return left

    def not_expr(self) -> Compiled:
        tok = self.peek()
        if tok and tok[1] == "not":
            self.take()
            inner = self._bool(self.not_expr(), "not")
            return "bool", lambda r: not inner(r)
        return self.compare()

    def compare(self) -> Compiled:
        left = self.primary()
        tok = self.peek()
        if not tok or tok[1] not in _COMPARE:
            return left
        op = self.take()[1]
        right = self.primary()
        kinds = {left[0], right[0]} - {"null"}
        if len(kinds) > 1:
            raise FilterError(f"Invalid parametertype used at function '{op}' (position {tok[2]})")
        if "null" in (left[0], right[0]) and op not in ("eq", "ne"):
            raise FilterError(f"Invalid use of null with '{op}' (position {tok[2]})")
        a, b = left[1], right[1]
        tests = {"eq": lambda x, y: x == y, "ne": lambda x, y: x != y, "gt": lambda x, y: x > y,
                 "ge": lambda x, y: x >= y, "lt": lambda x, y: x < y, "le": lambda x, y: x <= y}
        test = tests[op]
        if op in ("eq", "ne"):
            return "bool", lambda r: test(a(r), b(r))

        def ordered(r: dict) -> bool:
            x, y = a(r), b(r)
            return x is not None and y is not None and test(x, y)
        return "bool", ordered

    def primary(self) -> Compiled:
        kind, text, pos = self.take()
        if text == "(":
            node = self.or_expr()
            self.take(")")
            return node
        if kind in ("string", "number", "typed"):
            lkind, value = _literal(kind, text, pos)
            return lkind, lambda r, v=value: v
        if kind != "name":
            raise FilterError(f"Invalid token detected at position {pos}")
        if text in ("true", "false"):
            return "bool", lambda r, v=(text == "true"): v
        if text == "null":
            return "null", lambda r: None
        if (nxt := self.peek()) and nxt[1] == "(":
            return self.call(text, pos)
        return self.member(text, pos)

    def call(self, name: str, pos: int) -> Compiled:
        if name not in _FUNCTIONS:
            raise FilterError(f"Function '{name}' is not supported (position {pos})")
        arg_kinds, result, impl = _FUNCTIONS[name]
        self.take("(")
        args = [self.or_expr()]
        while (tok := self.peek()) and tok[1] == ",":
            self.take()
            args.append(self.or_expr())
        self.take(")")
        if len(args) != len(arg_kinds) or any(a[0] not in (k, "null") for a, k in zip(args, arg_kinds)):
            raise FilterError(f"Invalid parametertype used at function '{name}' (position {pos})")
        fns = [a[1] for a in args]

        def apply(r: dict) -> Any:
            values = [f(r) for f in fns]
            return None if any(v is None for v in values) else impl(*values)
        return result, apply

    def member(self, text: str, pos: int) -> Compiled:
        path = tuple(text.split("/"))
        entity = self.entity
        for step in path[:-1]:
            nav = entity.nav(step)
            if nav is None or nav.many:
                raise FilterError(f"Property {step} not found in type '{entity.type_name}' (position {pos})")
            entity = self.sets[nav.target]
        prop = entity.by_name.get(path[-1])
        if prop is None:
            raise FilterError(f"Property {path[-1]} not found in type '{entity.type_name}' (position {pos})")
        if not prop.filterable:
            raise FilterError(f"Property {path[-1]} of type '{entity.type_name}' is not filterable")
        edm, resolve = prop.type, self.resolve
        return _KINDS.get(edm, "string"), lambda r: wire.comparable(edm, resolve(r, path))


def compile_filter(text: str, entity: EntitySet, resolve: Resolver,
                   sets: dict[str, EntitySet]) -> Callable[[dict], bool]:
    """A predicate over stored records for a ``$filter`` expression.

    Args:
        text: the expression.
        entity: the entity set the filter applies to.
        resolve: reads a member path (property, or navigation/property) from a record.
        sets: all entity sets, to follow navigation properties.

    Raises:
        FilterError: syntax or type error; the message reads like SAP Gateway's.
    """
    return _Parser(text, entity, resolve, sets).parse()
