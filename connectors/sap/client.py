"""Transport to SAP Gateway: service roots, auth, the CSRF token protocol, the error table.

One :class:`hub.http.HttpClient` (one requests Session) keeps the session
cookies that a CSRF token is bound to. Modifying requests fetch a token first
(``HEAD`` with ``x-csrf-token: Fetch``) and, when the server answers 403 with
``x-csrf-token: Required`` (token expired, session lost), fetch a new one and
send the request once more (PROTOCOLS.md section 2.1).

Failures after the HTTP client's retries name the request by method and
service path (no host, no query: a read's query runs to kilobytes) and carry
the Gateway's own message.
"""
from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from hub.errors import ConfigError, FatalError, LimitExceeded, RetriableError
from hub.http import HttpClient, RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_PATH = "/sap/opu/odata/sap"


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` (OAuth access token of a communication arrangement)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def odata_message(resp: requests.Response) -> str:
    """The message of a Gateway error body (with its detail messages), else the start of the body."""
    try:
        error = resp.json()["error"]
        text = f"{error.get('code', '')}: {error['message']['value']}".lstrip(": ")
        details = [d.get("message", "") for d in (error.get("innererror") or {}).get("errordetails") or []]
        extra = [d for d in details if d and d != error["message"]["value"]]
        return text + (f" ({'; '.join(extra)})" if extra else "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return resp.text[:200].strip() or resp.reason or f"HTTP {resp.status_code}"


class SapClient:
    """HTTP to the OData services under one host.

    Args:
        base_url: host root (``https://my123-api.s4hana.cloud.sap``) or the OData root
            (``.../sap/opu/odata/sap``).
        auth: a requests auth (basic or bearer).
        verify: TLS verification or a CA bundle path.
        policy: timeouts and retries.
        name: the connector name, for logs and errors.
    """

    def __init__(self, base_url: str, *, auth: requests.auth.AuthBase, verify: bool | str = True,
                 policy: RetryPolicy | None = None, name: str = "sap") -> None:
        root = base_url.rstrip("/")
        if "/sap/opu/odata" not in root:
            root += DEFAULT_PATH
        self.name = name
        self.http = HttpClient(root, policy=policy, auth=auth, verify=verify, name=name)
        self.http.session.headers["Accept"] = "application/json"
        self.http.session.hooks["response"].append(self._remember_failure)
        self.token: str | None = None
        self._failure = threading.local()   # the last failed answer, for the error a retry gives up with

    def _remember_failure(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        if resp.status_code >= 400:
            self._failure.resp = resp

    def short_path(self, url: str) -> str:
        """``API_BUSINESS_PARTNER/A_BusinessPartner``: the service path of ``url``, without host and query."""
        path = unquote(urlsplit(self.http.url(url)).path)
        root = urlsplit(self.http.base_url).path
        return path[len(root):].lstrip("/") if path.startswith(root) else path

    def send(self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any) -> requests.Response:
        """One request through the retrying HTTP client.

        Raises:
            LimitExceeded: the system asks to wait longer than a run waits (the run stops cleanly).
            RetriableError: 429/5xx/connection failures after the retries (a create: after the first).
        """
        self._failure.resp = None
        try:
            return self.http.request(method, url, idempotent=idempotent, **kwargs)
        except RetriableError as exc:
            raise self._explained(exc, method, url) from exc

    def _explained(self, exc: RetriableError, method: str, url: str) -> RetriableError:
        """The same error, said with SAP's message and a short path instead of the whole URL."""
        resp: requests.Response | None = getattr(self._failure, "resp", None)
        where = f"{method} {self.short_path(url)}"
        if resp is not None and f"HTTP {resp.status_code}" in exc.message:
            text = f"{where}: HTTP {resp.status_code} {odata_message(resp)}"
        else:
            text = f"{where}: {exc.message.rsplit(': ', 1)[-1]}"
        if isinstance(exc, LimitExceeded):
            wait = exc.retry_after or 0
            return LimitExceeded(f"{text} (the system asks to wait {wait:.0f} s, longer than a run waits; "
                                 "the next run resumes)", retry_after=exc.retry_after, connector=self.name)
        return RetriableError(text, retry_after=exc.retry_after, connector=self.name)

    def url(self, service: str, path: str = "") -> str:
        return self.http.url(f"{service}/{path.lstrip('/')}" if path else service)

    def _fail(self, resp: requests.Response, what: str) -> None:
        """Raise the error class that says what happens next for a failed read."""
        message = f"{what}: HTTP {resp.status_code} {odata_message(resp)}"
        if resp.status_code == 401:
            raise FatalError(f"{what}: the SAP system refused the credentials (HTTP 401); check "
                             "auth.user/auth.password or auth.token", connector=self.name)
        if resp.status_code == 404:
            raise ConfigError(message + "; check the service and entity set names", connector=self.name)
        raise FatalError(message, connector=self.name)

    def get_json(self, url: str, params: dict[str, Any] | None = None, what: str = "GET") -> dict[str, Any]:
        """GET a JSON document; truncated bodies are fetched again like other transient failures."""
        last: RetriableError | None = None
        for _ in range(self.http.policy.attempts):
            resp = self.send("GET", url, params=params)
            if resp.status_code >= 400:
                self._fail(resp, what)
            try:
                return resp.json()
            except ValueError as exc:
                last = RetriableError(f"{what}: the body is not JSON ({exc})", connector=self.name)
                log.info("retrying %s: body is not JSON", what, extra={"connector": self.name})
        assert last is not None
        raise last

    def metadata(self, service: str) -> bytes:
        resp = self.send("GET", self.url(service, "$metadata"), headers={"Accept": "application/xml"})
        if resp.status_code >= 400:
            self._fail(resp, f"{service}/$metadata")
        return resp.content

    def fetch_token(self, service: str) -> str:
        """Fetch a CSRF token (and the session cookie it belongs to)."""
        headers = {"x-csrf-token": "Fetch"}
        resp = self.send("HEAD", self.url(service), headers=headers)
        token = resp.headers.get("x-csrf-token")
        if resp.status_code < 400 and (not token or token.lower() == "required"):
            resp = self.send("GET", self.url(service), headers=headers)   # some gateways ignore HEAD
            token = resp.headers.get("x-csrf-token")
        if resp.status_code >= 400:
            self._fail(resp, f"{service}: CSRF token fetch")
        if not token or token.lower() == "required":
            raise FatalError(f"{service}: the server sent no CSRF token", connector=self.name)
        log.debug("fetched a CSRF token for %s", service, extra={"connector": self.name})
        self.token = token
        return token

    def modify(self, method: str, service: str, path: str, *, body: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None, idempotent: bool = True) -> requests.Response:
        """A modifying request with the CSRF token; 4xx answers are returned for the caller to read.

        ``idempotent=False`` for a create: after a timeout or a 5xx it may have been carried out, so it
        is not sent again here (the caller looks it up before creating again).

        Raises:
            RetriableError: 429/5xx/connection failures after the HTTP client's retries.
        """
        if self.token is None:
            self.fetch_token(service)
        for attempt in (1, 2):
            sent = {"x-csrf-token": self.token or "", "Content-Type": "application/json", **(headers or {})}
            resp = self.send(method, self.url(service, path), json=body, headers=sent, idempotent=idempotent)
            if resp.status_code == 403 and resp.headers.get("x-csrf-token", "").lower() == "required" \
                    and attempt == 1:
                log.info("CSRF token rejected; fetching a new one", extra={"connector": self.name})
                self.fetch_token(service)
                continue
            return resp
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()
