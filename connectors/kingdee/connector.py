"""Kingdee K3Cloud (金蝶云星空) connector: ExecuteBillQuery reads, BatchSave writes.

``StreamSpec.source`` is the FormId, ``StreamSpec.fields`` the FieldKeys.
Dotted keys (``FCustId.FNumber``) come back as nested objects, the shape Save
takes them in; an entry (``FSaleOrderEntry``) comes back as a list of lines
under its name. Reads page with StartRow/Limit, ordered by the modify date,
from ``cursor - overlap_seconds``; see :mod:`connectors.kingdee.incremental`.

Writes: a change with ``source_id`` updates (primary key in the Model,
entry ids in its lines, and ``NeedUpDateFields``). A create is sent once (a
lost answer is not resent by the HTTP client) and is first looked up when
the outbox retries it: by its business number (FNumber / FBillNo), by the
change id in the entity's ``change_id_field`` (a text field the tenant keeps
for it), or, for an earlier attempt of this process with neither, by its
header values among the records created since; when found it becomes an
update, so a retried create never makes a second record (K3Cloud has no
upsert and no idempotency key). References given as internal ids are sent as
``{"FNumber": ...}``, the form Save resolves; sub-head fields (the order's
settlement currency) are nested in their sub-head (``FSaleOrderFinance``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from connectors.kingdee.client import AuthError, KingdeeClient, _whole
from connectors.kingdee.writing import (ci_key, content_filter, match_lines, nest_subheads, quote, save_outcomes,
                                        update_fields)
from hub.incremental import (CursorTracker, RunDedup, get_path, localize_times, lower_bound,
                                            nest_dotted, set_path)
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, FatalError, RetriableError, TriadError

log = logging.getLogger(__name__)

MAX_LIMIT = 2000
UNSETTLED_KEPT = 10_000     # creates with a lost answer remembered for their retry in this process


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
    subheads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sub-head -> the fields Save nests in it
    created: str = "FCreateDate"


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
        defaults={"FBillTypeID": {"FNUMBER": "XSDD01_SYS"}, "FSaleOrgId": {"FNumber": "{org}"}},
        subheads={"FSaleOrderFinance": ("FSettleCurrId", "FRecConditionId")}),      # PROTOCOLS 3.6
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


class KingdeeConnector(Connector):
    """K3Cloud WebAPI: customers, sales orders, receipts (payments) and contracts."""

    type_name = "kingdee"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"base_url", "acct_id", "username", "password", "app_id", "app_secret", "lcid",
                             "org_num", "auth", "body_style", "timeout", "retries", "backoff", "verify",
                             "overlap_seconds", "org_number", "write_batch_size", "auto_audit"})
    entity_option_keys = frozenset({"number_field", "entry_fields", "filter", "page_size", "change_id_field"})
    entities = ("customer", "order", "payment", "contract")

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.client = KingdeeClient(options, name)
        self.overlap = float(options.get("overlap_seconds", 120))
        self.org = str(options.get("org_number", "100"))
        self.write_batch = _whole(options, "write_batch_size", 100, name)
        if self.write_batch < 1:
            raise ConfigError(f"kingdee: write_batch_size must be 1 or more, got {self.write_batch}", connector=name)
        self.auto_audit = bool(options.get("auto_audit", False))
        self._unsettled: dict[str, datetime] = {}      # change id -> when a create whose answer was lost was sent

    # -- plumbing -----------------------------------------------------------------
    def _form(self, stream: StreamSpec) -> tuple[str, FormInfo]:
        form_id = stream.source or ENTITY_FORMS.get(stream.entity, "")
        if not form_id:
            raise ConfigError(f"kingdee: no FormId for entity '{stream.entity}'", connector=self.name)
        known = ci_key(FORMS, form_id)
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
        change_field = stream.options.get("change_id_field")
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
            targets.update(self._ids_by_change_id(form_id, key, change_field, pending, targets))
            targets.update(self._ids_of_lost_answers(form_id, key, number, info, tz, pending, models, targets))
        except RetriableError as exc:
            return self._fill(changes, results, exc)
        creates, updates = self._split(form_id, key, info, pending, models, targets, results, change_field)
        try:
            self._with_entry_ids(form_id, key, info, updates)
        except RetriableError as exc:
            return self._fill(changes, results, exc)
        for _, model in creates + updates:
            nest_subheads(model, info.subheads)
        for i in range(0, len(creates), self.write_batch):
            self._batch_save(form_id, key, creates[i:i + self.write_batch], None, results)
        self._ids_of_answers_without_ids(form_id, key, number, creates, models, results)
        entry_pks = {fields[0].lower() for fields in info.entries.values()}
        by_fields: dict[tuple[str, ...], list] = {}
        for ch, model in updates:
            by_fields.setdefault(update_fields(model, key, info.subheads, entry_pks), []).append((ch, model))
        for fields, group in by_fields.items():
            for i in range(0, len(group), self.write_batch):
                self._batch_save(form_id, key, group[i:i + self.write_batch], list(fields), results)
        return [results[ch.change_id] for ch in changes]

    def _split(self, form_id: str, key: str, info: FormInfo, pending: list[WriteChange],
               models: dict[str, dict[str, Any]], targets: dict[str, str], results: dict[str, WriteResult],
               change_field: str | None) -> tuple[list, list]:
        """(creates, updates): a create whose record already exists (a retried create) becomes an update."""
        creates, updates = [], []
        for ch in pending:
            if ch.change_id in results:
                continue
            model = models[ch.change_id]
            source_id = ch.source_id or targets.get(ch.change_id)
            if source_id:
                if not ch.source_id:
                    log.info("%s of change %s already exists in K3Cloud (a retried create); updating it", form_id,
                             ch.change_id, extra={"connector": self.name})
                model[key] = int(source_id) if str(source_id).isdigit() else source_id
                updates.append((ch, model))
                continue
            for k, v in info.defaults.items():
                if ci_key(model, k) is None:
                    model[k] = {kk: vv.replace("{org}", self.org) for kk, vv in v.items()} if isinstance(
                        v, dict) else v
            if change_field:
                model[change_field] = ch.change_id
            creates.append((ch, model))
        return creates, updates

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
                k = ci_key(models[ch.change_id], ref_field)
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
                        model[ci_key(model, ref_field) or ref_field] = {"FNumber": found.get(value, value)}
                    else:
                        results[cid] = WriteResult(cid, False, None, error=f"{ref_field}: {target} {value} not found")

    def _existing_ids(self, form_id: str, key: str, number: str, changes: list[WriteChange],
                      models: dict[str, dict[str, Any]]) -> dict[str, str]:
        """change id -> internal id of the record already carrying the create's business number."""
        by_number: dict[str, list[str]] = {}
        for ch in changes:
            model = models[ch.change_id]
            value = model.get(ci_key(model, number) or number) if not ch.source_id else None
            if value not in (None, ""):
                by_number.setdefault(str(value), []).append(ch.change_id)
        return self._ids_where(form_id, key, number, by_number)

    def _ids_by_change_id(self, form_id: str, key: str, change_field: str | None, changes: list[WriteChange],
                          found: dict[str, str]) -> dict[str, str]:
        """change id -> internal id of the record a create already made, by the field holding the change id."""
        if not change_field:
            return {}
        wanted = {ch.change_id: [ch.change_id] for ch in changes if not ch.source_id and ch.change_id not in found}
        return self._ids_where(form_id, key, change_field, wanted)

    def _ids_where(self, form_id: str, key: str, field_key: str, wanted: dict[str, list[str]]) -> dict[str, str]:
        """change id -> internal id of the record whose ``field_key`` holds the value the change is listed under."""
        out: dict[str, str] = {}
        values = list(wanted)
        for i in range(0, len(values), 200):
            chunk = values[i:i + 200]
            rows = self._query({"FormId": form_id, "FieldKeys": f"{key},{field_key}",
                                "FilterString": f"{field_key} IN ({','.join(quote(n) for n in chunk)})",
                                "Limit": MAX_LIMIT})
            for row in rows:
                for cid in wanted.get(str(row[1]), []):
                    out[cid] = str(row[0])
        return out

    def _remember_unsettled(self, change_id: str, sent_at: datetime) -> None:
        self._unsettled.pop(change_id, None)
        self._unsettled[change_id] = sent_at
        while len(self._unsettled) > UNSETTLED_KEPT:
            self._unsettled.pop(next(iter(self._unsettled)))

    def _ids_of_lost_answers(self, form_id: str, key: str, number: str, info: FormInfo, tz: ZoneInfo,
                             changes: list[WriteChange], models: dict[str, dict[str, Any]],
                             found: dict[str, str]) -> dict[str, str]:
        """change id -> the record an earlier create of this process made although its answer was lost.

        Only for creates with no business number to look up: the one record created since that
        attempt (less ``overlap_seconds`` for clock skew) with the same header values.
        """
        out: dict[str, str] = {}
        skip = {key.lower(), number.lower(), info.created.lower()}
        for ch in changes:
            model = models[ch.change_id]
            sent_at = self._unsettled.get(ch.change_id)
            if ch.source_id or ch.change_id in found or sent_at is None or model.get(ci_key(model, number) or number):
                continue
            since = (sent_at - timedelta(seconds=self.overlap)).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
            conditions = [f"{info.created} >= '{since}'"] + content_filter(model, skip)
            try:
                rows = self._query({"FormId": form_id, "FieldKeys": key, "Limit": 2,
                                    "FilterString": " AND ".join(f"({c})" for c in conditions)})
            except (RetriableError, AuthError):
                raise
            except FatalError as exc:       # a value K3Cloud cannot filter on: no lookup, as before
                log.warning("cannot look for the record of change %s: %s", ch.change_id, exc,
                            extra={"connector": self.name})
                continue
            if len(rows) == 1:
                out[ch.change_id] = str(rows[0][0])
        return out

    def _ids_of_answers_without_ids(self, form_id: str, key: str, number: str, creates: list,
                                    models: dict[str, dict[str, Any]], results: dict[str, WriteResult]) -> None:
        """A saved create whose answer named no id ("Save OK" of a batch): its id, looked up by number."""
        missing = [ch for ch, _ in creates if results[ch.change_id].ok and not results[ch.change_id].source_id]
        if not missing:
            return
        try:
            ids = self._existing_ids(form_id, key, number, missing, models)
        except RetriableError:
            ids = {}
        for ch in missing:
            if ch.change_id in ids:
                results[ch.change_id] = WriteResult(ch.change_id, True, ids[ch.change_id])
            else:
                results[ch.change_id] = WriteResult(ch.change_id, False, None, retriable=True,
                                                    error="saved, but K3Cloud named no id; the retry finds it")
                self._remember_unsettled(ch.change_id, datetime.now(timezone.utc))

    def _with_entry_ids(self, form_id: str, key: str, info: FormInfo, updates: list) -> None:
        """Lines of an update carry the entry id of the line they replace (PROTOCOLS 3.4), so Save
        updates them in place; only lines the update leaves out are deleted (IsDeleteEntry)."""
        for entry, fields in info.entries.items():
            by_bill: dict[str, list[Any]] = {}
            for _, model in updates:
                lines = model.get(ci_key(model, entry) or entry)
                if isinstance(lines, list) and lines:
                    by_bill[str(model[key])] = lines
            if not by_bill:
                continue
            with_seq = any(f.lower() == "fseq" for f in fields)
            current = self._current_lines(form_id, key, entry, fields[0], with_seq, list(by_bill))
            for bill, lines in by_bill.items():
                match_lines(lines, current.get(bill, []), fields[0])

    def _current_lines(self, form_id: str, key: str, entry: str, entry_pk: str, with_seq: bool,
                       bills: list[str]) -> dict[str, list[tuple[int | None, Any]]]:
        """bill id -> its lines as K3Cloud holds them, in order: (FSeq or None, entry id)."""
        out: dict[str, list[tuple[int | None, Any]]] = {}
        keys = [key, f"{entry}_{entry_pk}"] + (["FSeq"] if with_seq else [])
        for i in range(0, len(bills), 200):
            chunk = bills[i:i + 200]
            query = {"FormId": form_id, "FieldKeys": ",".join(keys),
                     "FilterString": f"{key} IN ({','.join(quote(b) for b in chunk)})",
                     "OrderString": f"{key} ASC" + (",FSeq ASC" if with_seq else ""), "Limit": MAX_LIMIT}
            start = 0
            while True:
                rows = self._query(dict(query, StartRow=start))
                for row in rows:
                    if row[1] not in (None, 0):
                        out.setdefault(str(row[0]), []).append((row[2] if with_seq else None, row[1]))
                if len(rows) < MAX_LIMIT:
                    break
                start += MAX_LIMIT
        return out

    def _batch_save(self, form_id: str, key: str, items: list[tuple[WriteChange, dict[str, Any]]],
                    need_update: list[str] | None, results: dict[str, WriteResult]) -> None:
        """One BatchSave; a create is sent once (``idempotent=False``): a lost answer is retried by the outbox."""
        creating = need_update is None
        data: dict[str, Any] = {"Model": [m for _, m in items], "IsDeleteEntry": True}
        if not creating:
            data["NeedUpDateFields"] = need_update
        if self.auto_audit:
            data["IsAutoSubmitAndAudit"] = True
        sent_at = datetime.now(timezone.utc)
        try:
            body = self.client.call("BatchSave", {"formid": form_id, "data": data}, write=True,
                                    idempotent=not creating)
        except AuthError:
            raise
        except RetriableError as exc:
            for ch, _ in items:
                if creating:
                    self._remember_unsettled(ch.change_id, sent_at)    # it may have been saved: the retry looks
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc),
                                                    retriable=True, retry_after=exc.retry_after)
            return
        except FatalError as exc:
            for ch, _ in items:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc))
            return
        for (ch, model), outcome in zip(items, save_outcomes(body, len(items))):
            self._unsettled.pop(ch.change_id, None)
            if outcome.saved:
                sid = outcome.source_id or (str(model[key]) if model.get(key) not in (None, "") else None)
                results[ch.change_id] = WriteResult(ch.change_id, True, sid)
            else:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=outcome.error)

    def close(self) -> None:
        self.client.close()
