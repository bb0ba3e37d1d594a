"""A simulated SAP S/4HANA OData v2 gateway: API_BUSINESS_PARTNER and API_SALES_ORDER_SRV.

Serves ``/sap/opu/odata/sap/<SERVICE>/...`` with basic (or bearer) auth, the
CSRF token protocol (``x-csrf-token: Fetch`` + session cookie; 403 with
``x-csrf-token: Required`` otherwise), ``$metadata``, verbose JSON reads with
server-driven paging, deep inserts, PATCH/MERGE/PUT/DELETE with ETags, and
SAP Gateway's error body (PROTOCOLS.md section 2).

``create_app(options)`` returns the app wrapped in :class:`simkit.FaultInjector`;
tests reach the data through ``app.store`` and the CSRF guard through ``app.csrf``.
Options in ``options.extra``: ``page_size`` (server page size, default 1000),
``require_if_match`` (answer 428 to updates without If-Match), ``bearer_token``
(accepted bearer token, default: the client secret).
"""
from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
from http.cookies import SimpleCookie
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

from connectors.sap.edmx import render_edmx
from connectors.sap.schema import SERVICES
from connectors.sap.simulator_query import (ODataError, Renderer, Target, bad_request, collection, filtered,
                                            parse_expand, parse_select, resolve_path)
from connectors.sap.simulator_write import Writer
from connectors.sap.store import SapStore
from connectors.simkit import FaultInjector, SimOptions

log = logging.getLogger(__name__)

PREFIX = "/sap/opu/odata/sap/"
SESSION_COOKIE = "SAP_SESSIONID_TRD_100"
MODIFYING = {"POST", "PUT", "PATCH", "MERGE", "DELETE"}
JSON_TYPE = "application/json; charset=utf-8"
Response = tuple[int, list[tuple[str, str]], bytes]
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 412: "Precondition Failed",
           428: "Precondition Required", 429: "Too Many Requests", 500: "Internal Server Error",
           501: "Not Implemented"}


class CsrfGuard:
    """CSRF tokens bound to a session cookie, as SAP Gateway hands them out.

    Attributes:
        ttl: seconds a token stays valid (None: for the session's life).
        max_uses: test hook: a token stops working after this many modifying requests.
        stats: ``fetched`` tokens issued, ``rejected`` modifying requests refused.
    """

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl
        self.max_uses: int | None = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.stats = {"fetched": 0, "rejected": 0}

    def _usable(self, entry: dict[str, Any]) -> bool:
        if self.ttl is not None and time.monotonic() - entry["issued"] > self.ttl:
            return False
        return self.max_uses is None or entry["uses"] < self.max_uses

    def fetch(self, session: str | None) -> tuple[str, str]:
        """(session id, token): the session's current token, or a new one (and session) when needed."""
        with self.lock:
            entry = self.sessions.get(session or "")
            if entry is not None and self._usable(entry):
                return session or "", entry["token"]
            if entry is None:
                session = secrets.token_urlsafe(24)
            token = secrets.token_urlsafe(18)
            self.sessions[session or ""] = {"token": token, "issued": time.monotonic(), "uses": 0}
            self.stats["fetched"] += 1
            return session or "", token

    def check(self, session: str | None, token: str | None) -> bool:
        """True (and one use counted) when ``token`` is the live token of ``session``."""
        with self.lock:
            entry = self.sessions.get(session or "")
            if entry is None or not token or token != entry["token"] or not self._usable(entry):
                self.stats["rejected"] += 1
                return False
            entry["uses"] += 1
            return True

    def invalidate_all(self) -> None:
        """Test hook: every issued token and session is forgotten (as after a server restart)."""
        with self.lock:
            self.sessions.clear()


def error_body(err: ODataError) -> bytes:
    inner = {"application": {"component_id": "", "service_namespace": "/SAP/", "service_id": "",
                             "service_version": "0001"},
             "transactionid": secrets.token_hex(16).upper(), "timestamp": time.strftime("%Y%m%d%H%M%S.0000000"),
             "Error_Resolution": {"SAP_Transaction": "Run transaction /IWFND/ERROR_LOG on SAP Gateway hub system",
                                  "SAP_Note": "See SAP Note 1797736 for error analysis"},
             "errordetails": [{"code": err.code, "message": d, "propertyref": "", "severity": "error",
                               "target": ""} for d in err.details]}
    return json.dumps({"error": {"code": err.code, "message": {"lang": "en", "value": err.message},
                                 "innererror": inner}}, ensure_ascii=False).encode("utf-8")


class SapSimulator:
    """The WSGI application (without fault injection)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.store = SapStore(options)
        self.writer = Writer(self.store)
        self.csrf = CsrfGuard(options.token_ttl)
        self.page_size = int(options.extra.get("page_size", 1000))
        self.require_if_match = bool(options.extra.get("require_if_match", False))
        self.bearer = str(options.extra.get("bearer_token", options.client_secret))
        self.metadata = {svc: render_edmx(svc).encode("utf-8") for svc in SERVICES}
        self.calls = 0

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        try:
            status, headers, body = self.handle(environ, method)
        except ODataError as err:
            status, headers, body = err.status, [("Content-Type", JSON_TYPE)], error_body(err)
        except Exception:  # a simulator bug must still answer like a server
            log.exception("SAP simulator failed on %s %s", method, environ.get("PATH_INFO"))
            err = ODataError(500, "/IWBEP/CM_MGW_RT/000", "Internal server error")
            status, headers, body = 500, [("Content-Type", JSON_TYPE)], error_body(err)
        headers.append(("dataserviceversion", "2.0"))
        start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
        return [b"" if method == "HEAD" else body]

    def _authorized(self, environ: dict) -> bool:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return secrets.compare_digest(user, self.options.user) and \
                secrets.compare_digest(password, self.options.password)
        if scheme.lower() == "bearer":
            return secrets.compare_digest(value.strip(), self.bearer)
        return False

    def handle(self, environ: dict, method: str) -> Response:
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        if method == "POST" and environ.get("HTTP_X_HTTP_METHOD"):
            method = environ["HTTP_X_HTTP_METHOD"].upper()
        if not path.startswith(PREFIX):
            return 404, [("Content-Type", "text/plain")], b"Not found"
        service, _, rest = path[len(PREFIX):].partition("/")
        service = service.split(";")[0]
        if service not in SERVICES:
            raise ODataError(404, "/IWFND/MED/170", f"No service found for namespace '/SAP/', name "
                                                    f"'{service}', version '0001'")
        if not self._authorized(environ):
            return 401, [("Content-Type", "text/html; charset=utf-8"),
                         ("WWW-Authenticate", 'Basic realm="SAP NetWeaver Application Server [TRD/100]"')], \
                b"<html><body><h1>Logon failed</h1></body></html>"
        self.calls += 1
        if self.options.request_budget is not None and self.calls > self.options.request_budget:
            return 429, [("Content-Type", JSON_TYPE), ("Retry-After", "60")], error_body(
                ODataError(429, "/IWFND/CM_BEC/076", "Request quota of the communication user exceeded"))
        cookies = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        session = cookies[SESSION_COOKIE].value if SESSION_COOKIE in cookies else None
        headers: list[tuple[str, str]] = []
        token_header = environ.get("HTTP_X_CSRF_TOKEN")
        if method in ("GET", "HEAD") and (token_header or "").lower() == "fetch":
            new_session, token = self.csrf.fetch(session)
            headers.append(("x-csrf-token", token))
            if new_session != session:
                headers += [("Set-Cookie", f"{SESSION_COOKIE}={new_session}; path=/; HttpOnly"),
                            ("Set-Cookie", "sap-usercontext=sap-client=100; path=/")]
        if method in MODIFYING and not self.csrf.check(session, token_header):
            return 403, [("Content-Type", "text/plain; charset=utf-8"), ("x-csrf-token", "Required")], \
                b"CSRF token validation failed"
        status, more, body = self.dispatch(environ, method, service, rest)
        return status, headers + more, body

    def dispatch(self, environ: dict, method: str, service: str, rest: str) -> Response:
        query = environ.get("QUERY_STRING", "")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if params.get("$format", "json") != "json":
            raise bad_request(f"Format '{params['$format']}' is not supported here; use $format=json")
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        root = f"{environ.get('wsgi.url_scheme', 'http')}://{host}{PREFIX}{service}"
        rest = rest.strip("/")
        sets = {es.name: es for es in SERVICES[service]}
        if rest == "":
            self._only(method, "GET", "HEAD")
            return 200, [("Content-Type", JSON_TYPE)], _json({"d": {"EntitySets": list(sets)}})
        if rest == "$metadata":
            self._only(method, "GET", "HEAD")
            return 200, [("Content-Type", "application/xml")], self.metadata[service]
        if rest == "$batch":
            raise ODataError(501, "/IWBEP/CM_MGW_RT/000", "$batch is not supported by this simulator")
        target = resolve_path(self.store, sets, rest.split("/"))
        renderer = Renderer(self.store, root)
        if method in ("GET", "HEAD"):
            return self._read(target, params, renderer, f"{root}/{rest}")
        if method == "POST":
            return self._create(environ, target, renderer)
        if method in ("PATCH", "MERGE", "PUT", "DELETE"):
            return self._modify(environ, method, target)
        raise ODataError(405, "/IWBEP/CM_MGW_RT/021", f"Method {method} is not allowed")

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ODataError(405, "/IWBEP/CM_MGW_RT/021", f"Method {method} is not allowed here")

    def _read(self, target: Target, params: dict[str, str], renderer: Renderer, url: str) -> Response:
        es = target.es
        with self.store.lock:
            if target.key is not None:
                rec = self.store.get(es.name, target.key)
                if rec is None:
                    raise ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment "
                                                                  f"'{es.type_name}'")
                if target.prop:
                    return 200, [("Content-Type", JSON_TYPE)], _json({"d": {target.prop: rec.get(target.prop)}})
                body = renderer.entity(es, rec, parse_expand(params.get("$expand"), es),
                                       parse_select(params.get("$select"), es))
                return 200, self._etag_headers(es, rec), _json({"d": body})
            if target.parent is not None and target.nav is not None:
                parent_es, parent = target.parent
                records = self.store.related(parent_es, parent, target.nav.name)
                if not target.nav.many and not target.count:
                    if not records:
                        raise ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment "
                                                                      f"'{target.nav.name}'")
                    body = renderer.entity(es, records[0], parse_expand(params.get("$expand"), es),
                                           parse_select(params.get("$select"), es))
                    return 200, self._etag_headers(es, records[0]), _json({"d": body})
            else:
                records = self.store.rows(es.name)
            if target.count:
                return 200, [("Content-Type", "text/plain")], \
                    str(len(filtered(self.store, es, list(records), params))).encode()
            body = collection(self.store, renderer, es, list(records), params, url, self.page_size)
            return 200, [("Content-Type", JSON_TYPE)], _json({"d": body})

    def _etag_headers(self, es: Any, rec: dict) -> list[tuple[str, str]]:
        headers = [("Content-Type", JSON_TYPE)]
        etag = self.store.etag(es, rec)
        if etag:
            headers.append(("ETag", etag))
        return headers

    def _create(self, environ: dict, target: Target, renderer: Renderer) -> Response:
        if target.key is not None or target.count or (target.nav is not None and not target.nav.many
                                                      and target.nav.name != "to_Customer"):
            raise ODataError(405, "/IWBEP/CM_MGW_RT/021", "POST is only allowed on a collection")
        body = _read_json(environ)
        parent = (target.parent[0], target.parent[1], target.nav) if target.parent and target.nav else None
        rec, tree = self.writer.create(target.es, body, parent)
        out = renderer.entity(target.es, rec, tree, parse_select(None, target.es))
        headers = self._etag_headers(target.es, rec) + [("Location", renderer.uri(target.es, rec))]
        return 201, headers, _json({"d": out})

    def _modify(self, environ: dict, method: str, target: Target) -> Response:
        if target.key is None or target.prop:
            raise ODataError(405, "/IWBEP/CM_MGW_RT/021", f"{method} needs a single entity")
        es = target.es
        with self.store.lock:
            rec = self.store.get(es.name, target.key)
            if rec is None:
                raise ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{es.type_name}'")
            current = self.store.etag(es, rec)
            given = environ.get("HTTP_IF_MATCH")
            if current and given is None and self.require_if_match:
                raise ODataError(428, "/IWBEP/CM_MGW_RT/024", "Precondition required: send If-Match with the ETag")
            if current and given not in (None, "*") and given != current:
                raise ODataError(412, "/IWBEP/CM_MGW_RT/022",
                                 "The entity was changed meanwhile (ETag mismatch); read it again")
            if method == "DELETE":
                self.writer.delete(es, rec)
            else:
                self.writer.update(es, rec, _read_json(environ))
        return 204, [], b""


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _read_json(environ: dict) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
    if isinstance(body, dict) and set(body) == {"d"} and isinstance(body["d"], dict):
        body = body["d"]   # the API Hub spec wraps request bodies in "d"
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def create_app(options: SimOptions) -> FaultInjector:
    """The SAP simulator as a WSGI app with fault injection.

    Returns:
        The wrapped app; ``app.store`` (:class:`SapStore`), ``app.csrf`` (:class:`CsrfGuard`) and
        ``app.sim`` (:class:`SapSimulator`) are exposed for tests and the demo.
    """
    sim = SapSimulator(options)
    app = FaultInjector(sim, options)
    app.sim, app.store, app.csrf = sim, sim.store, sim.csrf  # type: ignore[attr-defined]
    log.info("SAP simulator: %d business partners, %d sales orders", sim.store.count("A_BusinessPartner"),
             sim.store.count("A_SalesOrder"))
    return app

