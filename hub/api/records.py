"""Golden records over HTTP: list with filters and keyset paging, get by id or by any system's id,
provenance and history. One set of routes per canonical entity (precise OpenAPI per entity).

Lists are keyset-paged (never OFFSET): the cursor holds the last row's sort
key and id, so rows inserted or updated while a client pages do not shift
the pages it has not read yet.
"""
# no `from __future__ import annotations`: FastAPI reads the per-entity models from the closures' annotations
import logging
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Path, Query, Request
from pydantic import BeforeValidator, ConfigDict, Field, create_model
from sqlalchemy import Connection, and_, bindparam, or_, select

from hub.api import schemas
from hub.api.auth import Caller, Credentials, as_caller
from hub.api.common import NO_NUL, TriadRoute, aware, decode_cursor, encode_cursor, engine, reader
from hub.canonical import ENTITIES
from hub.errors import NotFound
from hub.golden import load_lines, scalar_fields, table_of
from hub.models import Xref
from hub.rbac import require
from hub.records import history as record_history, show_record
from hub.values import encode

log = logging.getLogger(__name__)

router = APIRouter(route_class=TriadRoute)
Text = Annotated[str, Field(max_length=512, pattern=NO_NUL)]
RecordId = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="the golden record's id")]


def _not_a_number(value: Any) -> Any:
    """The API's times are ISO 8601: pydantic would take `0.5` as seconds after 1970."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and re.fullmatch(r"\s*[-+]?[\d.]+\s*", value)):
        raise ValueError("expected an ISO 8601 date-time such as 2026-11-30T08:00:00Z, not a number")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_not_a_number)]
FILTER_TYPES: dict[str, Any] = {"string": Text, "decimal": Annotated[Decimal, Field(allow_inf_nan=False, max_digits=30)],
                                "date": date, "datetime": IsoDateTime, "int": int, "bool": bool}
MAX_MERGE_HOPS = 10


def _filters_model(entity: str) -> Any:
    spec: dict[str, Any] = {
        "limit": (int, Field(100, ge=1, le=1000, description="records per page")),
        "cursor": (Optional[str], Field(None, max_length=600, description="`next` of the previous page")),
        "sort": (Literal["id", "updated_at"], Field("id", description="`updated_at` for incremental pulls")),
        "updated_since": (Optional[IsoDateTime], Field(None, description="only records changed at or after this")),
    }
    for f, t in ENTITIES[entity].fields.items():
        if t != "list":
            spec[f] = (Optional[FILTER_TYPES[t]], Field(None, description=f"only records whose {f} equals this"))
    return create_model(f"{schemas.title(entity)}Filters", __config__=ConfigDict(extra="forbid"), **spec)


# statements built once: on the hot path (get by id, by xref) building a select costs more than running it
_XT = Xref.__table__
_XREF_COLS = (_XT.c.record_id, _XT.c.system, _XT.c.source_id)
_XREFS_OF_ONE = select(*_XREF_COLS).where(_XT.c.entity == bindparam("entity"), _XT.c.record_id == bindparam("id"),
                                          _XT.c.status != "merged").order_by(_XT.c.system, _XT.c.source_id)
_XREFS_OF_MANY = select(*_XREF_COLS).where(_XT.c.entity == bindparam("entity"),
                                           _XT.c.record_id.in_(bindparam("ids", expanding=True)),
                                           _XT.c.status != "merged").order_by(_XT.c.system, _XT.c.source_id)
_BY_ID = {e: select(table_of(e)).where(table_of(e).c.id == bindparam("id")) for e in ENTITIES}
_BY_XREF = {e: select(_XT.c.status.label("xref_status"), table_of(e))
            .join(table_of(e), table_of(e).c.id == _XT.c.record_id)
            .where(_XT.c.entity == e, _XT.c.system == bindparam("system"), _XT.c.source_id == bindparam("source_id"))
            for e in ENTITIES}


def _xrefs(conn: Connection, entity: str, ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """system -> source ids, per record (merged-away links left out)."""
    out: dict[str, dict[str, list[str]]] = {}
    if not ids:
        return out
    rows = conn.execute(_XREFS_OF_ONE, {"entity": entity, "id": ids[0]}) if len(ids) == 1 else \
        conn.execute(_XREFS_OF_MANY, {"entity": entity, "ids": ids})
    for r in rows:
        out.setdefault(r.record_id, {}).setdefault(r.system, []).append(r.source_id)
    return out


def _records(conn: Connection, entity: str, rows: list[Any], hidden: frozenset[str]) -> list[dict[str, Any]]:
    """API records from golden rows: fields the caller may see, xrefs, bookkeeping."""
    ids = [r["id"] for r in rows]
    fields = [f for f in scalar_fields(entity) if f not in hidden]
    xrefs = _xrefs(conn, entity, ids)
    lines = load_lines(conn, ids) if entity == "order" and "lines" not in hidden and ids else None
    out = []
    for r in rows:
        values = {f: encode(r[f]) for f in fields}
        if lines is not None:
            values["lines"] = lines.get(r["id"], [])
        out.append({"id": r["id"], "entity": entity, "fields": values, "xrefs": xrefs.get(r["id"], {}),
                    "updated_at": r["updated_at"], "version": r["version"], "deleted_in": r["deleted_in"],
                    "merged_into": r["merged_into"]})
    return out


def _get(conn: Connection, entity: str, record_id: str) -> Any:
    return conn.execute(_BY_ID[entity], {"id": record_id}).mappings().first()


def _no_record(conn: Connection, entity: str, record_id: str) -> NotFound:
    """A 404 worded for an HTTP client: the API path to use, and the golden id when a source id was given."""
    hit = conn.execute(select(_XT.c.system, _XT.c.record_id).where(_XT.c.entity == entity,
                                                                   _XT.c.source_id == record_id)).first()
    if hit is None:
        return NotFound(f"no {entity} {record_id}; GET /api/v1/records/{entity} lists them")
    return NotFound(f"no {entity} {record_id}: it is a {hit.system} id, of the golden {entity} {hit.record_id} "
                    f"(GET /api/v1/records/{entity}/{hit.record_id}/provenance, or "
                    f"GET /api/v1/xref/{hit.system}/{entity}/{record_id})")


def _list(request: Request, caller: Caller, entity: str, q: Any) -> dict[str, Any]:
    eng = engine(request)
    require(eng, caller.principal, "read", entity)
    hidden = caller.principal.denied_fields(entity)
    t = table_of(entity)
    stmt = select(t).where(t.c.merged_into.is_(None))
    for f in ENTITIES[entity].fields:
        value = getattr(q, f, None)
        if value is None:
            continue
        if f in hidden:   # filtering on a hidden field would reveal its values
            require(eng, caller.principal, "read", entity, f)
        stmt = stmt.where(t.c[f] == (aware(value) if isinstance(value, datetime) else value))
    if q.updated_since is not None:
        stmt = stmt.where(t.c.updated_at >= aware(q.updated_since))
    if q.sort == "id":
        stmt = stmt.order_by(t.c.id)
        if q.cursor:
            (last_id,) = decode_cursor(q.cursor, "id", (str,))
            stmt = stmt.where(t.c.id > last_id)
    else:
        stmt = stmt.order_by(t.c.updated_at, t.c.id)
        if q.cursor:
            last_at, last_id = decode_cursor(q.cursor, "updated_at", (datetime, str))
            stmt = stmt.where(or_(t.c.updated_at > last_at, and_(t.c.updated_at == last_at, t.c.id > last_id)))
    with reader(request).connect() as conn:
        rows = list(conn.execute(stmt.limit(q.limit + 1)).mappings())
        more = len(rows) > q.limit
        rows = rows[:q.limit]
        records = _records(conn, entity, rows, hidden)
    nxt = None
    if more:
        last = rows[-1]
        nxt = encode_cursor("id", last["id"]) if q.sort == "id" else \
            encode_cursor("updated_at", last["updated_at"], last["id"])
    return {"records": records, "next": nxt}


def _one(request: Request, caller: Caller, entity: str, record_id: str) -> dict[str, Any]:
    eng = engine(request)
    require(eng, caller.principal, "read", entity)
    with reader(request).connect() as conn:
        row = _get(conn, entity, record_id)
        if row is None:
            raise _no_record(conn, entity, record_id)
        return _records(conn, entity, [row], caller.principal.denied_fields(entity))[0]


def _by_xref(request: Request, caller: Caller, entity: str, system: str, source_id: str) -> dict[str, Any]:
    """The golden record a system's id belongs to (following steward merges to the surviving record)."""
    eng = engine(request)
    require(eng, caller.principal, "read", entity)
    with reader(request).connect() as conn:
        found = conn.execute(_BY_XREF[entity], {"system": system, "source_id": source_id}).mappings().first()
        if found is None:
            raise NotFound(f"{system} has no {entity} {source_id} known to the hub")
        status, row = found["xref_status"], found
        hops = 0
        while row is not None and row["merged_into"] and hops < MAX_MERGE_HOPS:
            row, hops = _get(conn, entity, row["merged_into"]), hops + 1
        if row is None:
            raise NotFound(f"the golden {entity} of {system} {source_id} no longer exists")
        record = _records(conn, entity, [row], caller.principal.denied_fields(entity))[0]
    return {"entity": entity, "system": system, "source_id": source_id, "status": status, "record": record}


def _provenance(request: Request, caller: Caller, entity: str, record_id: str) -> dict[str, Any]:
    eng = engine(request)
    require(eng, caller.principal, "read", entity)
    hidden = caller.principal.denied_fields(entity)
    try:
        r = show_record(reader(request), entity, record_id, hidden, history_limit=0)
    except NotFound:   # the hub's own message names a CLI command
        with reader(request).connect() as conn:
            raise _no_record(conn, entity, record_id) from None
    for q in r["quarantine"]:   # a reason quotes the refused value; leave out those about hidden fields
        q["reasons"] = [x for x in q["reasons"] or [] if not ({x.get("column"), x.get("field")} & hidden)]
    return {"id": r["id"], "entity": entity, "provenance": r["provenance"], "sources": r["sources"],
            "created": r["created"], "conflicts": r["conflicts"], "quarantine": r["quarantine"]}


def _history(request: Request, caller: Caller, entity: str, record_id: str, field: str | None,
             limit: int) -> dict[str, Any]:
    eng = engine(request)
    require(eng, caller.principal, "read", entity, field)
    hidden = caller.principal.denied_fields(entity)
    with reader(request).connect() as conn:
        if _get(conn, entity, record_id) is None:
            raise _no_record(conn, entity, record_id)
    rows = []
    for h in record_history(reader(request), entity, record_id, field, limit):
        if h["field"] in hidden:
            continue
        if isinstance(h["new"], dict):   # a creation lists every field it set
            h["new"] = {k: v for k, v in h["new"].items() if k not in hidden}
        rows.append(h)
    return {"history": rows}


def _add_routes(entity: str) -> None:
    Filters = _filters_model(entity)
    Record, Page, XrefAnswer = schemas.RECORDS[entity], schemas.PAGES[entity], schemas.XREFS[entity]
    tag = entity

    async def list_records(request: Request, q: Annotated[Filters, Query()], credentials: Credentials) -> Page:
        return await as_caller(request, credentials, _list, entity, q)

    async def get_record(request: Request, record_id: RecordId, credentials: Credentials) -> Record:
        return await as_caller(request, credentials, _one, entity, record_id)

    async def get_provenance(request: Request, record_id: RecordId, credentials: Credentials) -> schemas.Provenance:
        return await as_caller(request, credentials, _provenance, entity, record_id)

    async def get_history(request: Request, record_id: RecordId, credentials: Credentials,
                          field: Annotated[Optional[str], Query(max_length=64, pattern=NO_NUL)] = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> schemas.History:
        return await as_caller(request, credentials, _history, entity, record_id, field, limit)

    async def get_by_xref(request: Request, system: Annotated[str, Path(max_length=64, pattern=NO_NUL)],
                          source_id: Annotated[str, Path(max_length=255, pattern=NO_NUL)],
                          credentials: Credentials) -> XrefAnswer:
        return await as_caller(request, credentials, _by_xref, entity, system, source_id)

    base = f"/records/{entity}"
    opts: dict[str, Any] = {"tags": [tag], "response_model_exclude_unset": True}
    router.add_api_route(base, list_records, methods=["GET"], name=f"list_{entity}",
                         summary=f"List golden {entity} records", operation_id=f"list_{entity}", **opts)
    router.add_api_route(base + "/{record_id}", get_record, methods=["GET"], name=f"get_{entity}",
                         summary=f"One golden {entity}", operation_id=f"get_{entity}", **opts)
    router.add_api_route(base + "/{record_id}/provenance", get_provenance, methods=["GET"],
                         summary=f"Where each value of a {entity} came from", operation_id=f"provenance_{entity}",
                         tags=[tag])
    router.add_api_route(base + "/{record_id}/history", get_history, methods=["GET"],
                         summary=f"Every change of a {entity}", operation_id=f"history_{entity}", tags=[tag])
    router.add_api_route("/xref/{system}/" + entity + "/{source_id:path}", get_by_xref, methods=["GET"],
                         summary=f"The golden {entity} for a system's id, with every other system's id",
                         operation_id=f"xref_{entity}", **opts)


for _entity in ENTITIES:
    _add_routes(_entity)


__all__ = ["router"]
