"""Auth styles of the generic REST simulator, chosen per route: ``/auth/<style>/...``.

Styles and what they accept (defaults of ``triad simulate``):

- ``bearer``: ``Authorization: Bearer <client secret>`` or an issued OAuth token
- ``apikey``: header ``X-API-Key: <client secret>``; ``apikey_query``: ``?api_key=<client secret>``
- ``basic``: HTTP basic with the user and password
- ``oauth2``: only tokens from ``POST /oauth/token`` (client credentials, in a Basic header or
  the form; ``grant_type=refresh_token`` too), refused once expired (``--token-ttl``)
- ``hmac``: ``X-Key-Id: <client id>``, ``X-Timestamp: <unix seconds>`` (within 300 s) and
  ``X-Signature``: hex HMAC-SHA256 with the client secret of
  ``METHOD\\nPATH\\nCANONICAL_QUERY\\nTIMESTAMP\\nSHA256_HEX(BODY)``, where the canonical query
  is the parameters sorted by name then value, RFC 3986 percent-encoded, joined with ``&``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, quote

from connectors.simkit import SimOptions

STYLES = ("bearer", "apikey", "apikey_query", "basic", "oauth2", "hmac")
SKEW_SECONDS = 300


def canonical_query(raw_query: str) -> str:
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)


def _basic(headers: dict[str, str]) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    if not value.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


class Tokens:
    """Issued OAuth access and refresh tokens, with expiry."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.lock = threading.Lock()
        self.access: dict[str, float] = {}
        self.refresh: set[str] = set()
        self.stats = {"issued": 0, "refreshed": 0}

    def valid(self, token: str) -> bool:
        with self.lock:
            expires = self.access.get(token)
        return expires is not None and time.time() < expires

    def issue(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """``POST /oauth/token``: (status, body)."""
        o = self.options
        cred = _basic(headers) or (form.get("client_id", ""), form.get("client_secret", ""))
        if cred != (o.client_id, o.client_secret):
            return 401, {"error": "invalid_client", "error_description": "client authentication failed"}
        grant = form.get("grant_type")
        with self.lock:
            if grant == "refresh_token":
                if form.get("refresh_token") not in self.refresh:
                    return 400, {"error": "invalid_grant", "error_description": "unknown refresh token"}
                refresh = form["refresh_token"]
                self.stats["refreshed"] += 1
            elif grant == "client_credentials":
                refresh = secrets.token_hex(16)
                self.refresh.add(refresh)
            else:
                return 400, {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r}"}
            ttl = o.token_ttl if o.token_ttl is not None else 3600
            token = secrets.token_hex(16)
            self.access[token] = time.time() + ttl
            self.stats["issued"] += 1
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": ttl, "refresh_token": refresh,
                     "scope": form.get("scope", "crm")}


def check(style: str, method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes,
          options: SimOptions, tokens: Tokens) -> str | None:
    """None when the request carries valid credentials for ``style``, else why not."""
    secret = options.client_secret
    bearer = headers.get("authorization", "")
    token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
    if style == "bearer":
        return None if token and (token == secret or tokens.valid(token)) else "bearer token missing or invalid"
    if style == "oauth2":
        return None if token and tokens.valid(token) else "access token missing, invalid or expired"
    if style == "apikey":
        return None if headers.get("x-api-key") == secret else "X-API-Key missing or invalid"
    if style == "apikey_query":
        return None if dict(parse_qsl(raw_query)).get("api_key") == secret else "api_key missing or invalid"
    if style == "basic":
        return None if _basic(headers) == (options.user, options.password) else "basic credentials invalid"
    if style == "hmac":
        stamp, given = headers.get("x-timestamp", ""), headers.get("x-signature", "")
        if headers.get("x-key-id") != options.client_id:
            return "X-Key-Id missing or unknown"
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > SKEW_SECONDS:
            return "X-Timestamp missing or outside 300 seconds"
        canonical = "\n".join([method, path, canonical_query(raw_query), stamp, hashlib.sha256(body).hexdigest()])
        expected = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, given) else "X-Signature does not match"
    return f"unknown auth style '{style}'; known: {', '.join(STYLES)}"
