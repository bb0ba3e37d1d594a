"""The generic ``rest`` connector: any JSON REST API, described in YAML.

triad.yaml::

    connectors:
      crm:
        type: rest
        api: hubspot                      # shipped config/rest/hubspot.yaml, a file relative to triad.yaml, or a map
        base_url: https://api.hubapi.com  # optional: overrides the description's base_url
        auth: {token: "${HUBSPOT_TOKEN}"} # the secrets of the description's auth style (may override its keys)
        entities: {customer: {}}          # each mapping's `source` names a resource of the description

Other options: ``headers`` (added to every request), ``verify`` (TLS: false or a CA
bundle path), ``timeout``, ``retries``, ``backoff``.

Reads ask for records changed at or after ``cursor - since.overlap_seconds``
(the ``changes`` request, or the list request plus ``since.param``), drop older
records the API returned anyway, deduplicate keys within the run, and report as
cursor the newest change time seen (aware UTC ISO, never past the run start).
Unless the request is ``sorted`` (oldest change first), only the last batch
moves the cursor, so a crash in the middle re-reads rather than skips.
A record that changes while the pages are read can move in the server's order
and shift the others by one, so a page boundary skips a record; the moved record
then shows up on a later page a second time. Such a read is done once more
(records already handed out are not handed out again); if the second pass is
disturbed too, the cursor stays where the run began and the next run reads the
same changes again. A record deleted during a page or offset read shifts the
others without leaving a trace: a record skipped that way is read again only
when it next changes (prefer a keyset cursor or next link where the API has one).
Writes: a change with the system's id uses ``update`` (else ``upsert``); a new
record uses ``upsert`` when described (a retried create cannot duplicate),
else ``create``; each change gets its own result.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Generator, Iterator
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from connectors.rest.auth import build_auth
from connectors.rest.paging import BodyRules, Pacer, RestApiError, body_of, pages, with_params
from connectors.rest.paths import get_path, render
from connectors.rest.spec import RequestSpec, ResourceSpec, SinceSpec, WriteSpec
from connectors.rest.spec_load import config_problems, load_api, resolve_auth
from hub.canonical import ENTITIES
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, LimitExceeded, RetriableError, TriadError
from hub.http import HttpClient, RetryPolicy, retry_attempts
from hub.incremental import CursorTracker, RunDedup, cursor_datetime, parse_local
from hub.mapping_yaml import scalar_key
from hub.secrets import reveal

log = logging.getLogger(__name__)


def parse_stamp(value: Any, tz: ZoneInfo) -> datetime | None:
    """A record's change time: ISO text (local when it has no offset) or epoch seconds / milliseconds."""
    if value in (None, ""):
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if abs(number) > 1e11 else number, timezone.utc)
    return parse_local(value, tz)


def format_since(when: datetime, spec: SinceSpec | None) -> str:
    """The lower bound as the API wants it (see ``SinceSpec.format``)."""
    fmt = spec.format if spec else "iso"
    utc = when.astimezone(timezone.utc)
    local = when.astimezone(ZoneInfo(spec.timezone)) if spec else utc
    if fmt == "iso":
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "iso_ms":
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if fmt == "iso_offset":
        return local.isoformat(timespec="seconds")
    if fmt == "unix":
        return str(int(utc.timestamp()))
    if fmt == "unix_ms":
        return str(int(utc.timestamp() * 1000))
    if fmt == "date":
        return local.date().isoformat()
    return local.strftime(fmt)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _message(resp: requests.Response) -> str:
    body = body_of(resp)
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value
            if value:
                return str(value)[:300]
    return (resp.text or "")[:300]


class _Reading:
    """What one read keeps across its passes: trackers, run dedup and the records not yet handed out."""

    def __init__(self, key: str, updated: str | None, tz: ZoneInfo, low: datetime | None, cursor: Any,
                 stream: StreamSpec) -> None:
        self.key, self.updated, self.tz, self.low = key, updated, tz, low
        self.seen = CursorTracker(cursor, tz, stream.run_started_at)
        self.safe = CursorTracker(cursor, tz, stream.run_started_at)
        self.dedup = RunDedup(tz)
        self.size = max(1, stream.batch_size)
        self.pending: list[tuple[dict[str, Any], datetime | None]] = []

    def take(self, rec: dict[str, Any], page_number: int, first_page: dict[str, int]) -> bool:
        """Queue a record unless older than the bound or already handed out; True when its key was already on
        an earlier page of this pass (the record moved while the pages were read, shifting the others)."""
        record_key = get_path(rec, self.key)
        moved = False
        if record_key is not None:
            seen_on = first_page.setdefault(str(record_key), page_number)
            moved = seen_on < page_number
        stamp = parse_stamp(get_path(rec, self.updated), self.tz) if self.updated else None
        if self.low is not None and stamp is not None and stamp < self.low:
            return moved        # the API did not filter: the closed lower bound is applied here
        if self.dedup.fresh(record_key, stamp):
            self.pending.append((rec, stamp))
        self.seen.see(stamp)
        return moved


class RestConnector(Connector):
    """Any JSON REST API, configured entirely by an API description (see the module docstring)."""

    type_name = "rest"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"api", "base_url", "auth", "headers", "verify", "timeout", "retries", "backoff"})
    entity_option_keys: frozenset[str] = frozenset()
    entities = tuple(ENTITIES)

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.api = load_api(options.get("api"), base_dir, name)
        base_url = options.get("base_url") or self.api.base_url
        if not base_url:
            raise ConfigError(f"connectors.{name}.base_url: the API description {self.api.file} has no base_url; "
                              f"set one in triad.yaml")
        verify = options.get("verify", True)
        if isinstance(verify, str) and not Path(verify).is_absolute():
            verify = str(Path(base_dir) / verify)
        policy = RetryPolicy(attempts=retry_attempts(options.get("retries", 5)),
                             backoff=float(options.get("backoff", 0.5)), timeout=float(options.get("timeout", 30)))
        self.http = HttpClient(str(base_url), policy=policy, verify=verify, name=name)
        self.auth_spec = resolve_auth(self.api, options.get("auth"), name)
        self.http.session.auth, self.http.on_unauthorized = build_auth(self.auth_spec, self.http, name)
        self.pacer = Pacer(self.api.rate_limit, name)
        self.http.session.hooks["response"].append(self.pacer.observe)
        self.headers = {**self.api.headers,
                        **{str(k): str(reveal(v)) for k, v in (options.get("headers") or {}).items()}}

    @classmethod
    def validate_options(cls, name: str, options: dict[str, Any], base_dir: str = ".") -> list[str]:
        """Problems of a connector block without reaching the API: the description (file:line: key: what),
        the base URL and the auth values. Meant for `triad config validate`."""
        return config_problems(name, options, base_dir)

    # -- plumbing -----------------------------------------------------------------------------------
    def _resource(self, stream: StreamSpec) -> ResourceSpec:
        res = self.api.resource(stream.source)
        if res is None:
            raise ConfigError(f"the API description {self.api.file} has no resource '{stream.source}' (the "
                              f"`source` of the {stream.entity} mapping); described: {', '.join(self.api.resources)}",
                              connector=self.name)
        return res

    def _send(self, args: dict[str, Any], rules: BodyRules) -> requests.Response:
        self.pacer.before()
        path = str(args["path"])
        absolute = path.startswith(("http://", "https://"))
        params = {**({} if absolute else self.api.params), **(args.get("params") or {})}
        kwargs: dict[str, Any] = {"headers": {**self.headers, **(args.get("headers") or {})}}
        if params:     # booleans as JSON writes them (requests would send True/False)
            kwargs["params"] = {k: scalar_key(v) if isinstance(v, bool) else v for k, v in params.items()
                                if v is not None}
        if args.get("json") is not None:
            kwargs["json"] = args["json"]
        return self.http.request(args["method"], path, classify=rules, **kwargs)

    def _checked(self, resp: requests.Response) -> requests.Response:
        """Reads and checks stop on a refused call; the message says where to look."""
        status = resp.status_code
        if status < 300:
            return resp
        where = f"{resp.request.method} {resp.url.split('?', 1)[0]}"
        if status in (401, 403):
            raise RestApiError(f"{where}: the API refused the credentials (HTTP {status}: {_message(resp)}); "
                               f"check connectors.{self.name}.auth", status, connector=self.name)
        if status == 404:
            raise RestApiError(f"{where}: not found (HTTP 404); check the path in {self.api.file}", status,
                               connector=self.name)
        raise RestApiError(f"{where}: HTTP {status}: {_message(resp)}", status, connector=self.name)

    def _fields(self, stream: StreamSpec, res: ResourceSpec) -> list[str]:
        if res.field_prefix:
            head = res.field_prefix.rstrip(".") + "."
            return list(dict.fromkeys(f[len(head):].split(".")[0] for f in stream.fields if f.startswith(head)))
        return list(dict.fromkeys(f.split(".")[0] for f in stream.fields))

    def _base(self, req: RequestSpec, ctx: dict[str, Any]) -> dict[str, Any]:
        return {"method": req.method, "path": str(render(req.path, ctx)), "params": render(req.params, ctx),
                "headers": {k: str(v) for k, v in render(req.headers, ctx).items()},
                "json": render(req.body, ctx) if req.body is not None else None}

    # -- contract -----------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        info = {"api": self.api.file, "auth": self.auth_spec.type, "base_url": self.http.base_url}
        try:
            if self.api.check is not None:
                req, rules = self.api.check, BodyRules(self.api.errors, self.name)
                self._checked(self._send(self._base(req, {}), rules))
            else:
                source, res = next(iter(self.api.resources.items()))
                rules = BodyRules(res.errors + self.api.errors, self.name)
                ctx = {"fields": "", "fields_list": []}
                first = pages(lambda a: self._checked(self._send(a, rules)), self._base(res.list_, ctx),
                              res.list_.paging, res.list_.records, self.name)
                next(first)
                first.close()
        except (TriadError, requests.RequestException) as exc:
            return CheckResult(False, f"{self.api.name or 'REST API'} check failed: {exc}", info)
        return CheckResult(True, f"{self.api.name or 'REST API'} reachable at {self.http.base_url} "
                                 f"({self.auth_spec.type} auth)", info)

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Batches of records changed at or after the cursor (see the module docstring)."""
        res = self._resource(stream)
        tz = _zone(stream.timezone)
        start = cursor_datetime(cursor)
        low = start - timedelta(seconds=res.since.overlap_seconds if res.since else 0) if start else None
        req = res.changes if low is not None and res.changes is not None else res.list_
        fields = self._fields(stream, res)
        ctx = {"fields": ",".join(fields), "fields_list": fields,
               "since": format_since(low, res.since) if low is not None else None}
        base = self._base(req, ctx)
        if low is not None and req is res.list_ and res.since and res.since.param:
            base = with_params(base, {res.since.param: ctx["since"]}, res.since.in_)
        log.info("reading %s from %s (%s)", stream.source, self.name, f"since {ctx['since']}" if low else "all",
                 extra={"connector": self.name, "entity": stream.entity})
        reading = _Reading(res.key or stream.key, res.updated_at or stream.updated_at, tz, low, cursor, stream)
        moved = yield from self._read_pass(reading, req, base, res)
        if moved:       # a record moved between pages: the pages may have skipped one; a second pass finds it
            log.info("records moved between pages while reading %s; reading it once more", stream.source,
                     extra={"connector": self.name, "entity": stream.entity})
            moved = yield from self._read_pass(reading, req, base, res)
        if moved:
            log.warning("records moved between pages again while reading %s; the cursor stays at %s so the next "
                        "run reads the same changes", stream.source, cursor,
                        extra={"connector": self.name, "entity": stream.entity})
        final = reading.seen.start_value() if moved else reading.seen.value()
        yield Batch([r for r, _ in reading.pending], cursor=final)

    def _read_pass(self, reading: _Reading, req: RequestSpec, base: dict[str, Any],
                   res: ResourceSpec) -> Generator[Batch, None, bool]:
        """One pass over every page: full batches as they fill; returns whether a record moved between pages."""
        rules = BodyRules(res.errors + self.api.errors, self.name)
        first_page: dict[str, int] = {}     # key -> the page it was first seen on in this pass
        moved = False
        for page in pages(lambda a: self._checked(self._send(a, rules)), base, req.paging, req.records, self.name):
            for rec in page.records:
                moved = reading.take(rec, page.number, first_page) or moved
            while len(reading.pending) >= reading.size:
                chunk, reading.pending = reading.pending[:reading.size], reading.pending[reading.size:]
                if req.sorted:
                    for _, stamp in chunk:
                        reading.safe.see(stamp)
                yield Batch([r for r, _ in chunk], cursor=reading.safe.value())
        return moved

    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """One request per change (see the module docstring); failures are results, not exceptions."""
        res = self._resource(stream)
        rules = BodyRules(res.errors + self.api.errors, self.name)
        results: list[WriteResult] = []
        for i, ch in enumerate(changes):
            try:
                results.append(self._write_one(stream, res, ch, rules))
            except LimitExceeded as exc:    # stop here: the rest is retried later, nothing is sent twice
                results += [WriteResult(c.change_id, False, c.source_id, error=str(exc), retriable=True,
                                        retry_after=exc.retry_after) for c in changes[i:]]
                break
            except RetriableError as exc:
                results.append(WriteResult(ch.change_id, False, ch.source_id, error=str(exc), retriable=True,
                                           retry_after=exc.retry_after))
            except TriadError as exc:
                results.append(WriteResult(ch.change_id, False, ch.source_id, error=str(exc)))
        return results

    def _write_one(self, stream: StreamSpec, res: ResourceSpec, ch: WriteChange, rules: BodyRules) -> WriteResult:
        if ch.delete:
            op, kind = res.delete, "delete"
        elif ch.source_id:
            op, kind = (res.update, "update") if res.update else (res.upsert, "upsert")
        else:
            op, kind = (res.upsert, "upsert") if res.upsert else (res.create, "create")
        if op is None:
            return WriteResult(ch.change_id, False, ch.source_id,
                               error=f"{self.api.file} describes no {kind} request for '{stream.source}'")
        ctx = {"values": ch.values, "id": ch.source_id, "change_id": ch.change_id, "record_id": ch.record_id,
               "entity": stream.entity}
        args = self._write_args(op, ctx)
        resp = self._send(args, rules)
        if resp.status_code >= 300:
            retriable = resp.status_code in (408, 409, 425) or resp.status_code >= 500
            return WriteResult(ch.change_id, False, ch.source_id, retriable=retriable,
                               error=f"{kind} refused: HTTP {resp.status_code}: {_message(resp)}")
        source_id = ch.source_id
        if kind in ("create", "upsert"):
            id_path = op.id_path or res.key or stream.key
            found = get_path(body_of(resp), id_path)
            if found in (None, ""):
                if source_id is None:
                    return WriteResult(ch.change_id, False, None,
                                       error=f"{kind} answered without an id at '{id_path}' (set id_path)")
            else:
                source_id = str(found)
        log.debug("%s %s %s -> %s", kind, stream.source, ch.change_id, source_id, extra={"connector": self.name})
        return WriteResult(ch.change_id, True, source_id)

    def _write_args(self, op: WriteSpec, ctx: dict[str, Any]) -> dict[str, Any]:
        # values placed in a URL path are percent-encoded; in params and bodies they stay as they are
        in_path = {**ctx, "id": quote(str(ctx["id"]), safe="") if ctx["id"] is not None else None,
                   "values": {k: quote(str(v), safe="") if isinstance(v, (str, int)) else v
                              for k, v in (ctx["values"] or {}).items()}}
        body = None
        if op.method != "DELETE" or "body" in op.model_fields_set:
            body = render(op.body, ctx)
        return {"method": op.method, "path": str(render(op.path, in_path)), "params": render(op.params, ctx),
                "headers": {k: str(v) for k, v in render(op.headers, ctx).items()}, "json": body}

    def close(self) -> None:
        self.http.close()

