"""ExecuteBillQuery / BillQuery / View for the Kingdee simulator (PROTOCOLS 3.3).

``FilterString`` is a small SQL-like language: comparisons (=, <>, !=, >, >=,
<, <=), LIKE with % and _, IN (...), IS [NOT] NULL, AND / OR / NOT and
parentheses. String comparison is case-insensitive, like the SQL Server
collation K3Cloud runs on. An entry field in FieldKeys (or the filter) yields
one row per entry line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import islice
from typing import Any, Callable, Iterator

from connectors.kingdee.sim_forms import Entry, Field, Form, KdError, form_of

MAX_LIMIT = 2000          # "不能超过2000"
REF_SUBKEYS = {"fnumber": "FNumber", "fname": "FName"}

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*')
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op><>|!=|>=|<=|=|>|<)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][\w.]*)
)""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "like", "in", "is", "null"}


@dataclass(frozen=True)
class FieldRef:
    """A resolved FieldKey: which field, of the header or an entry, and which base-data sub-key."""

    text: str
    field: Field
    entry: Entry | None = None
    sub: str | None = None

    def value(self, rec: dict[str, Any], line: dict[str, Any] | None) -> Any:
        src = rec if self.entry is None else line
        if src is None:
            return None
        raw = src.get(self.field.key)
        if self.field.kind != "ref":
            return raw
        if not raw:
            return None if self.sub else 0
        return raw.get(self.sub) if self.sub else raw.get("Id")


def resolve(form: Form, key: str) -> FieldRef:
    """A FieldKey (``FNumber``, ``FCustId.FNumber``, ``FSaleOrderEntry_FEntryID``) or MsgCode 9."""
    text = key.strip()
    base, _, sub = text.partition(".")
    for entry in form.entries:
        prefix = entry.name.lower() + "_"
        if base.lower().startswith(prefix):
            fld = entry.field(base[len(prefix):])
            if fld is not None and not sub:
                return FieldRef(text, fld, entry)
    fld, entry = form.field(base), None
    if fld is None:
        for candidate in form.entries:
            fld = candidate.field(base)
            if fld is not None:
                entry = candidate
                break
    if fld is None or (sub and (fld.kind != "ref" or sub.lower() not in REF_SUBKEYS)):
        raise KdError(9, f"元数据中标识为 {text} 的字段不存在", text)
    return FieldRef(text, fld, entry, REF_SUBKEYS[sub.lower()] if sub else None)


@lru_cache(maxsize=65536)
def parse_time(text: str) -> datetime | None:
    """A filter or stored timestamp as a datetime (None when it is not one)."""
    try:
        return datetime.fromisoformat(text.strip().replace("/", "-"))
    except ValueError:
        return None


def _coerce(ref: FieldRef, value: Any) -> Any:
    """A comparable form of a stored value or a literal, by the field's type."""
    if value is None:
        return None
    kind = "str" if ref.sub else ("int" if ref.field.kind == "ref" else ref.field.kind)
    if kind == "datetime":
        return parse_time(str(value))
    if kind in ("int", "decimal"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value).casefold()
    return str(value).casefold()


Predicate = Callable[[dict[str, Any], "dict[str, Any] | None"], bool]


class _Parser:
    def __init__(self, form: Form, text: str) -> None:
        self.form = form
        self.text = text
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.refs: list[FieldRef] = []

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise self.error(f"unexpected '{text[pos:pos + 10]}'")
            kind = m.lastgroup or ""
            value = m.group(kind)
            if kind == "name" and value.lower() in _KEYWORDS:
                kind, value = "kw", value.lower()
            tokens.append((kind, value))
            pos = m.end()
        return tokens

    def error(self, detail: str) -> KdError:
        return KdError(4, f"GetRealExpress error: {detail} in FilterString '{self.text}'")

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise self.error(f"expected {value or kind}, found '{tok[1] or 'end'}'")
        self.pos += 1
        return tok[1]

    def parse(self) -> Predicate:
        pred = self.parse_or()
        if self.peek()[0] != "end":
            raise self.error(f"unexpected '{self.peek()[1]}'")
        return pred

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.peek() == ("kw", "or"):
            self.pos += 1
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda r, l, ps=tuple(parts): any(p(r, l) for p in ps))

    def parse_and(self) -> Predicate:
        parts = [self.parse_not()]
        while self.peek() == ("kw", "and"):
            self.pos += 1
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else (lambda r, l, ps=tuple(parts): all(p(r, l) for p in ps))

    def parse_not(self) -> Predicate:
        if self.peek() == ("kw", "not"):
            self.pos += 1
            inner = self.parse_not()
            return lambda r, l: not inner(r, l)
        if self.peek() == ("punct", "("):
            self.pos += 1
            inner = self.parse_or()
            self.take("punct", ")")
            return inner
        return self.parse_comparison()

    def literal(self) -> Any:
        kind, value = self.peek()
        if kind == "str":
            self.pos += 1
            return value[1:-1].replace("''", "'")
        if kind == "num":
            self.pos += 1
            return value
        raise self.error(f"expected a value, found '{value or 'end'}'")

    def parse_comparison(self) -> Predicate:
        ref = resolve(self.form, self.take("name"))
        self.refs.append(ref)
        kind, value = self.peek()
        if kind == "op":
            self.pos += 1
            lit = _coerce(ref, self.literal())
            op = {"=": "eq", "<>": "ne", "!=": "ne", ">": "gt", ">=": "ge", "<": "lt", "<=": "le"}[value]
            return _compare(ref, op, lit)
        if (kind, value) == ("kw", "not") or (kind, value) == ("kw", "like") or (kind, value) == ("kw", "in"):
            negate = value == "not"
            if negate:
                self.pos += 1
            word = self.take("kw")
            if word == "like":
                pattern = str(self.literal())
                rx = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern),
                                re.IGNORECASE | re.DOTALL)
                pred: Predicate = lambda r, l: (v := ref.value(r, l)) is not None and bool(rx.fullmatch(str(v)))
            elif word == "in":
                self.take("punct", "(")
                items = {_coerce(ref, self.literal())}
                while self.peek() == ("punct", ","):
                    self.pos += 1
                    items.add(_coerce(ref, self.literal()))
                self.take("punct", ")")
                pred = lambda r, l: _coerce(ref, ref.value(r, l)) in items
            else:
                raise self.error(f"unexpected '{word}'")
            return (lambda r, l: not pred(r, l)) if negate else pred
        if (kind, value) == ("kw", "is"):
            self.pos += 1
            negate = self.peek() == ("kw", "not")
            if negate:
                self.pos += 1
            self.take("kw", "null")
            return lambda r, l: (ref.value(r, l) in (None, "", 0)) != negate
        raise self.error(f"expected an operator after {ref.text}")


def _compare(ref: FieldRef, op: str, lit: Any) -> Predicate:
    def pred(rec: dict[str, Any], line: dict[str, Any] | None) -> bool:
        val = _coerce(ref, ref.value(rec, line))
        if val is None or lit is None:
            return op == "ne" and (val is None) != (lit is None)
        if type(val) is not type(lit):
            val, other = str(val), str(lit)
        else:
            other = lit
        return {"eq": val == other, "ne": val != other, "gt": val > other, "ge": val >= other,
                "lt": val < other, "le": val <= other}[op]
    return pred


def _ci(params: dict[str, Any], key: str, default: Any = None) -> Any:
    low = key.lower()
    return next((v for k, v in params.items() if k.lower() == low), default)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _rows(form: Form, records: list[dict[str, Any]], entry: Entry | None) -> Iterator[tuple[dict, dict | None]]:
    for rec in records:
        lines = rec.get(entry.name) if entry else None
        if not lines:
            yield rec, None
            continue
        for line in lines:
            yield rec, line


def select(data: dict[str, Any], params: dict[str, Any]) -> tuple[list[FieldRef], list[tuple[dict, dict | None]]]:
    """Resolve, filter, sort and page a query; returns the field refs and the selected rows."""
    form = form_of(_ci(params, "FormId"))
    keys = str(_ci(params, "FieldKeys") or "").strip()
    if not keys:
        raise KdError(8, "data 数据包中的参数 FieldKeys 的值不能为空")
    refs = [resolve(form, k) for k in keys.split(",") if k.strip()]
    parser = _Parser(form, str(_ci(params, "FilterString") or ""))
    pred = parser.parse() if parser.tokens else None
    order = []
    for part in str(_ci(params, "OrderString") or "").split(","):
        words = part.split()
        if words:
            order.append((resolve(form, words[0]), len(words) > 1 and words[1].lower() == "desc"))
    entries = {r.entry.name: r.entry for r in refs + parser.refs + [o[0] for o in order] if r.entry}
    if len(entries) > 1:
        raise KdError(4, "不支持在一次查询中同时查询多个单据体的字段")
    entry = next(iter(entries.values()), None)
    top = _int(_ci(params, "TopRowCount"))
    start = max(0, _int(_ci(params, "StartRow")))
    limit = _int(_ci(params, "Limit"))
    limit = MAX_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)
    end = min(start + limit, top) if top > 0 else start + limit
    records = data["forms"][form.form_id]
    if all(r.entry is None for r in parser.refs + [o[0] for o in order]):
        # header-only filter and order (the usual incremental query): work on bills, expand only the page
        if pred is not None:
            records = [rec for rec in records if pred(rec, None)]
        records = _sorted(records, order, lambda rec: (rec, None))
        return refs, list(islice(_rows(form, records, entry), start, max(start, end)))
    rows = [row for row in _rows(form, records, entry) if pred is None or pred(*row)]
    return refs, _sorted(rows, order, lambda row: row)[start:max(start, end)]


def _sorted(items: list[Any], order: list[tuple[FieldRef, bool]], row_of: Callable[[Any], tuple]) -> list[Any]:
    """Stable multi-key sort, least significant key first; empty values last."""
    items = list(items)
    for ref, desc in reversed(order):
        def key(item: Any, ref: FieldRef = ref) -> tuple:
            value = _coerce(ref, ref.value(*row_of(item)))
            return (value is None, value if value is not None else 0)
        items.sort(key=key, reverse=desc)
    return items


def execute_bill_query(data: dict[str, Any], params: dict[str, Any]) -> list[list[Any]]:
    """Rows as arrays in FieldKeys order."""
    refs, rows = select(data, params)
    return [[ref.value(rec, line) for ref in refs] for rec, line in rows]


def bill_query(data: dict[str, Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows as objects keyed by the requested field keys (BillQuery, SDK 2023-09)."""
    refs, rows = select(data, params)
    return [{ref.text: ref.value(rec, line) for ref in refs} for rec, line in rows]


# View drops the "F" prefix of most keys; these keep it (PROTOCOLS 3.3, naming rules undocumented).
VIEW_KEEP_F = {"ftaxregistercode", "fmodifydate"}


def _view_key(key: str) -> str:
    if key.lower() in VIEW_KEEP_F or not key.startswith("F") or key.startswith("F_"):
        return key
    return key[1:]


def _view_fields(fields: tuple[Field, ...], src: dict[str, Any], pk: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fld in fields:
        value = src.get(fld.key)
        if fld.key == pk:
            out["Id"] = value
            continue
        name = _view_key(fld.key)
        if fld.kind == "ref":
            out[f"{name}_Id"] = value.get("Id") if value else 0
            out[name] = None if not value else {
                "Id": value.get("Id"), "Number": value.get("FNumber"),
                "Name": [{"Key": 2052, "Value": value.get("FName")}]}
        elif fld.key.lower() == "fname":
            out[name] = [{"Key": 2052, "Value": value}]
        else:
            out[name] = value
    return out


def view(data: dict[str, Any], form_id: Any, params: dict[str, Any]) -> dict[str, Any]:
    """One bill with its entry lines, keyed the way View names properties."""
    form = form_of(form_id)
    wanted_id, number = str(_ci(params, "Id") or ""), str(_ci(params, "Number") or "")
    for rec in data["forms"][form.form_id]:
        if (wanted_id and str(rec.get(form.pk)) == wanted_id) or (number and rec.get(form.number) == number):
            header = tuple(f for f in form.fields if form.subhead_of(f.key) is None)
            obj = _view_fields(header, rec, form.pk)
            for name, keys in form.subheads.items():
                obj[_view_key(name)] = _view_fields(tuple(f for f in form.fields if f.key in keys), rec, form.pk)
            for entry in form.entries:
                obj[_view_key(entry.name)] = [
                    dict(_view_fields(entry.fields, line, entry.pk), Seq=i + 1)
                    for i, line in enumerate(rec.get(entry.name) or [])]
            return obj
    raise KdError(10, "单据不存在或已被删除")     # [unverified] message
