"""What the Kingdee connector sends to Save and how it reads the answer (PROTOCOLS 3.4, 3.5).

Pure functions over Save models: sub-head nesting, entry ids for updated lines,
NeedUpDateFields, the filter that finds a create whose answer was lost, and the
per-model outcome of a Save answer in each documented shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kingdee.client import response_status


def ci_key(mapping: dict[str, Any], key: str) -> str | None:
    """The key of ``mapping`` equal to ``key`` ignoring case (K3Cloud field keys are case-insensitive)."""
    low = key.lower()
    return next((k for k in mapping if k.lower() == low), None)


def quote(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def nest_subheads(model: dict[str, Any], subheads: dict[str, tuple[str, ...]]) -> None:
    """Move sub-head fields (``FSettleCurrId``) into their sub-head object (``FSaleOrderFinance``), in place."""
    for name, keys in subheads.items():
        wanted = {k.lower() for k in keys}
        moved = {k: model.pop(k) for k in [k for k in model if k.lower() in wanted]}
        if not moved:
            continue
        holder = ci_key(model, name) or name
        if not isinstance(model.get(holder), dict):
            model[holder] = {}
        model[holder].update(moved)


def update_fields(model: dict[str, Any], key: str, subheads: dict[str, tuple[str, ...]],
                  entry_pks: set[str]) -> tuple[str, ...]:
    """NeedUpDateFields: header keys, a sub-head's name and keys, an entry's name and line keys (not its PK)."""
    heads = {s.lower() for s in subheads}
    fields = set()
    for k, v in model.items():
        if k == key:
            continue
        fields.add(k)
        if isinstance(v, list):
            fields.update(lk for line in v if isinstance(line, dict) for lk in line if lk.lower() not in entry_pks)
        elif isinstance(v, dict) and k.lower() in heads:
            fields.update(v)
    return tuple(sorted(fields))


def _int_or_none(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def match_lines(lines: list[Any], current: list[tuple[int | None, Any]], entry_pk: str) -> None:
    """Give each line of an update the entry id of the line it replaces, in place.

    ``current`` is the bill's lines as read, in order: (FSeq or None, entry id). A line is
    matched by its FSeq (the line number the hub read), else by its position; a line left
    unmatched is new, and a current line no update line matches is the one really removed.
    """
    by_seq = {seq: eid for seq, eid in current if seq is not None}
    taken = {line.get(ci_key(line, entry_pk) or entry_pk) for line in lines if isinstance(line, dict)}
    for position, line in enumerate(lines):
        if not isinstance(line, dict) or line.get(ci_key(line, entry_pk) or entry_pk) not in (None, "", 0):
            continue
        seq_key = ci_key(line, "FSeq")
        seq = _int_or_none(line.get(seq_key)) if seq_key else None
        if seq is not None and by_seq:
            eid = by_seq.get(seq)
        else:
            eid = current[position][1] if position < len(current) else None
        if eid not in (None, "", 0) and eid not in taken:
            line[entry_pk] = eid
            taken.add(eid)


def content_filter(model: dict[str, Any], skip: set[str]) -> list[str]:
    """Equality conditions on a create's header text values and references (``F.FNumber``)."""
    conditions = []
    for k, v in sorted(model.items()):
        if k.lower() in skip:
            continue
        if isinstance(v, dict):
            sub = ci_key(v, "FNumber")
            if sub and isinstance(v[sub], (str, int)) and str(v[sub]):
                conditions.append(f"{k}.FNumber = {quote(v[sub])}")
        elif isinstance(v, str) and v.strip():
            conditions.append(f"{k} = {quote(v)}")
    return conditions


@dataclass
class Outcome:
    """One model's fate in a Save answer: saved (with the id when the answer gives one) or the reason why not."""

    saved: bool
    source_id: str | None = None
    error: str | None = None


def _messages(status: dict[str, Any]) -> dict[int | None, list[str]]:
    """Error messages by DIndex (None: the answer does not say which model)."""
    out: dict[int | None, list[str]] = {}
    for err in status.get("Errors") or []:
        where = f"{err.get('FieldName')}: " if err.get("FieldName") else ""
        index = _int_or_none(err.get("DIndex"))
        out.setdefault(index, []).append(where + str(err.get("Message")))
    return out


def save_outcomes(body: Any, count: int) -> list[Outcome]:
    """Per model, what a Save / BatchSave answer says, in each documented shape (PROTOCOLS 3.5).

    ``SuccessEntitys`` by DIndex; ``{"ResponseStatus": ...}`` without the ``Result`` wrapper
    (the duplicate-number answer); ``IsSuccess`` true without ``SuccessEntitys`` ("Save OK",
    the id in ``Result.Id``): every model saved.
    """
    status = response_status(body) or {}
    errors = _messages(status)
    saved = {_int_or_none(s.get("DIndex")) or 0: s.get("Id") for s in status.get("SuccessEntitys") or []}
    if status.get("IsSuccess") and not saved and not errors:
        result = body.get("Result") if isinstance(body, dict) else None
        only_id = result.get("Id") if isinstance(result, dict) and count == 1 else None
        return [Outcome(True, str(only_id) if only_id not in (None, "", 0) else None) for _ in range(count)]
    unplaced = errors.get(None, [])
    out = []
    for index in range(count):
        if index in saved and index not in errors:
            sid = saved[index]
            out.append(Outcome(True, str(sid) if sid not in (None, "", 0) else None))
        else:
            msg = "; ".join(errors.get(index, []) + unplaced) or "not saved (no message)"
            out.append(Outcome(False, error=msg))
    return out
