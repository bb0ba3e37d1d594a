"""A DingTalk organisation's approvals over HTTP (PROTOCOLS 5.1): tokens, process instances, callbacks.

``create_app(options)`` returns the WSGI app wrapped in
:class:`connectors.simkit.FaultInjector` (token endpoints are never failed).
One server answers both hosts' paths:

* ``POST /v1.0/oauth2/accessToken`` ``{appKey, appSecret}`` -> ``{accessToken, expireIn}`` (api.dingtalk.com)
* ``GET /gettoken?appkey=&appsecret=`` -> ``{errcode: 0, errmsg: "ok", access_token, expires_in}`` (oapi, legacy)
* ``POST /v1.0/workflow/processInstances`` (create) -> ``{instanceId}``
* ``GET /v1.0/workflow/processInstances?processInstanceId=`` -> ``{success, result}``
* ``POST /v1.0/workflow/processes/instanceIds/query`` -> ``{success, result: {list, nextToken}}``
* ``POST /v1.0/workflow/processInstances/terminate`` -> ``{success, result: true}``

New-API calls carry ``x-acs-dingtalk-access-token``; errors are non-2xx
``{code, message, requestid}``: 401 ``InvalidAuthentication`` for an expired
token, 403 ``Forbidden.AccessDenied.QpsLimitForApi`` when throttled
(``options.rate_limit_rate`` or ``request_budget``) [code string unverified].

``bpms_instance_change`` callbacks (start / finish / terminate) go to
``options.extra["callback_url"]``, encrypted and signed as in
:mod:`connectors.dingtalk.crypto` with ``callback_token`` / ``callback_aes_key``
/ ``callback_owner_key`` from ``extra`` (defaults: :data:`DEFAULT_TOKEN`,
:data:`DEFAULT_AES_KEY`, the app key). ``app.sim`` is the :class:`DingTalkSim`.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlencode

from connectors.dingtalk.crypto import DingTalkCrypto, make_aes_key
from connectors.dingtalk.sim_common import (Delivery, NoGenericThrottle, Pusher, Throttle, TokenBook, json_body,
                                            read_body, respond, resume_rng)
from connectors.dingtalk.sim_workflow import Workflow, WorkflowError, generate, render
from connectors.simkit import FaultInjector, JsonState, SimOptions

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "triad-callback-token"
DEFAULT_AES_KEY = make_aes_key(b"triad-dingtalk-callback")
DEFAULT_CORP_ID = "dingtriad0000000000"
MAX_RESULTS = 20        # ListProcessInstanceIds page size limit [unverified]


class DingTalkSim:
    """The organisation behind the app: data, tokens, throttle, callbacks, and test hooks."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.state = JsonState(options.state, lambda: generate(options.seed, options.records))
        self.workflow = Workflow(self.state.data, resume_rng(self.state.data, options.seed * 31 + 7))
        self.tokens = TokenBook(options, prefix="", default_ttl=7200.0)
        self.throttle = Throttle(options)
        self.pusher = Pusher()
        extra = options.extra
        self.callback_url: str | None = extra.get("callback_url")
        self.crypto = DingTalkCrypto(str(extra.get("callback_token", DEFAULT_TOKEN)),
                                     str(extra.get("callback_aes_key", DEFAULT_AES_KEY)),
                                     str(extra.get("callback_owner_key", options.app_key)))
        self.corp_id = str(extra.get("corp_id", DEFAULT_CORP_ID))

    @property
    def deliveries(self) -> list[Delivery]:
        return self.pusher.deliveries

    def expire_tokens(self) -> None:
        """Test hook: every token issued so far is expired."""
        self.tokens.expire_all()

    # -- test and demo hooks ---------------------------------------------------------------------
    def decide(self, instance_id: str, result: str, approver: str | None = None,
               remark: str = "") -> Delivery | None:
        """Complete an instance with ``agree`` / ``refuse`` (and the approver's remark), push the ``finish`` callback."""
        with self.state.lock:
            inst = self.workflow.decide(instance_id, result, approver, remark=remark)
            self.state.save()
        return self.push(self.event(inst, "finish"), wait=True)

    def check_url(self) -> Delivery | None:
        """Push the ``check_url`` event DingTalk sends when a callback URL is registered."""
        return self.push({"EventType": "check_url"}, wait=True)

    # -- callbacks ---------------------------------------------------------------------------------
    def event(self, inst: dict[str, Any], kind: str) -> dict[str, Any]:
        """The decrypted ``bpms_instance_change`` payload (fields of the documented finish sample)."""
        out: dict[str, Any] = {
            "EventType": "bpms_instance_change", "processInstanceId": inst["id"], "corpId": self.corp_id,
            "title": inst["title"], "type": kind, "createTime": inst["createTime"],
            "staffId": inst["originatorUserId"], "processCode": inst["processCode"],
            "url": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?corpid={self.corp_id}&dd_share=false",
        }
        if kind in ("finish", "terminate"):
            out["finishTime"] = inst["finishTime"]
        if kind == "finish":
            out["result"] = inst["result"]
        return out

    def push(self, event: dict[str, Any], wait: bool = False) -> Delivery | None:
        """Encrypt, sign and POST one event to the callback URL (none configured: nothing is sent)."""
        url = self.callback_url
        if not url:
            return None
        timestamp = str(int(time.time() * 1000))
        nonce = secrets.token_hex(4)
        encrypt = self.crypto.encrypt(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
        query = urlencode({"signature": self.crypto.signature(timestamp, nonce, encrypt),
                           "timestamp": timestamp, "nonce": nonce})
        target = f"{url}{'&' if '?' in url else '?'}{query}"
        body = json.dumps({"encrypt": encrypt}).encode("utf-8")

        def send() -> Delivery:
            return self.pusher.post(target, event, body, {})

        if wait:
            return send()
        self.pusher.post_later(send)
        return None


def _error(start_response: Callable, status: int, code: str, message: str,
           headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    return respond(start_response, status, {"code": code, "message": message,
                                            "requestid": uuid.uuid4().hex.upper()}, headers)


class DingTalkApp:
    """The WSGI application: routing, auth and throttling; behaviour lives in :class:`DingTalkSim`."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.sim = DingTalkSim(options)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            body = read_body(environ)
            if path == "/v1.0/oauth2/accessToken" and method == "POST":
                return self.access_token(start_response, json_body(body))
            if path == "/gettoken" and method == "GET":
                return self.legacy_token(start_response, query)
            if not path.startswith("/v1.0/workflow/"):
                return _error(start_response, 404, "NotFound", f"未找到API: {method} {path}")
            if not self.sim.tokens.valid(environ.get("HTTP_X_ACS_DINGTALK_ACCESS_TOKEN")):
                return _error(start_response, 401, "InvalidAuthentication", "不合法的access_token")
            wait = self.sim.throttle.check()
            if wait is not None:
                return _error(start_response, 403, "Forbidden.AccessDenied.QpsLimitForApi",
                              "调用该接口触发了限流，请稍后重试", [("Retry-After", f"{wait:.2f}")])
            doc = json_body(body)
            if doc is None:
                return _error(start_response, 400, "InvalidParameter", "请求体不是合法的JSON")
            status, out = self.route(method, path, query, doc)
            return respond(start_response, status, out)
        except WorkflowError as exc:
            return _error(start_response, exc.status, exc.code, exc.message)
        except Exception:  # an unexpected bug answers 500 like the gateway, never a hang
            log.exception("dingtalk simulator error on %s %s", method, path)
            return _error(start_response, 500, "ServiceUnavailable", "系统繁忙")

    def access_token(self, start_response: Callable, doc: Any) -> list[bytes]:
        doc = doc if isinstance(doc, dict) else {}
        if doc.get("appKey") != self.options.app_key or doc.get("appSecret") != self.options.app_secret:
            return _error(start_response, 400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        token, left = self.sim.tokens.issue()
        return respond(start_response, 200, {"accessToken": token, "expireIn": left})

    def legacy_token(self, start_response: Callable, query: dict[str, str]) -> list[bytes]:
        if query.get("appkey") != self.options.app_key or query.get("appsecret") != self.options.app_secret:
            return respond(start_response, 200, {"errcode": 40089, "errmsg": "不合法的appKey或appSecret"})
        token, left = self.sim.tokens.issue()
        return respond(start_response, 200, {"errcode": 0, "access_token": token, "errmsg": "ok",
                                             "expires_in": left})

    def route(self, method: str, path: str, query: dict[str, str], doc: dict[str, Any]) -> tuple[int, Any]:
        sim, wf = self.sim, self.sim.workflow
        if path == "/v1.0/workflow/processInstances" and method == "GET":
            iid = query.get("processInstanceId")
            if not iid:
                raise WorkflowError("MissingProcessInstanceId", "processInstanceId is mandatory for this action.")
            with sim.state.lock:
                return 200, {"success": True, "result": render(wf.get(iid))}
        if path == "/v1.0/workflow/processInstances" and method == "POST":
            for name in ("processCode", "originatorUserId"):
                if not doc.get(name):
                    raise WorkflowError(f"Missing{name[0].upper()}{name[1:]}", f"{name} is mandatory for this action.")
            values = doc.get("formComponentValues") or []
            if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
                raise WorkflowError("InvalidParameter", "formComponentValues must be a list of {name, value}")
            with sim.state.lock:
                inst = wf.create(doc["processCode"], doc["originatorUserId"], doc.get("deptId", -1), values)
                sim.state.save()
                event = sim.event(inst, "start")
            sim.push(event)
            return 200, {"instanceId": inst["id"]}
        if path == "/v1.0/workflow/processes/instanceIds/query" and method == "POST":
            return 200, {"success": True, "result": self.list_ids(doc)}
        if path == "/v1.0/workflow/processInstances/terminate" and method == "POST":
            if not doc.get("processInstanceId"):
                raise WorkflowError("MissingProcessInstanceId", "processInstanceId is mandatory for this action.")
            with sim.state.lock:
                inst = wf.terminate(doc["processInstanceId"], doc.get("operatingUserId"),
                                    remark=str(doc.get("remark") or ""))
                sim.state.save()
                event = sim.event(inst, "terminate")
            sim.push(event)
            return 200, {"success": True, "result": True}
        raise WorkflowError("NotFound", f"未找到API: {method} {path}", status=404)

    def list_ids(self, doc: dict[str, Any]) -> dict[str, Any]:
        if not doc.get("processCode"):
            raise WorkflowError("MissingProcessCode", "processCode is mandatory for this action.")
        try:
            start = int(doc["startTime"])
            end = int(doc["endTime"]) if doc.get("endTime") not in (None, "") else None
            size = int(doc.get("maxResults") or MAX_RESULTS)
            offset = int(doc.get("nextToken") or 0)
        except (KeyError, TypeError, ValueError):
            raise WorkflowError("InvalidParameter", "startTime is mandatory; startTime, endTime, maxResults "
                                                    "and nextToken are numbers") from None
        if not 1 <= size <= MAX_RESULTS:
            raise WorkflowError("InvalidParameter", f"maxResults must be between 1 and {MAX_RESULTS}")
        with self.sim.state.lock:
            ids = self.sim.workflow.list_ids(doc["processCode"], start, end, doc.get("userIds"), doc.get("statuses"))
        page = ids[offset:offset + size]
        out: dict[str, Any] = {"list": page}
        if offset + size < len(ids):
            out["nextToken"] = str(offset + size)
        return out


def create_app(options: SimOptions) -> FaultInjector:
    """The DingTalk simulator as a WSGI app; ``app.sim`` is its :class:`DingTalkSim`."""
    core = DingTalkApp(options)
    app = FaultInjector(core, NoGenericThrottle(options), exempt=("/v1.0/oauth2", "/gettoken"))  # type: ignore[arg-type]
    app.sim = core.sim  # type: ignore[attr-defined]
    return app
