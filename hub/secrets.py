"""Secrets in config: typed, never printed, never stored.

Values under keys that look secret (password, secret, token, api key ...),
except the few settings named like one (:data:`SETTING_KEYS`), are wrapped
in :class:`Secret` when the config is loaded. ``str()`` and ``repr()`` give
``***``; connectors call :func:`reveal` at the point of use.
A logging filter masks every loaded secret value wherever it appears.
"""
from __future__ import annotations

import logging
import re
from typing import Any

SECRET_KEY = re.compile(r"(pass(word)?|secret|token|api[_-]?key|app[_-]?secret|private[_-]?key|signing[_-]?key|aes[_-]?key|credential)",
                        re.IGNORECASE)
MASK = "***"
# keys SECRET_KEY matches that name a setting, not a credential: their values stay plain text
SETTING_KEYS = frozenset({"token_api"})     # DingTalk: which token endpoint, "new" or "legacy"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def reveal(value: Any) -> Any:
    """The plain value of a Secret (anything else is returned unchanged)."""
    return value.reveal() if isinstance(value, Secret) else value


def wrap_secrets(data: Any, key: str = "") -> Any:
    """Wrap values under secret-looking keys, recursively."""
    if isinstance(data, dict):
        return {k: wrap_secrets(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [wrap_secrets(v, key) for v in data]
    if isinstance(data, (str, int)) and not isinstance(data, bool) and is_secret_key(key):
        return Secret(str(data)) if str(data) else data
    return data


def is_secret_key(key: str) -> bool:
    """Whether a value under ``key`` is a credential (wrapped, masked, kept out of logs)."""
    return bool(key) and key.lower() not in SETTING_KEYS and SECRET_KEY.search(key) is not None


def redact(data: Any) -> Any:
    """A printable copy: every Secret becomes ``***``."""
    if isinstance(data, dict):
        return {k: redact(v) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    if isinstance(data, Secret):
        return MASK
    return data


def masked_url(url: str) -> str:
    """A URL fit to print: the password of its user info and the values of secret-looking query
    parameters (token, key, secret, password, signature ...) as ``***``."""
    url = re.sub(r"//([^:/@?#]*):[^@/?#]*@", rf"//\1:{MASK}@", url)
    return _SECRET_PARAM.sub(rf"\1={MASK}", url)


_SECRET_PARAM = re.compile(r"([?&](?:[\w.-]*(?:token|secret|key|passw(?:or)?d|pwd|signature|sig)[\w.-]*))=[^&#]*",
                           re.IGNORECASE)


def secret_values(data: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(data, dict):
        for v in data.values():
            found |= secret_values(v)
    elif isinstance(data, list):
        for v in data:
            found |= secret_values(v)
    elif isinstance(data, Secret) and len(data.reveal()) >= 3:
        found.add(data.reveal())
    return found


# credentials minted at run time travel in query strings, and HTTP libraries log URLs at debug level
# (YonBIP's access_token, a signed request's signature): no config holds them to mask by value
QUERY_CREDENTIAL = re.compile(r"([?&](?:access_token|accesstoken|token|signature|sign|sig|client_secret|app_secret"
                              r"|appsecret|password|secret)=)[^&\s\"']+", re.IGNORECASE)


class RedactingFilter(logging.Filter):
    """Masks known secret values, and credentials in URLs' query strings, in every log record that passes
    through a handler."""

    def __init__(self, values: set[str]) -> None:
        super().__init__()
        self.values = sorted(values, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        masked = msg
        for v in self.values:
            masked = masked.replace(v, MASK)
        if "=" in masked:
            masked = QUERY_CREDENTIAL.sub(lambda m: m.group(1) + MASK, masked)
        if masked != msg:     # an untouched record keeps its args
            record.msg, record.args = masked, ()
        return True
