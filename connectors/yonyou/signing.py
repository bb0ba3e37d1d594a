"""YonBIP self-built app token signature, shared by the client and the simulator (PROTOCOLS 4.1).

signature = URLEncode(Base64(HmacSHA256(parameterMap))), where parameterMap is
every parameter except ``signature``, sorted by name, concatenated as
name + value with no separator, and the HMAC key is the app secret. The
URL-encoding is the query string's own: a client passes the base64 text as a
query parameter and the HTTP library encodes it once.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping


def sign_string(params: Mapping[str, object]) -> str:
    """The documented string to sign, e.g. ``appKey41832a...timestamp1568098531823``."""
    return "".join(f"{k}{params[k]}" for k in sorted(params) if k != "signature")


def token_signature(params: Mapping[str, object], app_secret: str) -> str:
    """base64(HMAC-SHA256(sorted params, app secret)) — URL-encode it once in the query string."""
    digest = hmac.new(app_secret.encode("utf-8"), sign_string(params).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(params: Mapping[str, str], app_secret: str) -> bool:
    """Whether the ``signature`` parameter signs the other parameters with ``app_secret``."""
    expected = token_signature(params, app_secret)
    return hmac.compare_digest(str(params.get("signature", "")), expected)
