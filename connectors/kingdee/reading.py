"""Reads from K3Cloud: the ExecuteBillQuery of a stream, its pages, and rows turned into records.

Dotted keys (``FCustId.FNumber``) come back as nested objects, the shape Save
takes them in; an entry (``FSaleOrderEntry``) comes back as a list of lines
under its name. Pages go by StartRow/Limit, ordered by the modify date, from
``cursor - overlap_seconds``.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

from connectors.kingdee.forms import MAX_LIMIT, FormInfo
from hub.connector import Batch, StreamSpec
from hub.errors import ConfigError
from hub.incremental import CursorTracker, RunDedup, get_path, lower_bound, set_path

log = logging.getLogger(__name__)

Query = Callable[[dict[str, Any]], list[list[Any]]]     # one ExecuteBillQuery: its data -> rows


def layout(stream: StreamSpec, info: FormInfo, connector: str) -> tuple[list[str], str | None, list[str]]:
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
                              connector=connector)
        entry_name = hit[0]
        rel += [k for k in hit[1] if k not in rel]
    for must in (stream.key or info.key, stream.updated_at or info.updated):
        if must and must.lower() not in (h.lower() for h in header):
            header.insert(0, must)
    if entry_name:
        entry_id = info.entries[entry_name][0]
        rel = [entry_id] + [k for k in rel if k.lower() != entry_id.lower()]
    return header, entry_name, rel


def read_pages(query_rows: Query, stream: StreamSpec, form_id: str, info: FormInfo, cursor: Any,
               overlap: float, connector: str) -> Iterator[Batch]:
    """Pages of ExecuteBillQuery rows as records, from ``cursor - overlap`` on, ordered by the modify date."""
    tz = ZoneInfo(stream.timezone or "Asia/Shanghai")
    key = stream.key or info.key
    updated = stream.updated_at or info.updated
    header, entry, rel = layout(stream, info, connector)
    entry_keys = [f"{entry}_{k}" if i == 0 else k for i, k in enumerate(rel)] if entry else []
    filters = [f for f in (stream.options.get("filter"),) if f]
    since = lower_bound(cursor, overlap, tz)
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
    log.info("reading %s from %s (since %s)", form_id, connector, since or "the beginning",
             extra={"connector": connector, "entity": stream.entity})
    while True:
        rows = query_rows(dict(query, StartRow=start))
        records = to_records(rows, header, entry, rel, key, held)
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


def to_records(rows: list[list[Any]], header: list[str], entry: str | None, rel: list[str],
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
