"""Auth styles of the generic REST connector, each a ``requests.auth.AuthBase``.

Bearer token, API key (header or query), HTTP basic, OAuth 2.0 client
credentials (token cached until it expires, refreshed with the refresh token
when the server gave one, fetched again on a 401), and HMAC-signed requests
whose canonical string is a template in the API description. Secret values
are revealed only here, at the point of use, and never logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests

from connectors.rest.paths import render
from connectors.rest.spec import (ApiKeyAuth, AuthSpec, BasicAuth, BearerAuth, HmacAuth, NoAuth,
                                  OAuth2Auth)
from hub.errors import FatalError, RetriableError
from hub.http import HttpClient
from hub.secrets import reveal

log = logging.getLogger(__name__)


class _NoAuth(requests.auth.AuthBase):
    """The token request itself carries no bearer token."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class HeaderAuth(requests.auth.AuthBase):
    """A fixed credential in a header: ``Authorization: Bearer <token>``, ``X-API-Key: <key>``."""

    def __init__(self, header: str, value: str, prefix: str = "") -> None:
        self.header, self.value = header, f"{prefix} {value}" if prefix else value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers[self.header] = self.value
        return r


def _add_query(url: str, pairs: list[tuple[str, str]]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + pairs
    return urlunsplit(parts._replace(query=urlencode(query)))


class QueryKeyAuth(requests.auth.AuthBase):
    """An API key as a query parameter (``?api_key=...``)."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.url = _add_query(r.url, [(self.name, self.value)])
        return r


class OAuth2ClientCredentials(requests.auth.AuthBase):
    """OAuth 2.0 client credentials: a cached access token, refreshed before it expires.

    Args:
        spec: the merged auth settings.
        http: the connector's client; the token request goes through it (retries, TLS settings).
        name: the connector name, for messages.
        clock: seconds now (replaced in tests).
    """

    def __init__(self, spec: OAuth2Auth, http: HttpClient, name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec, self.http, self.name, self.clock = spec, http, name, clock
        self._lock = threading.RLock()     # a 401 on the token call itself re-enters through invalidate()
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh: str | None = reveal(spec.refresh_token) or None
        self.fetched = 0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.token()
        r.headers[self.spec.header] = f"{self.spec.prefix} {token}" if self.spec.prefix else token
        return r

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._expires_at - self.spec.leeway_seconds:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        """Forget the token (HttpClient calls this on a 401); the next request gets a new one."""
        with self._lock:
            self._token = None

    def _post(self, form: dict[str, str]) -> requests.Response:
        s = self.spec
        kwargs: dict[str, Any] = {"auth": _NoAuth()}
        client_id, secret = str(reveal(s.client_id)), str(reveal(s.client_secret))
        if s.client_auth == "basic":
            kwargs["auth"] = requests.auth.HTTPBasicAuth(client_id, secret)
        else:
            form = {**form, "client_id": client_id, "client_secret": secret}
        return self.http.request("POST", s.token_url, data=form, headers={"Accept": "application/json"}, **kwargs)

    def _fetch(self) -> None:
        s = self.spec
        resp = None
        if self._refresh:
            resp = self._post({"grant_type": "refresh_token", "refresh_token": self._refresh})
            if resp.status_code != 200:   # a refresh token that expired: start over with the client's credentials
                log.info("refresh token refused (HTTP %s); requesting a new token", resp.status_code,
                         extra={"connector": self.name})
                self._refresh, resp = None, None
        if resp is None:
            form = {"grant_type": "client_credentials", **s.extra}
            if s.scope:
                form["scope"] = s.scope
            if s.audience:
                form["audience"] = s.audience
            resp = self._post(form)
        if resp.status_code != 200:
            raise FatalError(f"the token endpoint refused the client credentials: HTTP {resp.status_code} "
                             f"{resp.text[:200]} (check connectors.{self.name}.auth)", connector=self.name)
        try:
            body = resp.json()
            self._token = str(body["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RetriableError(f"token response without access_token: {exc}", connector=self.name) from exc
        self._expires_at = self.clock() + float(body.get("expires_in") or 3600)
        self._refresh = body.get("refresh_token") or self._refresh
        self.fetched += 1
        log.info("obtained an access token (expires in %ss)", body.get("expires_in"), extra={"connector": self.name})


def canonical_query(query: str) -> str:
    """Query parameters sorted by name then value, percent-encoded (RFC 3986): signers agree on it."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


class HmacSigner(requests.auth.AuthBase):
    """Signs each request: HMAC of the canonical string (a template), placed in headers or the query.

    Placeholders of the canonical string: method, path, query (canonical), timestamp, nonce,
    body, body_sha256, body_md5, content_type, host, key_id; headers and query may add signature.
    """

    def __init__(self, spec: HmacAuth, clock: Callable[[], float] = time.time) -> None:
        self.spec, self.clock = spec, clock
        self.key_id, self.secret = str(reveal(spec.key_id)), str(reveal(spec.secret)).encode()

    def _timestamp(self) -> str:
        now = self.clock()
        if self.spec.timestamp == "unix_ms":
            return str(int(now * 1000))
        if self.spec.timestamp == "iso":
            return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return str(int(now))

    def context(self, r: requests.PreparedRequest) -> dict[str, Any]:
        parts = urlsplit(r.url)
        body = r.body or b""
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        return {"method": (r.method or "GET").upper(), "path": parts.path or "/",
                "query": canonical_query(parts.query), "timestamp": self._timestamp(), "nonce": uuid.uuid4().hex,
                "body": raw.decode("utf-8", "replace"), "body_sha256": hashlib.sha256(raw).hexdigest(),
                "body_md5": hashlib.md5(raw).hexdigest(), "content_type": r.headers.get("Content-Type", ""),
                "host": parts.netloc, "key_id": self.key_id}

    def sign(self, canonical: str) -> str:
        digest = hmac.new(self.secret, canonical.encode("utf-8"), getattr(hashlib, self.spec.algorithm)).digest()
        return digest.hex() if self.spec.encoding == "hex" else base64.b64encode(digest).decode()

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        ctx = self.context(r)
        ctx["signature"] = self.sign(str(render(self.spec.canonical, ctx)))
        for name, template in self.spec.headers.items():
            r.headers[name] = str(render(template, ctx))
        if self.spec.query:
            r.url = _add_query(r.url, [(k, str(render(v, ctx))) for k, v in self.spec.query.items()])
        return r


def build_auth(spec: AuthSpec, http: HttpClient, name: str) -> tuple[requests.auth.AuthBase | None,
                                                                      Callable[[], None] | None]:
    """The AuthBase for a merged auth spec, and the hook to call on a 401 (if the style can re-authenticate)."""
    if isinstance(spec, BearerAuth):
        return HeaderAuth(spec.header, str(reveal(spec.token)), spec.prefix), None
    if isinstance(spec, ApiKeyAuth):
        if spec.in_ == "query":
            return QueryKeyAuth(spec.name, str(reveal(spec.api_key))), None
        return HeaderAuth(spec.name, str(reveal(spec.api_key)), spec.prefix), None
    if isinstance(spec, BasicAuth):
        return requests.auth.HTTPBasicAuth(str(reveal(spec.username)), str(reveal(spec.password))), None
    if isinstance(spec, OAuth2Auth):
        auth = OAuth2ClientCredentials(spec, http, name)
        return auth, auth.invalidate
    if isinstance(spec, HmacAuth):
        return HmacSigner(spec), None
    assert isinstance(spec, NoAuth)
    return None, None
