"""The simulated org: records, validation, writes, query cursors, tokens and API usage.

:class:`Org` is what the WSGI routes call, and what tests use to act "as a
user in the UI" (``app.sim.edit("Account", id, {...})``). Every write stamps
``LastModifiedDate``/``SystemModstamp`` with one time per request (one
transaction), as Salesforce does, so a mass update gives many rows the same stamp.
"""
from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

from connectors.salesforce.data import generate, recalc, sf_datetime
from connectors.salesforce.query import Executor, normalize_datetime
from connectors.salesforce.records import Ambiguous, ApiError, RecordError, apply_values
from connectors.salesforce.schema import ObjectDef, lookup, make_id
from connectors.salesforce.soql import parse
from connectors.simkit import JsonState, SimOptions

log = logging.getLogger(__name__)

DEFAULT_REFRESH_TOKEN = "5Aep861TriadSimRefreshToken"
DAILY_MAX = 15000
_AUTONUMBER = {"Contract": ("ContractNumber", 8, ""), "Order": ("OrderNumber", 8, ""),
               "OrderItem": ("OrderItemNumber", 10, ""), "Payment__c": ("Name", 6, "PAY-")}


class Org:
    """State and behaviour of one simulated org (thread-safe; one lock around data)."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.state = JsonState(options.state, lambda: generate(options.seed, options.records))
        self.lock = self.state.lock
        self.org_id = make_id("00D", 4_000_000 + options.seed)
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self.refresh_tokens = {options.extra.get("refresh_token", DEFAULT_REFRESH_TOKEN)}
        self.api_calls = 0
        self.locked: set[str] = set()
        self._locators: OrderedDict[str, dict] = OrderedDict()
        self._locator_seq = 0
        self._indexes: dict[tuple[str, str], dict[Any, set[str]]] = {}
        self._undo: list[tuple[str, str, dict | None]] | None = None
        self._tlock = threading.Lock()

    @property
    def records(self) -> dict[str, dict[str, dict]]:
        return self.state.data["objects"]

    @property
    def api_user(self) -> str:
        return next(iter(self.records["User"]))

    # -- tokens and usage -------------------------------------------------------------------------
    def issue_token(self) -> str:
        """A new access token in Salesforce's ``<org id>!<opaque>`` shape."""
        token = f"{self.org_id[:15]}!{secrets.token_urlsafe(72)}"
        with self._tlock:
            self.tokens[token] = time.monotonic()
            self.tokens_issued += 1
            while len(self.tokens) > 1000:  # a long-running simulator keeps the newest sessions only
                self.tokens.pop(next(iter(self.tokens)))
        return token

    def token_valid(self, token: str) -> bool:
        """Whether ``token`` was issued here and has not expired (``options.token_ttl``)."""
        with self._tlock:
            issued = self.tokens.get(token)
        if issued is None:
            return False
        ttl = self.options.token_ttl
        return ttl is None or time.monotonic() - issued < ttl

    def expire_tokens(self) -> None:
        """Invalidate every issued access token (a session timeout or an admin revoking sessions)."""
        with self._tlock:
            self.tokens.clear()

    @property
    def daily_max(self) -> int:
        return self.options.request_budget if self.options.request_budget is not None else DAILY_MAX

    def count_call(self) -> bool:
        """Count one API call; False once the budget is spent (REQUEST_LIMIT_EXCEEDED)."""
        with self._tlock:
            if self.api_calls >= self.daily_max:
                return False
            self.api_calls += 1
            return True

    # -- reads ------------------------------------------------------------------------------------
    def object(self, name: str) -> ObjectDef:
        """The object definition for ``name``; ApiError 404 NOT_FOUND when the org has none."""
        obj = lookup(name)
        if obj is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return obj

    def get(self, obj: str, rec_id: str) -> dict | None:
        """A copy of a record (deleted ones too), or None."""
        with self.lock:
            rec = self.records[self.object(obj).name].get(rec_id) or self._by_id15(obj, rec_id)
            return copy.deepcopy(rec) if rec else None

    def _exists(self, obj: str, rec_id: str) -> bool:
        return rec_id in self.records[obj] or self._by_id15(obj, rec_id) is not None

    def _by_id15(self, obj: str, rec_id: str) -> dict | None:
        if isinstance(rec_id, str) and len(rec_id) == 15:
            return next((r for k, r in self.records[self.object(obj).name].items() if k[:15] == rec_id), None)
        return None

    def find(self, obj: str, field: str, value: Any) -> list[str]:
        """Ids of live records whose ``field`` equals ``value`` (external ids compare case-insensitively)."""
        with self.lock:
            return sorted(self._index(self.object(obj).name, field).get(self._ikey(value), ()))

    def query(self, soql: str, version: str, include_deleted: bool, batch: int) -> dict:
        """The first page of a SOQL query; later pages come from :meth:`query_more`."""
        endpoint = "queryAll" if include_deleted else "query"
        with self.lock:
            total, rows = Executor(self.records, version).run(parse(soql), include_deleted)
        return self._page({"rows": rows, "total": total, "batch": batch, "endpoint": endpoint}, None, 0, version)

    def query_more(self, locator: str, offset: int, version: str) -> dict:
        """The page at ``offset`` of an open query (``nextRecordsUrl``: ``<locator>-<offset>``)."""
        with self._tlock:
            cur = self._locators.get(locator)
            if cur is not None:
                self._locators.move_to_end(locator)
        if cur is None or offset >= len(cur["rows"]) or offset <= 0:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cur, locator, offset, version)

    def _page(self, cur: dict, locator: str | None, start: int, version: str) -> dict:
        rows, end = cur["rows"], start + cur["batch"]
        body: dict[str, Any] = {"totalSize": cur["total"], "done": end >= len(rows)}
        if end < len(rows):
            if locator is None:
                with self._tlock:
                    self._locator_seq += 1
                    locator = make_id("01g", 7_000_000 + self._locator_seq)
                    self._locators[locator] = cur
                    while len(self._locators) > 100:  # Salesforce keeps a bounded number of open cursors too
                        self._locators.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/v{version}/{cur['endpoint']}/{locator}-{end}"
        body["records"] = rows[start:end]
        return body

    def changed(self, obj: str, start: str, end: str, deleted: bool) -> dict:
        """The sObject Get Updated / Get Deleted bodies for a window [start, end]."""
        name = self.object(obj).name
        try:
            lo, hi = normalize_datetime(start), normalize_datetime(end)
        except (TypeError, ValueError):
            raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end must be ISO-8601 datetimes") from None
        if lo >= hi:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        latest = hi[:17] + "00.000+0000"  # Salesforce covers whole minutes
        with self.lock:
            rows = [r for r in self.records[name].values()
                    if bool(r["IsDeleted"]) == deleted and lo <= r["SystemModstamp"] <= hi]
        rows.sort(key=lambda r: r["SystemModstamp"])
        if not deleted:
            return {"ids": [r["Id"] for r in rows], "latestDateCovered": latest}
        return {"deletedRecords": [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in rows],
                "earliestDateAvailable": rows[0]["SystemModstamp"] if rows else lo, "latestDateCovered": latest}

    # -- indexes ----------------------------------------------------------------------------------
    @staticmethod
    def _ikey(value: Any) -> Any:
        return value.casefold() if isinstance(value, str) else value

    def _index(self, obj: str, field: str) -> dict[Any, set[str]]:
        fdef = self.object(obj).field(field)
        if fdef is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        key = (obj, fdef.name)
        idx = self._indexes.get(key)
        if idx is None:
            idx = {}
            for r in self.records[obj].values():
                if not r["IsDeleted"] and r.get(fdef.name) is not None:
                    idx.setdefault(self._ikey(r[fdef.name]), set()).add(r["Id"])
            self._indexes[key] = idx
        return idx

    def _reindex(self, obj: str, old: dict | None, new: dict | None) -> None:
        for (o, field), idx in self._indexes.items():
            if o != obj:
                continue
            if old is not None and not old["IsDeleted"] and old.get(field) is not None:
                idx.get(self._ikey(old[field]), set()).discard(old["Id"])
            if new is not None and not new["IsDeleted"] and new.get(field) is not None:
                idx.setdefault(self._ikey(new[field]), set()).add(new["Id"])

    # -- writes -----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; on an exception the records touched inside are restored (savepoints nest)."""
        with self.lock:
            outer = self._undo is None
            if outer:
                self._undo = []
            mark = len(self._undo)
            try:
                yield
            except BaseException:
                while len(self._undo) > mark:
                    obj, rec_id, old = self._undo.pop()
                    if old is None:
                        self.records[obj].pop(rec_id, None)
                    else:
                        self.records[obj][rec_id] = old
                self._indexes.clear()
                raise
            finally:
                if outer:
                    self._undo = None
            if outer:
                self.state.save()

    def _remember(self, obj: str, rec_id: str) -> None:
        if self._undo is not None:
            old = self.records[obj].get(rec_id)
            self._undo.append((obj, rec_id, copy.deepcopy(old) if old else None))

    def now(self) -> str:
        return sf_datetime(datetime.now(timezone.utc))

    def insert(self, obj: str, values: dict, now: str | None = None) -> str:
        """Create a record; returns its id. Raises RecordError (per record) or ApiError (whole request)."""
        o = self.object(obj)
        with self.transaction():
            now = now or self.now()
            rec = {f: None for f in o.fields}
            apply_values(o, rec, values, True, self._exists)
            serials = self.state.data["serials"]
            serials[o.name] = serials.get(o.name, 1_000_000) + 1
            rec.update(Id=make_id(o.key_prefix, serials[o.name]), IsDeleted=False, CreatedDate=now,
                       CreatedById=self.api_user, LastModifiedDate=now, LastModifiedById=self.api_user,
                       SystemModstamp=now)
            if "OwnerId" in rec and not rec["OwnerId"]:
                rec["OwnerId"] = self.api_user
            if "IsPersonAccount" in rec:
                rec["IsPersonAccount"] = False
            if o.name in _AUTONUMBER:
                field, width, prefix = _AUTONUMBER[o.name]
                nums = self.state.data["autonumbers"]
                rec[field] = f"{prefix}{nums[o.name]:0{width}d}"
                nums[o.name] += 1
            self._finish(o, None, rec, now)
            return rec["Id"]

    def update(self, obj: str, rec_id: str, values: dict, now: str | None = None) -> None:
        o = self.object(obj)
        with self.transaction():
            old = self.records[o.name].get(rec_id) or self._by_id15(o.name, rec_id)
            if old is None:
                raise RecordError("NOT_FOUND", f"The requested resource does not exist: {rec_id}")
            if old["IsDeleted"]:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
            if old["Id"] in self.locked:
                raise RecordError("UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record or 1 "
                                  f"records: {old['Id']}")
            rec = copy.deepcopy(old)
            apply_values(o, rec, {k: v for k, v in values.items() if k.lower() != "id"}, False, self._exists)
            now = now or self.now()
            rec.update(LastModifiedDate=now, LastModifiedById=self.api_user, SystemModstamp=now)
            self._finish(o, old, rec, now)

    def upsert(self, obj: str, field: str, value: Any, values: dict, now: str | None = None) -> tuple[str, bool]:
        """Update the record whose external id ``field`` equals ``value``, or create it: (id, created)."""
        o = self.object(obj)
        fdef = o.field(field)
        if fdef is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if not (fdef.external_id or fdef.name == "Id"):
            raise ApiError(400, "INVALID_FIELD", f"Field {fdef.name} is not an External ID or indexed field for {o.name}")
        with self.transaction():
            ids = ([value] if value in self.records[o.name] else []) if fdef.name == "Id" else self.find(o.name, fdef.name, value)
            if len(ids) > 1:
                raise Ambiguous(o.name, ids)
            body = {k: v for k, v in values.items() if k.lower() != fdef.name.lower()}
            if ids:
                self.update(o.name, ids[0], body, now)
                return ids[0], False
            if fdef.name == "Id":
                raise RecordError("NOT_FOUND", f"The requested resource does not exist: {value}")
            return self.insert(o.name, {**body, fdef.name: value}, now), True

    def delete(self, obj: str, rec_id: str, now: str | None = None) -> None:
        o = self.object(obj)
        with self.transaction():
            rec = self.records[o.name].get(rec_id) or self._by_id15(o.name, rec_id)
            if rec is None:
                raise RecordError("NOT_FOUND", f"The requested resource does not exist: {rec_id}")
            if rec["IsDeleted"]:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
            if rec["Id"] in self.locked:
                raise RecordError("UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record or 1 "
                                  f"records: {rec['Id']}")
            now = now or self.now()
            new = dict(rec, IsDeleted=True, SystemModstamp=now, LastModifiedDate=now, LastModifiedById=self.api_user)
            self._finish(o, rec, new, now)
            for rel in o.children.values():
                if rel.cascade_delete:
                    for kid in [k for k in self.records[rel.child].values()
                                if k.get(rel.field) == rec["Id"] and not k["IsDeleted"]]:
                        self._remember(rel.child, kid["Id"])
                        new_kid = dict(kid, IsDeleted=True, SystemModstamp=now, LastModifiedDate=now)
                        self.records[rel.child][kid["Id"]] = new_kid
                        self._reindex(rel.child, kid, new_kid)

    def _finish(self, o: ObjectDef, old: dict | None, rec: dict, now: str) -> None:
        """Check required and unique fields, derive computed fields, store, and roll up to the parent order."""
        missing = [f.name for f in o.fields.values()
                   if not f.nillable and f.createable and f.type != "boolean" and rec.get(f.name) in (None, "")]
        if missing:
            raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        for f in o.fields.values():
            if f.unique and rec.get(f.name) is not None and not rec["IsDeleted"]:
                other = self._index(o.name, f.name).get(self._ikey(rec[f.name]), set()) - {rec["Id"]}
                if other:
                    raise RecordError("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on record "
                                      f"with id: {min(other)}", [f.name])
        recalc(o.name, rec, self._order_lines(rec["Id"]) if o.name == "Order" else None)
        self._remember(o.name, rec["Id"])
        self.records[o.name][rec["Id"]] = rec
        self._reindex(o.name, old, rec)
        if o.name == "OrderItem" and rec.get("OrderId") in self.records["Order"]:
            order = self.records["Order"][rec["OrderId"]]
            self._remember("Order", order["Id"])
            new = dict(order, SystemModstamp=now, LastModifiedDate=now)
            recalc("Order", new, self._order_lines(order["Id"]))
            self.records["Order"][order["Id"]] = new

    def _order_lines(self, order_id: str) -> list[dict]:
        items = self.records["OrderItem"]
        return [items[i] for i in self._index("OrderItem", "OrderId").get(self._ikey(order_id), ())]

    # -- acting as a user in the UI (tests, the demo) ---------------------------------------------
    def edit(self, obj: str, rec_id: str, values: dict) -> dict:
        """Change a record as a user would in the UI: validated, stamped now; returns the new record."""
        self.update(obj, rec_id, values)
        return self.get(obj, rec_id)

    def edit_many(self, obj: str, ids: list[str], values: dict) -> str:
        """A mass update from a list view: one transaction, so every row gets the same SystemModstamp."""
        now = self.now()
        with self.transaction():
            for rec_id in ids:
                self.update(obj, rec_id, values, now)
        return now

    def create(self, obj: str, values: dict) -> str:
        return self.insert(obj, values)

    def remove(self, obj: str, rec_id: str) -> None:
        self.delete(obj, rec_id)

    def ids(self, obj: str, include_deleted: bool = False) -> list[str]:
        """Record ids in creation order."""
        with self.lock:
            return [k for k, r in self.records[self.object(obj).name].items() if include_deleted or not r["IsDeleted"]]

    def lock_record(self, rec_id: str, locked: bool = True) -> None:
        """Hold a row lock on a record (another transaction busy with it): writes get UNABLE_TO_LOCK_ROW."""
        (self.locked.add if locked else self.locked.discard)(rec_id)
