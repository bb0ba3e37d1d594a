"""Kingdee K3Cloud (金蝶云星空) connector: ExecuteBillQuery reads, BatchSave writes.

``StreamSpec.source`` is the FormId, ``StreamSpec.fields`` the FieldKeys.
Dotted keys (``FCustId.FNumber``) come back as nested objects, the shape Save
takes them in; an entry (``FSaleOrderEntry``) comes back as a list of lines
under its name. Reads page with StartRow/Limit, ordered by the modify date,
from ``cursor - overlap_seconds``; see :mod:`connectors.kingdee.reading`.

Writes: a change with ``source_id`` updates (primary key in the Model,
entry ids in its lines, and ``NeedUpDateFields``). A create is sent once (a
lost answer is not resent by the HTTP client) and is first looked up when
the outbox retries it: by its business number (FNumber / FBillNo), by the
change id in the entity's ``change_id_field`` (a text field the tenant keeps
for it), or, with neither, by its header values among the records created
since an earlier attempt (one of this process whose answer was lost, or one
the hub says may have been sent: ``WriteChange.maybe_sent``); when found it becomes an
update, so a retried create never makes a second record (K3Cloud has no
upsert and no idempotency key). References given as internal ids are sent as
``{"FNumber": ...}``, the form Save resolves; sub-head fields (the order's
settlement currency) are nested in their sub-head (``FSaleOrderFinance``).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from connectors.kingdee import lookups
from connectors.kingdee.client import AuthError, KingdeeClient, _whole
from connectors.kingdee.forms import ENTITY_FORMS, FORMS, MAX_LIMIT, FormInfo, form_of
from connectors.kingdee.reading import read_pages
from connectors.kingdee.writing import ci_key, match_lines, nest_subheads, save_outcomes, update_fields
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, FatalError, RetriableError, TriadError
from hub.incremental import localize_times, nest_dotted

# the form table moved to connectors.kingdee.forms; its names stay importable from here
__all__ = ["ENTITY_FORMS", "FORMS", "MAX_LIMIT", "UNSETTLED_KEPT", "FormInfo", "KingdeeConnector"]

log = logging.getLogger(__name__)

UNSETTLED_KEPT = 10_000     # creates with a lost answer remembered for their retry in this process


class KingdeeConnector(Connector):
    """K3Cloud WebAPI: customers, sales orders, receipts (payments) and contracts."""

    type_name = "kingdee"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"base_url", "acct_id", "username", "password", "app_id", "app_secret", "lcid",
                             "org_num", "auth", "body_style", "timeout", "retries", "backoff", "verify",
                             "overlap_seconds", "org_number", "write_batch_size", "auto_audit"})
    entity_option_keys = frozenset({"number_field", "entry_fields", "filter", "page_size", "change_id_field"})
    entities = ("customer", "order", "payment", "contract")
    writes_deletes = False    # write() refuses a delete: a record deleted elsewhere stays here

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
        return form_of(stream, self.name)

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
        yield from read_pages(self._query, stream, form_id, info, cursor, self.overlap, self.name)

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
            lookups.resolve_refs(self._query, info, pending, models, results)
            targets = lookups.existing_ids(self._query, form_id, key, number, pending, models)
            targets.update(lookups.ids_by_change_id(self._query, form_id, key, change_field, pending, targets))
            targets.update(lookups.ids_of_lost_answers(self._query, form_id, key, number, info, tz, pending, models,
                                                       targets, self._unsettled, self.overlap, self.name))
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

    def _remember_unsettled(self, change_id: str, sent_at: datetime) -> None:
        self._unsettled.pop(change_id, None)
        self._unsettled[change_id] = sent_at
        while len(self._unsettled) > UNSETTLED_KEPT:
            self._unsettled.pop(next(iter(self._unsettled)))

    def _ids_of_answers_without_ids(self, form_id: str, key: str, number: str, creates: list,
                                    models: dict[str, dict[str, Any]], results: dict[str, WriteResult]) -> None:
        """A saved create whose answer named no id ("Save OK" of a batch): its id, looked up by number."""
        missing = [ch for ch, _ in creates if results[ch.change_id].ok and not results[ch.change_id].source_id]
        if not missing:
            return
        try:
            ids = lookups.existing_ids(self._query, form_id, key, number, missing, models)
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
            current = lookups.current_lines(self._query, form_id, key, entry, fields[0], with_seq, list(by_bill))
            for bill, lines in by_bill.items():
                match_lines(lines, current.get(bill, []), fields[0])

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
