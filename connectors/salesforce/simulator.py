"""A Salesforce org over HTTP: OAuth token, SOQL query/queryAll with paging, sObject
CRUD and upsert, sObject Collections, Get Updated/Deleted, describe and limits.

``create_app(options)`` returns the WSGI app wrapped in :class:`connectors.simkit.FaultInjector`
(the login endpoints are never failed). Its plain-text 429 is switched off: the injected
throttling (``rate_limit_rate``) answers like Salesforce, HTTP 403 ``REQUEST_LIMIT_EXCEEDED``
"ConcurrentPerOrgLongTxn Limit exceeded." without Retry-After, while the request budget answers
the daily "TotalRequests" variant. ``app.sim`` is the :class:`~connectors.salesforce.org.Org`:
tests edit records through it as a user would in the UI, expire tokens or lock rows.

``options.extra`` may set ``base_url`` (the instance_url to announce, e.g. behind a proxy),
``refresh_token`` (the one refresh token the org accepts) and ``security_token`` (appended
to the password by clients that use one).
"""
from __future__ import annotations

import json
import logging
import random
import re
import ssl
import threading
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from connectors.salesforce import simulator_auth
from connectors.salesforce.simulator_composite import collections
from connectors.salesforce.org import Ambiguous, ApiError, Org, RecordError
from connectors.salesforce.schema import OBJECTS, describe, describe_global_entry
from connectors.salesforce.soql import SoqlError
from connectors.simkit import FaultInjector, SimOptions

log = logging.getLogger(__name__)

MIN_VERSION = 50.0
_VERSION = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_JSON = ("Content-Type", "application/json;charset=UTF-8")
_STATUS = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 300: "300 Multiple Choices",
           400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Not Found",
           405: "405 Method Not Allowed", 500: "500 Server Error"}
_LIMITS = {"ConcurrentAsyncGetReportInstances": 200, "ConcurrentSyncReportRuns": 20, "DailyAsyncApexExecutions": 250000,
           "DailyBulkApiRequests": 5000, "DailyStreamingApiEvents": 10000, "DailyWorkflowEmails": 390,
           "DataStorageMB": 5, "FileStorageMB": 20, "HourlyODataCallout": 10000, "MassEmail": 10, "SingleEmail": 15}


DAILY_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
CONCURRENT_LIMIT = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


class Response:
    def __init__(self, status: int, body: Any = None, headers: list | None = None, raw: bytes | None = None) -> None:
        self.status, self.body, self.headers, self.raw = status, body, headers or [], raw


def base_url(environ: dict, options: SimOptions) -> str:
    """The URL clients reach us at (instance_url): scheme from the connection, host from the request."""
    if options.extra.get("base_url"):
        return str(options.extra["base_url"]).rstrip("/")
    scheme = environ.get("HTTP_X_FORWARDED_PROTO") or environ.get("wsgi.url_scheme", "http")
    if environ.get("HTTPS", "").lower() in ("on", "1", "yes"):
        scheme = "https"
    sock = getattr(getattr(environ.get("wsgi.input"), "raw", None), "_sock", None)
    if isinstance(sock, ssl.SSLSocket):  # wsgiref does not tell the app it runs behind TLS
        scheme = "https"
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    return f"{scheme}://{host}"


class SalesforceApp:
    """The WSGI application (routing only; behaviour lives in :class:`Org`)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.sim = Org(options)
        self.rng = random.Random(options.seed * 7919 + 2)
        self.lock = threading.Lock()
        self.stats = {"throttled": 0}   # create_app shares the fault injector's counts

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            resp = self.dispatch(environ)
        except ApiError as exc:
            resp = Response(exc.status, exc.body())
        except Exception:  # an unexpected bug answers like Salesforce's UNKNOWN_EXCEPTION, never a hang
            log.exception("salesforce simulator error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            resp = Response(500, [{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}])
        if resp.raw is not None:
            body = resp.raw
        elif resp.body is None:
            body = b""
        else:
            body = json.dumps(resp.body, ensure_ascii=False).encode("utf-8")
        headers = list(resp.headers)
        if resp.raw is None and resp.status != 204 and not any(h[0] == "Content-Type" for h in headers):
            headers.append(_JSON)
        start_response(_STATUS.get(resp.status, f"{resp.status} Status"), headers)
        return [body]

    def dispatch(self, environ: dict) -> Response:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        body = _read(environ)
        if path.rstrip("/") == "/services/oauth2/token" and method == "POST":
            status, out = simulator_auth.token(self.sim, environ, body, base_url(environ, self.options))
            return Response(status, out, [_JSON, ("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")])
        m = re.match(r"^/services/Soap/u/(\d+\.\d)/?$", path)
        if m and method == "POST":
            status, xml = simulator_auth.soap_login(self.sim, body, base_url(environ, self.options), m.group(1))
            return Response(status, raw=xml.encode("utf-8"), headers=[("Content-Type", "text/xml;charset=UTF-8")])
        if path.rstrip("/") == "/services/data":
            return Response(200, [{"label": f"v{v}.0", "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                                  for v in range(50, 63)])
        m = _VERSION.match(path)
        if not m or float(m.group(1)) < MIN_VERSION:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        token = auth.split(" ", 1)[1].strip() if auth.lower().startswith(("bearer ", "oauth ")) else ""
        if not self.sim.token_valid(token):
            return Response(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                            [("WWW-Authenticate", 'Token')])
        usage = ("Sforce-Limit-Info", f"api-usage={self.sim.api_calls}/{self.sim.daily_max}")
        if self.throttled():
            return Response(403, CONCURRENT_LIMIT, [usage])
        if not self.sim.count_call():
            return Response(403, DAILY_LIMIT, [usage])
        version = m.group(1)
        parts = [unquote(p) for p in (m.group(2) or "").strip("/").split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        try:
            resp = self.route(method, parts, query, body, environ, version)
        except ApiError as exc:
            resp = Response(exc.status, exc.body())
        except RecordError as exc:
            status = 404 if exc.code in ("NOT_FOUND", "ENTITY_IS_DELETED") else 400
            resp = Response(status, [{"message": exc.message, "errorCode": exc.code, "fields": exc.fields}])
        except Ambiguous as exc:
            resp = Response(300, [f"/services/data/v{version}/sobjects/{exc.obj}/{i}" for i in exc.ids])
        except SoqlError as exc:
            resp = Response(400, [{"message": _soql_message(query.get("q", ""), exc), "errorCode": exc.code}])
        resp.headers.append(("Sforce-Limit-Info", f"api-usage={self.sim.api_calls}/{self.sim.daily_max}"))
        return resp

    def throttled(self) -> bool:
        """The injected throttling (a share ``rate_limit_rate`` of API calls), read live from the options."""
        with self.lock:
            hit = self.rng.random() < self.options.rate_limit_rate
            if hit:
                self.stats["throttled"] += 1
        return hit

    def route(self, method: str, parts: list[str], query: dict, body: bytes, environ: dict, version: str) -> Response:
        head = parts[0] if parts else ""
        if not parts:
            return Response(200, {k: f"/services/data/v{version}/{k}" for k in
                                  ("sobjects", "query", "queryAll", "limits", "composite")})
        if head == "limits" and len(parts) == 1:
            return self.limits()
        if head in ("query", "queryAll"):
            _allow(method, "GET")
            if len(parts) == 2:
                locator, _, offset = parts[1].rpartition("-")
                if not offset.isdigit():
                    raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
                return Response(200, self.sim.query_more(locator, int(offset), version))
            if "q" not in query:
                raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
            batch = _batch_size(environ.get("HTTP_SFORCE_QUERY_OPTIONS", ""))
            return Response(200, self.sim.query(query["q"], version, head == "queryAll", batch))
        if head == "sobjects":
            return self.sobjects(method, parts[1:], query, body, version)
        if head == "composite" and len(parts) >= 2 and parts[1] == "sobjects":
            return Response(200, collections(self.sim, method, parts[2:], query, _json(body), version))
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def limits(self) -> Response:
        out = {k: {"Max": v, "Remaining": v} for k, v in _LIMITS.items()}
        out["DailyApiRequests"] = {"Max": self.sim.daily_max, "Remaining": self.sim.daily_max - self.sim.api_calls}
        return Response(200, dict(sorted(out.items())))

    def sobjects(self, method: str, parts: list[str], query: dict, body: bytes, version: str) -> Response:
        sim = self.sim
        if not parts:
            _allow(method, "GET")
            return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200,
                                  "sobjects": [describe_global_entry(o, version) for o in OBJECTS.values()]})
        obj = sim.object(parts[0])
        if len(parts) == 1:
            if method == "POST":
                new_id = sim.insert(obj.name, _json(body))
                return Response(201, {"id": new_id, "success": True, "errors": []})
            _allow(method, "GET", "POST")
            return Response(200, {"objectDescribe": describe_global_entry(obj, version), "recentItems": []})
        if len(parts) == 2 and parts[1] == "describe":
            _allow(method, "GET")
            return Response(200, describe(obj, version))
        if len(parts) == 2 and parts[1] in ("updated", "deleted"):
            _allow(method, "GET")
            if "start" not in query or "end" not in query:
                raise ApiError(400, "MISSING_ARGUMENT", "start and end are required")
            return Response(200, sim.changed(obj.name, query["start"], query["end"], parts[1] == "deleted"))
        if len(parts) == 2:
            rec_id = parts[1]
            if method == "GET":
                return Response(200, self.render(obj.name, sim.get(obj.name, rec_id), query, version))
            if method == "PATCH":
                sim.update(obj.name, rec_id, _json(body))
                return Response(204)
            if method == "DELETE":
                sim.delete(obj.name, rec_id)
                return Response(204)
            _allow(method, "GET", "PATCH", "DELETE")
        if len(parts) == 3:
            field, value = parts[1], parts[2]
            if method == "PATCH":
                if query.get("updateOnly") == "true" and not sim.find(obj.name, field, value):
                    raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
                rec_id, created = sim.upsert(obj.name, field, value, _json(body))
                return Response(201 if created else 200,
                                {"id": rec_id, "success": True, "errors": [], "created": created})
            ids = sim.find(obj.name, field, value)
            if len(ids) > 1:
                raise Ambiguous(obj.name, ids)
            if not ids:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            if method == "GET":
                return Response(200, self.render(obj.name, sim.get(obj.name, ids[0]), query, version))
            if method == "DELETE":
                sim.delete(obj.name, ids[0])
                return Response(204)
            _allow(method, "GET", "PATCH", "DELETE")
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def render(self, obj: str, rec: dict | None, query: dict, version: str) -> dict:
        if rec is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if rec["IsDeleted"]:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        out = {"attributes": {"type": obj, "url": f"/services/data/v{version}/sobjects/{obj}/{rec['Id']}"}}
        wanted = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
        odef = self.sim.object(obj)
        for name in wanted or list(rec):
            f = odef.field(name)
            if f is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj}'")
            out[f.name] = rec.get(f.name)
        return out


def _read(environ: dict) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8")) if body else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in the request body: {exc}") from None


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}")


def _batch_size(header: str) -> int:
    """``Sforce-Query-Options: batchSize=N``: a hint between 200 and 2000 (default 2000)."""
    m = re.search(r"batchSize\s*=\s*(\d+)", header)
    return min(2000, max(200, int(m.group(1)))) if m else 2000


def _soql_message(q: str, exc: SoqlError) -> str:
    """Salesforce's query error layout: the offending line, a caret, the row/column, the message."""
    if exc.pos is None or exc.code == "MALFORMED_QUERY" and exc.message.startswith("A query"):
        return exc.message
    before = q[:exc.pos]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    col = exc.pos - line_start
    line = q[line_start:].split("\n", 1)[0]
    return f"\n{line}\n{' ' * col}^\nERROR at Row:{row}:Column:{col + 1}\n{exc.message}"


class _OwnThrottle:
    """Options as FaultInjector sees them: its plain-text 429 is off (Salesforce never sends one).

    Attributes set through it (``app.options.rate_limit_rate = 0``) land on the real options,
    which the app reads for its own throttling.
    """

    def __init__(self, options: SimOptions) -> None:
        object.__setattr__(self, "_options", options)

    def __getattr__(self, name: str) -> Any:
        return 0.0 if name == "rate_limit_rate" else getattr(self._options, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._options, name, value)


def create_app(options: SimOptions) -> FaultInjector:
    """The simulator as a WSGI app; ``app.sim`` is the org state (see :class:`Org`)."""
    inner = SalesforceApp(options)
    app = FaultInjector(inner, _OwnThrottle(options),  # type: ignore[arg-type]
                        exempt=("/services/oauth2/", "/services/Soap/u/"))
    inner.stats = app.stats          # one "throttled" count, wherever the fault is answered
    app.sim = inner.sim
    return app
