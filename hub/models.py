"""The store: canonical entities and infrastructure tables (SPEC section 2).

One metadata with a naming convention; the schema is created only by the
alembic migrations in ``migrations/``. The pipeline works on ``Model.__table__``
with SQLAlchemy Core (batches, dialect upserts), never one ORM round trip per record.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (BigInteger, Boolean, Date, ForeignKey, Index, Integer, MetaData, Numeric, String,
                        Text, UniqueConstraint, false, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub.types import JsonType, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 2)
Quantity = Numeric(18, 4)
Id = String(26)  # ULID


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonType, list[Any]: JsonType}


class GoldenMixin:
    """Columns every golden record carries besides its canonical fields."""

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(index=True)
    # field -> [system or user, ISO time]: where each golden value came from
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # systems in which the record was deleted or deactivated; never hard-deleted automatically
    deleted_in: Mapped[list[Any] | None] = mapped_column(JsonType, nullable=True)
    # set on the loser of a steward merge: the tombstone points at the winner
    merged_into: Mapped[str | None] = mapped_column(Id, nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Customer(GoldenMixin, Base):
    __tablename__ = "customer"
    code: Mapped[str | None] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(255), index=True)
    customer_type: Mapped[str | None] = mapped_column(String(16))
    tax_id: Mapped[str | None] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(255), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    country: Mapped[str | None] = mapped_column(String(2))
    province: Mapped[str | None] = mapped_column(String(128))
    city: Mapped[str | None] = mapped_column(String(128))
    address: Mapped[str | None] = mapped_column(String(512))
    postal_code: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str | None] = mapped_column(String(3))
    credit_limit: Mapped[Decimal | None] = mapped_column(Money)
    payment_terms: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(16))
    tier: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime | None]


class Order(GoldenMixin, Base):
    __tablename__ = "order"
    order_no: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), index=True)
    contract_id: Mapped[str | None] = mapped_column(ForeignKey("contract.id"), index=True)
    order_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(3))
    total_amount: Mapped[Decimal | None] = mapped_column(Money)
    tax_amount: Mapped[Decimal | None] = mapped_column(Money)
    shipping_status: Mapped[str | None] = mapped_column(String(32))
    tracking_no: Mapped[str | None] = mapped_column(String(64))
    opportunity_id: Mapped[str | None] = mapped_column(ForeignKey("opportunity.id"), index=True)
    satisfaction_score: Mapped[int | None] = mapped_column(Integer)


class Opportunity(GoldenMixin, Base):
    """A CRM deal on its way to an order (the lead-to-order flow extends SPEC section 2 with it)."""

    __tablename__ = "opportunity"
    opportunity_no: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    stage: Mapped[str | None] = mapped_column(String(24))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    close_date: Mapped[date | None] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(String(128))
    lost_reason: Mapped[str | None] = mapped_column(String(512))
    approval_id: Mapped[str | None] = mapped_column(Id, index=True)


class OrderLine(Base):
    __tablename__ = "order_line"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("order.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(512))
    quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    unit_price: Mapped[Decimal | None] = mapped_column(Money)
    amount: Mapped[Decimal | None] = mapped_column(Money)


class Contract(GoldenMixin, Base):
    __tablename__ = "contract"
    contract_no: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), index=True)
    title: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(24))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    total_value: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    signed_date: Mapped[date | None] = mapped_column(Date)
    approval_id: Mapped[str | None] = mapped_column(Id, index=True)


class Payment(GoldenMixin, Base):
    __tablename__ = "payment"
    payment_no: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customer.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("order.id"), index=True)
    contract_id: Mapped[str | None] = mapped_column(ForeignKey("contract.id"), index=True)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    paid_at: Mapped[datetime | None]
    method: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(128))


class Approval(GoldenMixin, Base):
    __tablename__ = "approval"
    approval_no: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str | None] = mapped_column(String(32))
    subject_entity: Mapped[str | None] = mapped_column(String(16))
    subject_id: Mapped[str | None] = mapped_column(Id, index=True)
    status: Mapped[str | None] = mapped_column(String(16))
    applicant: Mapped[str | None] = mapped_column(String(128))
    approver: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    submitted_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(String(1024))   # the approver's reason (a refusal's, say)
    score: Mapped[int | None] = mapped_column(Integer)          # a rating carried to the OA side (reviews)


GOLDEN_MODELS: dict[str, type[GoldenMixin]] = {
    "customer": Customer, "opportunity": Opportunity, "order": Order, "contract": Contract, "payment": Payment,
    "approval": Approval,
}


# --- infrastructure -------------------------------------------------------------------------------

class Xref(Base):
    """Which source record in which system is which golden record."""

    __tablename__ = "xref"
    __table_args__ = (UniqueConstraint("entity", "system", "source_id"),
                      Index("ix_xref_entity_record", "entity", "record_id"))
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    system: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(255))
    record_id: Mapped[str] = mapped_column(Id)
    status: Mapped[str] = mapped_column(String(16), default="active")   # active | deleted | merged
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SourceState(Base):
    """The last values seen from a system for a record: the base of the three-way merge."""

    __tablename__ = "source_state"
    # SQLite keeps the rows in the primary key itself: one B-tree to write and to look a source id up in
    __table_args__ = ({"sqlite_with_rowid": False},)
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    record_id: Mapped[str] = mapped_column(Id, index=True)
    field_values: Mapped[dict[str, Any]] = mapped_column("values")     # canonical field -> encoded value
    row_hash: Mapped[str] = mapped_column(String(32))                  # skips unchanged rows without decoding
    # digest of the raw record and the mapping that read it: an identical row is skipped before mapping;
    # None whenever the values were written by another path (a push's base)
    raw_hash: Mapped[str | None] = mapped_column(String(32))
    source_ts: Mapped[datetime | None]
    seen_at: Mapped[datetime]
    run_id: Mapped[str | None] = mapped_column(Id)
    # field -> values the hub wrote to a system whose writes it cannot read back at once (a file outbox),
    # oldest first, not yet shown back by it: when they come back they are echoes, not the system's edits
    written: Mapped[dict[str, Any] | None] = mapped_column()


class FieldHistory(Base):
    """Every golden value change: what, from what, to what, by which system or user, in which run."""

    __tablename__ = "field_history"
    __table_args__ = (Index("ix_field_history_record", "entity", "record_id", "field"),)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(Id)
    field: Mapped[str] = mapped_column(String(64))       # "*" for a record's creation (new holds all fields)
    old: Mapped[Any | None] = mapped_column(JsonType, nullable=True)
    new: Mapped[Any | None] = mapped_column(JsonType, nullable=True)
    system: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[str | None] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(Id)
    reason: Mapped[str | None] = mapped_column(String(32))   # informed | rule | resolve | merge | create ...
    at: Mapped[datetime] = mapped_column(index=True)


class Conflict(Base):
    __tablename__ = "conflict"
    __table_args__ = (Index("ix_conflict_status_entity", "status", "entity"),
                      Index("ix_conflict_record", "entity", "record_id", "field"))
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(Id)
    field: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))        # open | resolved | auto
    rule: Mapped[str] = mapped_column(String(32))
    field_values: Mapped[dict[str, Any]] = mapped_column("values")   # system -> value
    timestamps: Mapped[dict[str, Any]] = mapped_column(default=dict)  # system -> source timestamp
    golden: Mapped[Any | None] = mapped_column(JsonType, nullable=True)
    winner: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Id)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))


class MatchCandidate(Base):
    __tablename__ = "match_candidate"
    __table_args__ = (Index("ix_match_candidate_pair", "entity", "record_a", "record_b"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    record_a: Mapped[str] = mapped_column(Id)
    record_b: Mapped[str] = mapped_column(Id)
    score: Mapped[float]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)   # open | merged | rejected
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(128))


class MatchKey(Base):
    """Blocking keys of golden records: a new source record is compared only with records sharing a key."""

    __tablename__ = "match_key"
    # the primary key serves the lookups (type and value -> records); the index, replacing a record's keys.
    # SQLite keeps the rows in the primary key itself (no rowid table besides it).
    __table_args__ = (Index("ix_match_key_record", "entity", "record_id"), {"sqlite_with_rowid": False})
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_value: Mapped[str] = mapped_column(String(255), primary_key=True)
    record_id: Mapped[str] = mapped_column(Id, primary_key=True)


class MatchReject(Base):
    """A steward's "not the same": remembered until either record changes materially (fingerprints differ)."""

    __tablename__ = "match_reject"
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    record_a: Mapped[str] = mapped_column(Id, primary_key=True)
    record_b: Mapped[str] = mapped_column(Id, primary_key=True)
    fingerprint_a: Mapped[str] = mapped_column(String(32))
    fingerprint_b: Mapped[str] = mapped_column(String(32))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime]


class MergeLog(Base):
    """What a steward merge changed, so `triad matches unmerge` restores it exactly."""

    __tablename__ = "merge_log"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))
    winner_id: Mapped[str] = mapped_column(Id, index=True)
    loser_id: Mapped[str] = mapped_column(Id, index=True)
    snapshot: Mapped[dict[str, Any]]      # both golden rows, their xrefs and bases before the merge
    status: Mapped[str] = mapped_column(String(16))   # merged | unmerged
    merged_by: Mapped[str | None] = mapped_column(String(128))
    merged_at: Mapped[datetime]
    unmerged_at: Mapped[datetime | None]


class Quarantine(Base):
    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_stream", "connector", "entity", "status"),
                      Index("ix_quarantine_source", "connector", "entity", "source_id"))
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    connector: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str | None] = mapped_column(String(255))
    raw_hash: Mapped[str] = mapped_column(String(32))      # the same bad row read again is not parked twice
    kind: Mapped[str] = mapped_column(String(24))          # validation | mapping | unresolved_ref | read
    raw: Mapped[dict[str, Any]]
    reasons: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))        # parked | resolved | dropped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(Id)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StreamState(Base):
    __tablename__ = "stream_state"
    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity: Mapped[str] = mapped_column(String(16), primary_key=True)
    cursor: Mapped[Any | None] = mapped_column(JsonType, nullable=True)
    updated_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]


class SyncRun(Base):
    __tablename__ = "sync_run"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    connector: Mapped[str] = mapped_column(String(64), index=True)
    entity: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="sync")   # sync | push | retry
    status: Mapped[str] = mapped_column(String(16))                 # running | ok | error | stopped
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cursor: Mapped[Any | None] = mapped_column(JsonType, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    user: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]


class Outbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_claim", "status", "connector", "entity", "next_attempt_at"),
                      Index("ix_outbox_record", "entity", "record_id"),
                      # pending rows only, so a claim, its in-flight check and a wake-up read a batch's worth
                      # of index, not the whole backlog (queries name status = 'pending' as a literal: see
                      # hub.push_claim.PENDING)
                      Index("ix_outbox_pending", "connector", "entity", "created_at", "id",
                            postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
                      Index("ix_outbox_in_flight", "connector", "entity", "claimed_until",
                            postgresql_where=text("status = 'pending' AND claimed_until IS NOT NULL"),
                            sqlite_where=text("status = 'pending' AND claimed_until IS NOT NULL")),
                      Index("ix_outbox_waiting", "connector", "last_error",
                            postgresql_where=text("status = 'pending' AND last_error IS NOT NULL"),
                            sqlite_where=text("status = 'pending' AND last_error IS NOT NULL")))
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    connector: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(Id)
    operation: Mapped[str] = mapped_column(String(16), default="upsert")   # upsert | delete | recreate (hub.push_settle)
    field_values: Mapped[dict[str, Any]] = mapped_column("fields")          # canonical field -> encoded value
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))        # pending | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # an attempt may have reached the system before a steward's retry set attempts back to 0 (hub.push_claim)
    tried: Mapped[bool] = mapped_column(Boolean, server_default=false())   # the database fills it in
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(Id)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Inbox(Base):
    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_status", "status", "received_at"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    connector: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str | None] = mapped_column(String(255), unique=True)   # the vendor's event id, for replays
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))        # pending | done | error
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class AuditLog(Base):
    """Append-only; each row's hash covers the previous row's hash, so an edit breaks the chain."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    before: Mapped[Any | None] = mapped_column(JsonType, nullable=True)
    after: Mapped[Any | None] = mapped_column(JsonType, nullable=True)
    note: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")   # ok | denied
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Role(Base):
    __tablename__ = "role"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    entities: Mapped[list[Any]] = mapped_column(JsonType)
    fields_denied: Mapped[list[Any]] = mapped_column(JsonType)
    can: Mapped[list[Any]] = mapped_column(JsonType)


class Principal(Base):
    __tablename__ = "principal"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class PrincipalRole(Base):
    __tablename__ = "principal_role"
    principal: Mapped[str] = mapped_column(ForeignKey("principal.name", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_token"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str | None] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)   # never the token itself
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Subscription(Base):
    """An outside system that wants signed webhooks for changes of some entities."""

    __tablename__ = "subscription"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(1024))
    entities: Mapped[list[Any]] = mapped_column(JsonType)
    secret_ref: Mapped[str | None] = mapped_column(String(255))   # an env var name, never the secret
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]


class FlowRun(Base):
    """One run of a configured business flow (SPEC flows): its trigger and where it stands."""

    __tablename__ = "flow_run"
    __table_args__ = (UniqueConstraint("flow", "trigger_key"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    flow: Mapped[str] = mapped_column(String(64))
    trigger_key: Mapped[str] = mapped_column(String(255))     # entity:record:event -- a replay finds the same run
    entity: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(Id, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)   # running | waiting | done | failed
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FlowStep(Base):
    __tablename__ = "flow_step"
    __table_args__ = (UniqueConstraint("run_id", "step_no"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("flow_run.id", ondelete="CASCADE"), index=True)
    step_no: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))          # pending | done | waiting | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


metadata = Base.metadata

# tables owned by libraries (APScheduler's job store creates its own): not compared by `triad db check`
EXTERNAL_TABLES = frozenset({"apscheduler_jobs"})
