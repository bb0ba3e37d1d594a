"""A SOQL subset: tokenizer and parser producing a small AST.

Supported: ``SELECT`` field paths (``Owner.Name``), ``COUNT()`` and child
subqueries (``(SELECT ... FROM OrderItems ...)``), ``FROM``, ``WHERE`` with
``AND``/``OR``/``NOT`` and parentheses (mixing AND and OR on one level needs
parentheses, as in SOQL), comparisons ``= != <> < <= > >=``, ``[NOT] IN (...)``,
``LIKE``; literals: strings, numbers, true/false/null, dates and datetimes;
``ORDER BY path [ASC|DESC] [NULLS FIRST|LAST]``, ``LIMIT`` and ``OFFSET``.
Errors carry the position so messages can point at the token like Salesforce does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
            "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT"}
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\",
            "%": "\\%", "_": "\\_"}  # \% and \_ stay escaped for LIKE


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is the errorCode (MALFORMED_QUERY, INVALID_FIELD ...)."""

    def __init__(self, code: str, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pos = pos


@dataclass
class Token:
    kind: str            # string, datetime, date, number, name, keyword, op, end
    text: str
    pos: int
    value: Any = None


@dataclass
class Literal:
    kind: str            # string, number, bool, null, date, datetime
    value: Any
    pos: int


@dataclass
class Comparison:
    path: str
    op: str              # = != < <= > >= IN NOT IN LIKE
    value: Literal | list[Literal]
    pos: int


@dataclass
class BoolOp:
    op: str              # AND / OR
    items: list[Any]


@dataclass
class Not:
    item: Any


@dataclass
class OrderKey:
    path: str
    desc: bool = False
    nulls_last: bool | None = None
    pos: int = 0


@dataclass
class Query:
    source: str                                   # object, or child relationship name in a subquery
    fields: list[Any] = field(default_factory=list)   # field paths (str) and subqueries (Query)
    field_pos: list[int] = field(default_factory=list)
    count: bool = False
    where: Any = None
    order: list[OrderKey] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    source_pos: int = 0


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raises MALFORMED_QUERY on a character SOQL does not know."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos:pos + 10].split()[0]}'", pos)
        kind = m.lastgroup
        raw = m.group()
        if kind == "string":
            tokens.append(Token("string", raw, pos, _unescape(raw[1:-1], pos)))
        elif kind == "name" and raw.upper() in KEYWORDS:
            tokens.append(Token("keyword", raw.upper(), pos, raw))
        elif kind != "ws":
            tokens.append(Token(kind, raw, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _unescape(body: str, pos: int) -> str:
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise SoqlError("MALFORMED_QUERY", f"Invalid string literal '{body}'. Illegal character sequence "
                                f"'\\{nxt}' in string literal.", pos)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse(text: str) -> Query:
    """Parse one SOQL statement."""
    p = _Parser(tokenize(text))
    q = p.query()
    p.expect_end()
    return q


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        return self.next() if self.at(kind, text) else None

    def fail(self, t: Token | None = None) -> SoqlError:
        t = t or self.tok
        if t.kind == "end":
            return SoqlError("MALFORMED_QUERY", "unexpected token: <EOF>", t.pos)
        return SoqlError("MALFORMED_QUERY", f"unexpected token: '{t.text}'", t.pos)

    def expect(self, kind: str, text: str | None = None) -> Token:
        if not self.at(kind, text):
            raise self.fail()
        return self.next()

    def expect_end(self) -> None:
        if not self.at("end"):
            raise self.fail()

    def query(self) -> Query:
        self.expect("keyword", "SELECT")
        q = Query(source="")
        if self.at("keyword", "COUNT"):
            self.next()
            self.expect("op", "(")
            self.expect("op", ")")
            q.count = True
        else:
            while True:
                t = self.tok
                if self.accept("op", "("):
                    sub = self.query()
                    self.expect("op", ")")
                    q.fields.append(sub)
                elif t.kind == "name":
                    q.fields.append(self.next().text)
                else:
                    raise self.fail()
                q.field_pos.append(t.pos)
                if not self.accept("op", ","):
                    break
        self.expect("keyword", "FROM")
        src = self.next()
        if src.kind == "keyword" and src.text in ("ORDER", "COUNT"):  # the Order object is spelled like a keyword
            src = Token("name", src.value, src.pos)
        if src.kind != "name":
            raise self.fail(src)
        q.source, q.source_pos = src.text, src.pos
        if self.accept("keyword", "WHERE"):
            q.where = self.condition()
        if self.accept("keyword", "ORDER"):
            self.expect("keyword", "BY")
            q.order.append(self.order_key())
            while self.accept("op", ","):
                q.order.append(self.order_key())
        if self.accept("keyword", "LIMIT"):
            q.limit = self.integer()
        if self.accept("keyword", "OFFSET"):
            q.offset = self.integer()
        return q

    def integer(self) -> int:
        t = self.expect("number")
        if not t.text.isdigit():
            raise self.fail(t)
        return int(t.text)

    def order_key(self) -> OrderKey:
        t = self.expect("name")
        key = OrderKey(t.text, pos=t.pos)
        if self.accept("keyword", "DESC"):
            key.desc = True
        else:
            self.accept("keyword", "ASC")
        if self.accept("keyword", "NULLS"):
            key.nulls_last = bool(self.accept("keyword", "LAST"))
            if not key.nulls_last:
                self.expect("keyword", "FIRST")
        return key

    def condition(self) -> Any:
        """A chain of terms joined by one connective; mixing AND and OR needs parentheses."""
        items = [self.term()]
        op = None
        while self.at("keyword", "AND") or self.at("keyword", "OR"):
            t = self.next()
            if op and t.text != op:
                raise self.fail(t)
            op = t.text
            items.append(self.term())
        return BoolOp(op, items) if op else items[0]

    def term(self) -> Any:
        if self.accept("keyword", "NOT"):
            return Not(self.term())
        if self.accept("op", "("):
            inner = self.condition()
            self.expect("op", ")")
            return inner
        t = self.expect("name")
        if self.accept("keyword", "NOT"):
            self.expect("keyword", "IN")
            return Comparison(t.text, "NOT IN", self.literal_list(), t.pos)
        if self.accept("keyword", "IN"):
            return Comparison(t.text, "IN", self.literal_list(), t.pos)
        if self.accept("keyword", "LIKE"):
            lit = self.literal()
            if lit.kind != "string":
                raise SoqlError("MALFORMED_QUERY", "LIKE operator only works with string values", lit.pos)
            return Comparison(t.text, "LIKE", lit, t.pos)
        op = self.expect("op")
        if op.text in "(),":
            raise self.fail(op)
        return Comparison(t.text, "!=" if op.text == "<>" else op.text, self.literal(), t.pos)

    def literal_list(self) -> list[Literal]:
        self.expect("op", "(")
        items = [self.literal()]
        while self.accept("op", ","):
            items.append(self.literal())
        self.expect("op", ")")
        return items

    def literal(self) -> Literal:
        t = self.next()
        if t.kind == "string":
            return Literal("string", t.value, t.pos)
        if t.kind == "number":
            return Literal("number", float(t.text) if "." in t.text else int(t.text), t.pos)
        if t.kind in ("date", "datetime"):
            return Literal(t.kind, t.text, t.pos)
        if t.kind == "keyword" and t.text in ("TRUE", "FALSE"):
            return Literal("bool", t.text == "TRUE", t.pos)
        if t.kind == "keyword" and t.text == "NULL":
            return Literal("null", None, t.pos)
        raise self.fail(t)
