"""Kingdee K3Cloud signatures, shared by the client and the simulator (PROTOCOLS 3.2).

Three pieces of the official SDK 8.x algorithm (``k3cloud_webapi_sdk``
``WebApiClient.BuildHeader``, ``util/encode_util.py``, ``util/hmac_util.py``):

* every signature is the base64 of the *lowercase hex* HMAC-SHA256 digest;
* an AppId of the form ``<client_id>_<encoded secret>`` carries a second
  secret, XOR-scrambled with a fixed code and base64-encoded;
* ``LoginBySign`` signs ``sha256(concat(sorted([acct, user, appId, appSecret, ts])))``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import quote

# The SDK's scramble code ("0054s397" "p6234378" "o09pn7q3" "r5qropr7", rot13'd);
# the random digit it puts after each 8-char group is skipped when the key is built.
_XOR_GROUPS = ("0054s397", "p6234378", "o09pn7q3", "r5qropr7")


def _rot13(text: str) -> str:
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr((ord(ch) - 97 + 13) % 26 + 97))
        elif "A" <= ch <= "Z":
            out.append(chr((ord(ch) - 65 + 13) % 26 + 65))
        else:
            out.append(ch)
    return "".join(out)


_XOR_KEY = _rot13("".join(_XOR_GROUPS)).encode("utf-8")


def _xor(data: bytes) -> bytes:
    return bytes(b ^ _XOR_KEY[i] for i, b in enumerate(data))


def decode_app_secret(encoded: str) -> str:
    """The client secret hidden in the second half of an SDK AppId ('' unless 32 chars, as the SDK does)."""
    if len(encoded) != 32:
        return ""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        return ""
    return base64.b64encode(_xor(raw)).decode("ascii")


def encode_app_secret(client_secret: str) -> str:
    """Inverse of :func:`decode_app_secret` (XOR is its own inverse); for building test AppIds."""
    return base64.b64encode(_xor(base64.b64decode(client_secret))).decode("ascii")


def hmac_sha256_b64hex(content: str, key: str) -> str:
    """base64(lowercase hex(HMAC-SHA256(content, key))) — the SDK's ``HmacSHA256``."""
    digest = hmac.new(key.encode("utf-8"), content.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode("utf-8")).decode("ascii")


def split_app_id(app_id: str) -> tuple[str, str]:
    """(client id, client secret) from an AppId; both empty unless it has exactly one '_' (SDK rule)."""
    parts = app_id.split("_")
    if len(parts) != 2:
        return "", ""
    return parts[0], decode_app_secret(parts[1])


def api_sign_string(path: str, nonce: str, timestamp: str) -> str:
    """The string under ``X-Api-Signature``: method, %-quoted path with '/' as %2F, signed headers."""
    quoted = quote(path, encoding="utf-8").replace("/", "%2F")
    return f"POST\n{quoted}\n\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n"


def app_data(acct_id: str, user: str, lcid: int | str, org_num: int | str = 0) -> str:
    """The ``X-Kd-Appdata`` payload before base64: ``acct,user,lcid,org``."""
    return f"{acct_id},{user},{lcid},{org_num}"


def signed_headers(path: str, *, acct_id: str, user: str, app_id: str, app_secret: str,
                   lcid: int = 2052, org_num: int = 0, now: float | None = None) -> dict[str, str]:
    """The SDK 8.x per-request headers for ``path`` (the URL path, e.g. ``/k3cloud/X.common.kdsvc``)."""
    ts = str(int(now if now is not None else time.time()))
    client_id, client_sec = split_app_id(app_id)
    data = app_data(acct_id, user, lcid, org_num)
    return {
        "X-Api-ClientID": client_id,
        "X-Api-Auth-Version": "2.0",
        "x-api-timestamp": ts,
        "x-api-nonce": ts,
        "x-api-signheaders": "x-api-timestamp,x-api-nonce",
        "X-Api-Signature": hmac_sha256_b64hex(api_sign_string(path, ts, ts), client_sec),
        "X-Kd-Appkey": app_id,
        "X-Kd-Appdata": base64.b64encode(data.encode("utf-8")).decode("ascii"),
        "X-Kd-Signature": hmac_sha256_b64hex(app_id + data, app_secret),
    }


@dataclass(frozen=True)
class SignedIdentity:
    """Who a verified set of SDK headers speaks for."""

    acct_id: str
    user: str
    lcid: str
    org_num: str
    app_id: str


def verify_signed_headers(headers: dict[str, str], path: str, *, app_id: str,
                          app_secret: str) -> SignedIdentity | None:
    """Check SDK 8.x headers against the registered app; None when they do not verify.

    ``headers`` keys must be lower-case. The acct id and user are returned for the
    caller to check: the real server answers a bad acct id differently from a
    bad user (PROTOCOLS 3.2).
    """
    got_app = headers.get("x-kd-appkey", "")
    raw_data = headers.get("x-kd-appdata", "")
    if not got_app or not raw_data or got_app != app_id:
        return None
    try:
        data = base64.b64decode(raw_data, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(headers.get("x-kd-signature", ""), hmac_sha256_b64hex(got_app + data, app_secret)):
        return None
    client_id, client_sec = split_app_id(got_app)
    ts, nonce = headers.get("x-api-timestamp", ""), headers.get("x-api-nonce", "")
    expected = hmac_sha256_b64hex(api_sign_string(path, nonce, ts), client_sec)
    if headers.get("x-api-clientid", "") != client_id or not hmac.compare_digest(
            headers.get("x-api-signature", ""), expected):
        return None
    parts = data.split(",")
    if len(parts) != 4:
        return None
    return SignedIdentity(acct_id=parts[0], user=parts[1], lcid=parts[2], org_num=parts[3], app_id=got_app)


def login_sign(acct_id: str, user: str, app_id: str, app_secret: str, timestamp: int | str) -> str:
    """``LoginBySign`` signature: hex SHA-256 of the sorted, concatenated parameters."""
    parts = sorted([acct_id, user, app_id, app_secret, str(timestamp)])
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()
