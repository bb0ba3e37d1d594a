"""Feishu / Lark approvals connector: approval v4 instances as the ``approval`` entity.

Reads list instance codes per approval code over start-time windows and fetch
each instance (cursor and rules in :mod:`connectors.dingtalk.polling`, shared
with DingTalk). Records are described in :mod:`connectors.feishu.records`.

Writes:

* a change without ``source_id`` creates an instance: ``approval_code`` (from the
  ``kind`` values map, else option ``default_approval_code``), ``user_id`` (else
  ``default_user_id``) and ``_form`` as the ``form`` JSON string, widget types from
  the mapping option ``widgets`` (``{custom_id: type}``; amounts and numbers are sent
  as numbers). Idempotency: ``uuid`` is derived from the change id, so a retried
  create is refused by Feishu as a uuid conflict; the instance that holds that uuid
  is then looked up (last ``dedupe_window_hours``) and returned.
* ``status`` CANCELED (canonical ``cancelled``) or a delete withdraws the instance as its initiator.
* any other change to a submitted instance is refused per record unless it matches the instance.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

from connectors.dingtalk.polling import PollSettings, fetch_many, read_instances
from connectors.dingtalk.records import differences
from connectors.feishu import records as rec
from connectors.feishu import webhook
from connectors.feishu.client import UUID_CONFLICT, FeishuClient, RecordRejected
from hub.connector import (Batch, CheckResult, Connector, StreamSpec, WebhookEvent, WebhookRejected, WriteChange,
                           WriteResult)
from hub.errors import ConfigError, RetriableError, SkippableRecordError, TriadError
from hub.incremental import nest_dotted

log = logging.getLogger(__name__)

UUID_NAMESPACE = uuid.UUID("6f1f3c52-8d0e-4c55-9a51-7a3c2b1e9d40")   # Triad's namespace for create uuids
NUMERIC_WIDGETS = {"amount", "number", "formula"}


def request_uuid(change_id: str) -> str:
    """The Feishu create ``uuid`` of a change: the same for every retry of that change."""
    return str(uuid.uuid5(UUID_NAMESPACE, change_id)).upper()


class _Source:
    """The poller's view of Feishu (see :class:`connectors.dingtalk.polling.InstanceSource`)."""

    def __init__(self, client: FeishuClient) -> None:
        self.client = client

    def list_ids(self, scope: str, start: datetime, end: datetime) -> Iterator[str]:
        return self.client.list_codes(scope, start, end)

    def fetch_one(self, instance_id: str, scope: str | None) -> dict[str, Any] | None:
        data = self.client.get_instance(instance_id)
        if data is None:
            log.warning("Feishu instance %s no longer exists", instance_id)
            return None
        return rec.shape(data, instance_id)

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["instance_code"])

    def is_final(self, record: dict[str, Any]) -> bool:
        return rec.is_final(record)

    def changed_at(self, record: dict[str, Any]) -> datetime | None:
        value = record.get("_changed_at")
        return datetime.fromisoformat(value) if value else None


class FeishuConnector(Connector):
    """Options: app_id, app_secret, base_url, user_id_type, approval_codes, default_approval_code,
    default_user_id, dedupe_window_hours, verification_token, encrypt_key, since_days, window_days,
    overlap_seconds, fetch_concurrency, retries, backoff, timeout, verify."""

    type_name = "feishu"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others);
    # an entity block may override any option read through _opt or PollSettings
    entity_option_keys = frozenset({"approval_codes", "widgets", "default_approval_code", "default_user_id",
                                    "dedupe_window_hours", "since_days", "window_days", "overlap_seconds",
                                    "fetch_concurrency"})
    option_keys = entity_option_keys | {"app_id", "app_secret", "client_id", "client_secret", "base_url",
                                        "user_id_type", "timeout", "retries", "backoff", "verify",
                                        "verification_token", "encrypt_key"}
    entities = ("approval",)

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.client = FeishuClient(options, name)
        self.source = _Source(self.client)

    def _opt(self, stream: StreamSpec | None, key: str, default: Any = None) -> Any:
        if stream is not None and stream.options.get(key) is not None:
            return stream.options[key]
        return self.options.get(key, default)

    def _scopes(self, stream: StreamSpec | None) -> list[str]:
        codes = self._opt(stream, "approval_codes") or []
        return [codes] if isinstance(codes, str) else [str(c) for c in codes]

    # -- contract ------------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        scopes = self._scopes(None)
        try:
            self.client.drop_token()
            self.client.token()
            if scopes:
                now = datetime.now(timezone.utc)
                next(iter(self.client.list_codes(scopes[0], now - timedelta(days=1), now)), None)
        except TriadError as exc:
            return CheckResult(False, f"Feishu check failed: {exc}", {})
        detail = f"Feishu app {self.client.app_id} authenticated"
        if scopes:
            detail += f"; approval {scopes[0]} readable"
        return CheckResult(True, detail, {"approval_codes": scopes})

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Instances changed since ``cursor``, ``stream.batch_size`` per batch."""
        scopes = self._scopes(stream)
        if not scopes:
            raise ConfigError("feishu: no approval_codes to read (mapping options or connector options)",
                              connector=self.name, entity=stream.entity)
        return read_instances(self.source, scopes, stream, cursor, PollSettings.from_options(stream.options,
                                                                                             self.options))

    def fetch(self, stream: StreamSpec, ids: list[str]) -> list[dict[str, Any]]:
        settings = PollSettings.from_options(stream.options, self.options)
        return fetch_many(self.source, [(i, None) for i in ids], settings.concurrency)

    # -- writes -------------------------------------------------------------------------------------
    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Create, cancel or refuse per change (see the module docstring); one result per change, in order.

        Raises:
            RetriableError: Feishu cannot be reached (its token cannot be had): the call fails as a whole.
        """
        self.client.token()     # cached; a system that is down is one failure of the call, not one per change
        out: list[WriteResult] = []
        for ch in changes:
            values = nest_dotted(dict(ch.values))
            try:
                if ch.source_id and (ch.delete or values.get("status") == "CANCELED"):
                    self._cancel(ch.source_id)
                    out.append(WriteResult(ch.change_id, True, ch.source_id))
                elif ch.source_id:
                    self._check_unchanged(ch.source_id, values)
                    out.append(WriteResult(ch.change_id, True, ch.source_id))
                elif ch.delete:
                    out.append(WriteResult(ch.change_id, True, None))
                else:
                    out.append(WriteResult(ch.change_id, True, self._create(stream, ch, values)))
            except RetriableError as exc:
                out.append(WriteResult(ch.change_id, False, ch.source_id, error=str(exc), retriable=True,
                                       retry_after=exc.retry_after))
            except SkippableRecordError as exc:
                out.append(WriteResult(ch.change_id, False, ch.source_id, error=str(exc)))
        return out

    def _current(self, instance_code: str) -> dict[str, Any]:
        record = self.source.fetch_one(instance_code, None)
        if record is None:
            raise RecordRejected(f"Feishu instance {instance_code} does not exist", connector=self.name)
        return record

    def _cancel(self, instance_code: str) -> None:
        current = self._current(instance_code)
        status = current.get("status")
        if status == "CANCELED":
            return                              # already withdrawn: a retried cancel is done
        if status not in rec.OPEN_STATUSES:
            raise RecordRejected(f"Feishu instance {instance_code} is already {status}; it cannot be cancelled",
                                 connector=self.name)
        self.client.cancel(str(current["approval_code"]), instance_code, str(current["user_id"]))

    def _check_unchanged(self, instance_code: str, values: dict[str, Any]) -> None:
        diff = differences(values, self._current(instance_code), "status", rec.OPEN_STATUSES)
        if diff:
            raise RecordRejected(f"Feishu cannot edit a submitted approval ({instance_code}: {', '.join(diff)} "
                                 "differ); only cancelling is supported", connector=self.name)

    def _form(self, stream: StreamSpec, form: dict[str, Any]) -> str:
        types = self._opt(stream, "widgets") or {}
        items = []
        for key, value in form.items():
            if value in (None, ""):
                continue
            kind = str(types.get(key, "input"))
            if kind in NUMERIC_WIDGETS:
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    raise RecordRejected(f"form widget {key} ({kind}) needs a number, got {value!r}") from None
            items.append({"id": str(key), "type": kind, "value": value})
        return json.dumps(items, ensure_ascii=False)

    def _create(self, stream: StreamSpec, ch: WriteChange, values: dict[str, Any]) -> str:
        code = values.get("approval_code") or self._opt(stream, "default_approval_code")
        user = values.get("user_id") or self._opt(stream, "default_user_id")
        if not code:
            raise RecordRejected("no approval_code for the new approval (map kind or set default_approval_code)")
        if not user:
            raise RecordRejected("no user_id for the new approval (map applicant or set default_user_id)")
        if values.get("status") not in (None, "", *rec.OPEN_STATUSES):
            raise RecordRejected(f"a new approval is submitted pending; refusing status {values.get('status')}")
        key = request_uuid(ch.change_id)
        body = {"approval_code": str(code), "user_id": str(user), "form": self._form(stream, values.get("_form") or {}),
                "uuid": key}
        answer = self.client.create_instance(body)
        if answer.get("code") == 0:
            return str((answer.get("data") or {})["instance_code"])
        if answer.get("code") == UUID_CONFLICT:
            found = self._find_by_uuid(stream, str(code), key)
            if found:
                log.info("change %s already created Feishu instance %s; not creating another", ch.change_id, found,
                         extra={"connector": self.name})
                return found
        raise RecordRejected(f"Feishu refused the approval: {answer.get('code')} {answer.get('msg')}",
                             connector=self.name)

    def _find_by_uuid(self, stream: StreamSpec, approval_code: str, key: str) -> str | None:
        hours = float(self._opt(stream, "dedupe_window_hours", 72))
        now = datetime.now(timezone.utc)
        codes = list(self.client.list_codes(approval_code, now - timedelta(hours=hours), now + timedelta(minutes=5)))
        settings = PollSettings.from_options(stream.options, self.options)
        newest_first = [(c, None) for c in reversed(codes)]
        for n in range(0, len(newest_first), 20):       # stop at the first hit: a retry comes soon after
            for record in fetch_many(self.source, newest_first[n:n + 20], settings.concurrency):
                if str(record.get("uuid") or "").upper() == key:
                    return str(record["instance_code"])
        return None

    # -- real time --------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       query: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """Check token (and signature with an Encrypt Key); answer the url_verification challenge."""
        doc = webhook.open_event(self.options, headers, body)
        if webhook.event_type(doc) == "url_verification":
            return {"challenge": doc.get("challenge")}
        return None

    def webhook_event_key(self, headers: Mapping[str, str], body: bytes,
                          query: Mapping[str, str] | None = None) -> str | None:
        try:
            return webhook.event_key(webhook.open_event(self.options, headers, body))
        except WebhookRejected:
            return None

    def webhook_ack(self, headers: Mapping[str, str], body: bytes,
                    query: Mapping[str, str] | None = None) -> tuple[int, bytes, str] | None:
        """Feishu wants HTTP 200 within 3 s (a 202 counts as a failed push) [unverified]."""
        return 200, b'{"msg":"success"}', "application/json"

    def redact_webhook(self, headers: Mapping[str, str], body: bytes,
                       query: Mapping[str, str] | None = None) -> bytes:
        """The Verification Token is a secret: the inbox keeps the event without it."""
        return webhook.without_token(body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                      query: Mapping[str, str] | None = None) -> list[WebhookEvent]:
        """A stored event: verified before it was stored, so without the token it no longer carries."""
        return webhook.to_events(webhook.stored_event(self.options, body))

    def close(self) -> None:
        self.client.close()
