"""The connector contract and the entry-point registry (SPEC section 7).

A connector type is a class registered under the entry-point group
``triad.connectors``. It reads batches of raw records (exactly as the system
gives them: no type inference) with a JSON-able cursor, and writes changes
already mapped to the system's field names.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, ClassVar, Iterable, Iterator, Mapping

from hub.errors import ConfigError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "triad.connectors"


@dataclass(frozen=True)
class StreamSpec:
    """What a connector needs to know to read or write one entity.

    Per-entity differences are data: the system's object name, key and
    change-timestamp field all come from the mapping file.
    """

    entity: str
    source: str                      # the system's object / form / table / file name
    key: str                         # the system's primary key field
    updated_at: str | None           # the change-timestamp (cursor) field, if any
    timezone: str = "UTC"            # for source timestamps without an offset
    batch_size: int = 1000
    run_started_at: datetime | None = None   # the cursor never moves past this
    fields: tuple[str, ...] = ()     # source fields the mapping reads (for $select / FieldKeys / SELECT)
    options: dict[str, Any] = field(default_factory=dict)  # connector-specific per-entity options


@dataclass
class Batch:
    """One page of raw records and the stream position after it.

    ``cursor`` is committed in the same transaction as the batch's data, so a
    crash re-reads at most this batch. ``deleted`` lists source ids the system
    reports as deleted (or deactivated) since the previous cursor; ``notes``
    what the run reports beside its figures.
    """

    records: list[dict[str, Any]]
    cursor: Any = None
    deleted: list[str] = field(default_factory=list)
    # what the run should say although nothing failed ("no file matches 'x.csv'"): shown with its summary
    notes: list[str] = field(default_factory=list)


@dataclass
class WriteChange:
    """One outbound change: values are in the system's field names (mapped outbound)."""

    change_id: str                   # idempotency key: the same change is never applied twice
    record_id: str                   # canonical (Triad) id
    source_id: str | None            # the system's id from xref; None means create
    values: dict[str, Any]
    delete: bool = False
    # a create an earlier attempt may have sent (its answer lost: a push killed, a timeout): not before
    # this time. The system may hold the record already; ``change_id`` is that attempt's key
    maybe_sent: datetime | None = None


@dataclass
class WriteResult:
    change_id: str
    ok: bool
    source_id: str | None = None     # the system's id (new for creates)
    error: str | None = None
    retriable: bool = False
    retry_after: float | None = None


@dataclass
class WebhookEvent:
    """What one webhook delivery means, parsed by the connector in the inbox worker.

    ``records`` are raw source records exactly as a read would give them;
    vendors that only send ids (DingTalk's bpms_instance_change, say) give
    ``fetch_ids`` instead and the worker calls :meth:`Connector.fetch`.
    """

    entity: str
    records: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    fetch_ids: list[str] = field(default_factory=list)
    event_key: str | None = None     # the vendor's event id: a replayed delivery is processed once


class WebhookRejected(Exception):
    """The delivery is not authentic (bad signature or token): answered 401, nothing stored."""


@dataclass
class CheckResult:
    ok: bool
    detail: str
    info: dict[str, Any] = field(default_factory=dict)


class Connector(ABC):
    """Base class of every connector type.

    Subclasses set ``type_name`` and ``entities`` and implement ``check``,
    ``read`` and ``write``. ``options`` is the connector's block of
    ``triad.yaml`` (secrets wrapped in :class:`hub.config.Secret`).
    """

    type_name: ClassVar[str] = ""
    entities: ClassVar[tuple[str, ...]] = ("customer", "order", "contract", "payment")
    directions: ClassVar[tuple[str, ...]] = ("in", "out", "both")
    # a delete can be written to the system (`propagate_deletes: true` is refused by config validate if not)
    writes_deletes: ClassVar[bool] = True
    # entities the type reads but cannot write (a read-only API object): the hub queues no writes
    # to them, whatever the connector's direction
    read_only_entities: ClassVar[frozenset[str]] = frozenset()
    # a write shows in the next read (APIs do; a folder of exports imported later does not): after a
    # successful write the hub then knows the system's new state and uses it as the merge base
    writes_visible: ClassVar[bool] = True

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        self.name = name
        self.options = options
        self.base_dir = base_dir

    @abstractmethod
    def check(self) -> CheckResult:
        """Reach the system and prove the credentials work. Never raises for an unreachable system."""

    @abstractmethod
    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Yield batches of raw records changed at or after ``cursor`` (all when None)."""

    @abstractmethod
    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Apply changes; one result per change, per-record failures reported, not raised."""

    def close(self) -> None:
        """Release sessions and handles."""

    # --- real-time (optional) ---------------------------------------------------------------------
    # Connectors whose systems push events override these. The defaults implement Triad's own
    # generic webhook: JSON {"entity", "records", "deleted", "event_id"} signed with HMAC-SHA256 of the
    # body in ``X-Triad-Signature: sha256=<hex>`` (secret: option ``webhook_secret``), or a shared
    # token in ``X-Triad-Token`` (option ``webhook_token``). ``query`` holds the URL's query
    # parameters (some vendors sign or authenticate there); ``None`` when there are none.

    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       query: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """Check authenticity before anything is stored; return a body to answer at once (challenges), or None.

        Raises:
            WebhookRejected: the signature or token does not match, or none is configured.
        """
        import hashlib
        import hmac

        from hub.secrets import reveal
        h = {k.lower(): v for k, v in headers.items()}
        secret, token = reveal(self.options.get("webhook_secret")), reveal(self.options.get("webhook_token"))
        if secret:
            expected = "sha256=" + hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected.encode(), h.get("x-triad-signature", "").encode("utf-8", "replace")):
                return None
            raise WebhookRejected("bad or missing X-Triad-Signature")
        if token:
            if hmac.compare_digest(str(token).encode(), h.get("x-triad-token", "").encode("utf-8", "replace")):
                return None
            raise WebhookRejected("bad or missing X-Triad-Token")
        raise WebhookRejected(f"connector {self.name} has no webhook_secret or webhook_token configured")

    def redact_webhook(self, headers: Mapping[str, str], body: bytes,
                       query: Mapping[str, str] | None = None) -> bytes:
        """The body of a verified delivery as the inbox keeps it: credentials it carries taken out.

        Called after :meth:`verify_webhook`; :meth:`parse_webhook` later gets this body, so it must
        not need what was taken out. The default keeps the body as received.
        """
        return body

    def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                      query: Mapping[str, str] | None = None) -> list[WebhookEvent]:
        """Turn a stored delivery into events (runs in the worker, after the 2xx answer)."""
        import json
        doc = json.loads(body)
        docs = doc if isinstance(doc, list) else [doc]
        events = []
        for d in docs:   # a body of the wrong shape is refused at once: retrying cannot fix it
            if not isinstance(d, dict) or not isinstance(d.get("entity"), str):
                raise ValueError('each event must be an object with "entity" (a string)')
            records, deleted = d.get("records") or [], d.get("deleted") or []
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError('"records" must be a list of objects')
            if not isinstance(deleted, list):
                raise ValueError('"deleted" must be a list of ids')
            events.append(WebhookEvent(entity=d["entity"], records=list(records), deleted=[str(x) for x in deleted],
                                       event_key=d.get("event_id")))
        return events

    def webhook_event_key(self, headers: Mapping[str, str], body: bytes,
                          query: Mapping[str, str] | None = None) -> str | None:
        """The vendor's id of this delivery, read cheaply before answering, so a replay is stored once.

        Never raises: a body that cannot be read here is stored anyway and judged by the worker.
        The default reads ``X-Triad-Event-Id``, else ``event_id`` of a JSON object body.
        """
        h = {k.lower(): v for k, v in headers.items()}
        if h.get("x-triad-event-id"):
            return str(h["x-triad-event-id"])
        try:
            import json
            doc = json.loads(body)
        except ValueError:
            return None
        key = doc.get("event_id") if isinstance(doc, dict) else None
        return str(key) if key not in (None, "") else None

    def webhook_ack(self, headers: Mapping[str, str], body: bytes,
                    query: Mapping[str, str] | None = None) -> tuple[int, bytes, str] | None:
        """The answer the vendor expects once the delivery is stored: (status, body, media type).

        None answers with Triad's own JSON (``202`` and the inbox id).
        """
        return None

    def fetch(self, stream: StreamSpec, ids: list[str]) -> list[dict[str, Any]]:
        """Read the given records by source id (for events that carry only ids)."""
        raise NotImplementedError(f"connector type {self.type_name} cannot fetch records by id")


def load_registry(only: Iterable[str] | None = None) -> dict[str, type[Connector]]:
    """All connector types installed under the ``triad.connectors`` entry point group.

    Args:
        only: import just these types (the ones a configuration uses); every installed name
            is still checked for duplicates.

    Raises:
        ConfigError: two installed distributions register the same type name.
    """
    registry: dict[str, type[Connector]] = {}
    origins: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"{ep.value} ({ep.dist.name if ep.dist else '?'})"
        if ep.name in registry or ep.name in origins:
            if origins.get(ep.name) == origin:
                continue  # the same distribution seen twice on sys.path (editable installs)
            raise ConfigError(
                f"connector type '{ep.name}' is registered twice: {origins[ep.name]} and {origin}")
        origins[ep.name] = origin
        if only is not None and ep.name not in only:
            continue   # importing a connector module costs time; unused types stay unloaded
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not hide the others
            log.warning("cannot load connector type %s from %s: %s", ep.name, ep.value, exc)
            continue
        registry[ep.name] = cls
    return registry


def known_types() -> list[str]:
    """Type names for error messages: the built-in list first, then installed plugins."""
    builtin = ["file", "sql", "salesforce", "sap", "kingdee", "yonyou", "dingtalk", "feishu", "rest", "singer"]
    extra = sorted(n for n in (ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)) if n not in builtin)
    return builtin + extra
