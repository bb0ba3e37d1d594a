"""Kingdee K3Cloud (金蝶云星空) WebAPI simulator (PROTOCOLS section 3).

Every call is ``POST /k3cloud/<Service>.common.kdsvc`` with a JSON body, in
either convention: named keys (SDK 8.x: ``{"formid": ..., "data": ...}``,
``data`` an object or a JSON string) or positional ``{"parameters": [...]}``.
Sessions come from ValidateUser / LoginByAppSecret / LoginBySign (cookies
``kdservice-sessionid`` and ``ASP.NET_SessionId``, or the ``kdservice-sessionid``
header), or silently from the SDK 8.x signed headers on any call. Errors are
HTTP 200 bodies: session lost is MsgCode 1 (the saved fixture), throttling
MsgCode 14. ``create_app(options)`` returns the WSGI app; its ``sim``
attribute is the :class:`KingdeeSim` behind it (tests use ``drop_sessions``).
``options.extra``: ``app_id`` / ``app_secret`` (default: client id / secret),
``write_latency_ms`` (a save answered late, after it is stored) and
``terse_answers`` (Save answers in the short shapes PROTOCOLS 3.5 quotes).
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from datetime import datetime
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from connectors.kingdee import sim_forms, sim_query, sim_save, signing
from connectors.kingdee.sim_forms import KdError
from connectors.simkit import FaultInjector, JsonState, SimOptions

log = logging.getLogger(__name__)

STUB = "Kingdee.BOS.WebApi.ServicesStub."
AUTH_PREFIX = "/k3cloud/" + STUB + "AuthService."
TZ = ZoneInfo("Asia/Shanghai")
LCIDS = {"2052", "1033", "3076"}
SESSION_LOST = "会话信息已丢失，请重新登录"
# MsgCode 14 (调用限制) is the only documented throttle; these texts are [unverified].
THROTTLED = "接口调用频率超出限制，请稍后重试（调用限制）"
BUDGET_SPENT = "接口调用次数已超出当日限制（调用限制）"

# service -> positional parameter names (the named convention uses the same keys)
SIGNATURES: dict[str, tuple[str, ...]] = {
    "AuthService.ValidateUser": ("acctid", "username", "password", "lcid"),
    "AuthService.LoginByAppSecret": ("acctid", "username", "appid", "appsecret", "lcid"),
    "AuthService.LoginBySign": ("acctid", "username", "appid", "timestamp", "signeddata", "lcid"),
    "AuthService.Logout": (),
    "DynamicFormService.ExecuteBillQuery": ("data",),
    "DynamicFormService.BillQuery": ("data",),
    "DynamicFormService.View": ("formid", "data"),
    "DynamicFormService.Save": ("formid", "data"),
    "DynamicFormService.BatchSave": ("formid", "data"),
    "DynamicFormService.Submit": ("formid", "data"),
    "DynamicFormService.Audit": ("formid", "data"),
}
ALIASES = {"signeddata": ("signeddata", "sign"), "acctid": ("acctid", "acctID"), "username": ("username", "userName")}


def status_body(msg_code: int, message: str, field_name: str | None = None) -> dict[str, Any]:
    """The failed ``Result.ResponseStatus`` envelope, key order as the real server sends it."""
    return {"Result": {"ResponseStatus": {
        "ErrorCode": 500, "IsSuccess": False,
        "Errors": [{"FieldName": field_name, "Message": message, "DIndex": 0}],
        "SuccessEntitys": [], "SuccessMessages": [], "MsgCode": msg_code}}}


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def call_args(body: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Arguments of a call in either body convention, JSON strings decoded."""
    if isinstance(body, dict) and isinstance(body.get("parameters"), list):
        return {name: _maybe_json(v) for name, v in zip(names, body["parameters"])}
    if not isinstance(body, dict):
        return {}
    lowered = {str(k).lower(): v for k, v in body.items()}
    out = {}
    for name in names:
        for alias in ALIASES.get(name, (name,)):
            if alias.lower() in lowered:
                out[name] = _maybe_json(lowered[alias.lower()])
                break
    return out


class KingdeeSim:
    """The simulator's state and request handling (wrapped by FaultInjector in :func:`create_app`)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.state = JsonState(options.state, lambda: sim_forms.generate(options.seed, options.records))
        self.app_id = str(options.extra.get("app_id", options.client_id))
        self.app_secret = str(options.extra.get("app_secret", options.client_secret))
        self.sessions: dict[str, float] = {}           # sid -> last use (monotonic)
        self.lock = threading.RLock()
        self.rng = random.Random(options.seed * 31 + 7)
        self.sid_rng = random.Random(options.seed * 17 + 3)
        self.calls = 0
        self.stats = {"logins": 0, "signed_logins": 0, "session_lost": 0, "throttled": 0, "api_calls": 0}

    # -- sessions ---------------------------------------------------------------
    def drop_sessions(self) -> None:
        """Forget every session, as an application-pool recycle does."""
        with self.lock:
            self.sessions.clear()

    def _new_session(self) -> str:
        with self.lock:
            sid = "".join(self.sid_rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24))
            self.sessions[sid] = time.monotonic()
            return sid

    def _live(self, sid: str) -> bool:
        with self.lock:
            used = self.sessions.get(sid)
            if used is None:
                return False
            ttl = self.options.token_ttl
            if ttl is not None and time.monotonic() - used > ttl:
                del self.sessions[sid]
                return False
            self.sessions[sid] = time.monotonic()
            return True

    @staticmethod
    def _session_id(environ: dict[str, Any]) -> str:
        sid = environ.get("HTTP_KDSERVICE_SESSIONID", "")
        cookies = {}
        for part in environ.get("HTTP_COOKIE", "").split(";"):
            name, _, value = part.strip().partition("=")
            cookies[name.strip()] = value.strip()
        return sid or cookies.get("kdservice-sessionid", "") or cookies.get("ASP.NET_SessionId", "")

    # -- WSGI -------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        name = path.rsplit("/", 1)[-1]
        # a K3Cloud site serves its services under /k3cloud/ only
        service = name[len(STUB):-len(".common.kdsvc")] if name.startswith(STUB) and name.endswith(
            ".common.kdsvc") and path == f"/k3cloud/{name}" else ""
        if service not in SIGNATURES:
            return self._send(start_response, "404 Not Found", f"service {name} not found", [])
        if environ.get("REQUEST_METHOD") != "POST":
            return self._send(start_response, "405 Method Not Allowed", "POST only", [])
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(size).decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            body = None
        args = call_args(body, SIGNATURES[service])
        cookies: list[tuple[str, str]] = []
        wrapped = service == "DynamicFormService.ExecuteBillQuery"
        if service.startswith("AuthService."):
            return self._send(start_response, "200 OK", self._login(service, args, cookies), cookies)
        sid = self._session_id(environ)
        if not (sid and self._live(sid)):
            outcome = self._signed_login(environ, path)
            if outcome == "bad acct":
                return self._send(start_response, "403 Forbidden", "Fail to verify thirty passport", [])
            if outcome is None:
                self.stats["session_lost"] += 1
                return self._send(start_response, "200 OK", self._wrap(status_body(1, SESSION_LOST), wrapped), [])
            cookies = self._cookies(outcome)
        throttle = self._throttle()
        if throttle:
            return self._send(start_response, "200 OK", self._wrap(status_body(14, throttle), wrapped), cookies)
        if body is None:
            return self._send(start_response, "200 OK", self._wrap(status_body(8, "请求数据包不是有效的JSON"), wrapped),
                              cookies)
        try:
            result = self._dispatch(service, args)
        except KdError as exc:
            result = self._wrap(status_body(exc.msg_code, exc.message, exc.field_name), wrapped)
        slow = float(self.options.extra.get("write_latency_ms", 0) or 0)
        if slow and service.endswith("Save"):
            time.sleep(slow / 1000.0)   # saved already, slow to answer: the client may time out first
        return self._send(start_response, "200 OK", result, cookies)

    @staticmethod
    def _wrap(body: dict[str, Any], wrapped: bool) -> Any:
        return [[body]] if wrapped else body

    @staticmethod
    def _cookies(sid: str) -> list[tuple[str, str]]:
        # No Expires attribute: the SDK splits Set-Cookie on ',' (FillCookieAndHeader).
        return [("Set-Cookie", f"kdservice-sessionid={sid}; path=/"),
                ("Set-Cookie", f"ASP.NET_SessionId={sid}; path=/; HttpOnly")]

    @staticmethod
    def _send(start_response: Callable, status: str, body: Any, headers: list[tuple[str, str]]) -> list[bytes]:
        if isinstance(body, str):
            data, ctype = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            ctype = "application/json; charset=utf-8"
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data))), *headers])
        return [data]

    def _throttle(self) -> str | None:
        with self.lock:
            self.calls += 1
            self.stats["api_calls"] += 1
            budget = self.options.request_budget
            if budget is not None and self.calls > budget:
                self.stats["throttled"] += 1
                return BUDGET_SPENT
            if self.rng.random() < self.options.rate_limit_rate:
                self.stats["throttled"] += 1
                return THROTTLED
        return None

    # -- authentication -----------------------------------------------------------
    def _login(self, service: str, args: dict[str, Any], cookies: list[tuple[str, str]]) -> dict[str, Any]:
        o = self.options
        if service == "AuthService.Logout":
            return {"Result": True}
        acct, user, lcid = str(args.get("acctid", "")), str(args.get("username", "")), str(args.get("lcid", "2052"))
        if service == "AuthService.ValidateUser":
            ok = user == o.user and str(args.get("password", "")) == o.password
        elif service == "AuthService.LoginByAppSecret":
            ok = user == o.user and args.get("appid") == self.app_id and args.get("appsecret") == self.app_secret
        else:
            expected = signing.login_sign(acct, user, self.app_id, self.app_secret, args.get("timestamp", ""))
            ok = user == o.user and args.get("appid") == self.app_id and args.get("signeddata") == expected
        if acct != o.acct_id:
            return self._login_failed("数据中心不存在，请检查账套ID")          # [unverified] text
        if not ok or lcid not in LCIDS:
            return self._login_failed("用户名或密码错误！")                     # [unverified] text
        sid = self._new_session()
        self.stats["logins"] += 1
        cookies.extend(self._cookies(sid))
        return {
            "Message": None, "MessageCode": "CheckPasswordPolicy", "LoginResultType": 1,
            "Context": {"UserLocale": "zh-CN", "LogLocale": "", "DBid": acct, "DatabaseType": 3, "SessionId": sid,
                        "UseLanguages": [{"LocaleId": 2052, "LocaleName": "中文(简体/中国)", "Alias": "CN"}],
                        "UserId": 100008, "UserName": user, "DisplayVersion": "8.2.0.20260301",
                        "DataCenterName": "Triad 模拟账套",
                        "CurrentOrganizationInfo": {"ID": 1, "AcctOrgType": "1", "Name": "总公司",
                                                    "FunctionIds": [101, 102, 103, 104]}},
            "KDSVCSessionId": sid, "FormId": None, "RedirectFormParam": None, "FormInputObject": None,
            "ErrorStackTrace": None, "Lcid": int(lcid), "AccessToken": None, "KdAccessResult": None,
            "IsSuccessByAPI": True}

    @staticmethod
    def _login_failed(message: str) -> dict[str, Any]:
        # LoginResultType 0 for a refused login is [unverified]; 1 is the documented success.
        return {"Message": message, "MessageCode": None, "LoginResultType": 0, "Context": None,
                "KDSVCSessionId": None, "FormId": None, "RedirectFormParam": None, "FormInputObject": None,
                "ErrorStackTrace": None, "Lcid": 0, "AccessToken": None, "KdAccessResult": None,
                "IsSuccessByAPI": False}

    def _signed_login(self, environ: dict[str, Any], path: str) -> str | None:
        """A new session id from valid SDK 8.x headers; 'bad acct'; or None (answer MsgCode 1)."""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if "x-kd-appkey" not in headers:
            return None
        ident = signing.verify_signed_headers(headers, path, app_id=self.app_id, app_secret=self.app_secret)
        if ident is None:
            return None
        if ident.acct_id != self.options.acct_id:
            return "bad acct"
        if ident.user != self.options.user or ident.lcid not in LCIDS:
            return None
        self.stats["signed_logins"] += 1
        return self._new_session()

    # -- business services --------------------------------------------------------
    def _dispatch(self, service: str, args: dict[str, Any]) -> Any:
        data = args.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise KdError(8, "data 数据包格式不正确，应为 JSON 对象")
        with self.state.lock:
            db = self.state.data
            if service == "DynamicFormService.ExecuteBillQuery":
                return sim_query.execute_bill_query(db, data)
            if service == "DynamicFormService.BillQuery":
                return sim_query.bill_query(db, data)
            if service == "DynamicFormService.View":
                # ResponseStatus null on success: as commonly reported [unverified]
                return {"Result": {"ResponseStatus": None, "Result": sim_query.view(db, args.get("formid"), data)}}
            form = sim_forms.form_of(args.get("formid"))
            if service in ("DynamicFormService.Save", "DynamicFormService.BatchSave"):
                now = datetime.now(TZ).replace(tzinfo=None)
                result = sim_save.save(db, form, data, batch=service.endswith("BatchSave"), now=now,
                                       terse=bool(self.options.extra.get("terse_answers")))
            else:
                result = sim_save.set_status(db, form, data, service.rsplit(".", 1)[-1].lower())
            self.state.save()
            return result


class _NoHttpThrottle:
    """Options as FaultInjector sees them: K3Cloud throttles with MsgCode 14 in HTTP 200, never 429."""

    def __init__(self, options: SimOptions) -> None:
        self._options = options

    def __getattr__(self, name: str) -> Any:
        return 0.0 if name == "rate_limit_rate" else getattr(self._options, name)


def create_app(options: SimOptions) -> FaultInjector:
    """The Kingdee simulator as a WSGI app (login calls are never failed by the injector)."""
    sim = KingdeeSim(options)
    app = FaultInjector(sim, _NoHttpThrottle(options), exempt=(AUTH_PREFIX,))  # type: ignore[arg-type]
    app.sim = sim  # type: ignore[attr-defined]
    return app
