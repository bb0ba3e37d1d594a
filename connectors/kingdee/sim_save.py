"""Save / BatchSave / Submit / Audit for the Kingdee simulator (PROTOCOLS 3.4, 3.5).

A model with its primary key (``FCUSTID`` / ``FID``) updates that record, only
the fields in ``NeedUpDateFields`` when given; without it a new record is
created (there is no upsert). Base-data references are ``{"FNumber": ...}``.
BatchSave saves the valid models and reports the others per ``DIndex``.
Entry lines with their entry id are updated; with ``IsDeleteEntry`` (default
true) lines the model leaves out are deleted. Sub-head fields (the order's
``FSaleOrderFinance.FSettleCurrId``) are taken from the sub-head object only.
"""
from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from connectors.kingdee.sim_forms import Entry, Field, Form, KdError, kd_time
from connectors.kingdee.sim_query import parse_time

SYSTEM_FIELDS = {"fdocumentstatus", "fmodifydate", "fcreatedate"}
TAX_RATE = 13.0


def _ci_get(obj: dict[str, Any], key: str) -> tuple[bool, Any]:
    low = key.lower()
    for k, v in obj.items():
        if k.lower() == low:
            return True, v
    return False, None


def _lookup(data: dict[str, Any], table: str, number: str) -> dict[str, Any] | None:
    if table == "customer":
        for c in data["forms"]["BD_Customer"]:
            if c["FNumber"].lower() == number.lower():
                return {"Id": c["FCUSTID"], "FNumber": c["FNumber"], "FName": c["FName"]}
        return None
    for row in data["lookups"].get(table, []):
        if str(row["FNumber"]).lower() == number.lower():
            return {"Id": row["Id"], "FNumber": row["FNumber"], "FName": row["FName"]}
    return None


def _convert(data: dict[str, Any], fld: Field, value: Any) -> Any:
    """The stored form of a model value, or KdError (MsgCode 11) naming the field."""
    if fld.kind == "ref":
        if value in (None, "", {}):
            return None
        number = None
        if isinstance(value, dict):
            found, number = _ci_get(value, "FNumber")
            if not found:
                found, number = _ci_get(value, "Number")
        if number in (None, ""):
            raise KdError(11, f"字段“{fld.label}”的值格式不正确，基础资料请以 {{\"FNumber\": ...}} 传入", fld.key)
        row = _lookup(data, fld.ref or "", str(number))
        if row is None:
            raise KdError(11, f"字段“{fld.label}”的值“{number}”在系统中不存在或未审核", fld.key)
        return row
    if fld.kind == "datetime":
        if value in (None, ""):
            return None
        parsed = parse_time(str(value))
        if parsed is None:
            raise KdError(11, f"字段“{fld.label}”的值“{value}”不是有效的日期", fld.key)
        return kd_time(parsed)
    if fld.kind in ("decimal", "int"):
        if value in (None, ""):
            return 0 if fld.kind == "int" else 0.0
        try:
            return int(value) if fld.kind == "int" else float(value)
        except (TypeError, ValueError):
            raise KdError(11, f"字段“{fld.label}”的值“{value}”不是有效的数字", fld.key) from None
    return "" if value is None else str(value)


def _blank(fields: tuple[Field, ...]) -> dict[str, Any]:
    empty = {"ref": None, "str": "", "int": 0, "decimal": 0.0, "datetime": None}
    return {f.key: empty[f.kind] for f in fields}


def _wanted(need: set[str], key: str, updating: bool) -> bool:
    return not updating or not need or key.lower() in need


def _apply_fields(data: dict[str, Any], fields: tuple[Field, ...], target: dict[str, Any],
                  model: dict[str, Any], pk: str, need: set[str], updating: bool) -> list[KdError]:
    errors = []
    for fld in fields:
        if fld.key == pk or fld.key.lower() in SYSTEM_FIELDS:
            continue
        found, value = _ci_get(model, fld.key)
        if not found or not _wanted(need, fld.key, updating):
            continue
        try:
            target[fld.key] = _convert(data, fld, value)
        except KdError as exc:
            errors.append(exc)
    return errors


def _apply_entry(data: dict[str, Any], entry: Entry, rec: dict[str, Any], lines: Any,
                 need: set[str], updating: bool, delete_missing: bool) -> list[KdError]:
    if not isinstance(lines, list):
        return [KdError(11, f"单据体“{entry.name}”应为数组", entry.name)]
    existing = {line[entry.pk]: line for line in rec.get(entry.name) or []}
    result, errors = [], []
    for i, model in enumerate(lines):
        if not isinstance(model, dict):
            errors.append(KdError(11, f"单据体“{entry.name}”第{i + 1}行格式不正确", entry.name))
            continue
        _, line_id = _ci_get(model, entry.pk)
        line = existing.pop(int(line_id), None) if str(line_id or "0").isdigit() and int(line_id or 0) else None
        is_update = line is not None
        if line is None:
            line = _blank(entry.fields)
            line[entry.pk] = data["next_id"]["entry"]
            data["next_id"]["entry"] += 1
        line = dict(line)
        errors += _apply_fields(data, entry.fields, line, model, entry.pk, need, updating and is_update)
        for fld in entry.fields:
            if fld.required and not line.get(fld.key):
                errors.append(KdError(11, f"单据体“{entry.name}”第{i + 1}行字段“{fld.label}”是必填项", fld.key))
        result.append(line)
    if not delete_missing:
        result = list(existing.values()) + result
    for seq, line in enumerate(result, start=1):
        if entry.field("FSeq") is not None:
            line["FSeq"] = seq
    rec[entry.name] = result
    return errors


def _apply_subheads(data: dict[str, Any], form: Form, rec: dict[str, Any], model: dict[str, Any],
                    need: set[str], updating: bool) -> list[KdError]:
    """Sub-head fields are taken from their sub-head object only (a header-level key is ignored).

    They are stored flat on the bill: a sub-head is one-to-one with the header, and queries name
    its fields bare (``FSettleCurrId.FNumber``).
    """
    errors: list[KdError] = []
    for name, keys in form.subheads.items():
        found, sub = _ci_get(model, name)
        if not found:
            continue
        if not isinstance(sub, dict):
            errors.append(KdError(11, f"子单据头“{name}”应为对象", name))
            continue
        fields = tuple(f for f in form.fields if f.key in keys)
        wanted = need | {k.lower() for k in keys} if name.lower() in need else need
        errors += _apply_fields(data, fields, rec, sub, form.pk, wanted, updating)
    return errors


def _derive(form: Form, rec: dict[str, Any]) -> None:
    """Amounts the server computes: line and header totals (sales orders, receipts)."""
    if form.form_id == "SAL_SaleOrder":
        total = tax = 0.0
        for line in rec.get("FSaleOrderEntry") or []:
            rate = float(line.get("FTaxRate") or TAX_RATE)
            line["FTaxRate"] = rate
            if line.get("FTaxPrice"):
                line["FPrice"] = round(float(line["FTaxPrice"]) / (1 + rate / 100), 6)
            elif line.get("FPrice"):
                line["FTaxPrice"] = round(float(line["FPrice"]) * (1 + rate / 100), 6)
            line["FAllAmount"] = round(float(line.get("FQty") or 0) * float(line.get("FTaxPrice") or 0), 2)
            total += line["FAllAmount"]
            tax += line["FAllAmount"] - line["FAllAmount"] / (1 + rate / 100)
        rec["FBillAllAmount"], rec["FBillTaxAmount"] = round(total, 2), round(tax, 2)
    elif form.form_id == "AR_RECEIVEBILL" and rec.get("FRECEIVEBILLENTRY"):
        rec["FRECAMOUNTFOR"] = round(sum(float(l.get("FRECAMOUNTFOR_E") or 0) for l in rec["FRECEIVEBILLENTRY"]), 2)


def _save_one(data: dict[str, Any], form: Form, model: dict[str, Any], opts: dict[str, Any],
              now: str) -> tuple[dict[str, Any] | None, list[KdError]]:
    records = data["forms"][form.form_id]
    _, pk_value = _ci_get(model, form.pk)
    updating = str(pk_value or "0") not in ("0", "")
    need = {str(k).lower() for k in opts.get("needupdatefields") or []}
    if updating:
        current = next((r for r in records if str(r[form.pk]) == str(pk_value)), None)
        if current is None:
            return None, [KdError(10, f"{form.label}内码“{pk_value}”对应的数据不存在或已被删除", form.pk)]
        rec = copy.deepcopy(current)
    else:
        current = None
        rec = _blank(form.fields)
        rec.update(copy.deepcopy(form.defaults))
    header = tuple(f for f in form.fields if form.subhead_of(f.key) is None)
    errors = _apply_fields(data, header, rec, model, form.pk, need, updating)
    errors += _apply_subheads(data, form, rec, model, need, updating)
    for entry in form.entries:
        found, lines = _ci_get(model, entry.name)
        if found and (_wanted(need, entry.name, updating) or any(f.key.lower() in need for f in entry.fields)):
            delete_missing = opts.get("isdeleteentry", True) is not False
            errors += _apply_entry(data, entry, rec, lines, need, updating, delete_missing)
    for fld in form.fields:
        if fld.required and not rec.get(fld.key):
            errors.append(KdError(11, f"字段“{fld.label}”是必填项", fld.key))
    number = rec.get(form.number)
    if number and any(r.get(form.number) == number and r is not current for r in records):
        errors.append(KdError(11, f"违反字段唯一性要求：编码唯一。[{number}]在当前系统中已经被使用。", form.number))
    if errors:
        return None, errors
    if not number:
        seq = data["next_no"][form.form_id]
        data["next_no"][form.form_id] = seq + 1
        rec[form.number] = f"{form.number_prefix}{seq:0{form.number_digits}d}"
    _derive(form, rec)
    status_key = next(f.key for f in form.fields if f.key.lower() == "fdocumentstatus")
    if opts.get("isautosubmitandaudit"):
        rec[status_key] = "C"
    modify_key = next(f.key for f in form.fields if f.key.lower() == "fmodifydate")
    rec[modify_key] = now
    if current is None:
        rec[form.pk] = data["next_id"][form.form_id]
        data["next_id"][form.form_id] += 1
        rec[next(f.key for f in form.fields if f.key.lower() == "fcreatedate")] = now
        records.append(rec)
    else:
        records[records.index(current)] = rec
    return rec, []


def save(data: dict[str, Any], form: Form, payload: dict[str, Any], *, batch: bool,
         now: datetime, terse: bool = False) -> dict[str, Any]:
    """Apply a Save / BatchSave ``data`` object; returns the answer body.

    ``terse``: answer in the short shapes PROTOCOLS 3.5 quotes, a success as
    ``{"Result": {"ResponseStatus": {"IsSuccess": true}, "Id", "Number"}}`` (no SuccessEntitys)
    and a failure as a bare ``{"ResponseStatus": ...}`` (no Result wrapper).
    """
    opts = {k.lower(): v for k, v in payload.items()}
    models = opts.get("model")
    if isinstance(models, dict):       # Save takes one model; BatchSave a list (one object is tolerated)
        models = [models]
    if not isinstance(models, list) or not models:
        raise KdError(8, "data 数据包中的参数 Model 的值不能为空")
    stamp = kd_time(now)
    ok, errors = [], []
    for index, model in enumerate(models):
        if not isinstance(model, dict):
            errors.append({"FieldName": None, "Message": "Model 格式不正确", "DIndex": index})
            continue
        rec, errs = _save_one(data, form, model, opts, stamp)
        if rec is not None:
            ok.append({"Id": rec[form.pk], "Number": rec[form.number], "DIndex": index})
        errors += [{"FieldName": e.field_name, "Message": e.message, "DIndex": index} for e in errs]
    status: dict[str, Any] = {"IsSuccess": not errors, "Errors": errors, "SuccessEntitys": ok,
                              "SuccessMessages": [], "MsgCode": 11 if errors else 0}
    if errors:
        status = {"ErrorCode": 500, **status}
    if terse:
        return _terse_answer(status, ok)
    result: dict[str, Any] = {"ResponseStatus": status}
    if not batch:
        result["Id"] = ok[0]["Id"] if ok else ""
        result["Number"] = ok[0]["Number"] if ok else ""
    result["NeedReturnData"] = [{} for _ in ok]
    return {"Result": result}


def _terse_answer(status: dict[str, Any], ok: list[dict[str, Any]]) -> dict[str, Any]:
    """The short shapes of PROTOCOLS 3.5: "Save OK" and the duplicate-number answer."""
    if status["Errors"]:
        return {"ResponseStatus": status}
    only = ok[0] if len(ok) == 1 else {"Id": "", "Number": ""}
    return {"Result": {"ResponseStatus": {"IsSuccess": True}, "Id": only["Id"], "Number": only["Number"]}}


def set_status(data: dict[str, Any], form: Form, payload: dict[str, Any], operation: str) -> dict[str, Any]:
    """Submit (-> B) or Audit (-> C) by ``Numbers`` or ``Ids`` [payload keys unverified]."""
    opts = {k.lower(): v for k, v in payload.items()}
    numbers = [str(n) for n in opts.get("numbers") or []]
    ids = [s.strip() for s in str(opts.get("ids") or "").split(",") if s.strip()]
    status_key = next(f.key for f in form.fields if f.key.lower() == "fdocumentstatus")
    target = {"submit": "B", "audit": "C"}[operation]
    done, errors = [], []
    wanted = [("Number", n) for n in numbers] + [("Id", i) for i in ids]
    for index, (kind, value) in enumerate(wanted):
        rec = next((r for r in data["forms"][form.form_id]
                    if str(r[form.pk if kind == "Id" else form.number]) == value), None)
        if rec is None:
            errors.append({"FieldName": "", "Message": f"{form.label}“{value}”不存在", "DIndex": index})
        elif rec[status_key] == "C":
            errors.append({"FieldName": "", "Message": f"单据编号为“{rec[form.number]}”的{form.label}，单据已经审核！",
                           "DIndex": index})
        else:
            rec[status_key] = target
            done.append({"Id": rec[form.pk], "Number": rec[form.number], "DIndex": index})
    status: dict[str, Any] = {"IsSuccess": not errors, "Errors": errors, "SuccessEntitys": done,
                              "SuccessMessages": [], "MsgCode": 11 if errors else 0}
    if errors:
        status = {"ErrorCode": 500, **status}
    return {"Result": {"ResponseStatus": status}}
