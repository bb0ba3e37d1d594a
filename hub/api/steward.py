"""Steward work over HTTP: conflicts (read, resolve) and quarantine (read), through the same hub
functions as `triad conflicts` and `triad quarantine`, with the same permissions and audit."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Body, Path, Query, Request

from hub import conflicts as conflict_ops, quarantine_admin
from hub.api.auth import Caller, Credentials, as_caller
from hub.api.common import NO_NUL, TriadRoute, decode_cursor, encode_cursor, engine, parts, reader
from hub.api.schemas import (ConflictDetail, ConflictPage, EntityName, QuarantineDetail, QuarantinePage,
                             ResolveRequest, ResolveResult)
from hub.canonical import ENTITIES
from hub.errors import NotFound, UsageError
from hub.rbac import Principal, require

router = APIRouter(route_class=TriadRoute)
ItemId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[Optional[str], Query(max_length=600, description="`next` of the previous page")]


def _scope(eng: Any, p: Principal, entity: str | None) -> frozenset[str] | None:
    """The entities a listing covers: the one asked for (if allowed), else every readable one."""
    if entity:
        require(eng, p, "read", entity)
        return None
    require(eng, p, "read")
    return None if p.single_user else p.allowed_entities("read")


def _page(rows: list[dict[str, Any]], limit: int, kind: str) -> tuple[list[dict[str, Any]], str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(kind, rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None


@router.get("/conflicts", tags=["conflicts"], operation_id="list_conflicts", summary="Conflicts, oldest first")
async def list_conflicts(request: Request, credentials: Credentials,
                         status: Annotated[Optional[Literal["open", "resolved", "auto"]], Query()] = None,
                         entity: Annotated[Optional[EntityName], Query()] = None,
                         field: Annotated[Optional[str], Query(max_length=64, pattern=NO_NUL)] = None,
                         limit: Limit = 100, cursor: Cursor = None) -> ConflictPage:
    return await as_caller(request, credentials, _list_conflicts, status, entity, field, limit, cursor)


def _list_conflicts(request: Request, caller: Caller, status: str | None, entity: str | None, field: str | None,
                    limit: int, cursor: str | None) -> dict[str, Any]:
    eng = engine(request)
    p = caller.principal
    entities = _scope(eng, p, entity)
    if field and entity:
        require(eng, p, "read", entity, field)
    after = tuple(decode_cursor(cursor, "conflict", (datetime, str))) if cursor else None
    denied = {e: p.denied_fields(e) for e in ENTITIES}
    rows = conflict_ops.list_conflicts(reader(request), status=status, entity=entity, field=field, limit=limit + 1,
                                       entities=entities, after=after, denied=denied)  # type: ignore[arg-type]
    rows, nxt = _page(rows, limit, "conflict")
    return {"conflicts": rows, "next": nxt}


@router.get("/conflicts/{conflict_id}", tags=["conflicts"], operation_id="get_conflict",
            summary="One conflict with its record's context")
async def get_conflict(request: Request, conflict_id: ItemId, credentials: Credentials) -> ConflictDetail:
    return await as_caller(request, credentials, _get_conflict, conflict_id)


def _no_conflict(conflict_id: str) -> NotFound:
    """The hub's own message names a CLI command; an HTTP client is told the API path instead."""
    return NotFound(f"no conflict {conflict_id}; GET /api/v1/conflicts lists them")


def _get_conflict(request: Request, caller: Caller, conflict_id: str) -> dict[str, Any]:
    eng = engine(request)
    try:
        c = conflict_ops.show_conflict(reader(request), conflict_id)
    except NotFound:
        raise _no_conflict(conflict_id) from None
    require(eng, caller.principal, "read", c["entity"], c["field"], target=f"conflict:{conflict_id}")
    hidden = caller.principal.denied_fields(c["entity"])
    if c["record"] is not None:
        c["record"] = {k: v for k, v in c["record"].items() if k not in hidden}
    return c


@router.post("/conflicts/{conflict_id}/resolve", tags=["conflicts"], operation_id="resolve_conflict",
             summary="Settle a conflict (stewards): take a system's value, set one, or keep the golden value")
async def resolve_conflict(request: Request, conflict_id: ItemId, body: Annotated[ResolveRequest, Body()],
                           credentials: Credentials) -> ResolveResult:
    """The decision becomes golden, is written to history and the audit log, and is queued to every
    system that takes the entity, exactly as `triad conflicts resolve`."""
    return await as_caller(request, credentials, _resolve, conflict_id, body)


def _resolve(request: Request, caller: Caller, conflict_id: str, body: ResolveRequest) -> dict[str, Any]:
    eng = engine(request)
    with reader(request).connect() as conn:
        try:
            c = conflict_ops.get_conflict(conn, conflict_id)
        except NotFound:
            raise _no_conflict(conflict_id) from None
    # checked before the write transaction: a refusal is audited in a transaction of its own
    require(eng, caller.principal, "resolve", c["entity"], c["field"], target=f"conflict:{conflict_id}")
    if sum((body.take is not None, body.value is not None, body.keep)) != 1:
        raise UsageError("give exactly one of take (a system), value, or keep: true")
    out_systems = parts(request).out_systems(c["entity"])
    with eng.begin() as conn:
        return conflict_ops.resolve(conn, conflict_id, user=caller.name, out_systems=out_systems, take=body.take,
                                    value=body.value, keep=body.keep, note=body.note,
                                    suite_override=parts(request).suite_override(c["entity"]))


@router.get("/quarantine", tags=["quarantine"], operation_id="list_quarantine",
            summary="Records parked by validation, mapping or unresolved references")
async def list_quarantine(request: Request, credentials: Credentials,
                          status: Annotated[Optional[Literal["parked", "resolved", "dropped"]], Query()] = "parked",
                          entity: Annotated[Optional[EntityName], Query()] = None,
                          connector: Annotated[Optional[str], Query(max_length=64, pattern=NO_NUL)] = None,
                          limit: Limit = 100, cursor: Cursor = None) -> QuarantinePage:
    return await as_caller(request, credentials, _list_quarantine, status, entity, connector, limit, cursor)


def _list_quarantine(request: Request, caller: Caller, status: str | None, entity: str | None,
                     connector: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    eng = engine(request)
    p = caller.principal
    entities = _scope(eng, p, entity)
    after = tuple(decode_cursor(cursor, "quarantine", (datetime, str))) if cursor else None
    # the caller's entities filter the query itself, so a page is never cut short by rows they may not see
    rows = quarantine_admin.list_items(reader(request), status=status, connector=connector, entity=entity, limit=limit + 1,
                                       after=after, entities=entities)  # type: ignore[arg-type]
    rows, nxt = _page(rows, limit, "quarantine")
    visible = quarantine_admin.Redactor(p, parts(request).mapping)
    return {"items": [visible(r) for r in rows], "next": nxt}


@router.get("/quarantine/{item_id}", tags=["quarantine"], operation_id="get_quarantine",
            summary="One parked record with its reasons (and its raw payload)", response_model_exclude_unset=True)
async def get_quarantine(request: Request, item_id: ItemId, credentials: Credentials) -> QuarantineDetail:
    return await as_caller(request, credentials, _get_quarantine, item_id)


def _get_quarantine(request: Request, caller: Caller, item_id: str) -> dict[str, Any]:
    eng = engine(request)
    try:
        item = quarantine_admin.get_item(reader(request), item_id)
    except NotFound:   # the hub's own message names a CLI command
        raise NotFound(f"no quarantine item {item_id}; GET /api/v1/quarantine lists them") from None
    require(eng, caller.principal, "read", item["entity"], target=f"quarantine:{item_id}")
    # the raw payload without the source fields the mapping reads into a hidden field (as the CLI shows it)
    return quarantine_admin.Redactor(caller.principal, parts(request).mapping)(item)
