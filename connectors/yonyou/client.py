"""Yonyou YonBIP transport: gateway discovery, the signed token, and the one error table.

Every business call carries ``access_token`` in the query string. YonBIP
answers most errors with HTTP 200 and a body ``code``; :data:`ERROR_TABLE`
decides what happens next and :func:`classify` applies it inside
:class:`hub.http.HttpClient`. An invalid or expired token (310001 / 310036)
is replaced once, transparently, by :meth:`YonyouClient.call`.
"""
from __future__ import annotations

import enum
import json
import logging
import time
from typing import Any

import requests

from connectors.yonyou import signing
from hub.errors import ConfigError, FatalError, LimitExceeded, RetriableError
from hub.http import HttpClient, RetryPolicy, retry_attempts
from hub.secrets import reveal

log = logging.getLogger(__name__)

TOKEN_PATH = "/open-auth/selfAppAuth/base/v1/getAccessToken"
DISCOVERY_PATH = "/open-auth/dataCenter/getGatewayAddress"
SUCCESS_CODES = {"200", "00000"}


class Outcome(enum.Enum):
    """What happens after an error body, by :data:`ERROR_TABLE`."""

    NEW_TOKEN = "fetch a new token, then repeat the request once"
    RETRY = "retriable: back off and retry"
    LIMIT = "request budget spent: stop, resume next run"
    RECORD = "the record is rejected: reported in its WriteResult"
    FATAL = "the stream cannot go on"


# body code -> what happens next (PROTOCOLS 4.2). Codes are compared as strings.
ERROR_TABLE: dict[str, Outcome] = {
    "310001": Outcome.NEW_TOKEN,   # access_token不能为空
    "310036": Outcome.NEW_TOKEN,   # 非法token (invalid or expired)
    "10018": Outcome.FATAL,        # 应用不存在或appKey已停用
    "10019": Outcome.FATAL,        # bad token signature [unverified code]
    "310037": Outcome.FATAL,       # API未被授权
    "310404": Outcome.FATAL,       # API not registered on the gateway (HTTP 404)
    "310046": Outcome.RETRY,       # throttled [unverified code]
    "310047": Outcome.LIMIT,       # free-call quota spent [unverified code]
    "999": Outcome.RECORD,         # 服务端逻辑异常 / business validation
    "0": Outcome.RECORD,           # MDD create failure ({"message", "code": 0, "data": null})
}


class TokenRejected(FatalError):
    """310001 / 310036: fetch a new token and repeat (once)."""


class AuthError(FatalError):
    """The app key / secret are refused: nothing goes on until the configuration is fixed."""


def classify(resp: requests.Response, *, write: bool = False, connector: str = "yonyou") -> None:
    """Raise what :data:`ERROR_TABLE` says; return quietly for success and for record errors of a write."""
    try:
        body = json.loads(resp.text)
    except ValueError as exc:
        if resp.status_code != 200:
            raise FatalError(f"HTTP {resp.status_code}: {resp.text[:200]}", connector=connector) from exc
        raise RetriableError(f"body is not JSON ({exc})", connector=connector) from exc
    code = str(body.get("code")) if isinstance(body, dict) else ""
    if resp.status_code == 200 and code in SUCCESS_CODES:
        return
    message = body.get("message") if isinstance(body, dict) else str(body)[:200]
    outcome = ERROR_TABLE.get(code, Outcome.RECORD if write else Outcome.FATAL)
    if resp.status_code != 200 and outcome is not Outcome.FATAL:
        outcome = Outcome.FATAL
    where = {"connector": connector, "code": code}
    if outcome is Outcome.NEW_TOKEN:
        raise TokenRejected(f"token rejected: {message}", **where)
    if outcome is Outcome.RETRY:
        raise RetriableError(f"YonBIP throttled the call: {message}", **where)
    if outcome is Outcome.LIMIT:
        raise LimitExceeded(f"YonBIP call quota spent: {message}", **where)
    if outcome is Outcome.RECORD and write:
        return
    if code in ("10018", "10019"):
        raise AuthError(f"YonBIP refused the app credentials: {message}", **where)
    raise FatalError(f"YonBIP error {code}: {message} (HTTP {resp.status_code})", **where)


def _text(options: dict[str, Any], key: str) -> str | None:
    value = reveal(options.get(key))
    return None if value in (None, "") else str(value)


class YonyouClient:
    """One YonBIP tenant: gateway URLs, token cache, calls by API path.

    Args:
        options: the connector block (base_url, app_key, app_secret, tenant_id, gateway_url,
            token_url, timeout, retries, verify).
        name: the connector name for logs and error context.
    """

    def __init__(self, options: dict[str, Any], name: str = "yonyou") -> None:
        self.name = name
        self.base_url = _text(options, "base_url")
        self.app_key = _text(options, "app_key")
        self.app_secret = _text(options, "app_secret")
        self.tenant_id = _text(options, "tenant_id") or _text(options, "tenant")
        missing = [k for k in ("base_url", "app_key", "app_secret") if not getattr(self, k)]
        if missing:
            raise ConfigError(f"yonyou: {', '.join(missing)} required", connector=name)
        self.gateway_url = _text(options, "gateway_url")
        self.token_url = _text(options, "token_url")
        policy = RetryPolicy(attempts=retry_attempts(options.get("retries", 5)),
                             timeout=float(options.get("timeout", 30)), backoff=float(options.get("backoff", 0.5)))
        self.http = HttpClient(self.base_url or "", policy=policy, verify=options.get("verify", True), name=name)
        self._token: str | None = None
        self._expires = 0.0
        self.tokens_fetched = 0

    def _discover(self) -> None:
        """Gateway and token URLs: configured, discovered from the tenant id, or the base URL itself."""
        if self.gateway_url and self.token_url:
            return
        if self.tenant_id:
            resp = self.http.request("GET", DISCOVERY_PATH, params={"tenantId": self.tenant_id},
                                     classify=lambda r: classify(r, connector=self.name))
            data = resp.json().get("data") or {}
            self.gateway_url = self.gateway_url or data.get("gatewayUrl")
            self.token_url = self.token_url or data.get("tokenUrl")
        self.gateway_url = (self.gateway_url or self.base_url or "").rstrip("/")
        self.token_url = (self.token_url or self.base_url or "").rstrip("/")

    def token(self) -> str:
        """A valid access token, fetched (signed with the app secret) when none is cached or it is about to expire.

        Raises:
            AuthError: the app key or signature is refused.
        """
        if self._token and time.monotonic() < self._expires:
            return self._token
        self._discover()
        params: dict[str, str] = {"appKey": self.app_key or "", "timestamp": str(int(time.time() * 1000))}
        params["signature"] = signing.token_signature(params, self.app_secret or "")
        resp = self.http.request("GET", f"{self.token_url}{TOKEN_PATH}", params=params,
                                 classify=lambda r: classify(r, connector=self.name))
        data = resp.json().get("data") or {}
        token, expire = data.get("access_token"), float(data.get("expire") or 0)
        if not token:
            raise AuthError("token response carries no access_token", connector=self.name)
        self._token = token
        self._expires = time.monotonic() + max(0.0, expire - min(60.0, expire * 0.1))  # renew a little early
        self.tokens_fetched += 1
        log.info("fetched a YonBIP access token (expires in %ss)", int(expire), extra={"connector": self.name})
        return token

    def forget_token(self) -> None:
        """Drop the cached token: the next call fetches a new one."""
        self._token = None

    def call(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
             write: bool = False) -> Any:
        """Call ``{gateway}{path}``; the decoded body. Record errors of a write come back in the body."""
        for attempt in (1, 2):
            token = self.token()
            try:
                resp = self.http.request(method, f"{self.gateway_url}{path}",
                                         params={**(params or {}), "access_token": token}, json=body,
                                         classify=lambda r: classify(r, write=write, connector=self.name))
            except TokenRejected as exc:
                if attempt == 2:
                    raise AuthError(f"a fresh token was rejected too: {exc.message}", connector=self.name) from exc
                log.info("YonBIP token rejected; fetching a new one", extra={"connector": self.name})
                self._token = None
                continue
            return json.loads(resp.text)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()
