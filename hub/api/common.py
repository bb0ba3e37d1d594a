"""What every data API endpoint shares: error translation, the store, opaque paging cursors.

Hub errors become HTTP answers in one place (the route class), so endpoint
functions call hub functions and raise hub errors as the CLI does.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from datetime import datetime, timezone
from types import UnionType
from typing import Any, Callable, Union, get_args, get_origin

from fastapi import HTTPException, Request
from fastapi._compat import field_annotation_is_sequence   # what FastAPI itself reads with getlist
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from hub.context import Context
from hub.errors import ConfigError, NotFound, PermissionDenied, TriadError, UsageError

log = logging.getLogger(__name__)

NO_NUL = r"^[^\x00]*$"      # PostgreSQL text cannot hold NUL; refuse it at the door
_engine_lock = threading.Lock()


class ApiError(TriadError):
    """A request the API refuses with a given status (400 for a bad cursor, say)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _status(exc: Exception) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (UsageError, DataError, IntegrityError)):
        return 422
    return 500


def _query_fields(dependant: Dependant) -> dict[str, Any]:
    """Query parameter name -> annotation, for the endpoint and its dependencies (a model's fields spread out)."""
    out: dict[str, Any] = {}
    for f in dependant.query_params:
        model = _model_of(f.field_info.annotation)
        if model is None:
            out[f.alias] = f.field_info.annotation
        else:
            out.update({mf.alias or name: mf.annotation for name, mf in model.model_fields.items()})
    for sub in dependant.dependencies:
        out.update(_query_fields(sub))
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model of a parameter annotated ``Model`` or ``Optional[Model]``."""
    options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    for candidate in (annotation, *options):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def single_valued(dependant: Dependant) -> frozenset[str]:
    """The query parameters FastAPI reads one value of (it reads the list ones with ``getlist``)."""
    return frozenset(name for name, annotation in _query_fields(dependant).items()
                     if not field_annotation_is_sequence(annotation))


def refuse_repeats(request: Request, single: frozenset[str]) -> None:
    """422 for a single-valued parameter given twice: silently taking one of the values would hide a mistake."""
    items = request.query_params.multi_items()
    if len(items) == len(request.query_params):
        return
    given: dict[str, list[str]] = {}
    for name, value in items:
        given.setdefault(name, []).append(value)
    errors = [{"type": "repeated_parameter", "loc": ("query", name), "input": values,
               "msg": f"the query parameter '{name}' takes one value but was given {len(values)} times"}
              for name, values in given.items() if len(values) > 1 and name in single]
    if errors:
        raise RequestValidationError(errors)


class TriadRoute(APIRoute):
    """Turns hub errors into HTTP answers: 403 permission, 404 not found, 422 bad input (a repeated
    single-valued query parameter included)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        single = single_valued(self.dependant)

        async def wrapped(request: Request) -> Any:
            refuse_repeats(request, single)
            try:
                return await handler(request)
            except (TriadError, DataError, IntegrityError) as exc:
                status = _status(exc)
                if status == 500:
                    log.exception("%s %s failed", request.method, request.url.path)
                    raise HTTPException(500, "internal error") from None
                detail = str(exc) if not isinstance(exc, (DataError, IntegrityError)) else \
                    "a value does not fit the store (too long, or out of range)"
                raise HTTPException(status, detail) from None
        return wrapped


def context(request: Request) -> Context:
    return request.app.state.ctx


def engine(request: Request) -> Engine:
    """The app's store engine, opened once (several request threads may ask at the same time)."""
    ctx = context(request)
    if ctx._engine is None:  # noqa: SLF001 - the context opens it lazily; open it under a lock
        with _engine_lock:
            return ctx.engine()
    return ctx.engine()


def reader(request: Request) -> Engine:
    """The engine for reads: its connections are marked ``triad_readonly``; writes use :func:`engine`.

    On PostgreSQL reads run in autocommit (each statement sees what is
    committed, as in READ COMMITTED): no BEGIN and ROLLBACK round trips. A store
    may open read-only transactions on SQLite without the writers' lock
    (``BEGIN`` instead of ``BEGIN IMMEDIATE``: WAL readers then wait neither for
    a sync batch nor for each other).
    """
    state = request.app.state
    found = getattr(state, "triad_reader", None)
    if found is None:
        eng = engine(request)
        options: dict[str, Any] = {"triad_readonly": True}
        if eng.dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        found = state.triad_reader = eng.execution_options(**options)
    return found


def parts(request: Request) -> Any:
    """Connectors, rules and targets for the config, built once per app (hub.streams.Parts)."""
    state = request.app.state
    found = getattr(state, "triad_parts", None)
    if found is None:
        from hub.streams import Parts
        try:
            found = Parts(context(request).config(required=False))
        except ConfigError as exc:
            raise ApiError(500, str(exc)) from None
        state.triad_parts = found
    return found


# --- opaque cursors ---------------------------------------------------------------------------------

def encode_cursor(kind: str, *values: Any) -> str:
    """An opaque token for the next page: base64 of the kind and the last row's sort key."""
    raw = json.dumps([kind, *[v.isoformat() if isinstance(v, datetime) else v for v in values]],
                     separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(token: str, kind: str, types: tuple[type, ...]) -> list[Any]:
    """The sort key inside a cursor made by :func:`encode_cursor`; 400 when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != kind:
            raise ValueError("shape")
        out = []
        for v, t in zip(data[1:], types):
            if t is datetime:
                v = datetime.fromisoformat(v)
                v = v if v.tzinfo else v.replace(tzinfo=timezone.utc)
                v.astimezone(timezone.utc)   # OverflowError for year-1/9999 edge times: refused below
            elif t is int and (not isinstance(v, int) or isinstance(v, bool) or v < 0 or v >= 2**63):
                raise ValueError("int")
            elif t is str and not isinstance(v, str):
                raise ValueError("str")
            out.append(v)
        return out
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise ApiError(400, "invalid cursor: pass back the `next` value of an earlier answer unchanged") from None


def aware(value: datetime | None) -> datetime | None:
    """Query timestamps without an offset are UTC."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except OverflowError:
        raise ApiError(422, f"timestamp {value} is out of range") from None
