"""What a write looks up in K3Cloud before it saves, a chunk of records per query.

The numbers behind referenced internal ids, the record a retried create
already made (by business number, by the change id field, or by its header
values among the records created since a lost answer), and the current lines
of the bills an update replaces lines of.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.kingdee.client import AuthError
from connectors.kingdee.forms import FORMS, MAX_LIMIT, FormInfo
from connectors.kingdee.reading import Query
from connectors.kingdee.writing import ci_key, content_filter, quote
from hub.connector import WriteChange, WriteResult
from hub.errors import FatalError, RetriableError

log = logging.getLogger(__name__)


def resolve_refs(query_rows: Query, info: FormInfo, changes: list[WriteChange], models: dict[str, dict[str, Any]],
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
            rows = query_rows({"FormId": target, "FieldKeys": f"{target_info.key},{target_info.number}",
                               "FilterString": f"{target_info.key} IN ({','.join(chunk)})", "Limit": MAX_LIMIT})
            found.update({str(r[0]): r[1] for r in rows})
        for value, change_ids in wanted.items():
            for cid in change_ids:
                model = models[cid]
                if value in found or not value.isdigit():     # not an internal id: taken as the number
                    model[ci_key(model, ref_field) or ref_field] = {"FNumber": found.get(value, value)}
                else:
                    results[cid] = WriteResult(cid, False, None, error=f"{ref_field}: {target} {value} not found")


def existing_ids(query_rows: Query, form_id: str, key: str, number: str, changes: list[WriteChange],
                 models: dict[str, dict[str, Any]]) -> dict[str, str]:
    """change id -> internal id of the record already carrying the create's business number."""
    by_number: dict[str, list[str]] = {}
    for ch in changes:
        model = models[ch.change_id]
        value = model.get(ci_key(model, number) or number) if not ch.source_id else None
        if value not in (None, ""):
            by_number.setdefault(str(value), []).append(ch.change_id)
    return ids_where(query_rows, form_id, key, number, by_number)


def ids_by_change_id(query_rows: Query, form_id: str, key: str, change_field: str | None,
                     changes: list[WriteChange], found: dict[str, str]) -> dict[str, str]:
    """change id -> internal id of the record a create already made, by the field holding the change id."""
    if not change_field:
        return {}
    wanted = {ch.change_id: [ch.change_id] for ch in changes if not ch.source_id and ch.change_id not in found}
    return ids_where(query_rows, form_id, key, change_field, wanted)


def ids_where(query_rows: Query, form_id: str, key: str, field_key: str,
              wanted: dict[str, list[str]]) -> dict[str, str]:
    """change id -> internal id of the record whose ``field_key`` holds the value the change is listed under."""
    out: dict[str, str] = {}
    values = list(wanted)
    for i in range(0, len(values), 200):
        chunk = values[i:i + 200]
        rows = query_rows({"FormId": form_id, "FieldKeys": f"{key},{field_key}",
                           "FilterString": f"{field_key} IN ({','.join(quote(n) for n in chunk)})",
                           "Limit": MAX_LIMIT})
        for row in rows:
            for cid in wanted.get(str(row[1]), []):
                out[cid] = str(row[0])
    return out


def ids_of_lost_answers(query_rows: Query, form_id: str, key: str, number: str, info: FormInfo, tz: ZoneInfo,
                        changes: list[WriteChange], models: dict[str, dict[str, Any]], found: dict[str, str],
                        unsettled: dict[str, datetime], overlap: float, connector: str) -> dict[str, str]:
    """change id -> the record an earlier create made although its answer was lost.

    An earlier attempt is one of this process (``unsettled``: when it was sent) or one the hub knows
    may have been sent (``WriteChange.maybe_sent``: its push died, or it failed before). Only for
    creates with no business number to look up: the one record created since that attempt (less
    ``overlap`` seconds for clock skew) with the same header values.
    """
    out: dict[str, str] = {}
    skip = {key.lower(), number.lower(), info.created.lower()}
    for ch in changes:
        model = models[ch.change_id]
        sent_at = min((t for t in (unsettled.get(ch.change_id), ch.maybe_sent) if t is not None), default=None)
        if ch.source_id or ch.change_id in found or sent_at is None or model.get(ci_key(model, number) or number):
            continue
        since = (sent_at - timedelta(seconds=overlap)).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        conditions = [f"{info.created} >= '{since}'"] + content_filter(model, skip)
        try:
            rows = query_rows({"FormId": form_id, "FieldKeys": key, "Limit": 2,
                               "FilterString": " AND ".join(f"({c})" for c in conditions)})
        except (RetriableError, AuthError):
            raise
        except FatalError as exc:       # a value K3Cloud cannot filter on: no lookup, as before
            log.warning("cannot look for the record of change %s: %s", ch.change_id, exc,
                        extra={"connector": connector})
            continue
        if len(rows) == 1:
            out[ch.change_id] = str(rows[0][0])
    return out


def current_lines(query_rows: Query, form_id: str, key: str, entry: str, entry_pk: str, with_seq: bool,
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
            rows = query_rows(dict(query, StartRow=start))
            for row in rows:
                if row[1] not in (None, 0):
                    out.setdefault(str(row[0]), []).append((row[2] if with_seq else None, row[1]))
            if len(rows) < MAX_LIMIT:
                break
            start += MAX_LIMIT
    return out
