"""DingTalk transport: the access token, the error table, and the workflow calls (PROTOCOLS 5.1).

The new API (``api.dingtalk.com``) carries the token in
``x-acs-dingtalk-access-token`` and answers errors with a non-2xx status and
``{code, message, requestid}``; the legacy token endpoint (``oapi``) answers
HTTP 200 with ``errcode``/``errmsg``. :meth:`DingTalkClient.classify` decides
what happens next for both, inside :class:`hub.http.HttpClient`:

* 401 -> the token is dropped and fetched again once (HttpClient's re-auth hook); a second 401 is fatal.
* 403 ``...QpsLimit...`` (new API), errcode 90002 / 90018 / 90019 (legacy) -> retriable after ``Retry-After``.
* the anti-abuse ``{"punish": "deny", "wait": N}`` page -> LimitExceeded: the stream stops, resumes next run.
* errcode 40001 / 40014 / 42001 (legacy: bad or expired token) -> token dropped, retried at once.
* other 4xx on a write -> returned for the caller: the record is rejected, not the stream.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any, Iterator

import requests

from hub.errors import ConfigError, FatalError, LimitExceeded, RetriableError, SkippableRecordError
from hub.http import HttpClient, NotCarriedOut, RetryPolicy, retry_attempts
from hub.secrets import reveal

log = logging.getLogger(__name__)

API_URL = "https://api.dingtalk.com"
OAPI_URL = "https://oapi.dingtalk.com"
PAGE_SIZE = 20                     # ListProcessInstanceIds maxResults limit [unverified]
THROTTLE_ERRCODES = {90002, 90018, 90019}   # legacy throttling (community answers, PROTOCOLS 5.1) [unverified]
TOKEN_ERRCODES = {40001, 40014, 42001}      # legacy: bad / expired access_token [unverified]
NOT_FOUND_CODES = {"InvalidProcessInstanceId", "processInstanceId.notExist"}


class AuthError(FatalError):
    """DingTalk refuses the app key / secret, or a fresh token: fix the configuration."""


class TokenExpired(NotCarriedOut):
    """A legacy errcode says the token is bad or expired: it was dropped, the call is repeated."""


class RecordRejected(SkippableRecordError):
    """DingTalk refused one write (unknown template, missing form value, finished instance ...)."""


def text_option(options: dict[str, Any], key: str, default: Any = None) -> Any:
    value = reveal(options.get(key, default))
    return value if value is None else str(value)


class _TokenAuth(requests.auth.AuthBase):
    """Puts the current token on every new-API request (re-applied on each retry)."""

    def __init__(self, client: "DingTalkClient") -> None:
        self.client = client

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["x-acs-dingtalk-access-token"] = self.client.token()
        return r


class _NoAuth(requests.auth.AuthBase):
    """For the token endpoints themselves (the session's token auth must not apply)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def error_of(resp: requests.Response) -> tuple[str, str, Any]:
    """(code, message, decoded body) of an error answer, whichever API generation sent it."""
    try:
        body = resp.json()
    except ValueError:
        return "", resp.text[:200], None
    if not isinstance(body, dict):
        return "", str(body)[:200], body
    code = body.get("code", body.get("Code", body.get("errcode", "")))
    message = body.get("message", body.get("Message", body.get("errmsg", "")))
    return str(code), str(message), body


class DingTalkClient:
    """One DingTalk app: token, HTTP session and the workflow calls.

    Args:
        options: the connector block (app_key, app_secret, base_url, oapi_url, token_api new|legacy,
            timeout, retries, backoff, verify).
        name: the connector name for logs and error context.
    """

    def __init__(self, options: dict[str, Any], name: str = "dingtalk") -> None:
        self.name = name
        self.app_key = text_option(options, "app_key") or text_option(options, "client_id")
        self.app_secret = text_option(options, "app_secret") or text_option(options, "client_secret")
        missing = [k for k, v in (("app_key", self.app_key), ("app_secret", self.app_secret)) if not v]
        if missing:
            raise ConfigError(f"dingtalk: {' and '.join(missing)} required", connector=name)
        base_url = text_option(options, "base_url")
        self.oapi_url = (text_option(options, "oapi_url") or base_url or OAPI_URL).rstrip("/")
        self.token_api = text_option(options, "token_api", "new")
        if self.token_api not in ("new", "legacy"):
            raise ConfigError(f"dingtalk: token_api must be new or legacy, got '{self.token_api}'", connector=name)
        policy = RetryPolicy(attempts=retry_attempts(options.get("retries", 5)),
                             timeout=float(options.get("timeout", 30)), backoff=float(options.get("backoff", 0.5)))
        self.http = HttpClient(base_url or API_URL, policy=policy, auth=_TokenAuth(self),
                               on_unauthorized=self.drop_token, verify=options.get("verify", True), name=name)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.token_fetches = 0

    # -- token -----------------------------------------------------------------------------------
    def token(self) -> str:
        """The cached access token, fetched when missing or about to expire."""
        with self._lock:
            if self._token and time.monotonic() < self._expires:
                return self._token
            token, ttl = self._fetch_token()
            self._token = token
            self._expires = time.monotonic() + max(0.0, ttl - min(300.0, ttl / 10))
            self.token_fetches += 1
            log.info("DingTalk access token obtained (%s API, valid %ss)", self.token_api, ttl,
                     extra={"connector": self.name})
            return token

    def drop_token(self) -> None:
        with self._lock:
            self._token = None

    def _fetch_token(self) -> tuple[str, float]:
        if self.token_api == "legacy":
            resp = self.http.request("GET", f"{self.oapi_url}/gettoken", auth=_NoAuth(),
                                     params={"appkey": self.app_key, "appsecret": self.app_secret},
                                     classify=self._classify_token)
            body = resp.json()
            return str(body["access_token"]), float(body.get("expires_in") or 7200)
        resp = self.http.request("POST", "/v1.0/oauth2/accessToken", auth=_NoAuth(),
                                 json={"appKey": self.app_key, "appSecret": self.app_secret},
                                 classify=self._classify_token)
        body = resp.json()
        return str(body["accessToken"]), float(body.get("expireIn") or 7200)

    def _classify_token(self, resp: requests.Response) -> None:
        code, message, body = error_of(resp)
        if body is None and 200 <= resp.status_code < 300:
            raise RetriableError(f"token answer is not JSON: {message[:80]!r}", connector=self.name)
        if resp.status_code == 200 and isinstance(body, dict) and str(body.get("errcode", 0)) == "0" and (
                body.get("accessToken") or body.get("access_token")):
            return
        self._raise_transient(resp, code, message, body)
        raise AuthError(f"DingTalk refused the app credentials for {self.app_key}: {code} {message}",
                        connector=self.name, http_status=resp.status_code)

    # -- errors ----------------------------------------------------------------------------------
    def _raise_transient(self, resp: requests.Response, code: str, message: str, body: Any) -> None:
        where = {"connector": self.name, "code": code or None}
        if "QpsLimit" in code or "Throttling" in code or code in {str(c) for c in THROTTLE_ERRCODES}:
            wait = resp.headers.get("Retry-After")
            # refused before acting: even a create is sent again after the wait
            raise NotCarriedOut(f"DingTalk throttled the call: {message}", retry_after=float(wait) if wait else 1.0,
                                **where)
        if isinstance(body, dict) and body.get("punish"):   # the per-IP block lasts minutes: stop, resume next run
            raise LimitExceeded(f"DingTalk blocked this caller for a while: {body}",
                                retry_after=float(body.get("wait") or 5) * 60, **where)

    def classify(self, resp: requests.Response, *, write: bool = False) -> None:
        """Raise per the module docstring's table; return for success, record errors and not-found."""
        code, message, body = error_of(resp)
        if body is None and 200 <= resp.status_code < 300:     # a cut body: transient
            raise RetriableError(f"DingTalk answer is not JSON (HTTP {resp.status_code}): {message[:80]!r}",
                                 connector=self.name)
        if 200 <= resp.status_code < 300:
            if isinstance(body, dict) and body.get("punish"):
                self._raise_transient(resp, code, message, body)
            if isinstance(body, dict) and "errcode" in body and str(body["errcode"]) != "0":
                if int(body["errcode"]) in TOKEN_ERRCODES:
                    self.drop_token()
                    raise TokenExpired(f"DingTalk token refused: {message}", retry_after=0.0, connector=self.name)
                self._raise_transient(resp, code, message, body)
                if not write:
                    raise FatalError(f"DingTalk error {code}: {message}", connector=self.name)
            return
        self._raise_transient(resp, code, message, body)
        if resp.status_code == 401:
            self.drop_token()
            raise AuthError(f"DingTalk refused a fresh access token: {code} {message}", connector=self.name)
        if resp.status_code == 403:
            raise FatalError(f"DingTalk denied the call (app permissions?): {code} {message}", connector=self.name)
        if resp.status_code in (400, 404) and (write or code in NOT_FOUND_CODES):
            return
        raise FatalError(f"DingTalk error HTTP {resp.status_code} {code}: {message}", connector=self.name)

    def call(self, method: str, path: str, *, write: bool = False, **kwargs: Any) -> tuple[int, Any]:
        """One new-API call; (HTTP status, decoded body)."""
        resp = self.http.request(method, path, classify=lambda r: self.classify(r, write=write), **kwargs)
        try:
            return resp.status_code, resp.json()
        except ValueError as exc:  # a cut body: transient
            raise RetriableError(f"{method} {path}: body is not JSON ({exc})", connector=self.name) from exc

    # -- workflow ----------------------------------------------------------------------------------
    def start_instance(self, body: dict[str, Any]) -> str:
        """StartProcessInstance; the new instance id.

        Not sent again after a read timeout, a 5xx or a cut answer (DingTalk may have started the
        instance): the RetriableError goes to the caller, whose next attempt looks for the instance first.

        Raises:
            RecordRejected: DingTalk refused this instance (the message says why).
            RetriableError: no answer; the instance may or may not exist.
        """
        status, out = self.call("POST", "/v1.0/workflow/processInstances", json=body, write=True, idempotent=False)
        if status != 200 or not isinstance(out, dict) or not out.get("instanceId"):
            code, message = (out or {}).get("code", ""), (out or {}).get("message", out)
            raise RecordRejected(f"DingTalk refused the approval: {code} {message}", connector=self.name)
        return str(out["instanceId"])

    def get_instance(self, instance_id: str) -> dict[str, Any] | None:
        """GetProcessInstance ``result``; None when the instance does not exist."""
        status, out = self.call("GET", "/v1.0/workflow/processInstances", params={"processInstanceId": instance_id})
        if status != 200:
            return None
        result = out.get("result") if isinstance(out, dict) else None
        if not isinstance(result, dict):
            raise FatalError(f"GetProcessInstance answered without a result: {str(out)[:200]}", connector=self.name)
        return result

    def list_ids(self, process_code: str, start: datetime, end: datetime,
                 user_ids: list[str] | None = None) -> Iterator[str]:
        """ListProcessInstanceIds over ``[start, end]`` (start times), following nextToken."""
        body: dict[str, Any] = {"processCode": process_code, "startTime": int(start.timestamp() * 1000),
                                "endTime": int(end.timestamp() * 1000), "maxResults": PAGE_SIZE, "nextToken": 0}
        if user_ids:
            body["userIds"] = user_ids
        seen_tokens: set[str] = set()
        while True:
            _, out = self.call("POST", "/v1.0/workflow/processes/instanceIds/query", json=body)
            result = (out or {}).get("result") or {}
            yield from (str(i) for i in result.get("list") or [])
            token = result.get("nextToken")
            if token in (None, "", "0") or not result.get("list"):
                return
            if str(token) in seen_tokens:
                raise FatalError(f"paging loop: nextToken {token!r} returned twice", connector=self.name)
            seen_tokens.add(str(token))
            body["nextToken"] = int(token)

    def terminate(self, instance_id: str, remark: str) -> None:
        """TerminateProcessInstance as the system.

        Raises:
            RecordRejected: the instance is unknown or already finished.
        """
        status, out = self.call("POST", "/v1.0/workflow/processInstances/terminate", write=True,
                                json={"processInstanceId": instance_id, "isSystem": True, "remark": remark})
        if status != 200 or not (isinstance(out, dict) and out.get("result")):
            code, message = (out or {}).get("code", ""), (out or {}).get("message", out)
            raise RecordRejected(f"DingTalk refused to revoke {instance_id}: {code} {message}", connector=self.name)

    def close(self) -> None:
        self.http.close()
