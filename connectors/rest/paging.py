"""Reading pages, classifying bodies, pacing by rate-limit headers.

Paging styles (``paging.style`` of a request): ``page`` (page number),
``offset`` (offset/limit), ``cursor`` (a next token from the body, sent back as
a parameter), ``next_link`` (a URL in the body), ``link_header`` (RFC 8288
``Link: <...>; rel="next"``) and ``none``. All go through
:func:`hub.http.follow_pages`, which fails on a repeated token; a page that
repeats the previous page's records fails too (a server that ignores the
paging parameter would otherwise loop forever). An empty page ends every style. Page and offset reads
follow the body's ``has_more_path`` / ``total_pages_path`` / ``total_path`` when described (a server may
cap the page size below ``size``); without one, a page shorter than an earlier page ends the read.
"""
from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import requests

from connectors.rest.paths import STAR, compile_path, get_at, get_path, set_path
from connectors.rest.spec import (Condition, CursorPaging, ErrorRule, LinkHeaderPaging, NextLinkPaging,
                                  OffsetPaging, PagePaging, Paging, RateLimitSpec)
from hub.errors import FatalError, LimitExceeded, RetriableError, SkippableRecordError
from hub.http import follow_pages, retry_after_seconds
from hub.mapping_yaml import scalar_key

log = logging.getLogger(__name__)

_MISSING = object()


class RestApiError(FatalError):
    """The API refused a call: HTTP status or a matched error rule, with the API's code and message."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None, **context: object) -> None:
        super().__init__(message, **context)
        self.status, self.code = status, code


def body_of(resp: requests.Response) -> Any:
    """The JSON body, parsed once per response (None for an empty or non-JSON body)."""
    cached = getattr(resp, "_rest_body", _MISSING)
    if cached is _MISSING:
        try:
            cached = resp.json() if resp.content else None
        except ValueError:
            cached = None
        resp._rest_body = cached  # type: ignore[attr-defined]
    return cached


def _value(doc: Any, path: str) -> Any:
    steps = compile_path(path)
    node = doc
    for step in steps:          # like get_at, but tells a missing key from a null value
        if step is STAR:
            break
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return _MISSING
            node = node[step]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return _MISSING
    return node


def _same(a: Any, b: Any) -> bool:
    return a == b or (not isinstance(a, (dict, list)) and scalar_key(a) == scalar_key(b))


def condition_holds(cond: Condition, body: Any) -> bool:
    """Whether one condition of an error rule holds for a body."""
    value = _value(body, cond.path)
    present = value is not _MISSING
    set_ = cond.model_fields_set
    if "exists" in set_:
        return present == bool(cond.exists)
    if not present:
        return False
    if "equals" in set_:
        return _same(value, cond.equals)
    if "not_equals" in set_:
        return not _same(value, cond.not_equals)
    if "in_" in set_:
        return any(_same(value, v) for v in cond.in_ or [])
    if "not_in" in set_:
        return not any(_same(value, v) for v in cond.not_in or [])
    return value is not None and re.search(cond.matches or "", scalar_key(value)) is not None


class BodyRules:
    """The description's error rules as a ``classify`` callback for :meth:`hub.http.HttpClient.request`.

    Rules look at the bodies of successful (2xx) answers: errors an API hides behind HTTP 200.
    """

    def __init__(self, rules: list[ErrorRule], name: str) -> None:
        self.rules, self.name = rules, name

    def __call__(self, resp: requests.Response) -> None:
        if not 200 <= resp.status_code < 300:
            return          # refusals (4xx) are judged by status: per change for writes, fatal for reads
        if resp.status_code != 204 and resp.content and body_of(resp) is None:
            # a cut body (a dropped connection) is transient
            if resp.headers.get("Content-Type", "").startswith("application/json") or resp.content[:1] in b"[{":
                raise RetriableError(f"{resp.request.method} {_short(resp.url)}: body is not complete JSON",
                                     connector=self.name)
        body = body_of(resp)
        if body is None:
            return
        for rule in self.rules:
            if condition_holds(rule.when, body):
                self.raise_for(rule, body, resp)

    def raise_for(self, rule: ErrorRule, body: Any, resp: requests.Response) -> None:
        code = get_path(body, rule.code) if rule.code else None
        message = get_path(body, rule.message) if rule.message else None
        text = (f"{resp.request.method} {_short(resp.url)}: the API reports an error"
                f"{f' {code}' if code not in (None, '') else ''}: {message or f'body matches {rule.when.path}'}")
        if rule.action == "retry":
            raise RetriableError(text, retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                                 connector=self.name)
        if rule.action == "limit":
            raise LimitExceeded(text, retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                                connector=self.name)
        if rule.action == "skip":
            raise SkippableRecordError(text, connector=self.name)
        raise RestApiError(text, resp.status_code, None if code is None else str(code), connector=self.name)


def _short(url: str) -> str:
    return url.split("?", 1)[0]


class Pacer:
    """Waits before a request when the last answer said the rate-limit budget is spent.

    A wait longer than ``max_wait_seconds`` stops the stream cleanly (LimitExceeded) so the
    next run resumes; the decision is made before sending, never after a write went through.
    """

    def __init__(self, spec: RateLimitSpec | None, name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.spec, self.name, self.sleep = spec, name, sleep
        self.lock = threading.Lock()
        self.not_before = 0.0
        self.waited = 0.0

    def observe(self, resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """A requests response hook: remember when the next call may go."""
        s = self.spec
        if s is None:
            return resp
        try:
            remaining = int(float(resp.headers[s.remaining_header]))
        except (KeyError, ValueError):
            return resp
        if remaining > s.min_remaining:
            return resp
        wait = s.default_wait_seconds
        raw = resp.headers.get(s.reset_header) if s.reset_header else None
        if raw is not None:
            try:
                value = float(raw)
                wait = {"seconds": value, "milliseconds": value / 1000, "epoch": value - time.time(),
                        "epoch_ms": value / 1000 - time.time()}[s.reset_format]
            except ValueError:
                pass
        with self.lock:
            self.not_before = max(self.not_before, time.monotonic() + max(0.0, wait))
        return resp

    def before(self) -> None:
        """Called before each request."""
        if self.spec is None:
            return
        with self.lock:
            wait = self.not_before - time.monotonic()
        if wait <= 0:
            return
        if wait > self.spec.max_wait_seconds:
            raise LimitExceeded(f"rate limit spent; the API resets in {wait:.0f}s, more than "
                                f"max_wait_seconds ({self.spec.max_wait_seconds:g})", retry_after=wait,
                                connector=self.name)
        log.info("rate limit spent; waiting %.2fs", wait, extra={"connector": self.name})
        self.waited += wait
        self.sleep(wait)


@dataclass
class Page:
    number: int
    records: list[dict[str, Any]]
    body: Any
    response: requests.Response


Send = Callable[[dict[str, Any]], requests.Response]


def with_params(args: dict[str, Any], extra: dict[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(args)
    if where == "body":
        body = out.get("json")
        if not isinstance(body, dict):
            body = out["json"] = {}
        for k, v in extra.items():
            set_path(body, k, v)
    else:
        out["params"] = {**(out.get("params") or {}), **extra}
    return out


def _more_counted(paging: PagePaging | OffsetPaging, body: Any, position: int, count: int, widest: int) -> bool:
    """Whether a non-empty page of a page or offset read has a successor.

    What the body says decides alone (``has_more_path``, else ``total_pages_path`` / ``total_path``): a
    server may serve fewer records than asked for (a cap of its own) and still have more. Without such a
    signal, a page shorter than an earlier page of the read is the last; otherwise only an empty page ends
    the read, since the first page cannot tell a small result from a capped one.
    """
    if paging.has_more_path:
        return bool(get_path(body, paging.has_more_path))
    if isinstance(paging, PagePaging):
        total = get_path(body, paging.total_pages_path) if paging.total_pages_path else None
        if total is not None:
            return position < int(total) + paging.start - 1
    else:
        total = get_path(body, paging.total_path) if paging.total_path else None
        if total is not None:
            return position + count < int(total)
    return count >= widest


def pages(send: Send, base: dict[str, Any], paging: Paging | None, records: str, name: str) -> Iterator[Page]:
    """Every page of one read, following the paging style.

    Args:
        send: sends one request (method, path, params, json, headers) and returns the checked response.
        base: the first request, placeholders already filled.
        paging: the request's paging spec (None: one page).
        records: the record path.
        name: the connector name, for messages.
    """
    steps = compile_path(records)
    where = paging.in_ if paging is not None else "query"
    size = getattr(paging, "size", None)
    size_param = getattr(paging, "size_param", None)
    sized = {size_param: size} if size_param and size else {}
    state: dict[str, Any] = {"n": 0, "prev": None, "position": None, "widest": 0}

    def load(args: dict[str, Any], position: Any) -> Page:
        resp = send(args)
        body = body_of(resp)
        found = get_at(body, steps)
        if found is None:
            found = []
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise FatalError(f"records path '{records}' gives {type(found).__name__}, not a list of records "
                             f"(check the API description)", connector=name)
        state["n"] += 1
        state["position"] = position
        if paging is not None and paging.max_pages and state["n"] > paging.max_pages:
            raise FatalError(f"more than max_pages ({paging.max_pages}) pages", connector=name)
        fingerprint = json.dumps(found, sort_keys=True, default=str) if found else None
        if fingerprint is not None and fingerprint == state["prev"]:
            raise FatalError(f"paging loop: page {state['n']} repeats page {state['n'] - 1} "
                             f"(does the API honor the paging parameter?)", connector=name)
        state["prev"] = fingerprint
        return Page(state["n"], found, body, resp)

    def counted_more(page: Page) -> bool:
        """Page and offset styles: whether another page follows (see :func:`_more_counted`)."""
        widest = state["widest"]
        state["widest"] = max(widest, len(page.records))
        return _more_counted(paging, page.body, state["position"], len(page.records), widest)

    def next_of(page: Page) -> str | None:
        if not page.records:
            return None
        if isinstance(paging, PagePaging):
            return str(state["position"] + 1) if counted_more(page) else None
        if isinstance(paging, OffsetPaging):
            return str(state["position"] + len(page.records)) if counted_more(page) else None
        if getattr(paging, "has_more_path", None) and not get_path(page.body, paging.has_more_path):
            return None
        if isinstance(paging, CursorPaging):
            token = get_path(page.body, paging.cursor_path)
            return None if token in (None, "") else str(token)
        if isinstance(paging, NextLinkPaging):
            link = get_path(page.body, paging.link_path)
            return str(link) if link else None
        if isinstance(paging, LinkHeaderPaging):
            return (page.response.links.get(paging.rel) or {}).get("url")
        return None

    def fetch(token: str) -> Page:
        if isinstance(paging, (PagePaging, OffsetPaging)):
            return load(with_params(base, {paging.param: int(token), **sized}, where), int(token))
        if isinstance(paging, CursorPaging):
            return load(with_params(base, {paging.param: token, **sized}, where), token)
        # a link carries every parameter: send it as it is
        return load({"method": base["method"], "path": token, "headers": base.get("headers") or {},
                     "params": {}, "json": base.get("json") if base["method"] != "GET" else None}, token)

    if isinstance(paging, (PagePaging, OffsetPaging)):
        first = load(with_params(base, {paging.param: paging.start, **sized}, where), paging.start)
    else:
        first = load(with_params(base, sized, where) if sized else base, None)
    yield from follow_pages(first, next_of, fetch)
