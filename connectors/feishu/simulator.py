"""A Feishu tenant's approvals over HTTP (PROTOCOLS 5.2 and the bytebase fixtures).

``create_app(options)`` returns the WSGI app wrapped in
:class:`connectors.simkit.FaultInjector` (the token endpoint is never failed):

* ``POST /open-apis/auth/v3/tenant_access_token/internal`` -> ``{code: 0, msg: "ok", tenant_access_token, expire}``
* ``POST /open-apis/approval/v4/instances`` (``form`` a JSON string, optional ``uuid``) -> ``{code, data: {instance_code}, msg}``
* ``GET /open-apis/approval/v4/instances/:instance_id`` -> the fixture's shape
* ``GET /open-apis/approval/v4/instances?approval_code=&start_time=&end_time=&page_size=&page_token=``
  -> ``{code, data: {instance_code_list, page_token, has_more}, msg}``
* ``POST /open-apis/approval/v4/instances/cancel`` -> ``{code: 0, msg: "success", data: {}}``
* ``POST /open-apis/approval/v4/approvals`` (define) and ``.../approvals/:code/subscribe``

Calls carry ``Authorization: Bearer t-...``; a missing / expired token answers
HTTP 400 with code 99991661 / 99991663. Throttling (``options.rate_limit_rate``
or ``request_budget`` per ``extra["rate_window"]``) answers HTTP 429 with
``x-ogw-ratelimit-reset`` and ``{"code": 99991400, "msg": "request trigger frequency limit"}``.

Status changes push ``approval.instance.status_changed_v4`` (event schema 2.0;
``extra["event_schema"] = "1.0"`` gives the v1 ``approval_instance`` envelope)
to ``extra["callback_url"]`` with ``extra["verification_token"]`` (default
:data:`DEFAULT_VERIFICATION_TOKEN`), encrypted when ``extra["encrypt_key"]`` is set.
``app.sim`` is the :class:`FeishuSim`.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, unquote

from connectors.dingtalk.sim_common import (Delivery, NoGenericThrottle, Pusher, Throttle, TokenBook, json_body,
                                            read_body, respond, resume_rng)
from connectors.feishu import crypto
from connectors.feishu.sim_approval import Approvals, ApprovalError, generate, render
from connectors.simkit import FaultInjector, JsonState, SimOptions

log = logging.getLogger(__name__)

PREFIX = "/open-apis/approval/v4"
DEFAULT_VERIFICATION_TOKEN = "triad-verification-token"
EVENT_TYPE = "approval.instance.status_changed_v4"
MAX_PAGE = 100


class FeishuSim:
    """The tenant behind the app: data, tokens, throttle, events, and test hooks."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.state = JsonState(options.state, lambda: generate(options.seed, options.records))
        self.approvals = Approvals(self.state.data, resume_rng(self.state.data, options.seed * 17 + 5))
        self.tokens = TokenBook(options, prefix="t-", default_ttl=7200.0, reuse_margin=1800.0)
        self.throttle = Throttle(options)
        self.pusher = Pusher()
        extra = options.extra
        self.callback_url: str | None = extra.get("callback_url")
        self.verification_token = str(extra.get("verification_token", DEFAULT_VERIFICATION_TOKEN))
        self.encrypt_key: str | None = extra.get("encrypt_key")
        self.schema = str(extra.get("event_schema", "2.0"))
        self.subscribed: set[str] = set()

    @property
    def deliveries(self) -> list[Delivery]:
        return self.pusher.deliveries

    def expire_tokens(self) -> None:
        """Test hook: every token issued so far is expired."""
        self.tokens.expire_all()

    # -- test and demo hooks -----------------------------------------------------------------------
    def decide(self, instance_code: str, status: str, approver: str | None = None,
               comment: str = "") -> Delivery | None:
        """Approve or reject a pending instance (with the approver's comment) and push its status event."""
        with self.state.lock:
            inst = self.approvals.decide(instance_code, status, approver, comment=comment)
            self.state.save()
        return self.push(self.event(inst), wait=True)

    def verify_url(self) -> tuple[bool, Delivery | None]:
        """Send the url_verification challenge; (whether the receiver echoed it, the delivery)."""
        challenge = secrets.token_hex(16)
        delivery = self.push({"challenge": challenge, "token": self.verification_token,
                              "type": "url_verification"}, wait=True)
        try:
            ok = delivery is not None and json.loads(delivery.reply).get("challenge") == challenge
        except ValueError:
            ok = False
        return ok, delivery

    # -- events ------------------------------------------------------------------------------------
    def event(self, inst: dict[str, Any]) -> dict[str, Any]:
        """The plaintext status event of an instance, in the configured schema."""
        now = int(time.time() * 1000)
        tenant = self.state.data["tenant_key"]
        if self.schema == "1.0":
            return {"ts": f"{time.time():.7f}", "uuid": uuid.uuid4().hex, "token": self.verification_token,
                    "type": "event_callback",
                    "event": {"app_id": self.options.app_key, "tenant_key": tenant, "type": "approval_instance",
                              "approval_code": inst["approval_code"], "instance_code": inst["instance_code"],
                              "status": inst["status"], "operate_time": now, "instance_operate_time": str(now)}}
        return {"schema": "2.0",
                "header": {"event_id": uuid.uuid4().hex, "token": self.verification_token,
                           "create_time": str(now), "event_type": EVENT_TYPE, "tenant_key": tenant,
                           "app_id": self.options.app_key},
                "event": {"approval_code": inst["approval_code"], "instance_code": inst["instance_code"],
                          "external_id": "", "status": inst["status"], "operate_time": str(now),
                          "start_user": {"user_id": inst["user_id"], "open_id": inst["open_id"], "union_id": ""}}}

    def push(self, payload: dict[str, Any], wait: bool = False) -> Delivery | None:
        """POST one event (encrypted and signed with an Encrypt Key) to the callback URL."""
        url = self.callback_url
        if not url:
            return None
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        headers: dict[str, str] = {"X-Request-Id": uuid.uuid4().hex}
        if self.encrypt_key:
            body = json.dumps({"encrypt": crypto.encrypt(self.encrypt_key, text)}).encode("utf-8")
            timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
            headers.update({"X-Lark-Request-Timestamp": timestamp, "X-Lark-Request-Nonce": nonce,
                            "X-Lark-Signature": crypto.signature(timestamp, nonce, self.encrypt_key, body)})
        else:
            body = text.encode("utf-8")

        def send() -> Delivery:
            return self.pusher.post(url, payload, body, headers)

        if wait:
            return send()
        self.pusher.post_later(send)
        return None


def _fail(start_response: Callable, status: int, code: int, msg: str,
          headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    return respond(start_response, status, {"code": code, "msg": msg}, headers)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text.split(":", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ApprovalError(1390001, "param is invalid: page_token") from None


class FeishuApp:
    """The WSGI application: routing, auth and throttling; behaviour lives in :class:`FeishuSim`."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.sim = FeishuSim(options)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            body = json_body(read_body(environ))
            if path == "/open-apis/auth/v3/tenant_access_token/internal" and method == "POST":
                return self.token(start_response, body)
            if not path.startswith(PREFIX):
                return _fail(start_response, 404, 1390001, f"404 page not found: {path}")
            auth = environ.get("HTTP_AUTHORIZATION", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not token:
                return _fail(start_response, 400, 99991661,
                             "Missing access token for authorization. Please make a request with token attached.")
            if not self.sim.tokens.valid(token):
                return _fail(start_response, 400, 99991663,
                             "Invalid access token for authorization. Please make a request with token attached.")
            wait = self.sim.throttle.check()
            if wait is not None:
                return _fail(start_response, 429, 99991400, "request trigger frequency limit",
                             [("x-ogw-ratelimit-limit", "100"), ("x-ogw-ratelimit-reset", str(math.ceil(wait)))])
            if body is None:
                raise ApprovalError(1390001, "param is invalid: the body is not JSON")
            return respond(start_response, 200, self.route(method, path[len(PREFIX):], query, body))
        except ApprovalError as exc:
            return _fail(start_response, exc.status, exc.code, exc.msg)
        except Exception:  # an unexpected bug answers 500, never a hang
            log.exception("feishu simulator error on %s %s", method, path)
            return _fail(start_response, 500, 1390000, "internal error")

    def token(self, start_response: Callable, doc: Any) -> list[bytes]:
        doc = doc if isinstance(doc, dict) else {}
        if doc.get("app_id") != self.options.app_key:
            return _fail(start_response, 400, 10003, "invalid param: app_id")
        if doc.get("app_secret") != self.options.app_secret:
            return _fail(start_response, 400, 10014, "app secret invalid")
        token, left = self.sim.tokens.issue()
        return respond(start_response, 200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": left})

    def route(self, method: str, sub: str, query: dict[str, str], doc: dict[str, Any]) -> dict[str, Any]:
        sim, approvals = self.sim, self.sim.approvals
        parts = [unquote(p) for p in sub.strip("/").split("/") if p]
        if parts == ["instances"] and method == "POST":
            return self.create(doc)
        if parts == ["instances"] and method == "GET":
            return self.list_codes(query)
        if parts == ["instances", "cancel"] and method == "POST":
            with sim.state.lock:
                inst = approvals.cancel(str(doc.get("approval_code") or ""), str(doc.get("instance_code") or ""),
                                        doc.get("user_id"))
                sim.state.save()
                event = sim.event(inst)
            sim.push(event)
            return {"code": 0, "msg": "success", "data": {}}
        if len(parts) == 2 and parts[0] == "instances" and method == "GET":
            with sim.state.lock:
                return {"code": 0, "data": render(approvals.get(parts[1])), "msg": ""}
        if parts == ["approvals"] and method == "POST":
            return self.define(doc)
        if len(parts) == 3 and parts[0] == "approvals" and parts[2] == "subscribe" and method == "POST":
            if parts[1] not in sim.state.data["definitions"]:
                raise ApprovalError(1390002, "approval code not found")
            sim.subscribed.add(parts[1])
            return {"code": 0, "msg": "success", "data": {}}
        raise ApprovalError(1390001, f"404 page not found: {method} {PREFIX}{sub}", status=404)

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        form = doc.get("form")
        if not isinstance(form, str):
            raise ApprovalError(1390001, "param is invalid: form must be a JSON string")
        try:
            items = json.loads(form)
        except ValueError:
            raise ApprovalError(1390001, "param is invalid: form is not valid JSON") from None
        with self.sim.state.lock:
            inst = self.sim.approvals.create(str(doc.get("approval_code") or ""), doc.get("user_id"),
                                             doc.get("open_id"), items, str(doc.get("uuid") or ""))
            self.sim.state.save()
            event = self.sim.event(inst)
        self.sim.push(event)
        return {"code": 0, "data": {"instance_code": inst["instance_code"]}, "msg": ""}

    def list_codes(self, query: dict[str, str]) -> dict[str, Any]:
        try:
            code = query["approval_code"]
            start, end = int(query["start_time"]), int(query["end_time"])
            size = int(query.get("page_size") or MAX_PAGE)
        except (KeyError, ValueError):
            raise ApprovalError(1390001, "param is invalid: approval_code, start_time and end_time are "
                                         "required; times in milliseconds") from None
        if not 1 <= size <= MAX_PAGE:
            raise ApprovalError(1390001, f"param is invalid: page_size must be 1..{MAX_PAGE}")
        if code not in self.sim.state.data["definitions"]:
            raise ApprovalError(1390002, "approval code not found")
        offset = _offset(query["page_token"]) if query.get("page_token") else 0
        with self.sim.state.lock:
            codes = self.sim.approvals.list_codes(code, start, end)
        more = offset + size < len(codes)
        return {"code": 0, "data": {"instance_code_list": codes[offset:offset + size],
                                    "page_token": _page_token(offset + size) if more else "", "has_more": more},
                "msg": ""}

    def define(self, doc: dict[str, Any]) -> dict[str, Any]:
        try:
            widgets = json.loads((doc.get("form") or {}).get("form_content") or "[]")
        except (ValueError, AttributeError):
            raise ApprovalError(1390001, "param is invalid: form.form_content must be a JSON string") from None
        if not doc.get("approval_name") or not isinstance(widgets, list):
            raise ApprovalError(1390001, "param is invalid: approval_name and form are required")
        with self.sim.state.lock:
            code = doc.get("approval_code") or self.sim.approvals.new_code(self.sim.state.data["definitions"])
            self.sim.approvals.define(code, str(doc["approval_name"]),
                                      [{"id": w.get("id"), "custom_id": w.get("custom_id", ""), "name": w.get("name"),
                                        "type": w.get("type", "input")} for w in widgets if isinstance(w, dict)])
            self.sim.state.save()
        return {"code": 0, "data": {"approval_code": code, "approval_id": str(7164674035308036124 + len(
            self.sim.state.data["definitions"]))}, "msg": "success"}


def create_app(options: SimOptions) -> FaultInjector:
    """The Feishu simulator as a WSGI app; ``app.sim`` is its :class:`FeishuSim`."""
    core = FeishuApp(options)
    app = FaultInjector(core, NoGenericThrottle(options), exempt=("/open-apis/auth/",))  # type: ignore[arg-type]
    app.sim = core.sim  # type: ignore[attr-defined]
    return app
