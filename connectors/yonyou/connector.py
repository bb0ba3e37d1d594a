"""Yonyou YonBIP connector: customers (merchant), sales orders (voucherorder), receipts (collection).

``StreamSpec.source`` names the API object. Lists have no server cursor:
reads filter on ``pubts`` (local ``yyyy-MM-dd HH:mm:ss``) from
``cursor - overlap_seconds`` and page by ``pageIndex`` until a short page (see
:mod:`hub.incremental`). The order list can be ordered by ``pubts``, so its
cursor moves per batch; the customer list cannot, so it is read in windows of
``pubts`` and its cursor moves per window (:mod:`connectors.yonyou.windows`;
option ``start_date``: where a full read starts). Order rows (one per line) are regrouped into one
record per order with its lines under ``orderDetails``.

The list APIs return whole records, so ``StreamSpec.fields`` selects nothing here.

Writes send the change id as ``resubmitCheckKey``, so a create retried after a
timeout returns the first result instead of a second record. The hub sends every
attempt of a create under its first attempt's key, and such a replay answers with
the record as first created: a create that may have been sent before
(``WriteChange.maybe_sent``) is followed by an update with its current values. Customer updates
go through batch save, which spells the name ``{"zh_CN": ...}`` where lists
and newinsert say ``{"simplifiedName": ...}``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from connectors.yonyou.client import AuthError, YonyouClient
from connectors.yonyou.windows import Windows, filter_text
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, FatalError, RetriableError, TriadError
from hub.incremental import (CursorTracker, RunDedup, cursor_datetime, get_path, localize_times, lower_bound,
                             nest_dotted, parse_local)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiObject:
    """What the connector knows about one API object: data, not code (STYLE.md 1)."""

    list_path: str
    paging: str                          # "array": data is a bare array; "records": data.recordList
    ordered: bool                        # the list can be ordered by pubts (cursor per batch)
    lines: str | None = None             # list rows are header + one line, regrouped under this key
    line_fields: tuple[str, ...] = ()
    insert_path: str | None = None       # idempotent create (resubmitCheckKey)
    update_path: str | None = None
    detail_path: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)   # what a create needs ("{org}" = org_code)
    booleans: tuple[str, ...] = ()       # JSON booleans (a values map writes them back as "true"/"false")
    multilingual: tuple[str, ...] = ()   # {"simplifiedName": ..} in lists and creates, {"zh_CN": ..} in batch save


OBJECTS: dict[str, ApiObject] = {
    "merchant": ApiObject("/yonbip/digitalModel/merchant/newlist", "array", False,
                          insert_path="/yonbip/digitalModel/merchant/idempotent/newinsert",
                          update_path="/yonbip/digitalModel/batch/merchant/save",
                          defaults={"createOrgCode": "{org}"}, booleans=("stopstatus",), multilingual=("name",)),
    "voucherorder": ApiObject("/yonbip/sd/voucherorder/list", "records", True, lines="orderDetails",
                              line_fields=("orderDetailId", "lineno", "productId", "productId!code", "productId_name",
                                           "qty", "oriTaxUnitPrice", "oriSum", "orderDetailPrices!natMoney", "taxRate"),
                              insert_path="/yonbip/sd/voucherorder/singleSave",
                              update_path="/yonbip/sd/voucherorder/singleSave",
                              detail_path="/yonbip/sd/voucherorder/detail",
                              defaults={"salesOrgId!code": "{org}"}),
    "collection": ApiObject("/yonbip/EFI/collection/list", "records", True),   # [unverified] API, read-only
}
ENTITY_OBJECTS = {"customer": "merchant", "order": "voucherorder", "payment": "collection"}
_KEY_OK = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def resubmit_key(change_id: str) -> str:
    """The change id as a resubmitCheckKey (at most 32 chars: longer ids are hashed)."""
    return change_id if _KEY_OK.match(change_id) else hashlib.md5(change_id.encode("utf-8")).hexdigest()


class YonyouConnector(Connector):
    """YonBIP OpenAPI: customers and sales orders both ways, receipts inbound."""

    type_name = "yonyou"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"base_url", "app_key", "app_secret", "tenant_id", "tenant", "gateway_url",
                             "token_url", "timeout", "retries", "backoff", "verify", "overlap_seconds", "org_code",
                             "start_date"})
    entity_option_keys = frozenset({"page_size", "start_date"})
    entities = ("customer", "order", "payment")
    writes_deletes = False    # write() refuses a delete: a record deleted elsewhere stays here
    # entities whose API object takes no writes: the hub queues none for them, whatever the direction
    read_only_entities = frozenset(e for e, o in ENTITY_OBJECTS.items() if not OBJECTS[o].insert_path)

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.client = YonyouClient(options, name)
        self.overlap = float(options.get("overlap_seconds", 120))
        self.org = str(options.get("org_code", "global00"))

    def _object(self, stream: StreamSpec) -> tuple[str, ApiObject]:
        name = stream.source or ENTITY_OBJECTS.get(stream.entity, "")
        if name not in OBJECTS:
            raise ConfigError(f"yonyou: unknown API object '{name}'; known: {', '.join(OBJECTS)}",
                              connector=self.name, entity=stream.entity)
        return name, OBJECTS[name]

    def check(self) -> CheckResult:
        try:
            self.client.forget_token()
            self.client.token()
            self.client.call("POST", OBJECTS["merchant"].list_path, body={"pageIndex": 1, "pageSize": 1})
        except TriadError as exc:
            return CheckResult(False, f"YonBIP check failed: {exc}")
        return CheckResult(True, f"YonBIP gateway {self.client.gateway_url} reachable with app {self.client.app_key}",
                           {"gateway_url": self.client.gateway_url, "token_url": self.client.token_url,
                            "read_only_entities": sorted(self.read_only_entities)})

    # -- reads ------------------------------------------------------------------------
    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Pages of the object's list API as records, from ``cursor - overlap`` on (``pubts``)."""
        name, obj = self._object(stream)
        tz = ZoneInfo(stream.timezone or "Asia/Shanghai")
        size = max(1, min(int(stream.options.get("page_size", stream.batch_size)), 5000))
        log.info("reading %s from %s (cursor %s)", name, self.name, cursor or "none: from the beginning",
                 extra={"connector": self.name, "entity": stream.entity})
        if obj.ordered:
            yield from self._read_ordered(obj, stream, cursor, size, tz)
        else:
            yield from self._read_windows(obj, stream, cursor, size, tz)

    def _read_ordered(self, obj: ApiObject, stream: StreamSpec, cursor: Any, size: int,
                      tz: ZoneInfo) -> Iterator[Batch]:
        """A list ordered by ``pubts``: the cursor moves with every page."""
        key, updated = stream.key or "id", stream.updated_at or "pubts"
        since = lower_bound(cursor, self.overlap, tz)
        tracker, dedup = CursorTracker(cursor, tz, stream.run_started_at), RunDedup(tz)
        held: list[dict[str, Any]] = []
        last_cursor = tracker.value()
        page = 1
        while True:
            rows, last = self._page(obj, page, size, since, updated, key)
            records = self._group(obj, rows, key, held)
            held = [] if last or not obj.lines or not records else [records.pop()]
            batch = self._fresh(records, key, updated, dedup, tracker)
            if batch or tracker.value() != last_cursor:
                last_cursor = tracker.value()
                yield Batch(batch, cursor=last_cursor)
            if last:
                return
            page += 1

    def _read_windows(self, obj: ApiObject, stream: StreamSpec, cursor: Any, size: int,
                      tz: ZoneInfo) -> Iterator[Batch]:
        """A list that cannot be ordered: window by window, the cursor committed per window
        (see :mod:`connectors.yonyou.windows`)."""
        key, updated = stream.key or "id", stream.updated_at or "pubts"
        windows = Windows.plan(cursor, overlap=self.overlap, tz=tz, run_started_at=stream.run_started_at,
                               now=datetime.now(timezone.utc), start_date=self._opt(stream, "start_date"),
                               page_size=size)
        dedup = RunDedup(tz)
        committed = _not_after(CursorTracker(cursor, tz, None).start_value(), stream.run_started_at)
        while True:
            start, end = windows.current()
            tracker = CursorTracker(committed, tz, stream.run_started_at)
            since, until = filter_text(start, tz), (filter_text(end, tz) if end else None)
            page, count = 1, 0
            while True:
                rows, last = self._page(obj, page, size, since, updated, key, until)
                count += len(rows)
                batch = self._fresh(rows, key, updated, dedup, tracker)
                if last or (page == 1 and windows.narrow(end, self._stamps(rows, updated, tz))):
                    break
                if batch:
                    yield Batch(batch, cursor=committed)     # the window is not read to its end yet
                page += 1
            if not last:        # asked again narrower: this page's records are kept, not a cursor
                if batch:
                    yield Batch(batch, cursor=committed)
                continue
            if end is None:
                yield Batch(batch, cursor=_not_after(tracker.value(), stream.run_started_at))
                return
            committed = _later(committed, end.astimezone(timezone.utc).isoformat())
            yield Batch(batch, cursor=committed)
            windows.done(end, count)

    def _opt(self, stream: StreamSpec, key: str, default: Any = None) -> Any:
        """An entity option, else the connector's."""
        value = stream.options.get(key)
        return self.options.get(key, default) if value is None else value

    @staticmethod
    def _stamps(rows: list[dict[str, Any]], updated: str, tz: ZoneInfo) -> list[datetime]:
        return [t for t in (parse_local(get_path(r, updated), tz) for r in rows) if t is not None]

    @staticmethod
    def _fresh(records: list[dict[str, Any]], key: str, updated: str, dedup: RunDedup,
               tracker: CursorTracker) -> list[dict[str, Any]]:
        """The records not yet read in this run; every timestamp goes to ``tracker``."""
        batch = []
        for rec in records:
            stamp = get_path(rec, updated)
            if dedup.fresh(get_path(rec, key), stamp):
                batch.append(rec)
            tracker.see(stamp)
        return batch

    def _page(self, obj: ApiObject, page: int, size: int, since: str | None, updated: str,
              key: str, until: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        if obj.paging == "array":
            body: dict[str, Any] = {"pageIndex": page, "pageSize": size}
            if since:
                body[updated] = since
            if until:
                body["endTime"] = until
            data = self.client.call("POST", obj.list_path, body=body).get("data") or []
            if not isinstance(data, list):
                raise FatalError(f"{obj.list_path}: data is {type(data).__name__}, expected a list",
                                 connector=self.name)
            return data, len(data) < size
        body = {"pageIndex": page, "pageSize": size, "isSum": False,
                "queryOrders": [{"field": updated, "order": "asc"}, {"field": key, "order": "asc"}]}
        if since:
            body["simpleVOs"] = [{"field": updated, "op": "egt", "value1": since}]
        data = self.client.call("POST", obj.list_path, body=body).get("data") or {}
        rows = data.get("recordList") or []
        return rows, len(rows) < size or page >= int(data.get("pageCount") or 0)

    @staticmethod
    def _group(obj: ApiObject, rows: list[dict[str, Any]], key: str,
               held: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Flattened header+line rows -> one record per order with its lines (``held`` continues)."""
        if not obj.lines:
            return list(rows)
        records = list(held)
        for row in rows:
            header = {k: v for k, v in row.items() if k not in obj.line_fields}
            line = {("id" if k == "orderDetailId" else k): v for k, v in row.items() if k in obj.line_fields}
            if not records or records[-1].get(key) != header.get(key):
                header[obj.lines] = []
                records.append(header)
            if line.get("id") is not None:
                records[-1][obj.lines].append(line)
        return records

    # -- writes -----------------------------------------------------------------------
    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Idempotent creates, batched customer updates, order saves; one result per change, in order."""
        name, obj = self._object(stream)
        tz = ZoneInfo(stream.timezone or "Asia/Shanghai")
        results: dict[str, WriteResult] = {}
        updates: list[tuple[WriteChange, dict[str, Any]]] = []
        for ch in changes:
            if ch.delete or not obj.insert_path:
                why = "deletes are not propagated" if ch.delete else f"{name} is read-only"
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=f"yonyou: {why}")
                continue
            values = localize_times(nest_dotted(dict(ch.values)), tz, "%Y-%m-%d %H:%M:%S")
            for flag in obj.booleans:
                if isinstance(values.get(flag), str):
                    values[flag] = values[flag].strip().lower() in ("true", "1", "yes")
            try:
                if name == "voucherorder":
                    results[ch.change_id] = self._save_order(obj, ch, values)
                    if _maybe_replayed(ch, results[ch.change_id]):
                        results[ch.change_id] = self._save_order(
                            obj, replace(ch, source_id=results[ch.change_id].source_id), values,
                            key=f"{ch.change_id}:{_digest(values)}")    # a key per content: not the create's
                elif ch.source_id:
                    updates.append((ch, values))
                else:
                    created = self._insert_merchant(obj, ch, values)
                    if _maybe_replayed(ch, created):
                        updates.append((replace(ch, source_id=created.source_id), values))
                    else:
                        results[ch.change_id] = created
            except AuthError:
                raise
            except RetriableError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc),
                                                    retriable=True, retry_after=exc.retry_after)
            except FatalError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc))
        if updates:
            self._update_merchants(obj, updates, results)
        return [results[ch.change_id] for ch in changes]

    def _defaults(self, obj: ApiObject, values: dict[str, Any]) -> dict[str, Any]:
        out = dict(values)
        for k, v in obj.defaults.items():
            base = k.split("!")[0]
            if k not in out and base not in out:
                out[k] = v.replace("{org}", self.org) if isinstance(v, str) else v
        return out

    def _insert_merchant(self, obj: ApiObject, ch: WriteChange, values: dict[str, Any]) -> WriteResult:
        item = dict(self._defaults(obj, values), resubmitCheckKey=resubmit_key(ch.change_id))
        body = self.client.call("POST", obj.insert_path or "", body={"data": item}, write=True)
        if str(body.get("code")) == "200" and body.get("data"):
            return WriteResult(ch.change_id, True, str(body["data"][0]["id"]))
        return WriteResult(ch.change_id, False, None, error=str(body.get("message") or body))

    def _update_merchants(self, obj: ApiObject, updates: list[tuple[WriteChange, dict[str, Any]]],
                          results: dict[str, WriteResult]) -> None:
        """One batch save; when some fail, each is sent alone to learn which (updates are idempotent)."""
        def send(items: list[tuple[WriteChange, dict[str, Any]]]) -> dict[str, Any]:
            data = [dict(batch_save_form(v, obj.multilingual), _status="Update", id=ch.source_id) for ch, v in items]
            return self.client.call("POST", obj.update_path or "", body={"data": data}, write=True)

        try:
            body = send(updates)
            data = body.get("data") or {}
            if str(body.get("code")) == "200" and not data.get("failCount"):
                for ch, _ in updates:
                    results[ch.change_id] = WriteResult(ch.change_id, True, ch.source_id)
                return
            for ch, values in updates:
                one = send([(ch, values)])
                info = one.get("data") or {}
                if str(one.get("code")) == "200" and not info.get("failCount"):
                    results[ch.change_id] = WriteResult(ch.change_id, True, ch.source_id)
                else:
                    msg = "; ".join(info.get("messages") or []) or str(one.get("message"))
                    results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=msg)
        except AuthError:
            raise
        except (RetriableError, FatalError) as exc:
            retriable = isinstance(exc, RetriableError)
            for ch, _ in updates:
                results.setdefault(ch.change_id, WriteResult(
                    ch.change_id, False, ch.source_id, error=str(exc), retriable=retriable,
                    retry_after=getattr(exc, "retry_after", None)))

    def _save_order(self, obj: ApiObject, ch: WriteChange, values: dict[str, Any],
                    key: str | None = None) -> WriteResult:
        item = dict(values, resubmitCheckKey=resubmit_key(key or ch.change_id))
        lines = item.pop(obj.lines or "orderDetails", None)
        if ch.source_id:
            item.update(_status="Update", id=ch.source_id)
            if lines is not None:
                current = self.client.call("GET", obj.detail_path or "", params={"id": ch.source_id})
                item[obj.lines or "orderDetails"] = self._line_changes(
                    (current.get("data") or {}).get(obj.lines or "orderDetails") or [], lines)
        else:
            item = dict(self._defaults(obj, item), _status="Insert")
            item[obj.lines or "orderDetails"] = [dict(_strip_id(l), _status="Insert") for l in lines or []]
        body = self.client.call("POST", obj.insert_path or "", body={"data": item}, write=True)
        if str(body.get("code")) == "200" and isinstance(body.get("data"), dict):
            return WriteResult(ch.change_id, True, str(body["data"].get("id")))
        return WriteResult(ch.change_id, False, ch.source_id, error=str(body.get("message") or body))

    @staticmethod
    def _line_changes(existing: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Mapped lines against the stored ones: matched by lineno (else position) -> Update, rest Insert/Delete."""
        by_no = {str(l.get("lineno")): l for l in existing}
        used: set[Any] = set()
        out = []
        for i, line in enumerate(wanted):
            match = by_no.get(str(line.get("lineno"))) if line.get("lineno") not in (None, "") else (
                existing[i] if i < len(existing) else None)
            if match is not None and match["id"] not in used:
                used.add(match["id"])
                out.append(dict(_strip_id(line), _status="Update", id=match["id"]))
            else:
                out.append(dict(_strip_id(line), _status="Insert"))
        out += [{"_status": "Delete", "id": l["id"]} for l in existing if l["id"] not in used]
        return out

    def close(self) -> None:
        self.client.close()


def _maybe_replayed(ch: WriteChange, result: WriteResult) -> bool:
    """A create whose key an earlier attempt may have used: its answer may be that attempt's record,
    with that attempt's values, so the current ones are written over it."""
    return ch.maybe_sent is not None and not ch.source_id and result.ok and bool(result.source_id)


def _digest(values: dict[str, Any]) -> str:
    return hashlib.md5(json.dumps(values, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _later(cursor: str | None, other: str) -> str:
    """The later of two cursors (a window that starts in the overlap may end before the cursor)."""
    return other if cursor is None or cursor_datetime(other) > cursor_datetime(cursor) else cursor


def _not_after(cursor: str | None, run_started_at: datetime | None) -> str | None:
    """The cursor, but never past the run's start (a cursor from a clock ahead of this run's is pulled back)."""
    if cursor is None or run_started_at is None or cursor_datetime(cursor) <= run_started_at:
        return cursor
    return run_started_at.astimezone(timezone.utc).isoformat()


def batch_save_form(values: dict[str, Any], multilingual: tuple[str, ...]) -> dict[str, Any]:
    """``values`` as batch save reads them: a multilingual text's ``simplifiedName`` (the list's and
    newinsert's key) under ``zh_CN`` (PROTOCOLS 4.3)."""
    out = dict(values)
    for name in multilingual:
        text = out.get(name)
        if isinstance(text, dict) and "simplifiedName" in text:
            out[name] = {**{k: v for k, v in text.items() if k != "simplifiedName"}, "zh_CN": text["simplifiedName"]}
    return out


def _strip_id(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in ("id", "_status")}
