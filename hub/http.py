"""All HTTP goes through here: one Session per connector, timeouts, retries with
backoff and jitter honoring Retry-After, a re-auth hook on 401, and secret-free logs.

Connectors never call ``requests.get`` directly (STYLE.md section 6). Errors
hidden in HTTP 200 bodies are classified by the connector's own ``classify``
callback, which may raise a :mod:`hub.errors` exception.
"""
from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import requests

from hub.errors import ConfigError, FatalError, LimitExceeded, RetriableError
from hub.retry_tally import count_retry

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
STOP_AFTER = 30.0    # a Retry-After longer than this (and than max_wait) is waited out between runs, not in one

# `connectors check` wants a verdict: a system that is down is said so in seconds, not after a run's patience
QUICK_ATTEMPTS, QUICK_WAIT, QUICK_CONNECT_TIMEOUT = 2, 1.0, 10.0
_quick: ContextVar[bool] = ContextVar("triad_http_quick", default=False)


@contextmanager
def answering_quickly() -> Iterator[None]:
    """Requests sent within (this thread or task): at most QUICK_ATTEMPTS sends, at most QUICK_WAIT seconds
    between them (a Retry-After too) and QUICK_CONNECT_TIMEOUT seconds to connect."""
    token = _quick.set(True)
    try:
        yield
    finally:
        _quick.reset(token)


def failure_reason(exc: BaseException) -> str:
    """What a connection failure was, in a few words (``Connection refused``, ``Name or service not known``,
    ``timed out``); "" when the exception does not say. requests buries it in urllib3's wrapped errors."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip()
    if isinstance(exc, requests.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, requests.Timeout):
        return "timed out waiting for the answer"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection without answering"
    return ""


class NotCarriedOut(RetriableError):
    """Raised by a ``classify`` callback for an answer that says the system refused the request
    without acting on it (a vendor's own throttling code): even a create is sent again."""


@dataclass
class RetryPolicy:
    """How often and how patiently a request is sent.

    ``attempts`` counts sends in all (the connectors' ``retries`` option); 0 and 1 both mean
    send once. A negative count is a configuration mistake.
    """

    attempts: int = 5
    backoff: float = 0.5        # first wait in seconds; doubles each attempt
    max_wait: float = 30.0
    timeout: float = 30.0       # per request (connect and read)

    def __post_init__(self) -> None:
        self.attempts = max(1, retry_attempts(self.attempts))   # callers that loop over attempts send once at least


def retry_attempts(value: Any) -> int:
    """The connectors' ``retries`` option as a count of sends; ConfigError for anything but a whole number >= 0."""
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not text.isdigit():
        raise ConfigError(f"retries (retry attempts) must be a whole number, 0 or more (0 and 1: send once, "
                          f"no retry), got {value!r}")
    return int(text)


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header: seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HttpClient:
    """A requests Session with the project's retry rules.

    Args:
        base_url: prefix for relative paths.
        policy: retry and timeout policy.
        auth: a ``requests.auth.AuthBase`` (token refresh lives there).
        on_unauthorized: called once on a 401 before retrying (drop the cached token).
        verify: TLS verification (a CA bundle path for self-signed simulators).
        name: the connector name, for log context.
    """

    def __init__(self, base_url: str, *, policy: RetryPolicy | None = None,
                 auth: requests.auth.AuthBase | None = None,
                 on_unauthorized: Callable[[], None] | None = None,
                 verify: bool | str = True, name: str = "http") -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.session = requests.Session()
        self.session.auth = auth
        self.session.verify = verify
        self.on_unauthorized = on_unauthorized
        self.name = name
        self.sleep = time.sleep          # replaced in tests that must not wait

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *,
                classify: Callable[[requests.Response], None] | None = None,
                idempotent: bool = True, **kwargs: Any) -> requests.Response:
        """Send a request, retrying transient failures.

        ``classify(response)`` may raise RetriableError (retried here),
        LimitExceeded or FatalError (raised to the caller) for bodies that hide
        errors behind HTTP 200. Non-retriable 4xx responses are returned for the
        caller to interpret (per-record errors are data, not exceptions).

        ``idempotent=False`` (a create that sending twice would make twice): it is sent again here
        only when the system cannot have acted on it: the connection was never made, a 429, a 401
        answered by re-authenticating, or a :class:`NotCarriedOut` from ``classify``. Any other answer
        (a 5xx, a cut or unreadable 200) or a read timeout may hide a done create: the RetriableError
        goes to the caller, whose retry looks the record up first (the outbox's next attempt).

        The policy's attempts count sends; the repeat after re-authenticating on a 401 is not
        counted, so a token that expired between calls never uses up the last attempt. One
        re-authentication per attempt: a 401 right after a fresh login goes to ``classify``, but a
        token that expires again while a retry waits is renewed again.

        A Retry-After longer than the policy's ``max_wait`` and :data:`STOP_AFTER` is not cut short:
        LimitExceeded, so the run stops cleanly and the next one resumes after it.
        """
        quick = _quick.get()
        attempts = min(self.policy.attempts, QUICK_ATTEMPTS) if quick else self.policy.attempts
        timeout = self.policy.timeout
        kwargs.setdefault("timeout", (min(QUICK_CONNECT_TIMEOUT, timeout), timeout) if quick else timeout)
        # requests prefers $REQUESTS_CA_BUNDLE over session.verify; a per-request value wins over both
        kwargs.setdefault("verify", self.session.verify)
        url = self.url(path)
        reauthed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = failure_reason(exc)
                failure = RetriableError(f"{method} {path}: {type(exc).__name__}" + (f" ({reason})" if reason else ""),
                                         connector=self.name)
                if not idempotent and not isinstance(exc, requests.ConnectTimeout) and not _never_sent(exc):
                    raise failure from exc     # it may have been carried out: not sent again blindly
            else:
                if resp.status_code == 401 and self.on_unauthorized and not reauthed:
                    reauthed = True
                    attempt -= 1               # refused before acting: the repeat with a new token is free
                    log.info("re-authenticating after 401", extra={"connector": self.name})
                    self.on_unauthorized()
                    continue
                try:
                    return self._accepted(method, path, resp, classify)
                except LimitExceeded:
                    raise
                except RetriableError as exc:
                    failure = exc
                    self._stop_for_long_waits(exc)
                    if not idempotent and not _not_carried_out(resp, exc):
                        raise                  # an answer came back: the create may be done
            if attempt >= attempts:
                raise failure
            self._pause(method, path, attempt, failure)
            reauthed = False                   # the token may expire during the wait: it may be renewed again

    def _accepted(self, method: str, path: str, resp: requests.Response,
                  classify: Callable[[requests.Response], None] | None) -> requests.Response:
        """``resp`` when it is an answer to hand back; RetriableError for a transient failure."""
        if resp.status_code in RETRY_STATUSES:
            raise RetriableError(f"{method} {path}: HTTP {resp.status_code}",
                                 retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                                 connector=self.name)
        if classify:
            classify(resp)
        return resp

    def _stop_for_long_waits(self, failure: RetriableError) -> None:
        """LimitExceeded when the system asks to wait longer than a run waits."""
        wait = failure.retry_after
        if wait is not None and wait > max(self.policy.max_wait, STOP_AFTER):
            raise LimitExceeded(f"{failure} (the system asks to wait {wait:.0f} s, longer than this "
                                f"connector waits in a run; the next run resumes)",
                                retry_after=wait, connector=self.name) from failure

    def _pause(self, method: str, path: str, attempt: int, failure: RetriableError) -> None:
        """Wait before the next attempt: the system's Retry-After, else backoff with jitter."""
        wait = failure.retry_after
        if wait is None:
            wait = min(self.policy.max_wait, self.policy.backoff * 2 ** (attempt - 1))
            wait *= 0.5 + random.random()  # jitter so several workers do not retry in step
        log.info("retrying %s %s in %.2fs (attempt %d): %s", method, path, wait, attempt, failure,
                 extra={"connector": self.name})
        count_retry()
        self.sleep(min(wait, self.policy.max_wait, QUICK_WAIT if _quick.get() else wait))

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.request(method, path, **kwargs)
        try:
            return resp.json()
        except ValueError as exc:  # truncated or non-JSON body: transient on every system we know
            raise RetriableError(f"{method} {path}: body is not JSON ({exc})", connector=self.name) from exc

    def close(self) -> None:
        self.session.close()


def follow_pages(first: Any, next_of: Callable[[Any], str | None],
                 fetch: Callable[[str], Any]) -> Iterator[Any]:
    """Yield pages, following ``next_of(page)`` tokens; fail on a repeated token (a server loop)."""
    seen: set[str] = set()
    page = first
    while True:
        yield page
        token = next_of(page)
        if not token:
            return
        if token in seen:
            raise FatalError(f"paging loop: token {token!r} returned twice")
        seen.add(token)
        page = fetch(token)


def _not_carried_out(resp: requests.Response, failure: RetriableError) -> bool:
    """The answer says the system refused the request without acting on it (throttled)."""
    return resp.status_code == 429 or isinstance(failure, NotCarriedOut)


def _never_sent(exc: Exception) -> bool:
    """A connection refused or not made (DNS, refused port): the request never reached the system."""
    text = str(exc)
    return isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout) and (
        "Connection refused" in text or "Failed to resolve" in text or "Name or service not known" in text
        or "NewConnectionError" in text)
