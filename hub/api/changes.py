"""The change feed over HTTP: ``GET /api/v1/changes?since=<cursor>``.

A consumer stores ``next`` after processing a page and passes it back as
``since``; it resumes exactly after the last change it saw, with no gap and no
repeat (see :mod:`hub.changefeed` for why the sequence is gap-free).
"""
from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import APIRouter, Query, Request

from hub.api.auth import Caller, Credentials, as_caller
from hub.api.common import TriadRoute, decode_cursor, encode_cursor, engine, reader
from hub.api.schemas import ChangePage, EntityName
from hub.canonical import ENTITIES
from hub import changefeed
from hub.rbac import require

router = APIRouter(tags=["changes"], route_class=TriadRoute)


@router.get("/changes", operation_id="list_changes", summary="Golden-record changes after a cursor")
async def list_changes(request: Request, credentials: Credentials,
                       since: Annotated[Optional[str], Query(max_length=200, description=(
                           "`next` of the previous answer; omit to start at the beginning, "
                           "or pass `now` to start after the latest change"))] = None,
                       entity: Annotated[Optional[list[EntityName]], Query(description="only these entities")] = None,
                       limit: Annotated[int, Query(ge=1, le=1000, description="changes per page")] = 100) -> ChangePage:
    """Changes in commit order, one per record per transaction, with old and new values per field.

    Fields the caller may not see are left out; the feed only covers entities
    the caller may read.
    """
    return await as_caller(request, credentials, _changes, since, entity, limit)


def _changes(request: Request, caller: Caller, since: str | None, entity: list[str] | None,
             limit: int) -> dict[str, Any]:
    eng = engine(request)
    p = caller.principal
    if entity:
        for e in entity:
            require(eng, p, "read", e)
        wanted: frozenset[str] | None = frozenset(entity)
    else:
        require(eng, p, "read")
        allowed = p.allowed_entities("read")
        wanted = None if allowed >= set(ENTITIES) else allowed
    with reader(request).connect() as conn:
        if since == "now":
            return {"changes": [], "next": encode_cursor("seq", changefeed.head(conn))}
        start = decode_cursor(since, "seq", (int,))[0] if since else 0
        changes, nxt = changefeed.read(conn, start, limit=limit, entities=wanted, denied=p.denied_fields)
    return {"changes": changes, "next": encode_cursor("seq", nxt)}
