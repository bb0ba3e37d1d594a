"""Feishu transport: the tenant access token, the error table, and the approval v4 calls (PROTOCOLS 5.2).

Every answer carries ``{"code", "msg"}``; :meth:`FeishuClient.classify` decides
what happens next inside :class:`hub.http.HttpClient`:

* 99991661 / 99991663 / 99991668 / 99991677 (missing, invalid or expired token) -> the
  token is dropped and the call repeated at once with a new one.
* HTTP 429 (or a legacy 400) with 99991400 -> retriable after ``x-ogw-ratelimit-reset``
  seconds (copied into ``Retry-After`` by a response hook, so HttpClient honours it).
* other codes on a write -> returned for the caller (the record is rejected, not the stream);
  1390003 (instance not found) on a read -> returned (the instance is skipped).
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Iterator

import requests

from connectors.dingtalk.client import text_option
from hub.errors import ConfigError, FatalError, RetriableError, SkippableRecordError
from hub.http import HttpClient, RetryPolicy, retry_attempts

log = logging.getLogger(__name__)

API_URL = "https://open.feishu.cn"
TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
TOKEN_CODES = {99991661, 99991663, 99991668, 99991677}   # 99991661/99991663 per bytebase; the rest [unverified]
THROTTLED = 99991400
NOT_FOUND = {1390003}          # instance code not found [unverified]
UUID_CONFLICT = 60012          # create: the uuid was used already [unverified]
PAGE_SIZE = 100


class AuthError(FatalError):
    """Feishu refuses the app id / secret: fix the configuration."""


class TokenExpired(RetriableError):
    """The tenant access token was refused: it was dropped, the call is repeated."""


class RecordRejected(SkippableRecordError):
    """Feishu refused one write (unknown approval, bad form, not the initiator, finished instance ...)."""


def body_of(resp: requests.Response) -> dict[str, Any]:
    """The decoded answer; a cut 2xx body is transient (RetriableError)."""
    try:
        body = resp.json()
    except ValueError:
        if 200 <= resp.status_code < 300:
            raise RetriableError(f"Feishu answer is not JSON: {resp.text[:80]!r}") from None
        return {"code": -1, "msg": f"HTTP {resp.status_code}: {resp.text[:200]}"}
    return body if isinstance(body, dict) else {"code": -1, "msg": str(body)[:200]}


def _ratelimit_hook(resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """Feishu says how long to wait in x-ogw-ratelimit-reset; HttpClient reads Retry-After."""
    reset = resp.headers.get("x-ogw-ratelimit-reset")
    if resp.status_code == 429 and reset and "Retry-After" not in resp.headers:
        resp.headers["Retry-After"] = reset
    return resp


class _Bearer(requests.auth.AuthBase):
    def __init__(self, client: "FeishuClient") -> None:
        self.client = client

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.client.token()}"
        return r


class _NoAuth(requests.auth.AuthBase):
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class FeishuClient:
    """One Feishu app (self-built, 企业自建应用): token, HTTP session and approval calls.

    Args:
        options: the connector block (app_id, app_secret, base_url, user_id_type, timeout, retries,
            backoff, verify).
        name: the connector name for logs and error context.
    """

    def __init__(self, options: dict[str, Any], name: str = "feishu") -> None:
        self.name = name
        self.app_id = text_option(options, "app_id") or text_option(options, "client_id")
        self.app_secret = text_option(options, "app_secret") or text_option(options, "client_secret")
        missing = [k for k, v in (("app_id", self.app_id), ("app_secret", self.app_secret)) if not v]
        if missing:
            raise ConfigError(f"feishu: {' and '.join(missing)} required", connector=name)
        self.user_id_type = str(options.get("user_id_type", "user_id"))
        policy = RetryPolicy(attempts=retry_attempts(options.get("retries", 5)),
                             timeout=float(options.get("timeout", 30)), backoff=float(options.get("backoff", 0.5)))
        self.http = HttpClient(text_option(options, "base_url") or API_URL, policy=policy, auth=_Bearer(self),
                               on_unauthorized=self.drop_token, verify=options.get("verify", True), name=name)
        self.http.session.hooks["response"].append(_ratelimit_hook)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.token_fetches = 0

    # -- token -----------------------------------------------------------------------------------
    def token(self) -> str:
        """The cached tenant access token, fetched when missing or about to expire."""
        with self._lock:
            if self._token and time.monotonic() < self._expires:
                return self._token
            resp = self.http.request("POST", TOKEN_PATH, auth=_NoAuth(),
                                     json={"app_id": self.app_id, "app_secret": self.app_secret},
                                     classify=self._classify_token)
            body = body_of(resp)
            ttl = float(body.get("expire") or 7200)
            self._token = str(body["tenant_access_token"])
            self._expires = time.monotonic() + max(0.0, ttl - min(300.0, ttl / 10))
            self.token_fetches += 1
            log.info("Feishu tenant access token obtained (valid %ss)", ttl, extra={"connector": self.name})
            return self._token

    def drop_token(self) -> None:
        with self._lock:
            self._token = None

    def _classify_token(self, resp: requests.Response) -> None:
        body = body_of(resp)
        if body.get("code") == 0 and body.get("tenant_access_token"):
            return
        if body.get("code") == THROTTLED:
            raise RetriableError("Feishu throttled the token request", retry_after=1.0, connector=self.name)
        raise AuthError(f"Feishu refused the app credentials for {self.app_id}: {body.get('code')} {body.get('msg')}",
                        connector=self.name, http_status=resp.status_code)

    # -- errors ----------------------------------------------------------------------------------
    def classify(self, resp: requests.Response, *, write: bool = False) -> None:
        """Raise per the module docstring's table; return for success, record errors and not-found."""
        body = body_of(resp)
        code = body.get("code")
        if code == 0 and resp.status_code < 300:
            return
        where = {"connector": self.name, "code": code}
        if code in TOKEN_CODES:
            self.drop_token()
            raise TokenExpired(f"Feishu refused the access token: {body.get('msg')}", retry_after=0.0, **where)
        if code == THROTTLED:
            wait = resp.headers.get("Retry-After") or resp.headers.get("x-ogw-ratelimit-reset")
            raise RetriableError(f"Feishu throttled the call: {body.get('msg')}",
                                 retry_after=float(wait) if wait else 1.0, **where)
        if write or code in NOT_FOUND:
            return
        raise FatalError(f"Feishu error HTTP {resp.status_code} code {code}: {body.get('msg')}", **where)

    def call(self, method: str, path: str, *, write: bool = False, **kwargs: Any) -> dict[str, Any]:
        """One approval call; the decoded body (``code`` 0 unless ``write`` or not-found)."""
        resp = self.http.request(method, path, classify=lambda r: self.classify(r, write=write), **kwargs)
        try:
            body = resp.json()
        except ValueError as exc:  # a cut body: transient
            raise RetriableError(f"{method} {path}: body is not JSON ({exc})", connector=self.name) from exc
        return body if isinstance(body, dict) else {"code": -1, "msg": str(body)[:200]}

    # -- approval v4 ----------------------------------------------------------------------------
    def create_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /approval/v4/instances``; the whole answer (the caller reads ``code``)."""
        return self.call("POST", "/open-apis/approval/v4/instances", json=body, write=True)

    def get_instance(self, instance_code: str) -> dict[str, Any] | None:
        """The instance's ``data`` with ``instance_code`` set; None when it does not exist."""
        body = self.call("GET", f"/open-apis/approval/v4/instances/{instance_code}",
                         params={"user_id_type": self.user_id_type})
        if body.get("code") != 0:
            return None
        data = body.get("data")
        if not isinstance(data, dict):
            raise FatalError(f"instance {instance_code} answered without data: {str(body)[:200]}", connector=self.name)
        return data

    def list_codes(self, approval_code: str, start: datetime, end: datetime) -> Iterator[str]:
        """Instance codes of a definition started in ``[start, end]``, following page_token."""
        params: dict[str, Any] = {"approval_code": approval_code, "start_time": int(start.timestamp() * 1000),
                                  "end_time": int(end.timestamp() * 1000), "page_size": PAGE_SIZE}
        seen: set[str] = set()
        while True:
            data = self.call("GET", "/open-apis/approval/v4/instances", params=params).get("data") or {}
            yield from (str(c) for c in data.get("instance_code_list") or [])
            token = data.get("page_token")
            if not data.get("has_more") or not token:
                return
            if token in seen:
                raise FatalError(f"paging loop: page_token {token!r} returned twice", connector=self.name)
            seen.add(token)
            params["page_token"] = token

    def cancel(self, approval_code: str, instance_code: str, user_id: str) -> None:
        """Withdraw a pending instance as its initiator.

        Raises:
            RecordRejected: Feishu refused (not pending, not the initiator ...).
        """
        body = self.call("POST", "/open-apis/approval/v4/instances/cancel", write=True,
                         params={"user_id_type": self.user_id_type},
                         json={"approval_code": approval_code, "instance_code": instance_code, "user_id": user_id})
        if body.get("code") != 0:
            raise RecordRejected(f"Feishu refused to cancel {instance_code}: {body.get('code')} {body.get('msg')}",
                                 connector=self.name)

    def close(self) -> None:
        self.http.close()
