"""sObject Collections (``/composite/sobjects``): create, update, upsert and delete up to
200 records per call, one result per record, with ``allOrNone`` rollback.

Per-record failures are results (``{"success": false, "errors": [{statusCode,
message, fields}]}``); with ``allOrNone`` every other record reports
``ALL_OR_NONE_OPERATION_ROLLED_BACK`` and nothing is kept.
"""
from __future__ import annotations

from typing import Any

from connectors.salesforce.org import Ambiguous, ApiError, Org, RecordError

MAX_RECORDS = 200
ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "fields": [],
               "message": "Record rolled back because not all records were valid and the request was using AllOrNone header"}


class _Rollback(Exception):
    pass


def collections(org: Org, method: str, parts: list[str], query: dict, body: Any, version: str) -> list[dict]:
    """Handle one ``composite/sobjects[/<Obj>/<ExtField>]`` call; returns the results array."""
    if method == "DELETE":
        ids = [i for i in query.get("ids", "").split(",") if i]
        all_or_none = query.get("allOrNone", "false").lower() == "true"
        items: list[Any] = ids
    else:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be an object with a records array")
        items = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
    if len(items) > MAX_RECORDS:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {MAX_RECORDS} "
                       "records into this call")
    if method == "PATCH" and len(parts) == 2:
        org.object(parts[0])
        op, field = "upsert", parts[1]
    elif not parts and method in ("POST", "PATCH", "DELETE"):
        op, field = {"POST": "create", "PATCH": "update", "DELETE": "delete"}[method], None
    else:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    now = org.now()
    results: list[dict] = []
    failed = False
    try:
        with org.transaction():
            for item in items:
                res = _one(org, op, item, field, parts, now)
                failed = failed or not res["success"]
                results.append(res)
            if failed and all_or_none:
                raise _Rollback
    except _Rollback:
        results = [r if not r["success"] else {**r, "success": False, "errors": [dict(ROLLED_BACK)]}
                   for r in results]
        for r in results:
            if op in ("create",) or r.get("created"):
                r["id"] = None
    return results


def _one(org: Org, op: str, item: Any, field: str | None, parts: list[str], now: str) -> dict:
    """Apply one record inside the call's transaction; a RecordError becomes a failed result."""
    rec_id = None
    try:
        if op == "delete":
            rec_id = item
            obj = _object_of(org, item)
            with org.transaction():
                org.delete(obj, item, now)
            return {"id": item, "success": True, "errors": []}
        if not isinstance(item, dict):
            raise RecordError("JSON_PARSER_ERROR", "each record must be a JSON object")
        obj = (item.get("attributes") or {}).get("type") or (parts[0] if parts else None)
        if not obj:
            raise RecordError("INVALID_TYPE", "The type of the record is missing: set attributes.type")
        values = {k: v for k, v in item.items() if k != "attributes"}
        with org.transaction():  # nested: a failing record leaves no half-written state
            if op == "create":
                rec_id = org.insert(obj, values, now)
                return {"id": rec_id, "success": True, "errors": []}
            if op == "update":
                rec_id = next((v for k, v in values.items() if k.lower() == "id"), None)
                if not rec_id:
                    raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                org.update(obj, rec_id, values, now)
                return {"id": rec_id, "success": True, "errors": []}
            value = next((v for k, v in values.items() if k.lower() == field.lower()), None)
            if value in (None, ""):
                raise RecordError("MISSING_ARGUMENT", f"{field} not specified", [field])
            try:
                rec_id, created = org.upsert(obj, field, value, values, now)
            except Ambiguous as exc:
                raise RecordError("DUPLICATE_EXTERNAL_ID", f"{field}: more than one record found for external id "
                                  f"field: {exc.ids}", [field]) from None
            return {"id": rec_id, "success": True, "errors": [], "created": created}
    except RecordError as exc:
        out = {"id": rec_id, "success": False, "errors": [exc.as_result()]}
        if op == "upsert":
            out["created"] = False
        return out
    except ApiError as exc:
        if exc.code == "JSON_PARSER_ERROR":
            raise  # a value that cannot be deserialized fails the whole request, as in Salesforce
        return {"id": rec_id, "success": False, "errors": [{"statusCode": exc.code, "message": exc.message,
                                                            "fields": exc.fields or []}]}


def _object_of(org: Org, rec_id: str) -> str:
    from connectors.salesforce.schema import object_of_id
    obj = object_of_id(rec_id)
    if obj is None:
        raise RecordError("MALFORMED_ID", f"malformed id {rec_id}")
    return obj
