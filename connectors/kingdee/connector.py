"""Kingdee K3Cloud (金蝶云星空) connector: ExecuteBillQuery reads, BatchSave writes.

``StreamSpec.source`` is the FormId, ``StreamSpec.fields`` the FieldKeys.
Dotted keys (``FCustId.FNumber``) come back as nested objects, the shape Save
takes them in; an entry (``FSaleOrderEntry``) comes back as a list of lines
under its name. Reads page with StartRow/Limit, ordered by the modify date,
from ``cursor - overlap_seconds``; see :mod:`connectors.kingdee.incremental`.

Writes: a change with ``source_id`` updates (primary key in the Model and
``NeedUpDateFields``); a create is first looked up by its business number
(FNumber / FBillNo) and becomes an update when found, so a create retried
after a timeout never makes a second record (K3Cloud has no upsert and no
idempotency key). References given as internal ids are sent as
``{"FNumber": ...}``, the form Save resolves.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from connectors.kingdee.client import AuthError, KingdeeClient
from hub.incremental import (CursorTracker, RunDedup, get_path, localize_times, lower_bound,
                                            nest_dotted, set_path)
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, FatalError, RetriableError, TriadError

log = logging.getLogger(__name__)

MAX_LIMIT = 2000


@dataclass(frozen=True)
class FormInfo:
    """What the connector knows about a form: data, not code (STYLE.md 1)."""

    key: str
    number: str
    updated: str
    fields: tuple[str, ...]                                  # default header FieldKeys
    entries: dict[str, tuple[str, ...]] = field(default_factory=dict)   # entry -> fields, entry id first
    refs: dict[str, str] = field(default_factory=dict)       # reference field -> referenced FormId
    defaults: dict[str, Any] = field(default_factory=dict)   # what a create needs ("{org}" = org_number)


FORMS: dict[str, FormInfo] = {
    "BD_Customer": FormInfo(
        "FCUSTID", "FNumber", "FModifyDate",
        ("FCUSTID", "FNumber", "FName", "FShortName", "FTEL", "FEMail", "FTAXREGISTERCODE", "FCOUNTRY.FNumber",
         "FPROVINCIAL.FNumber", "FCITY", "FADDRESS", "FZIP", "FTRADINGCURRID.FNumber", "FCreditAmount",
         "FDocumentStatus", "FForbidStatus", "FModifyDate", "FCreateDate"),
        defaults={"FCreateOrgId": {"FNumber": "{org}"}, "FUseOrgId": {"FNumber": "{org}"}}),
    "SAL_SaleOrder": FormInfo(
        "FID", "FBillNo", "FModifyDate",
        ("FID", "FBillNo", "FDate", "FCustId", "FSaleOrgId.FNumber", "FSettleCurrId.FNumber", "FBillAllAmount",
         "FBillTaxAmount", "FDocumentStatus", "FCloseStatus", "FNote", "FModifyDate"),
        entries={"FSaleOrderEntry": ("FEntryID", "FSeq", "FMaterialId.FNumber", "FQty", "FPrice", "FTaxPrice",
                                     "FAllAmount", "FEntryNote")},
        refs={"FCustId": "BD_Customer"},
        defaults={"FBillTypeID": {"FNUMBER": "XSDD01_SYS"}, "FSaleOrgId": {"FNumber": "{org}"}}),
    "AR_RECEIVEBILL": FormInfo(
        "FID", "FBILLNO", "FMODIFYDATE",
        ("FID", "FBILLNO", "FDATE", "FCONTACTUNIT", "FCURRENCYID.FNumber", "FRECAMOUNTFOR", "FTHIRDBILLNO",
         "FREMARK", "FDOCUMENTSTATUS", "FMODIFYDATE"),
        entries={"FRECEIVEBILLENTRY": ("FENTRYID", "FSETTLETYPEID.FNumber", "FRECAMOUNTFOR_E")},
        refs={"FCONTACTUNIT": "BD_Customer", "FPAYUNIT": "BD_Customer"},
        defaults={"FBILLTYPEID": {"FNUMBER": "SKDLX01_SYS"}, "FCONTACTUNITTYPE": "BD_Customer",
                  "FPAYUNITTYPE": "BD_Customer", "FSETTLEORGID": {"FNumber": "{org}"},
                  "FPAYORGID": {"FNumber": "{org}"}, "FSALEORGID": {"FNumber": "{org}"}}),
    # CRM_Contract and its keys are [unverified] (PROTOCOLS 3.6).
    "CRM_Contract": FormInfo(
        "FID", "FBillNo", "FModifyDate",
        ("FID", "FBillNo", "FContractName", "FCustId", "FDate", "FBeginDate", "FEndDate", "FBillAllAmount",
         "FSettleCurrId.FNumber", "FDocumentStatus", "FModifyDate"),
        refs={"FCustId": "BD_Customer"}, defaults={"FSaleOrgId": {"FNumber": "{org}"}}),
}
ENTITY_FORMS = {"customer": "BD_Customer", "order": "SAL_SaleOrder", "payment": "AR_RECEIVEBILL",
                "contract": "CRM_Contract"}


def _quote(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ci(mapping: dict[str, Any], key: str) -> str | None:
    low = key.lower()
    return next((k for k in mapping if k.lower() == low), None)


class KingdeeConnector(Connector):
    """K3Cloud WebAPI: customers, sales orders, receipts (payments) and contracts."""

    type_name = "kingdee"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"base_url", "acct_id", "username", "password", "app_id", "app_secret", "lcid",
                             "org_num", "auth", "body_style", "timeout", "retries", "backoff", "verify",
                             "overlap_seconds", "org_number", "write_batch_size", "auto_audit"})
    entity_option_keys = frozenset({"number_field", "entry_fields", "filter", "page_size"})
    entities = ("customer", "order", "payment", "contract")

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.client = KingdeeClient(options, name)
        self.overlap = float(options.get("overlap_seconds", 120))
        self.org = str(options.get("org_number", "100"))
        self.write_batch = int(options.get("write_batch_size", 100))
        self.auto_audit = bool(options.get("auto_audit", False))

    # -- plumbing -----------------------------------------------------------------
    def _form(self, stream: StreamSpec) -> tuple[str, FormInfo]:
        form_id = stream.source or ENTITY_FORMS.get(stream.entity, "")
        if not form_id:
            raise ConfigError(f"kingdee: no FormId for entity '{stream.entity}'", connector=self.name)
        known = _ci(FORMS, form_id)
        info = FORMS[known] if known else FormInfo(stream.key, stream.options.get("number_field", "FNumber"),
                                                   stream.updated_at or "FModifyDate", tuple(stream.fields))
        return form_id, info

    def _layout(self, stream: StreamSpec, info: FormInfo) -> tuple[list[str], str | None, list[str]]:
        """(header FieldKeys, entry name or None, entry-relative keys with the entry id first)."""
        wanted = list(stream.fields) or list(info.fields) + list(info.entries)
        header: list[str] = []
        entry_name: str | None = None
        rel: list[str] = []
        for key in wanted:
            hit = None
            for name, defaults in info.entries.items():
                low = key.lower()
                if low == name.lower():
                    hit = (name, list(stream.options.get("entry_fields") or defaults))
                elif low.startswith((name.lower() + ".", name.lower() + "_")):
                    hit = (name, [key[len(name) + 1:]])
                elif any(low == d.lower() for d in defaults):
                    hit = (name, [key])
                if hit:
                    break
            if hit is None:
                if key not in header:
                    header.append(key)
                continue
            if entry_name not in (None, hit[0]):
                raise ConfigError(f"kingdee: one stream can read one entry, got {entry_name} and {hit[0]}",
                                  connector=self.name)
            entry_name = hit[0]
            rel += [k for k in hit[1] if k not in rel]
        for must in (stream.key or info.key, stream.updated_at or info.updated):
            if must and must.lower() not in (h.lower() for h in header):
                header.insert(0, must)
        if entry_name:
            entry_id = info.entries[entry_name][0]
            rel = [entry_id] + [k for k in rel if k.lower() != entry_id.lower()]
        return header, entry_name, rel

    def _query(self, data: dict[str, Any]) -> list[list[Any]]:
        rows = self.client.call("ExecuteBillQuery", {"data": data})
        if not isinstance(rows, list):
            raise FatalError(f"ExecuteBillQuery returned {type(rows).__name__}, expected rows", connector=self.name)
        return rows

    # -- contract -----------------------------------------------------------------
    def check(self) -> CheckResult:
        try:
            self.client.login()
            self._query({"FormId": "BD_Customer", "FieldKeys": "FNumber", "Limit": 1})
        except TriadError as exc:
            return CheckResult(False, f"K3Cloud check failed: {exc}", {"auth": self.client.style})
        return CheckResult(True, f"K3Cloud account set {self.client.acct_id} reachable as {self.client.username}",
                           {"auth": self.client.style, "logins": self.client.logins})

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Pages of ExecuteBillQuery rows as records, from ``cursor - overlap`` on, ordered by the modify date."""
        form_id, info = self._form(stream)
        tz = ZoneInfo(stream.timezone or "Asia/Shanghai")
        key = stream.key or info.key
        updated = stream.updated_at or info.updated
        header, entry, rel = self._layout(stream, info)
        entry_keys = [f"{entry}_{k}" if i == 0 else k for i, k in enumerate(rel)] if entry else []
        filters = [f for f in (stream.options.get("filter"),) if f]
        since = lower_bound(cursor, self.overlap, tz)
        if since and updated:
            filters.append(f"{updated} >= '{since}'")
        limit = max(1, min(int(stream.options.get("page_size", stream.batch_size)), MAX_LIMIT))
        query = {"FormId": form_id, "FieldKeys": ",".join(header + entry_keys),
                 "FilterString": " AND ".join(f"({f})" for f in filters),
                 "OrderString": f"{updated} ASC,{key} ASC" if updated else f"{key} ASC", "Limit": limit}
        tracker, dedup = CursorTracker(cursor, tz, stream.run_started_at), RunDedup(tz)
        held: list[dict[str, Any]] = []     # the last bill of a full page may go on on the next page
        last_cursor = tracker.value()
        start = 0
        log.info("reading %s from %s (since %s)", form_id, self.name, since or "the beginning",
                 extra={"connector": self.name, "entity": stream.entity})
        while True:
            rows = self._query(dict(query, StartRow=start))
            records = self._records(rows, header, entry, rel, key, held)
            last_page = len(rows) < limit
            held = [] if last_page or not entry or not records else [records.pop()]
            batch = []
            for rec in records:
                stamp = get_path(rec, updated) if updated else None
                if dedup.fresh(get_path(rec, key), stamp):
                    batch.append(rec)
                tracker.see(stamp)
            if batch or tracker.value() != last_cursor:
                last_cursor = tracker.value()
                yield Batch(batch, cursor=last_cursor)
            if last_page:
                return
            start += limit

    @staticmethod
    def _records(rows: list[list[Any]], header: list[str], entry: str | None, rel: list[str],
                 key: str, held: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows to records; with an entry, consecutive rows of one bill become one record with lines.

        ``held`` is the last bill of the previous page, continued here when its lines go on.
        """
        order = sorted(range(len(header)), key=lambda i: header[i].count("."))  # bare keys before sub-keys
        records: list[dict[str, Any]] = list(held)
        for row in rows:
            rec: dict[str, Any] = {}
            for i in order:
                set_path(rec, header[i], row[i])
            if entry:
                values = row[len(header):]
                same = records and get_path(records[-1], key) == get_path(rec, key)
                if not same:
                    rec[entry] = []
                    records.append(rec)
                if values and values[0] not in (None, 0):
                    line: dict[str, Any] = {}
                    for name, value in zip(rel, values):
                        set_path(line, name, value)
                    records[-1][entry].append(line)
            else:
                records.append(rec)
        return records

    # -- writes ---------------------------------------------------------------------
    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """BatchSave creates and updates; one result per change, in order (see the module docstring)."""
        form_id, info = self._form(stream)
        key, number = stream.key or info.key, stream.options.get("number_field", info.number)
        tz = ZoneInfo(stream.timezone or "Asia/Shanghai")
        results: dict[str, WriteResult] = {}
        models: dict[str, dict[str, Any]] = {}
        for ch in changes:
            if ch.delete:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id,
                                                    error="kingdee: deletes are not propagated")
            else:
                models[ch.change_id] = localize_times(nest_dotted(dict(ch.values)), tz, "%Y-%m-%dT%H:%M:%S")
        pending = [ch for ch in changes if ch.change_id in models]
        try:
            self._resolve_refs(info, pending, models, results)
            targets = self._existing_ids(form_id, key, number, pending, models)
        except RetriableError as exc:
            return self._fill(changes, results, exc)
        creates, updates = [], []
        for ch in pending:
            if ch.change_id in results:
                continue
            model = models[ch.change_id]
            source_id = ch.source_id or targets.get(ch.change_id)
            if source_id:
                if not ch.source_id:
                    log.info("%s %s already exists in K3Cloud (a retried create); updating it", form_id,
                             get_path(model, number), extra={"connector": self.name})
                model[key] = int(source_id) if str(source_id).isdigit() else source_id
                updates.append((ch, model))
            else:
                for k, v in info.defaults.items():
                    if _ci(model, k) is None:
                        model[k] = {kk: vv.replace("{org}", self.org) for kk, vv in v.items()} if isinstance(
                            v, dict) else v
                creates.append((ch, model))
        for i in range(0, len(creates), self.write_batch):
            self._batch_save(form_id, key, creates[i:i + self.write_batch], None, results)
        by_fields: dict[tuple[str, ...], list] = {}
        for ch, model in updates:
            by_fields.setdefault(self._update_fields(model, key), []).append((ch, model))
        for fields, group in by_fields.items():
            for i in range(0, len(group), self.write_batch):
                self._batch_save(form_id, key, group[i:i + self.write_batch], list(fields), results)
        return [results[ch.change_id] for ch in changes]

    @staticmethod
    def _fill(changes: list[WriteChange], results: dict[str, WriteResult], exc: RetriableError) -> list[WriteResult]:
        return [results.get(ch.change_id) or WriteResult(ch.change_id, False, ch.source_id, error=str(exc),
                                                         retriable=True, retry_after=exc.retry_after)
                for ch in changes]

    def _resolve_refs(self, info: FormInfo, changes: list[WriteChange], models: dict[str, dict[str, Any]],
                      results: dict[str, WriteResult]) -> None:
        """Internal ids in reference fields -> ``{"FNumber": ...}`` (one query per referenced form)."""
        for ref_field, target in info.refs.items():
            target_info = FORMS[target]
            wanted: dict[str, list[str]] = {}
            for ch in changes:
                k = _ci(models[ch.change_id], ref_field)
                value = models[ch.change_id].get(k) if k else None
                if value not in (None, "") and not isinstance(value, dict):
                    wanted.setdefault(str(value), []).append(ch.change_id)
            ids = [i for i in wanted if i.isdigit()]
            found: dict[str, str] = {}
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                rows = self._query({"FormId": target, "FieldKeys": f"{target_info.key},{target_info.number}",
                                    "FilterString": f"{target_info.key} IN ({','.join(chunk)})", "Limit": MAX_LIMIT})
                found.update({str(r[0]): r[1] for r in rows})
            for value, change_ids in wanted.items():
                for cid in change_ids:
                    model = models[cid]
                    if value in found or not value.isdigit():     # not an internal id: taken as the number
                        model[_ci(model, ref_field) or ref_field] = {"FNumber": found.get(value, value)}
                    else:
                        results[cid] = WriteResult(cid, False, None, error=f"{ref_field}: {target} {value} not found")

    def _existing_ids(self, form_id: str, key: str, number: str, changes: list[WriteChange],
                      models: dict[str, dict[str, Any]]) -> dict[str, str]:
        """change id -> internal id of the record already carrying the create's business number."""
        by_number: dict[str, list[str]] = {}
        for ch in changes:
            model = models[ch.change_id]
            value = model.get(_ci(model, number) or number) if not ch.source_id else None
            if value not in (None, ""):
                by_number.setdefault(str(value), []).append(ch.change_id)
        out: dict[str, str] = {}
        numbers = list(by_number)
        for i in range(0, len(numbers), 200):
            chunk = numbers[i:i + 200]
            rows = self._query({"FormId": form_id, "FieldKeys": f"{key},{number}",
                                "FilterString": f"{number} IN ({','.join(_quote(n) for n in chunk)})",
                                "Limit": MAX_LIMIT})
            for row in rows:
                for cid in by_number.get(str(row[1]), []):
                    out[cid] = str(row[0])
        return out

    @staticmethod
    def _update_fields(model: dict[str, Any], key: str) -> tuple[str, ...]:
        """NeedUpDateFields: the header keys, and for an entry its name and its line keys."""
        fields = set()
        for k, v in model.items():
            if k == key:
                continue
            fields.add(k)
            if isinstance(v, list):
                fields.update(lk for line in v if isinstance(line, dict) for lk in line)
        return tuple(sorted(fields))

    def _batch_save(self, form_id: str, key: str, items: list[tuple[WriteChange, dict[str, Any]]],
                    need_update: list[str] | None, results: dict[str, WriteResult]) -> None:
        data: dict[str, Any] = {"Model": [m for _, m in items], "IsDeleteEntry": True}
        if need_update is not None:
            data["NeedUpDateFields"] = need_update
        if self.auto_audit:
            data["IsAutoSubmitAndAudit"] = True
        try:
            body = self.client.call("BatchSave", {"formid": form_id, "data": data}, write=True)
        except AuthError:
            raise
        except RetriableError as exc:
            for ch, _ in items:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc),
                                                    retriable=True, retry_after=exc.retry_after)
            return
        except FatalError as exc:
            for ch, _ in items:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc))
            return
        status = (body.get("Result") or {}).get("ResponseStatus") or {}
        errors: dict[int, list[str]] = {}
        for err in status.get("Errors") or []:
            where = f"{err.get('FieldName')}: " if err.get("FieldName") else ""
            errors.setdefault(int(err.get("DIndex") or 0), []).append(where + str(err.get("Message")))
        saved = {int(s.get("DIndex") or 0): s for s in status.get("SuccessEntitys") or []}
        for index, (ch, model) in enumerate(items):
            if index in saved and index not in errors:
                results[ch.change_id] = WriteResult(ch.change_id, True, str(saved[index].get("Id") or model.get(key)))
            else:
                msg = "; ".join(errors.get(index, [])) or "not saved (no message)"
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=msg)

    def close(self) -> None:
        self.client.close()
