"""Reading and writing golden records in batches (Core, executemany, one statement per kind of write)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, bindparam, delete, select, update

from hub.bulk import execute_many, insert_many

from hub.canonical import ENTITIES, ORDER_LINE_FIELDS
from hub.models import GOLDEN_MODELS, OrderLine
from hub.sqlutil import among, chunks, key_parts
from hub.values import decode, encode


@dataclass
class GoldenRow:
    id: str
    values: dict[str, Any]          # encoded canonical values
    provenance: dict[str, list]
    deleted_in: list[str] | None
    merged_into: str | None
    version: int


def table_of(entity: str):  # noqa: ANN201
    return GOLDEN_MODELS[entity].__table__


def scalar_fields(entity: str) -> list[str]:
    return [f for f, t in ENTITIES[entity].fields.items() if t != "list"]


def load(conn: Connection, entity: str, ids: Sequence[str], *, lock: bool = False) -> dict[str, GoldenRow]:
    """Golden rows by id, values encoded. ``lock`` takes row locks on PostgreSQL (FOR UPDATE)."""
    t = table_of(entity)
    fields = scalar_fields(entity)
    out: dict[str, GoldenRow] = {}
    ordered = sorted(set(ids))   # one lock order for every worker: no deadlocks
    # the columns a GoldenRow holds: not updated_at, whose timestamp would be parsed for nothing
    columns = [t.c.id, *(t.c[f] for f in fields), t.c.provenance, t.c.deleted_in, t.c.merged_into, t.c.version]
    for part in key_parts(conn, ordered):
        stmt = select(*columns).where(among(conn, t.c.id, part)).order_by(t.c.id)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        for r in conn.execute(stmt).mappings():
            out[r["id"]] = GoldenRow(r["id"], {f: encode(r[f]) for f in fields}, r["provenance"] or {},
                                     r["deleted_in"], r["merged_into"], r["version"])
    if entity == "order" and out:
        lines = load_lines(conn, list(out))
        for rid, row in out.items():
            row.values["lines"] = lines.get(rid, [])
    return out


def load_lines(conn: Connection, order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    lt = OrderLine.__table__
    found: dict[str, list[dict[str, Any]]] = {}
    for part in key_parts(conn, list(order_ids)):
        for r in conn.execute(select(lt).where(among(conn, lt.c.order_id, part))
                              .order_by(lt.c.order_id, lt.c.line_no)).mappings():
            found.setdefault(r["order_id"], []).append({f: encode(r[f]) for f in ORDER_LINE_FIELDS})
    return found


def _row(entity: str, rid: str, values: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    types = ENTITIES[entity].fields
    return {f: decode(values.get(f), types[f]) for f in fields} | {"id": rid}


def _typed_fields(entity: str, fields: list[str]) -> list[tuple[str, str]]:
    """The fields whose stored form differs from their encoded one (numbers, dates): text passes as is."""
    types = ENTITIES[entity].fields
    return [(f, types[f]) for f in fields if types[f] in ("decimal", "datetime", "date", "int", "bool")]


def insert_new(conn: Connection, entity: str, records: list[tuple[str, dict[str, Any], dict[str, list]]],
               now: datetime) -> None:
    """Insert new golden records: (id, encoded values, provenance)."""
    if not records:
        return
    fields = scalar_fields(entity)
    typed = _typed_fields(entity, fields)
    blank = dict.fromkeys(fields)
    rows = []
    for rid, values, prov in records:
        row = blank | {f: v for f, v in values.items() if f in blank}
        for f, type_name in typed:
            v = row[f]
            if v is not None:
                row[f] = decode(v, type_name)
        row.update(id=rid, provenance=prov, updated_at=now, version=1, deleted_in=None, merged_into=None)
        rows.append(row)
    insert_many(conn, table_of(entity), rows, f"golden-insert:{entity}")
    if entity == "order":
        replace_lines(conn, {rid: values.get("lines") or [] for rid, values, _ in records}, fresh=True)


def update_changed(conn: Connection, entity: str, records: list[tuple[GoldenRow, dict[str, Any]]],
                   now: datetime, changed: dict[str, set[str]] | None = None) -> None:
    """Write changed golden records (row with merged values, provenance), one executemany per set of
    fields written.

    ``changed``: record id -> the fields that changed; only those are written (with provenance,
    updated_at and version), so the indexes of untouched columns are not rewritten. Without it, or
    for a record not in it, every field is written.
    """
    if not records:
        return
    t = table_of(entity)
    fields = scalar_fields(entity)
    types = ENTITIES[entity].fields
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row, prov in records:
        only = changed.get(row.id) if changed is not None else None
        written = tuple(f for f in fields if f in only) if only is not None else tuple(fields)
        p = {f: decode(row.values.get(f), types[f]) for f in written}
        p.update(_id=row.id, provenance=prov, updated_at=now)
        groups.setdefault(written, []).append(p)
    for written, params in groups.items():
        stmt = (update(t).where(t.c.id == bindparam("_id"))
                .values({f: bindparam(f) for f in written} | {"provenance": bindparam("provenance"),
                                                               "updated_at": bindparam("updated_at"),
                                                               "version": t.c.version + 1}))
        execute_many(conn, stmt, params, f"golden-update:{entity}:{','.join(written)}")
    if entity == "order":
        changed_lines = {row.id: row.values.get("lines") or [] for row, _ in records
                         if "lines" in row.values and (changed is None or "lines" in changed.get(row.id, ("lines",)))}
        replace_lines(conn, changed_lines)


def replace_lines(conn: Connection, lines_by_order: dict[str, list[dict[str, Any]]], fresh: bool = False) -> None:
    if not lines_by_order:
        return
    lt = OrderLine.__table__
    if not fresh:
        for part in chunks(list(lines_by_order)):
            conn.execute(delete(lt).where(lt.c.order_id.in_(part)))
    rows = []
    for oid, lines in lines_by_order.items():
        for i, line in enumerate(lines, start=1):
            row = {f: decode(line.get(f), t) for f, t in ORDER_LINE_FIELDS.items()}
            row["line_no"] = row["line_no"] if row["line_no"] is not None else i
            row["order_id"] = oid
            rows.append(row)
    if rows:
        insert_many(conn, lt, rows, "order-lines-insert")
