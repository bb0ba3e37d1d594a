"""The data API under ``/api/v1``, served by `triad serve` (hub.server includes ``router``).

Golden records of every entity (list, get, provenance, history), lookups by
any system's id (``/xref/{system}/{entity}/{source_id}``), conflicts and
quarantine for stewards, and a gap-free change feed (``/changes``). Every
endpoint needs a bearer token: an API token (`triad tokens create`) or an OIDC
JWT; the same roles as on the command line apply, down to denied fields.
The OpenAPI document is generated from this code at ``/api/v1/openapi.json``.
"""
from __future__ import annotations

from fastapi import APIRouter, Request

from hub.api import changes, records, steward
from hub.api.auth import Caller, Credentials, as_caller
from hub.api.common import TriadRoute
from hub.api.schemas import Error, Invalid, Me
from hub.rbac import ACTIONS

ERRORS = {401: {"model": Error, "description": "no valid token (the body never says why)"},
          403: {"model": Error, "description": "the caller's roles lack the permission, or the field is denied"},
          404: {"model": Error, "description": "no such record or item"},
          400: {"model": Error, "description": "a malformed cursor"},
          422: {"model": Invalid, "description": "a parameter or body the API cannot take"}}

router = APIRouter(prefix="/api/v1", route_class=TriadRoute, responses=ERRORS)


def _me(request: Request, caller: Caller) -> dict:
    p = caller.principal
    return {"user": p.name, "via": caller.via, "roles": sorted(p.roles),
            "can": {a: sorted(p.allowed_entities(a)) for a in ACTIONS if p.allowed_entities(a)}}


@router.get("/me", tags=["auth"], operation_id="whoami", summary="The caller, its roles and what it may do")
async def whoami(request: Request, credentials: Credentials) -> Me:
    return await as_caller(request, credentials, _me)


for _sub in (records.router, changes.router, steward.router):
    router.include_router(_sub)


__all__ = ["router"]
