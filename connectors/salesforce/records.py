"""Record-level rules of the simulated org: the error types writes raise, value
coercion by field type, and validation of the values a write sets.

Deserialization problems (a string in a number field) fail the whole request
with JSON_PARSER_ERROR, as Salesforce does; semantic problems (unknown or
read-only field, bad email, malformed reference) are per-record errors.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

from connectors.salesforce.query import normalize_datetime
from connectors.salesforce.schema import OBJECTS, FieldDef, ObjectDef, object_of_id

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ApiError(Exception):
    """A whole-request error: HTTP status plus Salesforce's ``[{message, errorCode}]`` body."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict]:
        err: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            err["fields"] = self.fields
        return [err]


class RecordError(Exception):
    """A per-record save error (reported inside results, or as HTTP 400 on single-record calls)."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or []

    def as_result(self) -> dict:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


class Ambiguous(Exception):
    """More than one record carries the external id value (HTTP 300)."""

    def __init__(self, obj: str, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} {obj} records match")
        self.obj, self.ids = obj, ids


def coerce(f: FieldDef, value: Any) -> Any:
    """A JSON value in the stored form for the field type; ApiError when it cannot be deserialized."""
    if value is None:
        return None
    t = f.type
    try:
        if t in ("currency", "double", "percent"):
            if isinstance(value, bool):
                raise ValueError
            return round(float(value), f.scale) if f.scale else float(value)
        if t == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if t == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
        if t == "date":
            return datetime.strptime(str(value)[:10], "%Y-%m-%d").date().isoformat()
        if t == "datetime":
            return normalize_datetime(str(value))
        if isinstance(value, (dict, list, bool)):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        kind = {"currency": "double", "percent": "double", "datetime": "datetime"}.get(t, t)
        raise ApiError(400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of {kind} from "
                       f"{type(value).__name__.upper()} value {value} or request may be missing a required field") from None


def apply_values(o: ObjectDef, rec: dict, values: dict, creating: bool, exists: Callable[[str, str], bool]) -> None:
    """Validate and copy ``values`` into ``rec`` (field names case-insensitive, types coerced)."""
    readonly, coerced = [], {}
    for key, value in values.items():
        if key == "attributes":
            continue
        f = o.field(key)
        if f is None:
            raise RecordError("INVALID_FIELD", f"No such column '{key}' on sobject of type {o.name}", [key])
        if f.name == "Id" and creating:
            raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
        if not (f.createable if creating else f.updateable):
            readonly.append(f.name)
            continue
        coerced[f] = coerce(f, value)
    if readonly:
        raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: "
                          f"{', '.join(readonly)}. Please check the security settings of this field and verify "
                          "that it is read/write for your profile or permission set.", readonly)
    for f, v in coerced.items():
        if isinstance(v, str) and f.length and len(v) > f.length and f.type not in ("date", "datetime"):
            raise RecordError("STRING_TOO_LONG", f"{f.label}: data value too large: {v[:40]} (max length={f.length})",
                              [f.name])
        if f.type == "email" and v and not _EMAIL.match(v):
            raise RecordError("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {v}", [f.name])
        if f.type == "reference" and v:
            target = OBJECTS[f.reference_to]
            if object_of_id(v) != target.name:
                raise RecordError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {v}", [f.name])
            if not exists(target.name, v):
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        rec[f.name] = v
