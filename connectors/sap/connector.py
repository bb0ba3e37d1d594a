"""The SAP S/4HANA connector: business partners and sales orders over OData v2 (A2X services).

Options (``connectors.<name>`` in triad.yaml)::

    type: sap
    base_url: https://my123456-api.s4hana.cloud.sap    # host root, or .../sap/opu/odata/sap
    auth: {user: COMM_USER, password: ${SAP_PASSWORD}} # or {token: ${SAP_TOKEN}} (bearer)
    verify: true                 # or a CA bundle path (relative to triad.yaml)
    page_size: 1000              # records per request ($top; at most the stream's batch size)
    overlap_seconds: 60          # re-read this far behind the cursor (late commits, coarse stamps)
    timeout: 30
    retry: {attempts: 5, backoff: 0.5, max_wait: 30}

Per-entity options (the mapping's ``options`` or the entity block): ``service``
(default from the entity set), ``expand`` (navigation paths), ``first``
(synthetic fields holding the first record along a 1:n navigation path, e.g.
``_address: to_BusinessPartnerAddress``), ``filter`` (an extra $filter),
``select`` (false: no $select), ``overlap_seconds``, ``create_ref`` (the property a create
leaves the hub's record id in, so a create sent again finds the first; default
BusinessPartnerIDByExtSystem / ExternalDocumentID, false: none).

Every raw record gets ``_changed_at``: its change stamp as ISO text (for
A_BusinessPartner LastChangeDate + LastChangeTime, or CreationDate +
CreationTime while it was never changed; naive, in the system's time). A
business partner also gets ``_name``: an organization's OrganizationBPName1..4
joined (a write of OrganizationBPName1 is spread over the four, 40 characters
each; see :mod:`connectors.sap.names`), else BusinessPartnerFullName.

The connector remembers the ETag of each record it reads or fetches; an update
sends it as ``If-Match``, so an edit made in SAP since is not overwritten.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import requests

from connectors.sap import wire
from connectors.sap.client import BearerAuth, SapClient
from connectors.sap.metadata import ServiceModel, TypeInfo, parse_metadata, query_paths
from connectors.sap.names import NAME_FIELDS, ORGANIZATION, NameTooLong, org_name, split_org_name
from connectors.sap.raw import SeenRecords, drop_deferred, first_along
from connectors.sap.stamps import STAMP_RULES, Phase, StampRule
from connectors.sap.writes import (CREATE_REFS, PERSON, EarlierCreates, RecordWriter, WriteFailed, name_person,
                                   unfold_picks)
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, FatalError, LimitExceeded, RetriableError, SkippableRecordError, TriadError
from hub.http import RetryPolicy, follow_pages
from hub.secrets import reveal

log = logging.getLogger(__name__)

UTC = timezone.utc
DEFAULT_SERVICES = {
    "A_BusinessPartner": "API_BUSINESS_PARTNER", "A_Customer": "API_BUSINESS_PARTNER",
    "A_BusinessPartnerAddress": "API_BUSINESS_PARTNER", "A_BusinessPartnerTaxNumber": "API_BUSINESS_PARTNER",
    "A_CustomerSalesArea": "API_BUSINESS_PARTNER", "A_Supplier": "API_BUSINESS_PARTNER",
    "A_SalesOrder": "API_SALES_ORDER_SRV", "A_SalesOrderItem": "API_SALES_ORDER_SRV",
}
CHANGED_AT = "_changed_at"
NAME = "_name"            # synthetic: an organization's OrganizationBPName1..4 joined, else the full name
NAME_SOURCES = ("BusinessPartnerCategory", "BusinessPartnerFullName", *NAME_FIELDS)
FETCH_CHUNK = 20          # keys per fetch request ($filter k eq '1' or k eq '2' ...): URLs stay short


def _list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


class SapConnector(Connector):
    """Reads and writes SAP S/4HANA entity sets named by the mapping's ``source``."""

    type_name = "sap"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"base_url", "auth", "verify", "page_size", "overlap_seconds", "timeout", "retry",
                             "services"})
    entity_option_keys = frozenset({"service", "expand", "first", "filter", "select", "overlap_seconds", "page_size",
                                    "create_ref"})
    auth_keys = frozenset({"user", "password", "token"})   # the `auth:` block: basic (user, password) or bearer
    entities = ("customer", "order")
    directions = ("in", "out", "both")

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        base_url = options.get("base_url")
        if not base_url:
            raise ConfigError(f"connectors.{name}.base_url is required (the SAP host, e.g. "
                              "https://my123456-api.s4hana.cloud.sap)", connector=name)
        auth_opts = options.get("auth") or {}
        auth: requests.auth.AuthBase
        if auth_opts.get("token"):
            auth = BearerAuth(str(reveal(auth_opts["token"])))
        elif auth_opts.get("user") and auth_opts.get("password"):
            auth = requests.auth.HTTPBasicAuth(str(auth_opts["user"]), str(reveal(auth_opts["password"])))
        else:
            raise ConfigError(f"connectors.{name}.auth needs user and password, or token", connector=name)
        verify = options.get("verify", True)
        if isinstance(verify, str) and not os.path.isabs(verify):
            verify = os.path.join(base_dir, verify)
        retry = options.get("retry") or {}
        try:
            policy = RetryPolicy(attempts=int(retry.get("attempts", 5)), backoff=float(retry.get("backoff", 0.5)),
                                 max_wait=float(retry.get("max_wait", 30)), timeout=float(options.get("timeout", 30)))
            self.page_size = int(options.get("page_size", 1000))
            self.overlap = float(options.get("overlap_seconds", 60))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"connectors.{name}: bad number in page_size, overlap_seconds, timeout or retry "
                              f"({exc})", connector=name) from None
        if self.page_size < 1:
            raise ConfigError(f"connectors.{name}.page_size must be at least 1", connector=name)
        self.client = SapClient(str(base_url), auth=auth, verify=verify, policy=policy, name=name)
        self._models: dict[str, ServiceModel] = {}
        self.seen = SeenRecords()

    # ----- shared

    def model(self, service: str) -> ServiceModel:
        """The service's metadata, read once per connector."""
        attempt = 1
        while service not in self._models:
            try:
                self._models[service] = parse_metadata(self.client.metadata(service))
            except LimitExceeded:
                raise
            except RetriableError:
                if attempt >= self.client.http.policy.attempts:
                    raise
                attempt += 1
        return self._models[service]

    def service_of(self, stream: StreamSpec) -> str:
        service = stream.options.get("service") or DEFAULT_SERVICES.get(stream.source)
        if not service:
            raise ConfigError(f"no OData service known for entity set {stream.source}; set options.service "
                              "in the mapping", connector=self.name, entity=stream.entity)
        return str(service)

    def check(self) -> CheckResult:
        """Fetch ``$metadata`` of each service (the credentials must be accepted)."""
        services = _list(self.options.get("services")) or sorted(set(DEFAULT_SERVICES.values()))
        found: dict[str, list[str]] = {}
        try:
            for service in services:
                found[service] = sorted(self.model(service).sets)
        except TriadError as exc:
            return CheckResult(False, str(exc), {"services": found})
        except requests.RequestException as exc:
            return CheckResult(False, f"cannot reach {self.client.http.base_url}: {exc}", {"services": found})
        sets = sum(len(v) for v in found.values())
        return CheckResult(True, f"{len(found)} services, {sets} entity sets", {"services": found})

    # ----- read

    def _rule(self, stream: StreamSpec, info: TypeInfo) -> StampRule | None:
        if not stream.updated_at:
            return None
        rule = STAMP_RULES.get(stream.source)
        if rule and (stream.updated_at == CHANGED_AT or stream.updated_at in rule.props):
            return rule
        prop = info.props.get(stream.updated_at)
        if prop is None or prop.type != "Edm.DateTimeOffset":
            raise ConfigError(f"updated_at {stream.updated_at} of {stream.source} must be an Edm.DateTimeOffset "
                              f"property (or {CHANGED_AT} where the connector knows the stamp)",
                              connector=self.name, entity=stream.entity)
        return StampRule("instant", ((stream.updated_at,),))

    def _shape(self, stream: StreamSpec, model: ServiceModel, info: TypeInfo,
               rule: StampRule | None) -> tuple[list[str], list[str] | None]:
        """($expand paths, $select paths or None) for the fields the mapping reads."""
        picks = stream.options.get("first") or {}
        expand = _list(stream.options.get("expand")) + [str(p) for p in picks.values()]
        select: list[str] | None = [*info.keys, *(rule.props if rule else [])]
        for field in stream.fields:
            resolved = query_paths(model, info, field.split("."), picks)
            if resolved is None:
                select = None
                break
            sel, nav = resolved
            if sel:
                select.append(sel)
            if nav:
                expand.append(nav)
        if select is not None and stream.source == "A_BusinessPartner" and \
                any(f.split(".")[0] == NAME for f in stream.fields):
            select += [p for p in NAME_SOURCES if p in info.props]
        expand = list(dict.fromkeys(expand))
        if select is None or not stream.fields or stream.options.get("select") is False:
            return expand, None
        for path in expand:
            if not any(s == path or s.startswith(path + "/") for s in select):
                select.append(path)
        return expand, list(dict.fromkeys(select))

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Batches in (stamp, key) order from ``cursor - overlap`` (all when cursor is None).

        The cursor only moves while the last pass runs (earlier passes may still hold older
        stamps), never past ``stream.run_started_at``, and never backwards.
        """
        service, info, rule, expand, select = self._plan(stream)
        if rule is None:
            for records in self._walk(service, stream, Phase(None, None, None), None, info, expand, select):
                yield Batch(self._decorate(records, stream, None), cursor=cursor)
            return
        tz = ZoneInfo(stream.timezone) if stream.timezone.upper() != "UTC" else UTC
        start = rule.parse_cursor(str(cursor)) if cursor else None
        overlap = timedelta(seconds=float(stream.options.get("overlap_seconds", self.overlap)))
        lower = start - overlap if start else None
        cap = self._cap(stream, rule, tz)
        best = start
        phases = [p for p in rule.phases() if not (p.full_only and start is not None)]
        out_cursor = cursor
        for i, phase in enumerate(phases):
            for records in self._walk(service, stream, phase, lower, info, expand, select):
                stamps = [s for s in (rule.stamp_of(r) for r in records) if s is not None]
                if stamps:
                    best = max([best, *stamps]) if best else max(stamps)
                if i == len(phases) - 1 and records and phase.stamp_of(records[-1]) is not None:
                    out_cursor = self._advance(rule, start, phase.stamp_of(records[-1]), cap, out_cursor)
                yield Batch(self._decorate(records, stream, rule), cursor=out_cursor)
        final = self._advance(rule, start, best, cap, out_cursor) if best else out_cursor
        if final != out_cursor:
            yield Batch([], cursor=final)

    def _plan(self, stream: StreamSpec) -> tuple[str, TypeInfo, StampRule | None, list[str], list[str] | None]:
        """(service, entity type, stamp rule, $expand paths, $select paths) of a read of ``stream``."""
        service = self.service_of(stream)
        model = self.model(service)
        info = model.type_of_set(stream.source)
        rule = self._rule(stream, info)
        expand, select = self._shape(stream, model, info, rule)
        return service, info, rule, expand, select

    def fetch(self, stream: StreamSpec, ids: list[str]) -> list[dict[str, Any]]:
        """The records with these keys, in the shape :meth:`read` gives them (missing ones are left out).

        Push calls this just before writing updates: it compares them with what the hub last read,
        and the ETags seen here go with the updates as ``If-Match``.
        """
        service, info, rule, expand, select = self._plan(stream)
        if len(info.keys) != 1:
            raise NotImplementedError(f"{stream.source} has a composite key; cannot fetch it by one id")
        key = info.keys[0]
        what = f"fetch {stream.source}"
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), FETCH_CHUNK):
            part = ids[start:start + FETCH_CHUNK]
            keys = " or ".join(f"{key} eq {wire.string_literal(i)}" for i in part)
            extra = stream.options.get("filter")
            params = {"$filter": f"({extra}) and ({keys})" if extra else keys, "$top": str(len(part)),
                      "$format": "json"}
            if expand:
                params["$expand"] = ",".join(expand)
            if select:
                params["$select"] = ",".join(select)
            first = self.client.get_json(self.client.url(service, stream.source), params=params, what=what)
            for page in follow_pages(first, lambda page: _body(page, what).get("__next"),
                                     lambda url: self.client.get_json(url, what=what)):
                records = _body(page, what).get("results")
                if not isinstance(records, list):
                    raise FatalError(f"{what}: the response has no d.results list", connector=self.name)
                out += self._decorate(records, stream, rule)
        return out

    @staticmethod
    def _cap(stream: StreamSpec, rule: StampRule, tz: Any) -> datetime | None:
        if stream.run_started_at is None:
            return None
        started = stream.run_started_at if stream.run_started_at.tzinfo else stream.run_started_at.replace(tzinfo=UTC)
        if rule.kind == "instant":
            return started.astimezone(UTC)
        return started.astimezone(tz).replace(tzinfo=None)

    @staticmethod
    def _advance(rule: StampRule, start: datetime | None, stamp: datetime | None, cap: datetime | None,
                 current: Any) -> Any:
        if stamp is None:
            return current
        if cap is not None and stamp > cap:
            stamp = cap
        if start is not None and stamp <= start:
            return current
        return rule.format_cursor(stamp)

    def _walk(self, service: str, stream: StreamSpec, phase: Phase, lower: datetime | None, info: TypeInfo,
              expand: list[str], select: list[str] | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of one pass, in (stamp, key) order.

        The server's ``__next`` says that more records follow; the next page is then asked for by
        key set (``$filter`` on the last record's stamp and key) instead of the offset ``$skiptoken``
        it carries, so a record changed during the read (which moves to the end of the order)
        cannot shift an unread one below the offset and out of view.
        """
        page_size = int(stream.options.get("page_size") or min(self.page_size, stream.batch_size))
        base = self.client.url(service, stream.source)
        what = f"read {stream.source}"

        def query(after: dict[str, Any] | None) -> str:
            parts = [stream.options.get("filter"), phase.where, phase.at_least(lower) if lower else None,
                     phase.after(after, info.keys) if after else None]
            params = {"$orderby": phase.order(info.keys), "$top": str(page_size), "$format": "json"}
            where = " and ".join(f"({p})" for p in parts if p)
            if where:
                params["$filter"] = where
            if expand:
                params["$expand"] = ",".join(expand)
            if select:
                params["$select"] = ",".join(select)
            return requests.Request("GET", base, params=params).prepare().url or base

        def next_of(page: Any) -> str | None:
            d = _body(page, what)
            records = d.get("results") or []
            if not records or ("__next" not in d and len(records) < page_size):
                return None
            return query(records[-1])

        for page in follow_pages(self.client.get_json(query(None), what=what), next_of,
                                 lambda url: self.client.get_json(url, what=what)):
            records = _body(page, what).get("results")
            if not isinstance(records, list):
                raise FatalError(f"{what}: the response has no d.results list", connector=self.name)
            if records:
                yield records

    def _decorate(self, records: list[dict[str, Any]], stream: StreamSpec,
                  rule: StampRule | None) -> list[dict[str, Any]]:
        picks = stream.options.get("first") or {}
        for rec in records:
            if rec.get(stream.key) is not None:
                self.seen.remember(stream.source, str(rec[stream.key]), rec)
            drop_deferred(rec)
            stamp = rule.stamp_of(rec) if rule else None
            rec[CHANGED_AT] = rule.format_cursor(stamp) if (rule and stamp) else None
            for name, path in picks.items():
                rec[name] = first_along(rec, str(path).split("/"))
            if stream.source == "A_BusinessPartner":
                rec[NAME] = org_name(rec)
        return records

    # ----- write

    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Create (deep insert), update (PATCH, children through their own URIs) or delete each change."""
        service = self.service_of(stream)
        model = self.model(service)
        writer = RecordWriter(self.client, service, model, stream.source)
        picks = stream.options.get("first") or {}
        ref_prop = stream.options.get("create_ref", CREATE_REFS.get(stream.source)) or None
        earlier = EarlierCreates(writer, ref_prop, changes, stream.key)
        results: list[WriteResult] = []
        stop: LimitExceeded | None = None
        for change in changes:
            if stop is not None:       # the system asked to wait: the rest wait too, unsent
                results.append(WriteResult(change.change_id, False, source_id=change.source_id, error=str(stop),
                                           retriable=True, retry_after=stop.retry_after))
                continue
            try:
                values = unfold_picks(change.values, picks, model, writer.info)
                if change.delete and change.source_id:
                    writer.delete(change.source_id)
                    source_id = change.source_id
                elif change.source_id:
                    self._update(writer, stream, change.source_id, values)
                    source_id = change.source_id
                else:
                    source_id = self._create(writer, stream, change, values, earlier)
                results.append(WriteResult(change.change_id, True, source_id=source_id))
            except LimitExceeded as exc:
                stop = exc
                log.warning("%s writes stopped: %s", self.name, exc, extra={"connector": self.name})
                results.append(WriteResult(change.change_id, False, source_id=change.source_id, error=str(exc),
                                           retriable=True, retry_after=exc.retry_after))
                continue
            except WriteFailed as exc:
                results.append(WriteResult(change.change_id, False, source_id=change.source_id, error=str(exc),
                                           retriable=exc.retriable))
            except SkippableRecordError as exc:
                results.append(WriteResult(change.change_id, False, source_id=change.source_id, error=str(exc)))
            except RetriableError as exc:
                results.append(WriteResult(change.change_id, False, source_id=change.source_id, error=str(exc),
                                           retriable=True, retry_after=exc.retry_after))
            log.debug("write %s %s: %s", stream.source, change.source_id or "(new)", results[-1].ok,
                      extra={"connector": self.name})
        return results

    def _create(self, writer: RecordWriter, stream: StreamSpec, change: WriteChange, values: dict[str, Any],
                earlier: EarlierCreates) -> str:
        """Create the record, unless an earlier attempt did (its answer lost to a timeout or a 5xx).

        A create the hub says may have been sent (``maybe_sent``) carries the values of every change
        since that attempt: the record it made is updated with them, or SAP keeps the first values.
        """
        made = earlier.made(change.change_id)
        if made is not None:
            log.info("%s %s was made by an earlier attempt of this create", stream.source, made,
                     extra={"connector": self.name})
            if change.maybe_sent is not None:
                self._update(writer, stream, made, values)
            return made
        if stream.source == "A_BusinessPartner" and values.get("BusinessPartnerCategory") in (None, ""):
            # SAP refuses a business partner without a category; a customer the hub has no type for (read
            # from a system that keeps none) is created as an organization, what nearly every customer is
            values = {**values, "BusinessPartnerCategory": ORGANIZATION}
        return writer.create(self._named(writer, stream, None, values), stream.key, earlier.ref(change.change_id))

    def _update(self, writer: RecordWriter, stream: StreamSpec, source_id: str, values: dict[str, Any]) -> None:
        """PATCH with the ETag last seen of the record, and forget it: the write gives the record a new one."""
        seen = self.seen.get(stream.source, source_id)
        try:
            writer.update(source_id, self._named(writer, stream, source_id, values), if_match=seen.get("etag"))
        finally:
            self.seen.forget(stream.source, source_id)

    def _named(self, writer: RecordWriter, stream: StreamSpec, source_id: str | None,
               values: dict[str, Any]) -> dict[str, Any]:
        """Values with a person's name in FirstName/LastName (OrganizationBPName1 names organizations only),
        an organization's over OrganizationBPName1..4 (40 characters each)."""
        if stream.source != "A_BusinessPartner" or "OrganizationBPName1" not in values:
            return values
        category = values.get("BusinessPartnerCategory")
        if category is None and source_id is not None:
            category = self.seen.get(stream.source, source_id).get("category") or writer.category(source_id)
        if str(category) == PERSON:
            return name_person(values)
        try:
            return {**values, **split_org_name(values["OrganizationBPName1"])}
        except NameTooLong as exc:
            raise WriteFailed(str(exc)) from None

    def close(self) -> None:
        self.client.close()


def _body(page: Any, what: str) -> dict[str, Any]:
    if not isinstance(page, dict) or not isinstance(page.get("d"), dict):
        raise FatalError(f"{what}: the response is not OData v2 JSON (no 'd' object)")
    return page["d"]
