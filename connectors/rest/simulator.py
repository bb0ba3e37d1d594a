"""`triad simulate rest`: a configurable generic JSON API for the ``rest`` connector's tests.

Routes (``<c>`` is ``companies``, ``contacts`` or ``deals``; ``config/rest/simulator.yaml``
describes them for the connector):

- ``/<paging>/<c>`` lists records, paged by the prefix: ``page`` (``page``/``per_page`` ->
  ``{"data", "meta": {"total_pages"}}``), ``offset`` (``offset``/``limit`` -> ``{"items", "total"}``),
  ``cursor`` (``cursor``/``limit`` -> ``{"results", "next_cursor"}``), ``link`` (``{"data",
  "links": {"next"}}``), ``linkheader`` (a bare list and ``Link: <...>; rel="next"``), ``all``
  (``{"records"}``, no paging). ``updated_since=<ISO>`` keeps records changed at or after it,
  oldest change first.
- writes on any paging prefix: ``POST /<p>/<c>`` creates (``Idempotency-Key`` honored),
  ``GET|PATCH|PUT|DELETE /<p>/<c>/<id>``, ``POST /<p>/<c>/upsert?on=<field>``.
- ``/auth/<style>/<paging>/<c>...``: the same behind one auth style (see
  :mod:`connectors.rest.sim_auth`); ``POST /oauth/token`` issues tokens.
- ``/errors/<c>`` answers HTTP 200 with ``{"status": "error", "code", "message"}`` (``?code=``);
  ``/flaky/<c>`` does so on every other call (code ``BUSY``) and pages like ``page`` otherwise.
- ``/crm/v3/objects/<c>`` and ``.../search``: HubSpot CRM v3 shapes (bearer auth), see
  :mod:`connectors.rest.sim_hubspot`.

Every data response carries ``X-RateLimit-Limit/-Remaining/-Reset`` (a fixed window of
``extra["rate_limit"]`` calls per ``extra["rate_window"]`` seconds, default 1000 per second);
beyond it the answer is 429 with ``Retry-After``.
"""
from __future__ import annotations

import json
import math
from collections import deque
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

from connectors.rest import sim_auth, sim_generic, sim_hubspot
from connectors.rest.sim_generic import error as _error
from connectors.rest.sim_data import generate
from connectors.simkit import FaultInjector, JsonState, SimOptions

Reply = tuple[int, dict[str, str], Any]     # status, extra headers, JSON-able body (None: empty)
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 422: "Unprocessable Entity",
            429: "Too Many Requests"}


@dataclass
class Request:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]          # lower-case names
    body: bytes
    base_url: str
    query: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


class RateWindow:
    """A fixed window of N calls per T seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.lock = threading.Lock()
        self.started, self.used = time.monotonic(), 0
        self.refused = 0

    def take(self) -> tuple[bool, int, float]:
        """(allowed, remaining after this call, seconds until the window resets)."""
        with self.lock:
            now = time.monotonic()
            if now - self.started >= self.window:
                self.started, self.used = now, 0
            reset = self.window - (now - self.started)
            if self.used >= self.limit:
                self.refused += 1
                return False, 0, reset
            self.used += 1
            return True, self.limit - self.used, reset


class RestSim:
    """The simulator's state and router (``app.sim`` of :func:`create_app`)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.state = JsonState(options.state, lambda: generate(options.seed, options.records))
        self.tokens = sim_auth.Tokens(options)
        extra = options.extra or {}
        self.rate = RateWindow(int(extra.get("rate_limit", 1000)), float(extra.get("rate_window", 1.0)))
        self.lock = threading.Lock()
        self.flaky_calls = 0
        self.idempotent: dict[str, Reply] = {}
        self.requests: deque[tuple[str, str]] = deque(maxlen=10_000)   # (method, path?query) of data calls
        self.hubspot = sim_hubspot.HubSpot(self)
        self.generic = sim_generic.Generic(self)

    def save(self) -> None:
        self.state.save()

    def now(self) -> float:
        return time.time()

    def handle(self, req: Request) -> Reply:
        parts = [p for p in req.path.split("/") if p]
        if req.method == "POST" and parts == ["oauth", "token"]:
            form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
            status, body = self.tokens.issue(form, req.headers)
            return status, {"Cache-Control": "no-store"}, body
        with self.lock:
            self.requests.append((req.method, req.path + (f"?{req.raw_query}" if req.raw_query else "")))
        if parts[:1] == ["crm"]:
            return self._limited(req, self.hubspot.handle, hubspot=True)
        if parts[:1] == ["auth"]:
            if len(parts) < 3:
                return 404, {}, _error("NOT_FOUND", "use /auth/<style>/<paging>/<collection>")
            why = sim_auth.check(parts[1], req.method, req.path, req.raw_query, req.headers, req.body,
                                 self.options, self.tokens)
            if why:
                return 401, {"WWW-Authenticate": "Bearer"}, _error("UNAUTHORIZED", why)
            parts = parts[2:]
        return self._limited(req, lambda r: self.generic.handle(r, parts))

    def _limited(self, req: Request, handler: Callable[[Request], Reply], hubspot: bool = False) -> Reply:
        allowed, remaining, reset = self.rate.take()
        if hubspot:
            headers = {"X-HubSpot-RateLimit-Max": str(self.rate.limit),
                       "X-HubSpot-RateLimit-Remaining": str(remaining),
                       "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.rate.window * 1000))}
        else:
            headers = {"X-RateLimit-Limit": str(self.rate.limit), "X-RateLimit-Remaining": str(remaining),
                       "X-RateLimit-Reset": str(max(1, math.ceil(reset)))}
        if not allowed:
            body = ({"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                     "policyName": "SECONDLY"} if hubspot else _error("RATE_LIMITED", "too many requests"))
            return 429, {**headers, "Retry-After": str(max(1, math.ceil(reset)))}, body
        status, extra, body = handler(req)
        return status, {**headers, **extra}, body

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        req = Request(method=environ["REQUEST_METHOD"].upper(), path=environ.get("PATH_INFO", "/"),
                      raw_query=environ.get("QUERY_STRING", ""), headers=headers,
                      body=environ["wsgi.input"].read(length) if length else b"",
                      base_url=f"{environ.get('wsgi.url_scheme', 'http')}://{host}")
        req.query = dict(parse_qsl(req.raw_query, keep_blank_values=True))
        try:
            status, extra, body = self.handle(req)
        except ValueError as exc:     # a body that is not JSON, a bad number in the query
            status, extra, body = 400, {}, _error("BAD_REQUEST", str(exc))
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        out = [("Content-Type", "application/json; charset=utf-8")] if body is not None else []
        out += list(extra.items())
        start_response(f"{status} {_REASONS.get(status, 'Error')}", out)
        return [payload]


def create_app(options: SimOptions) -> Any:
    """The WSGI app: the simulator wrapped in fault injection (the token endpoint is never failed)."""
    sim = RestSim(options)
    app = FaultInjector(sim, options, exempt=("/oauth/",))
    app.sim = sim  # type: ignore[attr-defined]
    return app
