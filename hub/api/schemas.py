"""Response and request models of the data API, so the generated OpenAPI document is precise.

Record models are built from the canonical catalogue (hub.canonical), one per
entity: a field is declared once. Values are in the store's canonical JSON
form: decimals as strings (never floats), dates and timestamps in ISO 8601.
A field the caller may not see is absent from ``fields``.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from hub.canonical import ENTITIES, ORDER_LINE_FIELDS

DecimalStr = Annotated[str, Field(json_schema_extra={"format": "decimal"},
                                  description="A decimal number as a string (exact, never a float).")]
PY_TYPES: dict[str, Any] = {"string": str, "decimal": DecimalStr, "date": date, "datetime": datetime,
                            "int": int, "bool": bool}


EntityName = Literal[tuple(ENTITIES)]   # type: ignore[valid-type]  # every canonical entity


class Error(BaseModel):
    detail: str = Field(description="What went wrong, and what to do about it.")


class Invalid(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="One sentence when the API refuses a value it understood (an unknown field, a decision it "
                    "cannot take), or the list of problems (loc, msg, type) of a malformed parameter or body.")


class OrderLine(BaseModel):
    line_no: Optional[int] = None
    sku: Optional[str] = None
    description: Optional[str] = None
    quantity: Optional[DecimalStr] = None
    unit_price: Optional[DecimalStr] = None
    amount: Optional[DecimalStr] = None


assert set(OrderLine.model_fields) == set(ORDER_LINE_FIELDS)


def title(entity: str) -> str:
    """The entity as a model name prefix: customer -> Customer."""
    return entity.capitalize()


def _fields_model(entity: str) -> type[BaseModel]:
    spec: dict[str, Any] = {}
    for f, t in ENTITIES[entity].fields.items():
        typ = list[OrderLine] if t == "list" else PY_TYPES[t]
        spec[f] = (Optional[typ], None)
    return create_model(f"{title(entity)}Fields", __doc__=f"The golden {entity}'s canonical fields.", **spec)


FIELDS: dict[str, type[BaseModel]] = {e: _fields_model(e) for e in ENTITIES}


def _record_model(entity: str) -> type[BaseModel]:
    return create_model(
        f"{title(entity)}Record", __doc__=f"A golden {entity} with its id in every linked system.",
        id=(str, ...), entity=(Literal[entity], ...),  # type: ignore[valid-type]
        fields=(FIELDS[entity], ...),
        xrefs=(dict[str, list[str]], Field(..., description="system -> the record's ids in that system")),
        updated_at=(datetime, ...), version=(int, ...),
        deleted_in=(Optional[list[str]], Field(None, description="systems in which the record was deleted")),
        merged_into=(Optional[str], Field(None, description="set on a record merged into another (the winner)")))


RECORDS: dict[str, type[BaseModel]] = {e: _record_model(e) for e in ENTITIES}
PAGES: dict[str, type[BaseModel]] = {
    e: create_model(f"{title(e)}Page", records=(list[RECORDS[e]], ...),  # type: ignore[valid-type]
                    next=(Optional[str], Field(None, description="cursor of the next page; absent on the last")))
    for e in ENTITIES}
XREFS: dict[str, type[BaseModel]] = {
    e: create_model(f"{title(e)}Xref", __doc__="A source record of one system and the golden record it is.",
                    entity=(Literal[e], ...), system=(str, ...), source_id=(str, ...),  # type: ignore[valid-type]
                    status=(str, Field(..., description="active | deleted | merged")),
                    record=(RECORDS[e], ...))
    for e in ENTITIES}


class ProvenanceEntry(BaseModel):
    system: Optional[str] = Field(None, description="the system (or user:NAME) that set the golden value")
    at: Optional[str] = Field(None, description="its source timestamp")


class SourceVersion(BaseModel):
    values: dict[str, Any]
    source_ts: Optional[datetime] = None
    seen_at: Optional[datetime] = None


class ConflictBrief(BaseModel):
    id: str
    field: str
    status: str
    rule: str
    values: dict[str, Any]
    golden: Any = None
    golden_at_open: Any = None   # the golden value when the conflict was opened
    winner: Optional[str] = None
    created_at: datetime


class QuarantineBrief(BaseModel):
    id: str
    connector: str
    source_id: Optional[str] = None
    kind: str
    reasons: list[dict[str, Any]]
    status: str


class Provenance(BaseModel):
    """Where each golden value came from, what every linked system last said, and open items."""

    id: str
    entity: str
    provenance: dict[str, ProvenanceEntry]
    sources: dict[str, dict[str, SourceVersion]] = Field(description="system -> source id -> last values seen")
    created: dict[str, Optional[str]]
    conflicts: list[ConflictBrief]
    quarantine: list[QuarantineBrief]


class HistoryEntry(BaseModel):
    seq: int
    field: str
    old: Any = None
    new: Any = None
    system: Optional[str] = None
    user: Optional[str] = None
    reason: Optional[str] = None
    run_id: Optional[str] = None
    at: datetime


class History(BaseModel):
    history: list[HistoryEntry]


class FieldChange(BaseModel):
    old: Any = None
    new: Any = None


class Change(BaseModel):
    """What one transaction changed in one golden record."""

    seq: int = Field(description="the change's last history sequence number")
    first_seq: int
    entity: str
    record_id: str
    kind: Literal["create", "update", "delete", "restore"]
    at: datetime
    system: Optional[str] = None
    user: Optional[str] = None
    run_id: Optional[str] = None
    reasons: list[str]
    fields: dict[str, FieldChange]


class ChangePage(BaseModel):
    changes: list[Change]
    next: str = Field(description="pass it as `since` to continue exactly after the last change")


class Conflict(BaseModel):
    id: str
    entity: str
    record_id: str
    field: str
    status: str
    rule: str
    values: dict[str, Any] = Field(description="system -> the value it gave")
    timestamps: dict[str, Any]
    golden: Any = None
    golden_at_open: Any = None   # the golden value when the conflict was opened
    winner: Optional[str] = None
    note: Optional[str] = None
    created_at: datetime
    resolved_at: Optional[datetime] = None
    resolved_by: Optional[str] = None


class ConflictPage(BaseModel):
    conflicts: list[Conflict]
    next: Optional[str] = None


class ConflictDetail(Conflict):
    current_golden: Any = None
    record: Optional[dict[str, Any]] = None
    field_history: list[dict[str, Any]]


class ResolveRequest(BaseModel):
    """Exactly one of ``take``, ``value`` and ``keep``, as `triad conflicts resolve`."""

    model_config = ConfigDict(extra="forbid")
    take: Optional[str] = Field(None, max_length=64, pattern=r"^[^\x00]*$", description="take this system's value")
    value: Optional[str] = Field(None, max_length=4000, pattern=r"^[^\x00]*$", description="set this value")
    keep: bool = Field(False, description="keep the golden value")
    note: Optional[str] = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


class ResolveResult(BaseModel):
    id: str
    entity: str
    record_id: str
    field: str
    old: Any = None
    new: Any = None
    queued: int


class QuarantineItem(BaseModel):
    id: str
    connector: str
    entity: str
    source_id: Optional[str] = None
    kind: str
    reasons: list[dict[str, Any]]
    status: str
    attempts: int
    created_at: datetime
    updated_at: datetime


class QuarantinePage(BaseModel):
    items: list[QuarantineItem]
    next: Optional[str] = None


class QuarantineDetail(QuarantineItem):
    raw: Optional[dict[str, Any]] = Field(None, description="the payload as read; absent when the caller "
                                                            "has denied fields on the entity")


class Me(BaseModel):
    user: str
    via: str
    roles: list[str]
    can: dict[str, list[str]] = Field(description="action -> entities")
