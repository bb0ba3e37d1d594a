"""Outbound webhooks: outside systems subscribe to golden-record changes of some entities.

A subscription is an outbox target named ``sub:<name>``. Whenever golden
records change, the writer calls :func:`queue_changes` with the history rows it
wrote, in the same transaction: every active subscription for the entity gets
one outbox row per changed record. :func:`deliver` POSTs each row as JSON,
signed with ``X-Triad-Signature: sha256=<HMAC-SHA256 of the body>`` (the secret
comes from the environment variable the subscription names, never from the
database), with ``X-Triad-Event-Id`` for the receiver's idempotency. Failures
back off and go dead exactly as connector writes do (:mod:`hub.push`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, Engine, delete, insert, select, update

from hub import audit, golden
from hub.canonical import ENTITIES
from hub.errors import NotFound, RetriableError, UsageError
from hub.merge import CREATED
from hub.models import Outbox, Subscription
from hub.outbox import OutboxQueue
from hub.secrets import masked_url
from hub.push import PushReport, _claim, _mark_done, _settle_failures   # one set of delivery rules
from hub.push_settle import _defer
from hub.sqlutil import chunks
from hub.streams import Parts
from hub.types import new_id, utcnow

log = logging.getLogger(__name__)

PREFIX = "sub:"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RETRY_CODES = {408, 425, 429}     # besides 5xx, which the HTTP client already treats as transient


# --- administration -------------------------------------------------------------------------------

def add(engine: Engine, name: str, url: str, entities: Sequence[str], secret_env: str, *, by: str) -> dict[str, Any]:
    """Register a subscriber; its signing secret stays in the environment variable ``secret_env``."""
    if not NAME.fullmatch(name):
        raise UsageError(f"subscription name {name!r}: letters, digits, '_', '.', '-' (at most 60)")
    if not re.match(r"https?://[^\s/]+", url):
        raise UsageError(f"URL {url!r}: expected http:// or https:// and a host")
    if not entities:
        raise UsageError("give at least one --entity")
    for e in entities:
        if e not in ENTITIES:
            raise UsageError(f"unknown entity '{e}'; known: {', '.join(ENTITIES)}")
    if not ENV_NAME.fullmatch(secret_env or ""):
        raise UsageError(f"--secret-env {secret_env!r}: the name of an environment variable holding the secret")
    st = Subscription.__table__
    row = {"id": new_id(), "name": name, "url": url, "entities": sorted(set(entities)), "secret_ref": secret_env,
           "active": True, "created_by": by, "created_at": utcnow()}
    with engine.begin() as conn:
        if conn.execute(select(st.c.id).where(st.c.name == name)).first():
            raise UsageError(f"a subscription named '{name}' exists already (remove it first)")
        conn.execute(insert(st), [row])
        audit.record(conn, by, "subscription.add", f"subscription:{name}",
                     after={"url": masked_url(url), "entities": row["entities"], "secret_env": secret_env})
    out = _public(row)
    if secret_env not in os.environ:
        out["warning"] = f"${secret_env} is not set here; deliveries fail until the worker's environment has it"
    return out


def list_subscriptions(engine: Engine) -> list[dict[str, Any]]:
    st, ot = Subscription.__table__, Outbox.__table__
    with engine.connect() as conn:
        subs = [dict(r) for r in conn.execute(select(st).order_by(st.c.name)).mappings()]
        depth: dict[tuple[str, str], int] = {}
        for r in conn.execute(select(ot.c.connector, ot.c.status).where(ot.c.connector.like(PREFIX + "%"),
                                                                         ot.c.status.in_(["pending", "dead"]))):
            depth[(r.connector, r.status)] = depth.get((r.connector, r.status), 0) + 1
    return [_public(s) | {"pending": depth.get((PREFIX + s["name"], "pending"), 0),
                          "dead": depth.get((PREFIX + s["name"], "dead"), 0)} for s in subs]


def remove(engine: Engine, name: str, *, by: str) -> dict[str, Any]:
    """Delete the subscription; its undelivered outbox rows are dropped (kept in the table, not sent)."""
    st, ot = Subscription.__table__, Outbox.__table__
    with engine.begin() as conn:
        r = conn.execute(select(st).where(st.c.name == name)).mappings().first()
        if r is None:
            raise NotFound(f"no subscription '{name}' (see `triad subscriptions list`)")
        conn.execute(delete(st).where(st.c.name == name))
        # its dead rows go too: nobody could deliver them any more
        dropped = conn.execute(update(ot).where(ot.c.connector == PREFIX + name, ot.c.status.in_(("pending", "dead")))
                               .values(status="dropped", updated_at=utcnow())).rowcount
        audit.record(conn, by, "subscription.remove", f"subscription:{name}", before=_public(dict(r)),
                     after={"dropped": dropped})
    return _public(dict(r)) | {"dropped": dropped}


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "name": r["name"], "url": masked_url(r["url"]), "entities": list(r["entities"] or []),
            "secret_env": r["secret_ref"], "active": r["active"], "created_by": r["created_by"],
            "created_at": r["created_at"]}


# --- queueing (inside the writer's transaction) ------------------------------------------------------

def targets(conn: Connection, entity: str) -> list[str]:
    """Outbox connector names (``sub:<name>``) of the active subscriptions that take ``entity``."""
    st = Subscription.__table__
    return [PREFIX + r.name for r in conn.execute(select(st.c.name, st.c.entities).where(st.c.active.is_(True)))
            if entity in (r.entities or [])]


def queue_changes(conn: Connection, entity: str, history: Sequence[dict[str, Any]], run_id: str | None,
                  now: datetime) -> int:
    """Queue one outbox row per changed record for every subscriber of the record's entity.

    Args:
        entity: the entity of rows that do not name their own (history rows do).
        history: the ``field_history`` rows the caller is writing (a creation's ``*`` row carries all fields).

    Returns:
        How many outbox rows were queued.
    """
    if not history:
        return 0
    by_entity: dict[str, dict[str, dict[str, Any]]] = {}
    for h in history:
        fields = by_entity.setdefault(h.get("entity") or entity, {}).setdefault(h["record_id"], {})
        if h["field"] == CREATED:
            fields.update(h["new"] or {})
        else:
            fields[h["field"]] = h["new"]
    queued = 0
    for ent, changed in by_entity.items():
        subs = targets(conn, ent)
        if not subs:
            continue
        queue = OutboxQueue(ent, run_id, now)
        for rid, fields in changed.items():
            for target in subs:
                queue.queue(target, rid, fields)
        queued += queue.flush(conn)
    return queued


# --- delivery ---------------------------------------------------------------------------------------

def deliver(engine: Engine, parts: Parts, names: Sequence[str] = (), *, worker: str = "push",
            max_batches: int | None = None) -> list[PushReport]:
    """Send due events of every active subscription (or only ``names``); one report per (subscription, entity)."""
    st = Subscription.__table__
    with engine.connect() as conn:
        subs = [dict(r) for r in conn.execute(select(st).where(st.c.active.is_(True)).order_by(st.c.name)).mappings()]
    reports = []
    for sub in subs:
        if names and sub["name"] not in names:
            continue
        for entity in sub["entities"] or []:
            reports.append(_deliver_stream(engine, parts, sub, entity, worker, max_batches))
    return reports


def _deliver_stream(engine: Engine, parts: Parts, sub: dict[str, Any], entity: str, worker: str,
                    max_batches: int | None) -> PushReport:
    from hub.http import HttpClient, RetryPolicy
    target = PREFIX + sub["name"]
    report = PushReport(target, entity)
    hidden = _hidden_fields(engine, parts, sub, entity)
    client = HttpClient(sub["url"], policy=RetryPolicy(attempts=1, timeout=10.0), name=target)
    try:
        n = 0
        while max_batches is None or n < max_batches:
            n += 1
            rows = _claim(engine, target, entity, worker, parts.cfg.outbox.batch_size)
            if not rows:
                break
            if not _send_batch(engine, parts, client, sub, entity, rows, hidden, report):
                break
    finally:
        client.close()
    return report


def _hidden_fields(engine: Engine, parts: Parts, sub: dict[str, Any], entity: str) -> frozenset[str]:
    """A subscriber sees what the admin who registered it may see (denied fields are left out)."""
    if not sub["created_by"]:
        return frozenset()
    from hub.rbac import principal
    return principal(engine, parts.cfg, sub["created_by"]).denied_fields(entity)


def _send_batch(engine: Engine, parts: Parts, client: Any, sub: dict[str, Any], entity: str,
                rows: list[dict[str, Any]], hidden: frozenset[str], report: PushReport) -> bool:
    """POST each row; False when the endpoint is unreachable and the rest of the batch was backed off."""
    secret = os.environ.get(sub["secret_ref"] or "")
    if not secret:
        err = f"environment variable {sub['secret_ref']} holding the signing secret is not set"
        _settle_failures(engine, [(r, err, True, None) for r in rows], parts, report)
        report.status, report.error = "error", err
        return False
    with engine.connect() as conn:
        current = golden.load(conn, entity, [r["record_id"] for r in rows])
        behind = _behind_earlier(conn, rows)
    done: list[str] = []
    failed: list[tuple[dict[str, Any], str, bool, float | None]] = []
    waiting: list[tuple[dict[str, Any], str]] = []
    stuck: set[str] = set()     # records whose earlier event failed in this batch
    for i, row in enumerate(rows):
        if row["id"] in behind or row["record_id"] in stuck:   # a record's events arrive in the order of its changes
            waiting.append((row, WAIT_EARLIER))
            continue
        body = event_body(sub["name"], row, current.get(row["record_id"]), hidden)
        try:
            resp = client.request("POST", sub["url"], data=body, allow_redirects=False,
                                  headers={"Content-Type": "application/json", "X-Triad-Event-Id": row["id"],
                                           "X-Triad-Signature": sign(secret, body)})
        except RetriableError as exc:   # down, timing out or 5xx: back off this row and the rest of the batch
            failed += [(r, str(exc), True, exc.retry_after) for r in rows[i:]]
            report.status, report.error = "error", str(exc)
            break
        if 200 <= resp.status_code < 300:
            done.append(row["id"])
        else:
            retriable = resp.status_code in RETRY_CODES
            failed.append((row, f"HTTP {resp.status_code}: {resp.text[:300]}", retriable, None))
            stuck.add(row["record_id"])
    if done:
        _mark_done(engine, done)
        report.counts["written"] += len(done)
    if failed:
        _settle_failures(engine, failed, parts, report)
    if waiting:
        _defer(engine, waiting, report)
    return report.status == "ok"


WAIT_EARLIER = "waiting: an earlier change of this record is not delivered yet"


def _behind_earlier(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Ids of ``rows`` with an earlier event of their record to the same subscriber still pending outside
    the batch (backing off): sent now, they would reach the subscriber before it, and the earlier value last."""
    ot = Outbox.__table__
    ids = {r["id"] for r in rows}
    first: dict[str, tuple] = {}
    for part in chunks(sorted({r["record_id"] for r in rows})):
        for r in conn.execute(select(ot.c.id, ot.c.record_id, ot.c.created_at).where(
                ot.c.connector == rows[0]["connector"], ot.c.entity == rows[0]["entity"], ot.c.status == "pending",
                ot.c.record_id.in_(part))):
            if r.id not in ids and (r.record_id not in first or (r.created_at, r.id) < first[r.record_id]):
                first[r.record_id] = (r.created_at, r.id)
    return {r["id"] for r in rows if r["record_id"] in first and first[r["record_id"]] < (r["created_at"], r["id"])}


def event_body(name: str, row: dict[str, Any], current: golden.GoldenRow | None, hidden: frozenset[str]) -> bytes:
    """The JSON an event carries: what changed, and the golden record as it is now (None once gone)."""
    event = {"id": row["id"], "subscription": name, "entity": row["entity"], "record_id": row["record_id"],
             "operation": row["operation"], "queued_at": row["created_at"],
             "changed": {k: v for k, v in (row["fields"] or {}).items() if k not in hidden},
             "record": None if current is None else {
                 "version": current.version, "deleted_in": current.deleted_in, "merged_into": current.merged_into,
                 "fields": {k: v for k, v in current.values.items() if k not in hidden}}}
    return json.dumps(event, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Triad-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    return str(o)
