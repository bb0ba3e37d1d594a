"""DingTalk (钉钉) approvals connector: workflow process instances as the ``approval`` entity.

Reads list instance ids per process code (``ListProcessInstanceIds``) over
start-time windows and fetch each instance (see :mod:`connectors.dingtalk.polling`
for the cursor). Records are described in :mod:`connectors.dingtalk.records`.

Writes:

* a change without ``source_id`` starts an instance: ``processCode`` (from the
  ``kind`` values map, else option ``default_process_code``), ``originatorUserId``
  (else option ``default_originator``), ``deptId`` (option ``dept_id``, -1 = the
  originator's main department) and ``_form`` as ``formComponentValues``.
  Idempotency: DingTalk has no idempotency key, so the change id goes into the
  form component named by option ``dedupe_component`` and, before starting,
  the originator's instances of the last ``dedupe_window_hours`` are looked up
  by that value; a hit is returned instead of a second approval.
* ``_status`` TERMINATED / CANCELED (canonical ``cancelled``) or a delete revokes the instance.
* any other change to a submitted instance is refused per record (DingTalk
  cannot edit one) unless it matches what the instance already holds.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

from connectors.dingtalk import records as rec
from connectors.dingtalk import webhook
from connectors.dingtalk.client import DingTalkClient, RecordRejected
from connectors.dingtalk.crypto import DingTalkCrypto
from connectors.dingtalk.polling import PollSettings, fetch_many, read_instances
from hub.connector import (Batch, CheckResult, Connector, StreamSpec, WebhookEvent, WebhookRejected, WriteChange,
                           WriteResult)
from hub.errors import ConfigError, RetriableError, SkippableRecordError, TriadError
from hub.incremental import nest_dotted

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000     # entries kept by each of the connector's small memories


class _Memory:
    """A bounded, thread-safe map (detail fetches run in parallel threads)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.items: OrderedDict[str, str] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self.lock:
            return self.items.get(key)

    def put(self, key: str, value: str | None) -> None:
        if not value:
            return
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class _Source:
    """The poller's view of DingTalk (see :class:`connectors.dingtalk.polling.InstanceSource`)."""

    def __init__(self, conn: "DingTalkConnector", scopes: list[str]) -> None:
        self.conn, self.scopes = conn, scopes

    def list_ids(self, scope: str, start: datetime, end: datetime) -> Iterator[str]:
        return self.conn.client.list_ids(scope, start, end)

    def fetch_one(self, instance_id: str, scope: str | None) -> dict[str, Any] | None:
        return self.conn.fetch_instance(instance_id, scope, self.scopes)

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["processInstanceId"])

    def is_final(self, record: dict[str, Any]) -> bool:
        return rec.is_final(record)

    def changed_at(self, record: dict[str, Any]) -> datetime | None:
        return rec.parse_time(record.get("_changed_at"))


class DingTalkConnector(Connector):
    """Options: app_key, app_secret, base_url, oapi_url, token_api, process_codes, dept_id,
    default_process_code, default_originator, dedupe_component, dedupe_window_hours,
    callback_token, callback_aes_key, callback_owner_key, since_days, window_days,
    overlap_seconds, fetch_concurrency, retries, backoff, timeout, verify."""

    type_name = "dingtalk"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others);
    # an entity block may override any option read through _opt or PollSettings
    entity_option_keys = frozenset({"process_codes", "default_process_code", "default_originator",
                                    "dedupe_component", "dedupe_window_hours", "dept_id", "agent_id",
                                    "since_days", "window_days", "overlap_seconds", "fetch_concurrency"})
    option_keys = entity_option_keys | {"app_key", "app_secret", "client_id", "client_secret", "base_url",
                                        "oapi_url", "token_api", "timeout", "retries", "backoff", "verify",
                                        "callback_token", "callback_aes_key", "callback_owner_key"}
    entities = ("approval",)

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.client = DingTalkClient(options, name)
        self._codes = _Memory()         # instance id -> process code, learned from lists and callbacks
        self._created = _Memory()       # change id -> instance id, for retries in this process

    # -- helpers -----------------------------------------------------------------------------------
    def _opt(self, stream: StreamSpec | None, key: str, default: Any = None) -> Any:
        if stream is not None and stream.options.get(key) is not None:
            return stream.options[key]
        return self.options.get(key, default)

    def _scopes(self, stream: StreamSpec | None) -> list[str]:
        codes = self._opt(stream, "process_codes") or []
        return [codes] if isinstance(codes, str) else [str(c) for c in codes]

    def _find_code(self, instance_id: str, result: dict[str, Any], scopes: list[str]) -> str | None:
        """The process code of an instance met by id only: list each template around its start time."""
        started = rec.parse_time(result.get("createTime"))
        originator = result.get("originatorUserId")
        if started is None:
            return None
        for code in scopes:
            ids = self.client.list_ids(code, started - timedelta(minutes=2), started + timedelta(minutes=2),
                                       [originator] if originator else None)
            if instance_id in set(ids):
                return code
        return None

    def fetch_instance(self, instance_id: str, scope: str | None, scopes: list[str]) -> dict[str, Any] | None:
        """One raw record, or None when the instance does not exist."""
        result = self.client.get_instance(instance_id)
        if result is None:
            log.warning("DingTalk instance %s no longer exists", instance_id, extra={"connector": self.name})
            return None
        code = scope or self._codes.get(instance_id) or self._find_code(instance_id, result, scopes)
        self._codes.put(instance_id, code)
        return rec.shape(result, instance_id, code)

    # -- contract ------------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        scopes = self._scopes(None)
        try:
            self.client.drop_token()
            self.client.token()
            if scopes:
                now = datetime.now(timezone.utc)
                next(iter(self.client.list_ids(scopes[0], now - timedelta(days=1), now)), None)
        except TriadError as exc:
            return CheckResult(False, f"DingTalk check failed: {exc}", {"token_api": self.client.token_api})
        detail = f"DingTalk app {self.client.app_key} authenticated"
        if scopes:
            detail += f"; process {scopes[0]} readable"
        return CheckResult(True, detail, {"token_api": self.client.token_api, "process_codes": scopes})

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Instances changed since ``cursor``, ``stream.batch_size`` per batch."""
        scopes = self._scopes(stream)
        if not scopes:
            raise ConfigError("dingtalk: no process_codes to read (mapping options or connector options)",
                              connector=self.name, entity=stream.entity)
        settings = PollSettings.from_options(stream.options, self.options)
        return read_instances(_Source(self, scopes), scopes, stream, cursor, settings)

    def fetch(self, stream: StreamSpec, ids: list[str]) -> list[dict[str, Any]]:
        settings = PollSettings.from_options(stream.options, self.options)
        return fetch_many(_Source(self, self._scopes(stream)), [(i, None) for i in ids], settings.concurrency)

    # -- writes -------------------------------------------------------------------------------------
    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Start, revoke or refuse per change (see the module docstring); one result per change, in order.

        Raises:
            RetriableError: DingTalk cannot be reached (its token cannot be had): the call fails as a whole.
        """
        self.client.token()     # cached; a system that is down is one failure of the call, not one per change
        results: dict[str, WriteResult] = {}
        creates: list[tuple[WriteChange, dict[str, Any]]] = []
        for ch in changes:
            values = nest_dotted(dict(ch.values))
            try:
                if ch.source_id and (ch.delete or values.get("_status") in rec.CANCEL_STATUSES):
                    self._cancel(ch.source_id)
                    results[ch.change_id] = WriteResult(ch.change_id, True, ch.source_id)
                elif ch.source_id:
                    self._check_unchanged(stream, ch.source_id, values)
                    results[ch.change_id] = WriteResult(ch.change_id, True, ch.source_id)
                elif ch.delete:
                    results[ch.change_id] = WriteResult(ch.change_id, True, None)
                else:
                    creates.append((ch, values))
            except RetriableError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc),
                                                    retriable=True, retry_after=exc.retry_after)
            except SkippableRecordError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, error=str(exc))
        if creates:
            results.update(self._create_all(stream, creates))
        return [results[ch.change_id] for ch in changes]

    def _cancel(self, instance_id: str) -> None:
        current = self.client.get_instance(instance_id)
        if current is None:
            raise RecordRejected(f"DingTalk instance {instance_id} does not exist", connector=self.name)
        status = current.get("status")
        if status in rec.CANCEL_STATUSES:
            return                              # already revoked: a retried cancel is done
        if status not in rec.OPEN_STATUSES:
            raise RecordRejected(f"DingTalk instance {instance_id} is already decided ({rec.combined_status(current)})"
                                 "; it cannot be revoked", connector=self.name)
        self.client.terminate(instance_id, "Cancelled from Triad")

    def _check_unchanged(self, stream: StreamSpec, instance_id: str, values: dict[str, Any]) -> None:
        record = self.fetch_instance(instance_id, None, self._scopes(stream))
        if record is None:
            raise RecordRejected(f"DingTalk instance {instance_id} does not exist", connector=self.name)
        diff = rec.differences(values, record)
        if diff:
            raise RecordRejected(f"DingTalk cannot edit a submitted approval ({instance_id}: {', '.join(diff)} "
                                 "differ); only cancelling is supported", connector=self.name)

    def _create_body(self, stream: StreamSpec, ch: WriteChange, values: dict[str, Any]) -> dict[str, Any]:
        code = values.get("processCode") or self._opt(stream, "default_process_code")
        originator = values.get("originatorUserId") or self._opt(stream, "default_originator")
        if not code:
            raise RecordRejected("no processCode for the new approval (map kind or set default_process_code)")
        if not originator:
            raise RecordRejected("no originatorUserId for the new approval (map applicant or set default_originator)")
        status = values.get("_status")
        if status not in (None, "") and status not in rec.OPEN_STATUSES:
            raise RecordRejected(f"a new approval is submitted pending; refusing status {status}")
        form = values.get("_form") or {}
        items = [{"name": str(k), "value": str(v)} for k, v in form.items() if v not in (None, "")]
        dedupe = self._opt(stream, "dedupe_component")
        if dedupe:
            items.append({"name": str(dedupe), "value": ch.change_id})
        body: dict[str, Any] = {"processCode": str(code), "originatorUserId": str(originator),
                                "deptId": int(self._opt(stream, "dept_id", -1)), "formComponentValues": items}
        if self._opt(stream, "agent_id"):
            body["microappAgentId"] = int(self._opt(stream, "agent_id"))
        return body

    def _create_all(self, stream: StreamSpec, creates: list[tuple[WriteChange, dict[str, Any]]]
                    ) -> dict[str, WriteResult]:
        results: dict[str, WriteResult] = {}
        bodies: dict[str, dict[str, Any]] = {}
        for ch, values in creates:
            try:
                bodies[ch.change_id] = self._create_body(stream, ch, values)
            except SkippableRecordError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, False, None, error=str(exc))
        pending = [ch for ch, _ in creates if ch.change_id in bodies]
        try:
            existing = self._existing(stream, [(ch, bodies[ch.change_id]) for ch in pending])
        except RetriableError as exc:
            return {**results, **{ch.change_id: WriteResult(ch.change_id, False, None, error=str(exc), retriable=True,
                                                            retry_after=exc.retry_after) for ch in pending}}
        for ch in pending:
            found = self._created.get(ch.change_id) or existing.get(ch.change_id)
            if found:
                log.info("change %s already started DingTalk instance %s; not starting another", ch.change_id,
                         found, extra={"connector": self.name})
                results[ch.change_id] = WriteResult(ch.change_id, True, found)
                continue
            try:
                iid = self.client.start_instance(bodies[ch.change_id])
            except RetriableError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, False, None, error=str(exc), retriable=True,
                                                    retry_after=exc.retry_after)
                continue
            except SkippableRecordError as exc:
                results[ch.change_id] = WriteResult(ch.change_id, False, None, error=str(exc))
                continue
            self._created.put(ch.change_id, iid)
            self._codes.put(iid, bodies[ch.change_id]["processCode"])
            results[ch.change_id] = WriteResult(ch.change_id, True, iid)
        return results

    def _existing(self, stream: StreamSpec, items: list[tuple[WriteChange, dict[str, Any]]]) -> dict[str, str]:
        """change id -> instance already started for it (the dedupe component holds the change id)."""
        dedupe = self._opt(stream, "dedupe_component")
        if not dedupe:
            return {}
        groups: dict[tuple[str, str], set[str]] = {}
        for ch, body in items:
            if self._created.get(ch.change_id) is None:
                groups.setdefault((body["processCode"], body["originatorUserId"]), set()).add(ch.change_id)
        hours = float(self._opt(stream, "dedupe_window_hours", 72))
        now = datetime.now(timezone.utc)
        settings = PollSettings.from_options(stream.options, self.options)
        found: dict[str, str] = {}
        for (code, originator), wanted in groups.items():
            ids = list(self.client.list_ids(code, now - timedelta(hours=hours), now + timedelta(minutes=5),
                                            [originator]))
            for record in fetch_many(_Source(self, [code]), [(i, code) for i in ids], settings.concurrency):
                key = (record.get("_form") or {}).get(str(dedupe))
                if key in wanted:
                    found[str(key)] = str(record["processInstanceId"])
        return found

    # -- real time --------------------------------------------------------------------------------
    def _crypto(self) -> DingTalkCrypto:
        return webhook.callback_crypto(self.options, self.client.app_key or "")

    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       query: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """Check the query-string signature and decrypt; answer ``check_url`` with the encrypted ``success``."""
        crypto = self._crypto()
        plain = webhook.open_delivery(crypto, query, body)   # authentic; content it cannot read is the worker's
        if webhook.is_check_url(plain):
            return crypto.seal("success")
        return None

    def webhook_event_key(self, headers: Mapping[str, str], body: bytes,
                          query: Mapping[str, str] | None = None) -> str | None:
        try:
            return webhook.event_key(webhook.read_event(webhook.open_delivery(self._crypto(), query, body)))
        except (WebhookRejected, ValueError):
            return None

    def webhook_ack(self, headers: Mapping[str, str], body: bytes,
                    query: Mapping[str, str] | None = None) -> tuple[int, bytes, str] | None:
        """The encrypted ``success`` DingTalk expects as the answer to every delivery (within 1500 ms)."""
        return 200, json.dumps(self._crypto().seal("success")).encode("utf-8"), "application/json"

    def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                      query: Mapping[str, str] | None = None) -> list[WebhookEvent]:
        event = webhook.read_event(webhook.open_delivery(self._crypto(), query, body))
        if event.get("processInstanceId") and event.get("processCode"):
            self._codes.put(str(event["processInstanceId"]), str(event["processCode"]))
        return webhook.to_events(event)

    def close(self) -> None:
        self.client.close()
