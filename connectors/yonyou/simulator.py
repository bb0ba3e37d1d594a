"""Yonyou YonBIP / YonSuite OpenAPI simulator (PROTOCOLS section 4).

* ``GET /open-auth/dataCenter/getGatewayAddress?tenantId=`` -> this server's
  ``{base}/iuap-api-gateway`` and ``{base}/iuap-api-auth``;
* ``GET [/iuap-api-auth]/open-auth/selfAppAuth/base/v1/getAccessToken`` (and the
  older ``/open-auth/selfAppAuth/getAccessToken``) with appKey, timestamp (ms)
  and the HmacSHA256 signature -> ``{"code": "00000", "data": {access_token, expire}}``;
* ``[/iuap-api-gateway]/yonbip/...`` business APIs with ``?access_token=``.

Auth errors are HTTP 200 bodies (310001 missing token, 310036 invalid or
expired token, 10018 unknown app); an unknown path is HTTP 404 code 310404.
Throttling answers HTTP 200 with code 310046 (rate) or 310047 (quota spent):
both codes are [unverified], PROTOCOLS found no documented over-limit response.
``create_app(options)`` returns the WSGI app; ``app.sim`` is the
:class:`YonyouSim` (tests call ``expire_tokens``).
"""
from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from connectors.simkit import FaultInjector, JsonState, SimOptions
from connectors.yonyou import sim_api, sim_data, signing

TZ = ZoneInfo("Asia/Shanghai")
GATEWAY_PREFIX = "/iuap-api-gateway"
AUTH_PREFIX = "/iuap-api-auth"
TOKEN_PATHS = ("/open-auth/selfAppAuth/base/v1/getAccessToken", "/open-auth/selfAppAuth/getAccessToken")
DISCOVERY_PATH = "/open-auth/dataCenter/getGatewayAddress"
THROTTLE_CODE, QUOTA_CODE = "310046", "310047"          # [unverified] codes, see module docstring
BAD_SIGNATURE_CODE = "10019"                             # [unverified] code
TIMESTAMP_SKEW_MS = 3600 * 1000                          # [unverified] accepted clock skew
DEFAULT_TTL = 7200

ROUTES: dict[tuple[str, str], tuple[str, Callable[..., dict[str, Any]]]] = {
    ("POST", "/yonbip/digitalModel/merchant/newlist"): ("read", sim_api.merchant_list),
    ("POST", "/yonbip/digitalModel/merchant/idempotent/newinsert"): ("write", sim_api.merchant_insert),
    ("POST", "/yonbip/digitalModel/batch/merchant/save"): ("write", sim_api.merchant_batch_save),
    ("POST", "/yonbip/sd/voucherorder/list"): ("read", sim_api.order_list),
    ("GET", "/yonbip/sd/voucherorder/detail"): ("query", sim_api.order_detail),
    ("POST", "/yonbip/sd/voucherorder/singleSave"): ("write", sim_api.order_save),
    ("POST", "/yonbip/EFI/collection/list"): ("read", sim_api.receipt_list),
}


class YonyouSim:
    """State, tokens and request handling (wrapped by FaultInjector in :func:`create_app`)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.state = JsonState(options.state, lambda: sim_data.generate(options.seed, options.records))
        self.tokens: dict[str, float] = {}        # token -> expiry (monotonic)
        self.lock = threading.RLock()
        self.rng = random.Random(options.seed * 31 + 11)
        self.token_rng = random.Random(options.seed * 13 + 5)
        self.calls = 0
        self.stats = {"tokens": 0, "rejected_tokens": 0, "throttled": 0, "api_calls": 0}

    def expire_tokens(self) -> None:
        """Invalidate every issued token, as expiry or a gateway restart does."""
        with self.lock:
            self.tokens.clear()

    @property
    def ttl(self) -> float:
        return float(self.options.token_ttl) if self.options.token_ttl is not None else DEFAULT_TTL

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        if path == DISCOVERY_PATH:
            return self._send(start_response, 200, self._discovery(environ, query))
        auth_path = path[len(AUTH_PREFIX):] if path.startswith(AUTH_PREFIX + "/") else path
        if auth_path in TOKEN_PATHS:
            return self._send(start_response, 200, self._token(query))
        api_path = path[len(GATEWAY_PREFIX):] if path.startswith(GATEWAY_PREFIX + "/") else path
        route = ROUTES.get((method, api_path))
        if route is None:
            return self._send(start_response, 404, {
                "code": "310404", "message": f"网关上没有注册此API[{api_path}]，请确认后重新调用"})
        token = query.get("access_token", "")
        if not token:
            return self._send(start_response, 200, {"code": "310001", "message": "access_token不能为空。"})
        if not self._token_live(token):
            self.stats["rejected_tokens"] += 1
            return self._send(start_response, 200, {"code": "310036", "message": "非法token"})
        throttled = self._throttle()
        if throttled:
            return self._send(start_response, 200, throttled)
        kind, handler = route
        try:
            if kind == "query":
                with self.state.lock:
                    return self._send(start_response, 200, handler(self.state.data, query))
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(size).decode("utf-8") or "{}")
            if not isinstance(body, dict):
                raise sim_api.ApiError("999", "请求体必须是 JSON 对象")
            with self.state.lock:
                if kind == "read":
                    return self._send(start_response, 200, handler(self.state.data, body))
                result = handler(self.state.data, body, datetime.now(TZ).replace(tzinfo=None))
                self.state.save()
                return self._send(start_response, 200, result)
        except (ValueError, UnicodeDecodeError):
            return self._send(start_response, 200, {"code": "999", "message": "请求体不是合法的JSON"})
        except sim_api.ApiError as exc:
            return self._send(start_response, 200, {"code": exc.code, "message": exc.message, "data": None})

    @staticmethod
    def _send(start_response: Callable, status: int, body: Any) -> list[bytes]:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        reason = {200: "OK", 404: "Not Found"}[status]
        start_response(f"{status} {reason}", [("Content-Type", "application/json;charset=UTF-8"),
                                              ("Content-Length", str(len(data)))])
        return [data]

    @staticmethod
    def _discovery(environ: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
        if not query.get("tenantId"):
            return {"code": "999", "message": "tenantId不能为空", "data": None}       # [unverified]
        base = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}"
        return {"code": "00000", "message": "成功！",
                "data": {"gatewayUrl": base + GATEWAY_PREFIX, "tokenUrl": base + AUTH_PREFIX}}

    def _token(self, query: dict[str, str]) -> dict[str, Any]:
        o = self.options
        if query.get("appKey") != o.app_key:
            return {"code": "10018", "message": "应用不存在或appKey已停用", "data": None}
        try:
            skew = abs(int(query.get("timestamp", "")) - int(time.time() * 1000))
        except ValueError:
            skew = TIMESTAMP_SKEW_MS + 1
        if skew > TIMESTAMP_SKEW_MS or not signing.verify(query, o.app_secret):
            return {"code": BAD_SIGNATURE_CODE, "message": "签名校验失败", "data": None}
        with self.lock:
            token = "%032x" % self.token_rng.getrandbits(128)
            self.tokens[token] = time.monotonic() + self.ttl
            self.stats["tokens"] += 1
        return {"code": "00000", "message": "成功！", "data": {"access_token": token, "expire": max(1, round(self.ttl))}}

    def _token_live(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
            if expiry is None:
                return False
            if time.monotonic() > expiry:
                del self.tokens[token]
                return False
            return True

    def _throttle(self) -> dict[str, Any] | None:
        with self.lock:
            self.calls += 1
            self.stats["api_calls"] += 1
            budget = self.options.request_budget
            if budget is not None and self.calls > budget:
                self.stats["throttled"] += 1
                return {"code": QUOTA_CODE, "message": "API免费调用次数已用完，请购买资源包后再调用", "data": None}
            if self.rng.random() < self.options.rate_limit_rate:
                self.stats["throttled"] += 1
                return {"code": THROTTLE_CODE, "message": "API调用频率超过限制，请稍后再试", "data": None}
        return None


class _NoHttpThrottle:
    """Options as FaultInjector sees them: this gateway throttles with a body code, not HTTP 429."""

    def __init__(self, options: SimOptions) -> None:
        self._options = options

    def __getattr__(self, name: str) -> Any:
        return 0.0 if name == "rate_limit_rate" else getattr(self._options, name)


def create_app(options: SimOptions) -> FaultInjector:
    """The YonBIP simulator as a WSGI app (token and discovery calls are never failed by the injector)."""
    sim = YonyouSim(options)
    exempt = ("/open-auth/", AUTH_PREFIX + "/")
    app = FaultInjector(sim, _NoHttpThrottle(options), exempt=exempt)  # type: ignore[arg-type]
    app.sim = sim  # type: ignore[attr-defined]
    return app
