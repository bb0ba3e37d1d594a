"""The Salesforce connector: incremental SOQL reads by SystemModstamp, writes through
sObject Collections (create, update, upsert by external id, delete).

Reads use a tie-safe cursor ``{"ts": <iso>, "id": <last Id>}``: the query has a
closed lower bound (``SystemModstamp >= ts``), is ordered by ``SystemModstamp, Id``
and skips rows at exactly ``ts`` whose Id is not after the cursor's, so rows
sharing one stamp across a page boundary are neither lost nor read twice. Rows
changed after the run started are delivered, but the cursor stops at the run's
start, so they are read again next run. After the first full read, ``queryAll``
also returns deleted rows (their stamp moves on delete); their ids go to
``Batch.deleted``. One batch per page (pages are split when the stream's batch
size is below Salesforce's minimum page of 200); the cursor is the batch's last row.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterator, Mapping

from hub.connector import Batch, CheckResult, Connector, StreamSpec, WebhookEvent, WriteChange, WriteResult
from hub.errors import ConfigError, RetriableError, TriadError
from hub.http import RetryPolicy

from connectors.salesforce.client import GRANTS, TRANSIENT_CODES, SalesforceClient, error_of

log = logging.getLogger(__name__)

CHUNK = 200                      # sObject Collections take at most 200 records per call
DELETE_DONE = {"ENTITY_IS_DELETED"}   # deleting what is already deleted is success (idempotent retries)


def parse_ts(value: str) -> datetime:
    """A Salesforce datetime (``2026-10-30T07:27:52.954+0000`` or ISO with Z) as aware UTC."""
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    dt = datetime.fromisoformat(text)
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def soql_ts(dt: datetime) -> str:
    """A SOQL datetime literal with milliseconds (truncated, never rounded up)."""
    dt = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _strip_attributes(value: Any) -> Any:
    """Drop the transport metadata (``attributes``) Salesforce adds to every record object."""
    if isinstance(value, dict):
        return {k: _strip_attributes(v) for k, v in value.items() if k != "attributes"}
    if isinstance(value, list):
        return [_strip_attributes(v) for v in value]
    return value


def _json_value(value: Any) -> Any:
    """Outbound values as JSON: decimals stay exact where a float cannot hold them."""
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, datetime):
        return soql_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class SalesforceConnector(Connector):
    """Options: base_url, api_version (60.0), auth {grant, client_id, client_secret, username,
    password, refresh_token}, verify (CA bundle path or bool), external_id_field (Triad_Id__c;
    empty to switch off), batch_size (200..2000), retry {attempts, backoff, max_wait, timeout}.
    """

    type_name = "salesforce"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"base_url", "api_version", "auth", "verify", "external_id_field", "retry",
                             "webhook_token", "organization_id", "webhook_records", "webhook_objects"})
    entity_option_keys = frozenset({"children"})
    # keys of the `auth:` block (hub.config_checks: a typo there is refused before a login fails on it)
    auth_keys = frozenset({"grant", "client_id", "client_secret", "username", "password", "security_token",
                           "refresh_token"})
    auth_values = {"grant": GRANTS}
    entities = ("customer", "opportunity", "order", "contract", "payment")

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        base_url = options.get("base_url")
        if not base_url:
            raise ConfigError(f"connectors.{name}.base_url: required (the login or My Domain URL)")
        retry = options.get("retry") or {}
        try:
            policy = RetryPolicy(**retry)
        except TypeError as exc:
            raise ConfigError(f"connectors.{name}.retry: {exc}") from None
        verify = options.get("verify", True)
        self.external_id_field = options.get("external_id_field", "Triad_Id__c") or None
        self.batch_size = options.get("batch_size")
        self.client = SalesforceClient(str(base_url), str(options.get("api_version", "60.0")),
                                       options.get("auth") or {}, verify=verify, policy=policy, name=name)

    # -- check ------------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Log in and read ``/limits``; reports the API requests used today."""
        try:
            limits = self.client.limits()
        except TriadError as exc:
            return CheckResult(False, str(exc))
        except Exception as exc:  # unreachable host, TLS failure: a check never raises
            return CheckResult(False, f"cannot reach Salesforce at {self.options.get('base_url')}: {exc}")
        daily = limits.get("DailyApiRequests", {})
        used = daily.get("Max", 0) - daily.get("Remaining", 0)
        return CheckResult(True, f"logged in to {self.client.auth.instance_url()} (API v{self.client.version}); "
                           f"{used}/{daily.get('Max', '?')} API requests used today",
                           info={"instance_url": self.client.auth.instance_url(), "api_version": self.client.version,
                                 "daily_api_requests": daily})

    # -- read -------------------------------------------------------------------------------------
    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Batches of rows changed at or after ``cursor`` (all live rows when None), one per page.

        Raises:
            LimitExceeded: the org's API request budget is spent (the batches before it stand).
            ConfigError: the mapping names an object or field the org does not have.
        """
        desc = self.client.describe(stream.source)
        ts_field = stream.updated_at or "SystemModstamp"
        start = _cursor(cursor)
        soql = (f"SELECT {', '.join(self._select(stream, desc, ts_field))} FROM {desc['name']}"
                + (f" WHERE {ts_field} >= {soql_ts(start[0])}" if start else "") + f" ORDER BY {ts_field}, Id")
        size = int(self.batch_size or stream.batch_size or 2000)
        limit = _ms(stream.run_started_at) if stream.run_started_at else None
        committed = start
        seen = start
        log.debug("reading %s: %s", stream.entity, soql, extra={"connector": self.name})
        # after the first full read, queryAll also brings the rows deleted since the cursor
        pages = self.client.query_pages(soql, include_deleted=start is not None, batch_size=min(2000, max(200, size)))
        for page in pages:
            rows = []
            for row in page.get("records", []):
                position = (parse_ts(row[ts_field]), row["Id"])
                if seen is not None and position <= seen:
                    continue  # at the cursor's stamp and not after its Id: already delivered
                rows.append((position, row))
                seen = position
            for i in range(0, len(rows), size):
                part = rows[i:i + size]
                records = [_strip_attributes(r) for _, r in part if not r.get("IsDeleted")]
                deleted = [r["Id"] for _, r in part if r.get("IsDeleted")]
                position = part[-1][0]
                if limit is not None and position[0] > limit:
                    # changed after the run started: delivered now, read again next run
                    position = max(committed, (limit, "")) if committed else (limit, "")
                committed = position
                yield Batch(records, cursor={"ts": soql_ts(position[0]), "id": position[1]}, deleted=deleted)

    def _select(self, stream: StreamSpec, desc: dict, ts_field: str) -> list[str]:
        """The SELECT list: key, stamp, IsDeleted, the mapping's paths, and child subqueries."""
        fields = {f["name"].lower(): f["name"] for f in desc["fields"]}
        rels = {f["relationshipName"].lower() for f in desc["fields"] if f.get("relationshipName")}
        children = {c["relationshipName"].lower(): c for c in desc.get("childRelationships", [])
                    if c.get("relationshipName")}
        wanted = [stream.key or "Id", "Id", ts_field, "IsDeleted", *(stream.fields or list(fields.values()))]
        out: dict[str, str] = {}
        subs: dict[str, list[str]] = {}
        for path in wanted:
            head, _, rest = path.partition(".")
            if head.lower() in children:
                # the subquery result is {"totalSize", "done", "records": [...]}: OrderItems.records.Quantity
                rest = rest[len("records"):].lstrip(".") if rest.split(".")[0] == "records" else rest
                subs.setdefault(children[head.lower()]["relationshipName"], []).extend([rest] if rest else [])
            elif rest and head.lower() in rels:
                out.setdefault(path.lower(), path)
            elif not rest and path.lower() in fields:
                out.setdefault(path.lower(), fields[path.lower()])
            elif path != "IsDeleted":
                raise ConfigError(f"{desc['name']} has no field '{path}' (mapping of {stream.entity})",
                                  connector=self.name, entity=stream.entity)
        listed = stream.options.get("children") or {}
        for rel, sub_fields in subs.items():
            child = self.client.describe(children[rel.lower()]["childSObject"])
            child_fields = {f["name"].lower(): f["name"] for f in child["fields"]}
            picked = sub_fields or list(listed.get(rel) or child_fields.values())
            unique: dict[str, str] = {}
            for name in ["Id", *picked]:
                unique.setdefault(name.lower(), name)   # SOQL refuses a field selected twice
            live = " WHERE IsDeleted = false" if "isdeleted" in child_fields else ""
            out[f"({rel})"] = f"(SELECT {', '.join(unique.values())} FROM {rel}{live} ORDER BY Id)"
        return list(out.values())

    # -- write ------------------------------------------------------------------------------------
    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Apply changes through sObject Collections, 200 per call, one result per change.

        Updates go by Id; creates are upserts on the external id field (holding the hub's
        record id) when the object has it, so a retried create cannot make a duplicate.
        Per-record errors are results; a call that fails transiently marks its changes
        and all later ones retriable instead of raising.
        """
        obj = stream.source
        desc = self.client.describe(obj)
        names = {f["name"].lower() for f in desc["fields"]}
        children = {c["relationshipName"].lower() for c in desc.get("childRelationships", []) if c.get("relationshipName")}
        ext = self.external_id_field if self.external_id_field and self.external_id_field.lower() in names else None
        groups: dict[str, list[tuple[WriteChange, dict]]] = {"delete": [], "update": [], "upsert": [], "create": []}
        for ch in changes:
            values = {k: _json_value(v) for k, v in ch.values.items()
                      if k.lower() != "id" and k.lower() not in children}
            dropped = set(ch.values) - set(values) - {"Id", "id"}
            if dropped:
                log.warning("%s: child lists %s are not written through %s", obj, sorted(dropped), self.name)
            if ch.delete and not ch.source_id:
                continue  # never reached this system: nothing to delete
            if ch.delete:
                groups["delete"].append((ch, values))
            elif ch.source_id:
                if ext:   # linked records learn their hub id too, so the org can be matched to Triad later
                    values.setdefault(ext, ch.record_id)
                groups["update"].append((ch, values))
            elif ext:
                # creates carry the hub's record id in the external id field: a retried create cannot duplicate
                values.setdefault(ext, ch.record_id)
                groups["upsert"].append((ch, values))
            else:
                groups["create"].append((ch, values))
        results = {ch.change_id: WriteResult(ch.change_id, True, None) for ch in changes if ch.delete and not ch.source_id}
        stop: RetriableError | None = None
        for op, items in groups.items():
            for i in range(0, len(items), CHUNK):
                chunk = items[i:i + CHUNK]
                if stop is not None:
                    for ch, _ in chunk:
                        results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, str(stop), True,
                                                            stop.retry_after)
                    continue
                try:
                    for ch, res in self._send(op, obj, ext, chunk):
                        results[ch.change_id] = res
                except RetriableError as exc:  # 5xx after retries, or the API budget: later changes wait too
                    stop = exc
                    log.warning("%s writes stopped: %s", self.name, exc, extra={"connector": self.name})
                    for ch, _ in chunk:
                        results[ch.change_id] = WriteResult(ch.change_id, False, ch.source_id, str(exc), True,
                                                            exc.retry_after)
        return [results[ch.change_id] for ch in changes]

    def _send(self, op: str, obj: str, ext: str | None, chunk: list[tuple[WriteChange, dict]]) -> list[tuple[WriteChange, WriteResult]]:
        if op == "delete":
            resp = self.client.collection("DELETE", ids=[ch.source_id for ch, _ in chunk])
        else:
            records = [{"attributes": {"type": obj}, **({"id": ch.source_id} if op == "update" else {}), **values}
                       for ch, values in chunk]
            method = {"create": "POST", "update": "PATCH", "upsert": "PATCH"}[op]
            resp = self.client.collection(method, records, obj=obj, external_id=ext if op == "upsert" else None)
        if resp.status_code != 200:
            code, message = error_of(resp)
            if len(chunk) > 1:  # the whole call was refused (one undecodable value): find the culprit alone
                return [pair for one in chunk for pair in self._send(op, obj, ext, [one])]
            ch = chunk[0][0]
            return [(ch, WriteResult(ch.change_id, False, ch.source_id, f"{code}: {message}", False))]
        body = getattr(resp, "sf_json", None)
        if not isinstance(body, list) or len(body) != len(chunk):
            return [(ch, WriteResult(ch.change_id, False, ch.source_id, f"unexpected collection response: {body!r:.200}",
                                     True)) for ch, _ in chunk]
        return [(ch, self._result(op, ch, res)) for (ch, _), res in zip(chunk, body)]

    @staticmethod
    def _result(op: str, ch: WriteChange, res: dict) -> WriteResult:
        if res.get("success"):
            return WriteResult(ch.change_id, True, res.get("id") or ch.source_id)
        errors = res.get("errors") or [{}]
        codes = [e.get("statusCode", "") for e in errors]
        if op == "delete" and set(codes) <= DELETE_DONE:
            return WriteResult(ch.change_id, True, ch.source_id)
        text = "; ".join(f"{e.get('statusCode')}: {e.get('message')}"
                         + (f" (fields: {', '.join(e['fields'])})" if e.get("fields") else "") for e in errors)
        return WriteResult(ch.change_id, False, res.get("id") or ch.source_id, text,
                           retriable=any(c in TRANSIENT_CODES for c in codes))

    # -- real-time: outbound messages (connectors/salesforce/webhook.py) ---------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       query: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """Outbound messages are not signed: a shared token in the endpoint URL (and the org id)."""
        from connectors.salesforce import webhook
        webhook.verify(self.options, self.name, headers, body, query)
        return None

    def redact_webhook(self, headers: Mapping[str, str], body: bytes,
                       query: Mapping[str, str] | None = None) -> bytes:
        from connectors.salesforce import webhook
        return webhook.without_session_id(body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                      query: Mapping[str, str] | None = None) -> list[WebhookEvent]:
        from connectors.salesforce import webhook
        return webhook.parse(self.options, body)

    def webhook_event_key(self, headers: Mapping[str, str], body: bytes,
                          query: Mapping[str, str] | None = None) -> str | None:
        from connectors.salesforce import webhook
        return webhook.event_key(body)

    def webhook_ack(self, headers: Mapping[str, str], body: bytes,
                    query: Mapping[str, str] | None = None) -> tuple[int, bytes, str] | None:
        """The SOAP ``notificationsResponse`` with ``Ack`` true: anything else makes the org resend."""
        from connectors.salesforce import webhook
        return 200, webhook.ACK, "text/xml; charset=utf-8"

    def fetch(self, stream: StreamSpec, ids: list[str]) -> list[dict[str, Any]]:
        """Live records by Id with the same SELECT list as a read (deleted ones are left to the next read)."""
        from connectors.salesforce import webhook
        return webhook.fetch_records(self, stream, ids)

    def close(self) -> None:
        self.client.close()


def _ms(dt: datetime) -> datetime:
    """Aware UTC, cut to the millisecond (Salesforce's resolution)."""
    dt = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _cursor(value: Any) -> tuple[datetime, str] | None:
    """The stored cursor as (stamp, last id); a bare timestamp string is accepted too."""
    if not value:
        return None
    if isinstance(value, str):
        return parse_ts(value), ""
    try:
        return parse_ts(value["ts"]), value.get("id") or ""
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ConfigError(f"unreadable Salesforce cursor {value!r}: {exc}") from None
