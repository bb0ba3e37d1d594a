"""Plumbing shared by the two OA simulators (DingTalk here, Feishu imports it).

The id generator kept in the data set, tokens with a time to live, the
vendor-shaped throttle (a random share of requests and/or a request budget
per window), pushing callbacks to a configured URL, and small WSGI helpers. The generic faults (errors, latency,
cut bodies) stay in :class:`connectors.simkit.FaultInjector`; its own 429 is
switched off with :class:`NoGenericThrottle` because each OA system throttles
with its own body.
"""
from __future__ import annotations

import json
import logging
import random
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from connectors.simkit import SimOptions

log = logging.getLogger(__name__)

RNG_KEY = "id_rng"      # where the data set keeps its id generator's position

STATUS_TEXT = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden",
               404: "404 Not Found", 405: "405 Method Not Allowed", 429: "429 Too Many Requests",
               500: "500 Internal Server Error"}


def resume_rng(data: dict[str, Any], seed: int) -> random.Random:
    """The id generator: from ``seed`` for a new data set, else where the loaded state file left it."""
    rng = random.Random(seed)
    saved = data.get(RNG_KEY)
    if saved:
        version, internal, gauss = saved
        rng.setstate((version, tuple(internal), gauss))
    return rng


def keep_rng(data: dict[str, Any], rng: random.Random) -> None:
    """Record the generator's position in the data set: a restart from the state file must not replay old ids."""
    data[RNG_KEY] = list(rng.getstate())


class NoGenericThrottle:
    """A view of SimOptions for FaultInjector with its plain-text 429 turned off (the app throttles itself)."""

    def __init__(self, options: SimOptions) -> None:
        self._options = options

    def __getattr__(self, name: str) -> Any:
        if name == "rate_limit_rate":
            return 0.0
        return getattr(self._options, name)


class TokenBook:
    """Issued access tokens and their expiry (``options.token_ttl`` seconds, else ``default_ttl``).

    ``reuse_margin``: a token with more than this many seconds left is handed out
    again (DingTalk: always within validity; Feishu: while >= 30 minutes are left).
    """

    def __init__(self, options: SimOptions, prefix: str, default_ttl: float = 7200.0,
                 reuse_margin: float = 0.0) -> None:
        self.options = options
        self.prefix = prefix
        self.default_ttl = default_ttl
        self.reuse_margin = reuse_margin
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.issued = 0

    @property
    def ttl(self) -> float:
        return float(self.options.token_ttl) if self.options.token_ttl else self.default_ttl

    def issue(self) -> tuple[str, int]:
        """(token, seconds left): the current token while it has time left, else a new one."""
        now = time.time()
        with self.lock:
            live = [(t, exp) for t, exp in self.tokens.items() if exp - now > max(self.reuse_margin, 0.0)]
            if live:
                token, exp = max(live, key=lambda item: item[1])
                return token, max(1, int(exp - now))
            token = self.prefix + secrets.token_hex(20)
            self.tokens[token] = now + self.ttl
            self.issued += 1
            return token, max(1, int(self.ttl))

    def valid(self, token: str | None) -> bool:
        with self.lock:
            exp = self.tokens.get(token or "")
        return exp is not None and exp > time.time()

    def expire_all(self) -> None:
        """Test hook: every issued token is expired from now on."""
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}


class Throttle:
    """Decides whether a data call is throttled: ``options.rate_limit_rate`` (share of calls) or a budget.

    ``options.request_budget`` calls are allowed per ``extra["rate_window"]``
    seconds (default 1); beyond that every call is refused until the window ends.
    """

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed * 104729 + 3)
        self.lock = threading.Lock()
        self.window_start = time.monotonic()
        self.used = 0
        self.throttled = 0

    @property
    def window(self) -> float:
        return float(self.options.extra.get("rate_window", 1.0))

    def check(self) -> float | None:
        """Seconds the caller should wait when throttled, else None (the call counts against the budget)."""
        o = self.options
        with self.lock:
            now = time.monotonic()
            if now - self.window_start >= self.window:
                self.window_start, self.used = now, 0
            if o.rate_limit_rate and self.rng.random() < o.rate_limit_rate:
                self.throttled += 1
                return float(o.extra.get("ratelimit_reset", 1))
            if o.request_budget is not None and self.used >= o.request_budget:
                self.throttled += 1
                return max(0.05, self.window - (now - self.window_start))
            self.used += 1
            return None


@dataclass
class Delivery:
    """One callback the simulator pushed, and what the receiver answered."""

    url: str
    event: dict[str, Any]
    status: int | None = None
    reply: str = ""
    error: str | None = None


@dataclass
class Pusher:
    """POSTs callbacks (urllib: the simulator is not a connector) and keeps a log of them."""

    timeout: float = 5.0
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, url: str, event: dict[str, Any], body: bytes, headers: dict[str, str]) -> Delivery:
        """Send one callback now; never raises (an unreachable receiver is recorded)."""
        delivery = Delivery(url=url, event=event)
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **headers})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:   # noqa: S310 - 127.0.0.1 receivers
                delivery.status, delivery.reply = resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            delivery.status, delivery.reply = exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            delivery.error = str(exc)
            log.warning("callback to %s failed: %s", url, exc)
        with self.lock:
            self.deliveries.append(delivery)
        return delivery

    def post_later(self, send: Callable[[], Delivery]) -> None:
        """Send in the background so the API call that caused the event answers at once."""
        threading.Thread(target=send, name="sim-callback", daemon=True).start()


def read_body(environ: dict) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def json_body(body: bytes) -> Any:
    """The decoded JSON request body; None when it is not JSON."""
    try:
        return json.loads(body.decode("utf-8")) if body else {}
    except (ValueError, UnicodeDecodeError):
        return None


def respond(start_response: Callable, status: int, body: Any,
            headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    """Answer JSON with vendor-like headers."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    start_response(STATUS_TEXT.get(status, f"{status} Status"),
                   [("Content-Type", "application/json;charset=utf-8"), *headers])
    return [data]
