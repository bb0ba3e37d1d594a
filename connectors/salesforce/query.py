"""Run a parsed SOQL query against the org's records and render rows as the REST API does.

Field paths are checked against the schema first (INVALID_FIELD / INVALID_TYPE
with Salesforce's wording), literals against the field types (a datetime field
wants an unquoted datetime literal), then rows are filtered, sorted, cut by
OFFSET/LIMIT and rendered with ``attributes``, nested relationship objects and
child subquery results (``null`` when a parent has no children, as Salesforce does).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable

from connectors.salesforce.schema import NUMBER_TYPES, FieldDef, ObjectDef, lookup
from connectors.salesforce.soql import BoolOp, Comparison, Literal, Not, Query, SoqlError

Records = dict[str, dict[str, dict]]          # object -> id -> record
_WANT = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "currency": "double", "double": "double",
         "percent": "double", "int": "int"}
_CUSTOM_HINT = ("If you are attempting to use a custom field, be sure to append the '__c' after the custom "
                "field name. Please reference your WSDL or the describe call for the appropriate names.")
_REL_HINT = ("If you are attempting to use a custom relationship, be sure to append the '__r' after the custom "
             "relationship name. Please reference your WSDL or the describe call for the appropriate names.")


def normalize_datetime(text: str) -> str:
    """Any ISO-8601 datetime (Z, +hh:mm, +hhmm, no offset = UTC) in the stored form ``...000+0000``."""
    t = text.strip().replace(" ", "+") if "T" in text else text.strip()
    t = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", t.replace("Z", "+00:00"))
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


class Path:
    """A resolved field path: lookups to follow, then the final field."""

    def __init__(self, text: str, hops: list[tuple[FieldDef, ObjectDef]], last: FieldDef, owner: ObjectDef) -> None:
        self.text = text
        self.hops = hops          # (lookup field, target object) pairs
        self.last = last
        self.owner = owner        # the object that holds ``last``

    def value(self, rec: dict | None, records: Records) -> Any:
        for fdef, target in self.hops:
            if rec is None:
                return None
            ref = rec.get(fdef.name)
            rec = records[target.name].get(ref) if ref else None
        return None if rec is None else rec.get(self.last.name)


def resolve(obj: ObjectDef, text: str, pos: int) -> Path:
    """Resolve ``Owner.Name``-style paths against the schema; raises INVALID_FIELD like Salesforce."""
    parts = text.split(".")
    hops: list[tuple[FieldDef, ObjectDef]] = []
    cur = obj
    for rel in parts[:-1]:
        fdef = cur.relationship(rel)
        target = lookup(fdef.reference_to) if fdef else None
        if target is None:
            raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{rel}' in field path. {_REL_HINT}", pos)
        hops.append((fdef, target))
        cur = target
    last = cur.field(parts[-1])
    if last is None:
        raise SoqlError("INVALID_FIELD", f"No such column '{parts[-1]}' on entity '{cur.name}'. {_CUSTOM_HINT}", pos)
    return Path(text, hops, last, cur)


def _check_literal(path: Path, lit: Literal, op: str) -> Any:
    """The literal's value in the stored form, after checking it fits the field type."""
    ftype = path.last.type
    if lit.kind == "null":
        return None
    want = _WANT.get(ftype, "string")
    ok = {"dateTime": lit.kind == "datetime", "date": lit.kind == "date", "boolean": lit.kind == "bool",
          "double": lit.kind == "number", "int": lit.kind == "number", "string": lit.kind == "string"}[want]
    if not ok:
        quotes = "be enclosed in quotes" if want == "string" else "not be enclosed in quotes"
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{path.last.name}' must be of "
                        f"type {want} and should {quotes}", lit.pos)
    if op == "LIKE" and want != "string":
        raise SoqlError("INVALID_FIELD", f"invalid operator on field '{path.last.name}'", lit.pos)
    try:
        if want == "dateTime":
            return normalize_datetime(lit.value)
        if want == "date":
            return date.fromisoformat(lit.value).isoformat()
    except ValueError:
        raise SoqlError("MALFORMED_QUERY", f"invalid {want} literal: {lit.value}", lit.pos) from None
    return lit.value


def _like(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _key(ftype: str, value: Any) -> Any:
    """A comparable form: text compares case-insensitively, ids on their 15-character part."""
    if value is None:
        return None
    if ftype in ("id", "reference"):
        return str(value)[:15]
    if ftype in NUMBER_TYPES:
        return float(value)
    if isinstance(value, str) and ftype not in ("date", "datetime"):
        return value.casefold()
    return value


def compile_where(obj: ObjectDef, node: Any, records: Records) -> Callable[[dict], bool]:
    """A predicate for the WHERE tree (validated against the schema first)."""
    if isinstance(node, BoolOp):
        preds = [compile_where(obj, n, records) for n in node.items]
        if node.op == "AND":
            return lambda rec: all(p(rec) for p in preds)
        return lambda rec: any(p(rec) for p in preds)
    if isinstance(node, Not):
        inner = compile_where(obj, node.item, records)
        return lambda rec: not inner(rec)
    assert isinstance(node, Comparison)
    path = resolve(obj, node.path, node.pos)
    ftype = path.last.type
    if node.op in ("IN", "NOT IN"):
        wanted = {_key(ftype, _check_literal(path, lit, node.op)) for lit in node.value}
        negate = node.op == "NOT IN"
        return lambda rec: (_key(ftype, path.value(rec, records)) in wanted) != negate
    target = _check_literal(path, node.value, node.op)
    if node.op == "LIKE":
        rx = _like(target)
        return lambda rec: (v := path.value(rec, records)) is not None and bool(rx.fullmatch(str(v)))
    want = _key(ftype, target)
    op = node.op

    def pred(rec: dict) -> bool:
        v = _key(ftype, path.value(rec, records))
        if op == "=":
            return v == want
        if op == "!=":
            return v != want
        if v is None or want is None:
            return False
        return {"<": v < want, "<=": v <= want, ">": v > want, ">=": v >= want}[op]
    return pred


class Executor:
    """Runs queries for one request; ``version`` goes into the ``attributes.url`` of each row."""

    def __init__(self, records: Records, version: str) -> None:
        self.records = records
        self.version = version

    def attributes(self, obj: str, rec_id: str) -> dict:
        return {"type": obj, "url": f"/services/data/v{self.version}/sobjects/{obj}/{rec_id}"}

    def run(self, q: Query, include_deleted: bool) -> tuple[int, list[dict]]:
        """(totalSize, rendered rows) of a top-level query."""
        obj = lookup(q.source)
        if obj is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{q.source}' is not supported. If you are attempting to "
                            "use a custom object, be sure to append the '__c' after the entity name. Please "
                            "reference your WSDL or the describe call for the appropriate names.", q.source_pos)
        render = self._renderer(obj, q, include_deleted)
        rows = self._select(obj, q, self.records[obj.name].values(), include_deleted)
        if q.count:
            return len(rows), []
        return len(rows), [render(r) for r in rows]

    def _select(self, obj: ObjectDef, q: Query, rows: Iterable[dict], include_deleted: bool) -> list[dict]:
        pred = compile_where(obj, q.where, self.records) if q.where is not None else None
        out = [r for r in rows if (include_deleted or not r.get("IsDeleted")) and (pred is None or pred(r))]
        for key in reversed(q.order):
            path = resolve(obj, key.path, key.pos)
            nulls_last = bool(key.nulls_last)
            present = [r for r in out if path.value(r, self.records) is not None]
            absent = [r for r in out if path.value(r, self.records) is None]
            present.sort(key=lambda r: _key(path.last.type, path.value(r, self.records)), reverse=key.desc)
            out = present + absent if nulls_last else absent + present
        end = None if q.limit is None else q.offset + q.limit
        return out[q.offset:end]

    def _renderer(self, obj: ObjectDef, q: Query, include_deleted: bool) -> Callable[[dict], dict]:
        """Validate the select list once and return a function rendering one row."""
        plan: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for item, pos in zip(q.fields, q.field_pos):
            name = item.lower() if isinstance(item, str) else f"({item.source.lower()})"
            if name in seen:
                raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {item if isinstance(item, str) else item.source}", pos)
            seen.add(name)
            if isinstance(item, Query):
                plan.append(("child", self._child_plan(obj, item, include_deleted)))
            else:
                plan.append(("path", resolve(obj, item, pos)))

        def render(rec: dict) -> dict:
            out: dict[str, Any] = {"attributes": self.attributes(obj.name, rec["Id"])}
            for kind, spec in plan:
                if kind == "child":
                    rel, child_render, child_rows = spec
                    kids = child_rows(rec["Id"])
                    out[rel] = ({"totalSize": len(kids), "done": True, "records": [child_render(k) for k in kids]}
                                if kids else None)
                else:
                    self._put(out, rec, spec)
            return out
        return render

    def _put(self, out: dict, rec: dict, path: Path) -> None:
        """Place a path's value, nesting relationship objects (Owner.Name -> {"Owner": {"Name": ...}})."""
        node, cur = out, rec
        for fdef, target in path.hops:
            rel = fdef.relationship_name
            ref = cur.get(fdef.name) if cur is not None else None
            cur = self.records[target.name].get(ref) if ref else None
            if cur is None:
                node.setdefault(rel, None)
                return
            if not isinstance(node.get(rel), dict):
                node[rel] = {"attributes": self.attributes(target.name, cur["Id"])}
            node = node[rel]
        node[path.last.name] = None if cur is None else cur.get(path.last.name)

    def _child_plan(self, parent: ObjectDef, sub: Query, include_deleted: bool) -> tuple:
        rel = parent.child(sub.source)
        if rel is None or sub.count:
            raise SoqlError("INVALID_TYPE", f"Didn't understand relationship '{sub.source}' in FROM part of query "
                            f"call. {_REL_HINT}", sub.source_pos)
        child = lookup(rel.child)
        if any(isinstance(f, Query) for f in sub.fields):
            raise SoqlError("MALFORMED_QUERY", "nested subqueries are not supported", sub.source_pos)
        render = self._renderer(child, sub, include_deleted)
        index: dict[str, list[dict]] | None = None

        def rows_of(parent_id: str) -> list[dict]:
            nonlocal index
            if index is None:  # one pass over the children per query, not per parent row
                index = {}
                for r in self.records[child.name].values():
                    if r.get(rel.field):
                        index.setdefault(r[rel.field], []).append(r)
            return self._select(child, sub, index.get(parent_id, ()), include_deleted)
        return rel.name, render, rows_of
