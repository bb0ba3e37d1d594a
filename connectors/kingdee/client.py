"""Kingdee K3Cloud transport: the four login styles, the session, and the one error table.

K3Cloud answers errors with HTTP 200 and a ``Result.ResponseStatus`` body
(``[[...]]``-wrapped for ExecuteBillQuery). :data:`ERROR_TABLE` decides what
happens next for every ``MsgCode``; :func:`classify` applies it inside
:class:`hub.http.HttpClient`, which retries what is retriable. A lost session
is re-established once, transparently, by :meth:`KingdeeClient.call`.
"""
from __future__ import annotations

import enum
import json
import logging
import time
from typing import Any, Callable
from urllib.parse import urlparse

import requests

from connectors.kingdee import signing
from hub.errors import ConfigError, FatalError, LimitExceeded, RetriableError
from hub.http import HttpClient, NotCarriedOut, RetryPolicy, retry_attempts
from hub.secrets import reveal

log = logging.getLogger(__name__)

STUB = "Kingdee.BOS.WebApi.ServicesStub."
AUTH_STYLES = ("password", "app_secret", "sign", "signature")


class Outcome(enum.Enum):
    """What happens after an error body, by :data:`ERROR_TABLE`."""

    RELOGIN = "re-login, then repeat the request once"
    RETRY = "retriable: back off and retry"
    REFUSED = "refused before acting: back off and send again, a create too"
    LIMIT = "request budget spent: stop, resume next run"
    RECORD = "the record is rejected: reported in its WriteResult"
    FATAL = "the stream cannot go on"


# MsgCode -> what happens next (codes from PROTOCOLS 3.5). RECORD outside a write is FATAL.
ERROR_TABLE: dict[int, Outcome] = {
    1: Outcome.RELOGIN,      # 上下文丢失: session lost, or re-authentication from signed headers failed
    2: Outcome.FATAL,        # 没有权限
    3: Outcome.FATAL,        # 操作标识为空
    4: Outcome.FATAL,        # 异常: unknown form, bad FilterString
    5: Outcome.FATAL,        # 业务对象标识为空
    6: Outcome.RETRY,        # 数据库操作失败
    7: Outcome.FATAL,        # 许可错误
    8: Outcome.FATAL,        # 参数错误
    9: Outcome.RECORD,       # 字段或值不存在 (a mapping naming an unknown FieldKey fails a read)
    10: Outcome.RECORD,      # 数据不存在
    11: Outcome.RECORD,      # 验证失败
    12: Outcome.RECORD,      # 不允许操作
    13: Outcome.REFUSED,     # 网控冲突: another user holds the record
    14: Outcome.REFUSED,     # 调用限制 (LIMIT when the text says the quota is spent, see QUOTA_WORDS)
    15: Outcome.FATAL,       # 禁止管理员登录
}
QUOTA_WORDS = ("当日", "次数已")   # MsgCode 14 texts meaning a spent quota rather than a rate [unverified]


class SessionLost(FatalError):
    """MsgCode 1: log in again and repeat the request (once)."""


class AuthError(FatalError):
    """The credentials are refused: nothing can go on until the configuration is fixed."""


class AnswerLost(FatalError):
    """A write's answer was cut: it may have been carried out, so the HTTP client must not send it again."""


def _keep_cut_answers(check: Callable[[requests.Response], None], name: str) -> Callable[[requests.Response], None]:
    """``check``, but a cut answer raises AnswerLost (not retried by the HTTP client) instead of RetriableError."""
    def checked(resp: requests.Response) -> None:
        try:
            json.loads(resp.text)
        except ValueError as exc:
            if resp.status_code in (200, 206) and not resp.text.startswith("response_error:"):
                raise AnswerLost(f"the answer to a save was cut ({exc}); it may have been saved",
                                 connector=name) from exc
        check(resp)
    return checked


def response_status(body: Any) -> dict[str, Any] | None:
    """The ``ResponseStatus`` of any K3Cloud answer, or None for a plain result (query rows, View)."""
    if isinstance(body, list):
        first = body[0] if body else None
        if isinstance(first, list) and first and isinstance(first[0], dict):
            first = first[0]
        if isinstance(first, dict) and "Result" in first:
            body = first
        else:
            return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("Result"), dict):
        return body["Result"].get("ResponseStatus")
    return body.get("ResponseStatus")


def error_text(status: dict[str, Any]) -> str:
    """The messages of a ``ResponseStatus``, joined."""
    msgs = [str(e.get("Message")) for e in status.get("Errors") or [] if e.get("Message")]
    return "; ".join(msgs) or "no message"


def classify(resp: requests.Response, *, write: bool = False, connector: str = "kingdee") -> None:
    """Raise what :data:`ERROR_TABLE` says for a response; return quietly for success and record errors."""
    if resp.status_code not in (200, 206):
        raise FatalError(f"HTTP {resp.status_code}: {resp.text[:200]}", connector=connector)
    if resp.text.startswith("response_error:"):
        raise FatalError(resp.text[:200], connector=connector)
    try:
        body = json.loads(resp.text)
    except ValueError as exc:   # a cut body: transient
        raise RetriableError(f"body is not JSON ({exc})", connector=connector) from exc
    status = response_status(body)
    if not status or status.get("IsSuccess"):
        return
    code = status.get("MsgCode")
    text = error_text(status)
    outcome = ERROR_TABLE.get(code, Outcome.FATAL) if code is not None else Outcome.RECORD
    if outcome is Outcome.REFUSED and code == 14 and any(w in text for w in QUOTA_WORDS):
        outcome = Outcome.LIMIT
    where = {"connector": connector, "msg_code": code}
    if outcome is Outcome.RELOGIN:
        raise SessionLost(f"session lost: {text}", **where)
    if outcome is Outcome.RETRY:
        raise RetriableError(f"K3Cloud asks to retry: {text}", **where)
    if outcome is Outcome.REFUSED:     # nothing was done: even a create is sent again within the call
        raise NotCarriedOut(f"K3Cloud refused the call for now: {text}", **where)
    if outcome is Outcome.LIMIT:
        raise LimitExceeded(f"K3Cloud call limit reached: {text}", **where)
    if outcome is Outcome.RECORD and write:
        return
    raise FatalError(f"K3Cloud error: {text}", **where)


def _whole(options: dict[str, Any], key: str, default: int, connector: str) -> int:
    """A whole-number option; a config error naming it otherwise (not a ValueError from int())."""
    value = options.get(key, default)
    if isinstance(value, bool) or not str(value).strip().lstrip("-").isdigit():
        raise ConfigError(f"kingdee: {key} must be a whole number, got {value!r}", connector=connector)
    return int(str(value).strip())


def _text(options: dict[str, Any], key: str, default: Any = None) -> Any:
    value = reveal(options.get(key, default))
    return value if value is None else str(value)


class KingdeeClient:
    """One K3Cloud account set: login, session cookies, signed headers, calls by service name.

    Args:
        options: the connector block (base_url, acct_id, username, password / app_id + app_secret, lcid,
            auth, body_style, timeout, retries, verify).
        name: the connector name for logs and error context.
    """

    def __init__(self, options: dict[str, Any], name: str = "kingdee") -> None:
        self.name = name
        base_url = _text(options, "base_url")
        if not base_url:
            raise ConfigError("kingdee: base_url is required (e.g. https://host/k3cloud)", connector=name)
        if not urlparse(base_url).path.strip("/"):
            base_url = base_url.rstrip("/") + "/k3cloud"    # every K3Cloud site serves the API under /k3cloud
        self.acct_id = _text(options, "acct_id") or ""
        self.username = _text(options, "username") or ""
        self.password = _text(options, "password")
        self.app_id = _text(options, "app_id")
        self.app_secret = _text(options, "app_secret")
        self.lcid = _whole(options, "lcid", 2052, name)
        self.org_num = _whole(options, "org_num", 0, name)
        self.style = options.get("auth") or ("password" if self.password else "signature")
        self.body_style = options.get("body_style", "named")
        if self.style not in AUTH_STYLES:
            raise ConfigError(f"kingdee: auth must be one of {', '.join(AUTH_STYLES)}, got '{self.style}'",
                              connector=name)
        needs = {"password": ("password",), "app_secret": ("app_id", "app_secret"), "sign": ("app_id", "app_secret"),
                 "signature": ("app_id", "app_secret")}[self.style]
        missing = [k for k in ("acct_id", "username", *needs) if not getattr(self, k)]
        if missing:
            raise ConfigError(f"kingdee: auth '{self.style}' needs {', '.join(missing)}", connector=name)
        policy = RetryPolicy(attempts=retry_attempts(options.get("retries", 5)),
                             timeout=float(options.get("timeout", 30)), backoff=float(options.get("backoff", 0.5)))
        self.http = HttpClient(base_url, policy=policy, verify=options.get("verify", True), name=name)
        self.session_id: str | None = None
        self.logins = 0

    @staticmethod
    def service_path(service: str) -> str:
        """``Kingdee.BOS.WebApi.ServicesStub.<service>.common.kdsvc``, relative to the server URL."""
        return f"{STUB}{service}.common.kdsvc"

    def _login_body(self) -> tuple[str, dict[str, Any]]:
        if self.style == "password":
            named = {"acctid": self.acct_id, "username": self.username, "password": self.password, "lcid": self.lcid}
            return "AuthService.ValidateUser", (
                {"parameters": list(named.values())} if self.body_style == "parameters" else named)
        if self.style == "app_secret":
            return "AuthService.LoginByAppSecret", {
                "acctid": self.acct_id, "username": self.username, "appid": self.app_id,
                "appsecret": self.app_secret, "lcid": self.lcid}
        ts = int(time.time())
        sign = signing.login_sign(self.acct_id, self.username, self.app_id or "", self.app_secret or "", ts)
        return "AuthService.LoginBySign", {
            "parameters": [self.acct_id, self.username, self.app_id, ts, sign, self.lcid]}

    def login(self) -> dict[str, Any]:
        """Open a session (not needed for the signed-header style); returns the login result.

        Raises:
            AuthError: the server refused the credentials.
        """
        self.session_id = None
        self.http.session.cookies.clear()
        if self.style == "signature":
            return {}
        service, body = self._login_body()
        answer: dict[str, Any] = {}

        def check_login(resp: requests.Response) -> None:
            if resp.status_code != 200:
                raise AuthError(f"login refused: HTTP {resp.status_code} {resp.text[:200]}", connector=self.name)
            try:      # a cut answer is parsed here, so the HTTP client retries it like any other
                answer["body"] = json.loads(resp.text)
            except ValueError as exc:
                raise RetriableError(f"login answer is not JSON ({exc})", connector=self.name) from exc

        resp = self.http.request("POST", self.service_path(service), json=body, classify=check_login)
        result = answer["body"]
        if not isinstance(result, dict) or result.get("LoginResultType") != 1:
            message = result.get("Message") if isinstance(result, dict) else str(result)[:200]
            raise AuthError(f"login refused for {self.username}@{self.acct_id}: {message}", connector=self.name)
        ctx = result.get("Context") or {}
        self.session_id = (result.get("KDSVCSessionId") or ctx.get("SessionId")
                           or resp.cookies.get("kdservice-sessionid"))
        self.logins += 1
        log.info("logged in to K3Cloud account set %s as %s (%s)", self.acct_id, self.username, self.style,
                 extra={"connector": self.name})
        return result

    def _headers(self, service: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.style == "signature":
            path = urlparse(self.http.url(self.service_path(service))).path
            headers.update(signing.signed_headers(
                path, acct_id=self.acct_id, user=self.username, app_id=self.app_id or "",
                app_secret=self.app_secret or "", lcid=self.lcid, org_num=self.org_num))
        if self.session_id:
            headers["kdservice-sessionid"] = self.session_id
        return headers

    def call(self, service: str, args: dict[str, Any], *, write: bool = False, idempotent: bool = True) -> Any:
        """Call ``DynamicFormService.<service>`` with named args (``formid``, ``data``); the decoded body.

        Record-level errors of a write come back in the body; everything else
        raises per :data:`ERROR_TABLE`. A lost session is re-established once.
        ``idempotent=False`` (a Save that creates): after a read timeout, a 5xx or a cut answer the
        request is not sent again here but raises RetriableError; the caller's retry looks first. A refusal
        that says nothing was done (MsgCode 13, a rate-type 14) is sent again here, a create too.
        """
        full = f"DynamicFormService.{service}"
        body: dict[str, Any] = args
        if self.body_style == "parameters":
            params = [args["formid"]] if "formid" in args else []
            params.append(json.dumps(args.get("data", {}), ensure_ascii=False))
            body = {"parameters": params}
        check: Callable[[requests.Response], None] = lambda r: classify(r, write=write, connector=self.name)
        if not idempotent:
            check = _keep_cut_answers(check, self.name)
        for attempt in (1, 2):
            if self.style != "signature" and not self.session_id:
                self.login()
            try:
                resp = self.http.request("POST", self.service_path(full), json=body, headers=self._headers(full),
                                         classify=check, idempotent=idempotent)
            except AnswerLost as exc:
                raise RetriableError(exc.message, connector=self.name) from exc
            except SessionLost as exc:
                if attempt == 2:
                    raise self._refused_again(exc) from exc
                log.info("K3Cloud session lost; logging in again", extra={"connector": self.name})
                self.session_id = None
                self.http.session.cookies.clear()
                continue
            sid = resp.cookies.get("kdservice-sessionid")
            if sid:
                self.session_id = sid
            return json.loads(resp.text)
        raise AssertionError("unreachable")

    def _refused_again(self, exc: SessionLost) -> AuthError:
        """MsgCode 1 again right after a fresh login (or fresh signed headers)."""
        if self.style == "signature":
            # PROTOCOLS 3.2: with signed headers this MsgCode means the server refused them
            return AuthError(f"K3Cloud refused the signed request (MsgCode 1): check username ({self.username}), "
                             f"app_id, app_secret and lcid ({self.lcid}) of account set {self.acct_id}: {exc.message}",
                             connector=self.name)
        return AuthError(f"session lost again right after logging in: {exc.message}", connector=self.name)

    def close(self) -> None:
        self.http.close()
