"""Real-time inbound for `triad serve`: ``POST /webhooks/{connector}``, ``GET /healthz``, ``GET /metrics``.

A delivery is checked by its connector (signature or shared token) before
anything is stored: a failure (or a connector that fails checking it) answers 401
and stores nothing, a body over 1 MiB answers 413. An authentic delivery, less the
credentials its body carries, is committed to the inbox, then answered 2xx
(202 with the inbox id, or the vendor's own acknowledgement); a replay of an event
id already stored answers the same way without a second row. Parsing happens in
the worker, so a body the connector cannot read is kept as an ``error`` row, never lost.

``start(app)`` / ``stop(app)`` run the worker threads (:mod:`hub.worker`) with the app.
"""
from __future__ import annotations

import logging
import threading
import traceback
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from hub import inbox
from hub.connector import WebhookRejected
from hub.metrics import CONTENT_TYPE, Metrics
from hub.worker import Notifier, RealtimeWorker

log = logging.getLogger(__name__)

router = APIRouter(tags=["real-time"])
_INIT = threading.Lock()


class Realtime:
    """What the routes and the worker threads of one app share."""

    def __init__(self, ctx: Any) -> None:
        from hub.streams import Parts
        self.cfg = ctx.config(required=False)
        self.engine = ctx.engine()
        self.metrics = Metrics()
        self.notifier = Notifier()
        self.parts = Parts(self.cfg)            # the routes' own connectors: verify and acknowledge only
        self.parts_lock = threading.Lock()
        self.worker: RealtimeWorker | None = None

    def connector(self, name: str) -> Any:
        with self.parts_lock:
            return self.parts.connector(name)


def realtime(app: Any) -> Realtime:
    rt = getattr(app.state, "triad_realtime", None)
    if rt is None:
        with _INIT:
            rt = getattr(app.state, "triad_realtime", None)
            if rt is None:
                rt = app.state.triad_realtime = Realtime(app.state.ctx)
    return rt


def start(app: Any) -> None:
    """Start the inbox and push threads (unless ``serve.worker: false``)."""
    rt = realtime(app)
    worker = RealtimeWorker(rt.engine, rt.cfg, rt.notifier, rt.metrics)
    if not worker.options.enabled:
        log.info("serve.worker is false: the inbox is left to `triad worker`")
        return
    rt.worker = worker
    worker.start()


def stop(app: Any) -> None:
    """Let the batch in progress commit, then stop the threads."""
    rt = getattr(app.state, "triad_realtime", None)
    if rt is not None and rt.worker is not None:
        rt.worker.stop()
        rt.worker = None
    if rt is not None:
        rt.parts.close()


class WebhookError(BaseModel):
    error: str = Field(description="Why the delivery was not taken.")


class WebhookAccepted(BaseModel):
    accepted: bool
    id: str = Field(description="The inbox row holding the delivery.")
    duplicate: bool = Field(description="True for a replay of an event already stored (no second row).")


class Health(BaseModel):
    status: str = Field(description="`ok`, `degraded` (the worker stopped) or `error` (the store does not answer)")
    database: str
    worker: str
    inbox: dict[str, Any] | None = None


def _error(description: str) -> dict[str, Any]:
    return {"model": WebhookError, "description": description}


# every answer `receive` can give: the document is what a sender (or its gateway) may rely on
WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The vendor's own acknowledgement once stored (DingTalk's encrypted `success`, "
                         "Salesforce's SOAP `Ack`), or the answer to a URL-verification handshake (nothing stored)",
          "content": {"application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}}}},
    202: {"model": WebhookAccepted, "description": "Stored in the inbox (or a replay of a stored event)"},
    401: _error("Not authentic: a missing or wrong signature or token, none configured, or a body the "
                 "connector cannot check; nothing is stored"),
    404: _error("No connector of that name receives changes here (unknown, or `direction: out`)"),
    413: _error(f"The body is larger than {inbox.MAX_BODY} bytes; nothing is stored"),
    503: _error("The connector cannot be set up or the store did not take the event: deliver it again"),
}


@router.post("/webhooks/{connector}", status_code=202, summary="Receive a system's change notification",
             response_model=None, responses=WEBHOOK_RESPONSES)
async def receive(connector: str, request: Request) -> Response:
    """Verify, store durably, then acknowledge one webhook delivery."""
    rt = realtime(request.app)
    try:
        body = await _read_limited(request, inbox.MAX_BODY)
    except ClientDisconnect:     # the sender gave up mid-body: nothing was stored, so nothing was acknowledged
        log.info("webhook %s: the sender disconnected before the whole body arrived; nothing stored", connector)
        rt.metrics.inc("triad_webhook_events_rejected_total", connector=_label(rt, connector), reason="disconnected")
        return Response(status_code=400)
    if body is None:
        rt.metrics.inc("triad_webhook_events_rejected_total", connector=_label(rt, connector), reason="too_large")
        return JSONResponse({"error": f"body larger than {inbox.MAX_BODY} bytes"}, status_code=413)
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = dict(request.query_params)
    return await run_in_threadpool(_accept, rt, connector, headers, body, query)


def _accept(rt: Realtime, name: str, headers: dict[str, str], body: bytes, query: dict[str, str]) -> Response:
    c = rt.cfg.connectors.get(name)
    if c is None or c.direction == "out":
        rt.metrics.inc("triad_webhook_events_rejected_total", connector=_label(rt, name), reason="unknown")
        return JSONResponse({"error": f"no connector '{name}' receives changes here"}, status_code=404)
    try:
        connector = rt.connector(name)
    except Exception as exc:  # a config problem: the sender keeps the event and tries again
        log.error("webhook for %s: the connector cannot be set up: %s", name, exc)
        return JSONResponse({"error": f"connector '{name}' is not usable: {exc}"}, status_code=503)
    try:
        answer = inbox.call_hook(connector.verify_webhook, headers, body, query)
    except WebhookRejected as exc:
        return _rejected(rt, name, f"not authentic: {exc}", str(exc))
    except Exception as exc:  # a connector's bug: an unauthenticated caller gets no traceback, the log no body
        return _rejected(rt, name, "not authentic", f"the connector failed checking it: {_where(exc)}")
    if answer is not None:                 # a handshake (URL verification): answered, nothing to store
        return JSONResponse(answer)
    try:
        vendor_key = inbox.call_hook(connector.webhook_event_key, headers, body, query)
    except Exception as exc:  # an unreadable body is stored anyway; the worker records why it fails
        log.debug("no event id in a %s delivery: %s", name, exc)
        vendor_key = None
    try:
        kept = inbox.call_hook(connector.redact_webhook, headers, body, query)
    except Exception as exc:  # stored as received it could keep a credential: the sender delivers it again
        log.error("webhook for %s: credentials could not be taken out of the body: %s", name, _where(exc))
        return JSONResponse({"error": "the event could not be stored; deliver it again"}, status_code=503)
    try:
        stored = inbox.store(rt.engine, name, headers, kept, query=query, key=inbox.event_key(name, vendor_key))
    except Exception as exc:  # not stored, so not acknowledged: the sender delivers it again
        log.error("webhook for %s could not be stored: %s", name, exc)
        return JSONResponse({"error": "the event could not be stored; deliver it again"}, status_code=503)
    if stored.duplicate:
        rt.metrics.inc("triad_webhook_events_duplicate_total", connector=name)
    else:
        rt.metrics.inc("triad_webhook_events_received_total", connector=name)
        rt.notifier.notify()
    ack = inbox.call_hook(connector.webhook_ack, headers, body, query)
    if ack is not None:
        status, content, media_type = ack
        return Response(content=content, status_code=status, media_type=media_type)
    return JSONResponse({"accepted": True, "id": stored.id, "duplicate": stored.duplicate}, status_code=202)


def _rejected(rt: Realtime, name: str, error: str, why: str) -> Response:
    rt.metrics.inc("triad_webhook_events_rejected_total", connector=name, reason="unauthorized")
    log.warning("webhook for %s rejected: %s", name, why)
    return JSONResponse({"error": error}, status_code=401)


def _where(exc: BaseException) -> str:
    """An exception's type and the line that raised it (its message may quote the body)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno} in {last.name}"


def _label(rt: Realtime, name: str) -> str:
    """A metrics label: configured connector names only (a path segment must not grow the series)."""
    return name if name in rt.cfg.connectors else "(unknown)"


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (not read any further)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


@router.get("/healthz", summary="Liveness and readiness", response_model=None,
            responses={200: {"model": Health, "description": "The store answers and the worker runs (or is off)"},
                       503: {"model": Health, "description": "The store does not answer, or the worker stopped"}})
def healthz(request: Request) -> Response:
    """200 while the store answers; the inbox backlog and whether the worker runs."""
    rt = realtime(request.app)
    worker = "off" if rt.worker is None else rt.worker.state
    try:
        backlog = inbox.backlog(rt.engine)
    except Exception as exc:  # the store is down: not ready
        return JSONResponse({"status": "error", "database": str(exc), "worker": worker}, status_code=503)
    ok = worker != "stopped"
    return JSONResponse({"status": "ok" if ok else "degraded", "database": "ok", "worker": worker,
                         "inbox": backlog}, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
            responses={200: {"description": f"Prometheus text exposition ({CONTENT_TYPE})"}})
def metrics(request: Request) -> Response:
    rt = realtime(request.app)
    up = None if rt.worker is None else rt.worker.alive
    return PlainTextResponse(rt.metrics.render(rt.engine, worker_up=up), media_type=CONTENT_TYPE)
