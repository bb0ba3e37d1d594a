"""Salesforce transport: OAuth 2.0 as a ``requests`` AuthBase, and the REST calls the
connector needs (query pages, describe, sObject Collections, limits), all through
:class:`hub.http.HttpClient`.

Error table (one place): HTTP 403 ``REQUEST_LIMIT_EXCEEDED`` -> LimitExceeded (the daily
"TotalRequests" budget: the next run resumes), but a "Concurrent..." limit -> NotCarriedOut
(retried with backoff: it clears as other requests finish);
``QUERY_TIMEOUT``/``UNABLE_TO_LOCK_ROW``/``SERVER_UNAVAILABLE`` -> RetriableError;
401 right after logging in again -> FatalError; ``MALFORMED_QUERY``/``INVALID_FIELD``/
``INVALID_TYPE`` on a query -> ConfigError (the mapping names something the org
does not have); a 200 body that is not JSON (truncated) -> RetriableError;
other 4xx -> :class:`SalesforceApiError` (fatal) for reads, returned for writes.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import Any, Iterator

import requests

from hub.errors import ConfigError, FatalError, LimitExceeded, RetriableError
from hub.http import HttpClient, NotCarriedOut, RetryPolicy, follow_pages
from hub.secrets import reveal

log = logging.getLogger(__name__)

TRANSIENT_CODES = {"QUERY_TIMEOUT", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
QUERY_CONFIG_CODES = {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"}
CONCURRENT_LIMIT = "Concurrent"   # "ConcurrentPerOrgLongTxn Limit exceeded.": requests in flight, not the day's budget
GRANTS = ("password", "client_credentials", "refresh_token")


class SalesforceApiError(FatalError):
    """A refused REST call: HTTP status plus Salesforce's errorCode and message."""

    def __init__(self, message: str, status: int, code: str, **context: object) -> None:
        super().__init__(message, **context)
        self.status, self.code = status, code


def error_of(resp: requests.Response) -> tuple[str, str]:
    """(errorCode, message) of an error body ``[{"message", "errorCode"}]`` (or an OAuth error body)."""
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", "")), str(body[0].get("message", ""))
    if isinstance(body, dict) and "error" in body:
        return str(body["error"]), str(body.get("error_description", ""))
    return "", str(body)[:200]


class _NoAuth(requests.auth.AuthBase):
    """The token request itself carries no bearer token."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class SalesforceAuth(requests.auth.AuthBase):
    """An OAuth 2.0 access token, fetched on first use, cached, and dropped on a 401.

    Args:
        http: the client used for the token request (with auth switched off for that call).
        options: the ``auth`` block: grant, client_id, client_secret, username, password, refresh_token.
        name: the connector name, for messages.
        verify: TLS verification for the token call (True, False or a CA bundle path).
    """

    def __init__(self, http: HttpClient, options: dict[str, Any], name: str, verify: bool | str = True) -> None:
        self.http = http
        self.name = name
        self.verify = verify
        o = {k: reveal(v) for k, v in (options or {}).items()}
        grant = o.get("grant") or ("password" if o.get("username") else
                                   "refresh_token" if o.get("refresh_token") else "client_credentials")
        if grant not in GRANTS:
            raise ConfigError(f"connectors.{name}.auth.grant: unknown grant '{grant}'; known: {', '.join(GRANTS)}")
        needed = {"password": ("client_id", "client_secret", "username", "password"),
                  "client_credentials": ("client_id", "client_secret"),
                  "refresh_token": ("client_id", "refresh_token")}[grant]
        missing = [k for k in needed if not o.get(k)]
        if missing:
            raise ConfigError(f"connectors.{name}.auth: the {grant} grant needs {', '.join(missing)}")
        self.grant, self.opts = grant, o
        self._lock = threading.Lock()
        self._token: str | None = None
        self.instance: str | None = None
        self.fetched = 0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r

    def token(self) -> str:
        with self._lock:
            if self._token is None:
                self._fetch()
            assert self._token is not None
            return self._token

    def instance_url(self) -> str:
        self.token()
        assert self.instance is not None
        return self.instance

    def invalidate(self) -> None:
        """Forget the token (HttpClient calls this on a 401); the next request logs in again."""
        with self._lock:
            self._token = None

    def _classify(self, resp: requests.Response) -> None:
        """A cut token body is retried like any transient failure."""
        if resp.status_code == 200:
            try:
                resp.sf_json = resp.json()
            except ValueError as exc:
                raise RetriableError(f"token response is not JSON ({exc})", connector=self.name) from exc

    def _fetch(self) -> None:
        o = self.opts
        form = {"grant_type": self.grant}
        kwargs: dict[str, Any] = {}
        if self.grant == "client_credentials":
            kwargs["auth"] = requests.auth.HTTPBasicAuth(o["client_id"], o["client_secret"])
        else:
            form.update(client_id=o["client_id"])
            if o.get("client_secret"):
                form["client_secret"] = o["client_secret"]
            if self.grant == "password":
                form.update(username=o["username"], password=o["password"] + (o.get("security_token") or ""))
            else:
                form["refresh_token"] = o["refresh_token"]
        kwargs.setdefault("auth", _NoAuth())
        if self.verify is not True:
            kwargs["verify"] = self.verify
        resp = self.http.request("POST", "/services/oauth2/token", data=form, classify=self._classify, **kwargs)
        if resp.status_code != 200:
            code, message = error_of(resp)
            raise FatalError(f"Salesforce refused the {self.grant} login: {code}: {message} "
                             f"(check connectors.{self.name}.auth)", connector=self.name)
        try:
            body = resp.sf_json
            self._token, self.instance = body["access_token"], body["instance_url"].rstrip("/")
        except (KeyError, AttributeError, TypeError) as exc:
            raise FatalError(f"token response without access_token/instance_url: {exc}", connector=self.name) from exc
        self.fetched += 1
        log.info("obtained a Salesforce access token (%s grant)", self.grant, extra={"connector": self.name})


class SalesforceClient:
    """REST calls against one org.

    Args:
        base_url: the login host (``https://login.salesforce.com``, a My Domain, or a simulator).
        api_version: e.g. ``60.0``.
        auth: the ``auth`` options block.
        verify: TLS verification: True, False or a CA bundle path.
        policy: retry/timeout policy.
        name: the connector name (log and error context).
    """

    def __init__(self, base_url: str, api_version: str, auth: dict[str, Any], *, verify: bool | str = True,
                 policy: RetryPolicy | None = None, name: str = "salesforce") -> None:
        self.name = name
        self.version = api_version.lstrip("vV")
        self.verify = verify
        self.http = HttpClient(base_url, policy=policy, verify=verify, name=name)
        self.auth = SalesforceAuth(self.http, auth, name, verify)
        self.http.session.auth = self.auth
        self.http.on_unauthorized = self.auth.invalidate
        self.api_usage: tuple[int, int] | None = None
        self._describes: dict[str, dict] = {}

    def url(self, path: str) -> str:
        """Absolute URL: instance-relative paths (``/services/...``) or data paths (``query``)."""
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith("/"):
            return self.auth.instance_url() + path
        return f"{self.auth.instance_url()}/services/data/v{self.version}/{path}"

    def _classify(self, resp: requests.Response) -> None:
        usage = re.search(r"api-usage=(\d+)/(\d+)", resp.headers.get("Sforce-Limit-Info", ""))
        if usage:
            self.api_usage = (int(usage.group(1)), int(usage.group(2)))
        if resp.status_code < 300:
            if resp.status_code == 200 and resp.content:
                try:
                    resp.sf_json = resp.json()  # parsed once here; a cut body is retried by HttpClient
                except ValueError as exc:
                    raise RetriableError(f"{resp.request.method} {resp.url}: body is not JSON ({exc})",
                                         connector=self.name) from exc
            return
        code, message = error_of(resp)
        if resp.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            if message.startswith(CONCURRENT_LIMIT):   # refused before acting: safe to send again, even a create
                raise NotCarriedOut(f"Salesforce concurrent request limit: {message}", connector=self.name)
            raise LimitExceeded(f"Salesforce API request limit reached: {message}", connector=self.name)
        if code in TRANSIENT_CODES:
            raise RetriableError(f"Salesforce {code}: {message}", connector=self.name)
        if resp.status_code == 401:
            raise FatalError(f"Salesforce refused the session after logging in again: {code}: {message}",
                             connector=self.name)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with retries; 4xx bodies other than the classified ones are returned."""
        if self.verify is not True:
            kwargs.setdefault("verify", self.verify)  # per request: REQUESTS_CA_BUNDLE would override the session
        return self.http.request(method, self.url(path), classify=self._classify, **kwargs)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        resp = self.request("GET", path, **kwargs)
        if resp.status_code != 200:
            code, message = error_of(resp)
            if path.startswith(("query", "queryAll")) and code in QUERY_CONFIG_CODES:
                raise ConfigError(f"Salesforce refused the query: {code}: {message.strip()}", connector=self.name)
            raise SalesforceApiError(f"GET {path.split('?')[0]}: HTTP {resp.status_code} {code}: {message}",
                                     resp.status_code, code, connector=self.name)
        return getattr(resp, "sf_json", None)

    def query_pages(self, soql: str, *, include_deleted: bool = False, batch_size: int | None = None) -> Iterator[dict]:
        """Pages of a SOQL query, following ``nextRecordsUrl`` until ``done``."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        first = self.get_json("queryAll" if include_deleted else "query", params={"q": soql}, headers=headers)
        yield from follow_pages(first, lambda page: None if page.get("done", True) else page.get("nextRecordsUrl"),
                                lambda url: self.get_json(url, headers=headers))

    def describe(self, obj: str) -> dict:
        """``sobjects/<obj>/describe``, cached for the life of the client."""
        if obj not in self._describes:
            try:
                self._describes[obj] = self.get_json(f"sobjects/{obj}/describe")
            except SalesforceApiError as exc:
                if exc.status == 404:
                    raise ConfigError(f"Salesforce has no object '{obj}' (check the mapping's source)",
                                      connector=self.name) from exc
                raise
        return self._describes[obj]

    def limits(self) -> dict:
        return self.get_json("limits")

    def collection(self, method: str, records: list[dict] | None = None, *, obj: str | None = None,
                   external_id: str | None = None, ids: list[str] | None = None) -> requests.Response:
        """One sObject Collections call (``allOrNone`` false); the caller reads the per-record results."""
        path = f"composite/sobjects/{obj}/{external_id}" if external_id else "composite/sobjects"
        if method == "DELETE":
            return self.request("DELETE", path, params={"ids": ",".join(ids or []), "allOrNone": "false"})
        return self.request(method, path, json={"allOrNone": False, "records": records or []})

    def close(self) -> None:
        self.http.close()
