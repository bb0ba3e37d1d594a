"""Steward access to quarantine: list, show, drop (retry lives in hub.sync), and what a caller may see of it."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Collection

from sqlalchemy import Engine, and_, or_, select, update

from hub import audit
from hub.errors import NotFound, TriadError, UsageError
from hub.models import Quarantine
from hub.sqlutil import chunks
from hub.types import utcnow

if TYPE_CHECKING:
    from hub.mapping_engine import Mapping
    from hub.rbac import Principal

HIDDEN = "(hidden)"
READ_ERROR, READ_TEXT = "__error__", "__raw__"   # keys of a row a connector could not read (see pipeline._map)


def _item(r: Any) -> dict[str, Any]:
    return {"id": r["id"], "connector": r["connector"], "entity": r["entity"], "source_id": r["source_id"],
            "kind": r["kind"], "reasons": r["reasons"], "status": r["status"], "attempts": r["attempts"],
            "raw": r["raw"], "created_at": r["created_at"], "updated_at": r["updated_at"]}


def list_items(engine: Engine, *, status: str | None = "parked", connector: str | None = None,
               entity: str | None = None, limit: int = 100, after: tuple[datetime, str] | None = None,
               entities: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Items oldest first; ``after`` (created_at, id) starts after that row (keyset paging);
    ``entities``: only these (the caller's readable entities), None means all."""
    qt = Quarantine.__table__
    q = select(qt).order_by(qt.c.created_at, qt.c.id).limit(limit)
    if after is not None:
        q = q.where(or_(qt.c.created_at > after[0], and_(qt.c.created_at == after[0], qt.c.id > after[1])))
    if status:
        q = q.where(qt.c.status == status)
    if connector:
        q = q.where(qt.c.connector == connector)
    if entity:
        q = q.where(qt.c.entity == entity)
    if entities is not None:
        q = q.where(qt.c.entity.in_(sorted(entities)))
    with engine.connect() as conn:
        return [_item(r) for r in conn.execute(q).mappings()]


def entities_of(engine: Engine, item_ids: Collection[str]) -> dict[str, str]:
    """item id -> entity, for the ids that exist (a permission check needs the entity before acting)."""
    qt = Quarantine.__table__
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for part in chunks(sorted(set(item_ids))):
            out.update((r.id, r.entity) for r in conn.execute(select(qt.c.id, qt.c.entity).where(qt.c.id.in_(part))))
    return out


def get_item(engine: Engine, item_id: str) -> dict[str, Any]:
    qt = Quarantine.__table__
    with engine.connect() as conn:
        r = conn.execute(select(qt).where(qt.c.id == item_id)).mappings().first()
    if r is None:
        raise NotFound(f"no quarantine item {item_id} (see `triad quarantine list`)")
    return _item(r)


_WHY_NOT_PARKED = {"resolved": " (it went through since it was parked)", "dropped": " (given up on already)"}


def require_parked(engine: Engine, item_ids: Collection[str], verb: str) -> None:
    """Refuse items that are not parked: an unknown id is not found (exit 1); an item in another
    state is a usage error (exit 2) naming that state, for retry and drop alike."""
    qt = Quarantine.__table__
    found: dict[str, str] = {}
    with engine.connect() as conn:
        for part in chunks(sorted(set(item_ids))):
            found.update((r.id, r.status) for r in conn.execute(select(qt.c.id, qt.c.status).where(qt.c.id.in_(part))))
    unknown = [i for i in item_ids if i not in found]
    if unknown:
        raise NotFound(f"no quarantine item {', '.join(unknown)} (see `triad quarantine list`)")
    for item_id in item_ids:
        status = found[item_id]
        if status != "parked":
            raise UsageError(f"quarantine item {item_id} is {status}{_WHY_NOT_PARKED.get(status, '')}; "
                             f"only parked items can be {verb}")


def still_parked(engine: Engine, item_ids: Collection[str], run_ids: Collection[str]) -> list[dict[str, Any]]:
    """After a retry of ``item_ids``: those still parked, and rows the retry runs parked anew
    (a keyless row that now parses is parked under its key), oldest first."""
    qt = Quarantine.__table__
    wanted = or_(qt.c.id.in_(sorted(item_ids)), qt.c.run_id.in_(sorted(run_ids)))
    with engine.connect() as conn:
        return [_item(r) for r in conn.execute(select(qt).where(qt.c.status == "parked", wanted)
                                               .order_by(qt.c.created_at, qt.c.id)).mappings()]


def reason_text(reason: Any) -> str:
    """One reason in words, as `quarantine list` shows it: a failed expectation says what the value failed
    ('credit_limit=-100 is below 0 (expect_column_values_to_be_between)'), not only the check's name."""
    if not isinstance(reason, dict):
        return str(reason)
    if reason.get("message"):
        return reason["message"]
    from hub.steward_values import failure_words
    name, column, value = reason.get("expectation"), reason.get("column"), reason.get("value")
    try:
        words = failure_words(column or "", {"expectation": name or "", "kwargs": reason.get("kwargs") or {},
                                             "column": column}, {})
    except (KeyError, TypeError, AttributeError):     # a reason stored by an older version, or odd kwargs
        return f"{name} {column}={value}"
    return f"{column}={value} {words} ({name})"


def drop_item(engine: Engine, item_id: str, user: str, note: str | None) -> dict[str, Any]:
    require_parked(engine, [item_id], "dropped")
    item = get_item(engine, item_id)
    qt = Quarantine.__table__
    with engine.begin() as conn:
        moved = conn.execute(update(qt).where(qt.c.id == item_id, qt.c.status == "parked")
                             .values(status="dropped", updated_at=utcnow()))
        if moved.rowcount != 1:   # a sync or a retry took it through since it was read
            raise UsageError(f"quarantine item {item_id} changed while this ran; see `triad quarantine show {item_id}`")
        audit.record(conn, user, "quarantine.drop", f"quarantine:{item_id}", before={"status": "parked"},
                     after={"status": "dropped"}, note=note)
    return item


class Redactor:
    """Hides from one caller what their roles deny (SPEC section 8) in quarantine items.

    The raw payload is in the system's own field names: a key is hidden when the
    stream's mapping reads it into a canonical field denied to the caller. Reasons
    about such a field lose the value they quote. A payload whose mapping cannot be
    loaded (connector removed, mapping broken) is hidden whole, as nobody can tell
    which of its keys hold the denied field.
    """

    def __init__(self, who: Principal, mapping_of: Callable[[str, str], Mapping]) -> None:
        self.who, self.mapping_of = who, mapping_of
        self._paths: dict[tuple[str, str], list[tuple[str, ...]] | None] = {}

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        denied = self.who.denied_fields(item["entity"])
        if not denied:
            return item
        paths = self._denied_paths(item["connector"], item["entity"], denied)
        item = dict(item, reasons=[_reason(x, denied) for x in item["reasons"] or []],
                    hidden_fields=sorted(denied))
        if paths is None:
            item["raw"] = {}
        elif paths and isinstance(item.get("raw"), dict):
            item["raw"] = _without_paths(item["raw"], paths)
        return item

    def _denied_paths(self, connector: str, entity: str, denied: frozenset[str]) -> list[tuple[str, ...]] | None:
        key = (connector, entity)
        if key not in self._paths:
            try:
                plan = self.mapping_of(connector, entity).plan
            except TriadError:
                self._paths[key] = None
            else:
                self._paths[key] = [p.source for p in plan.fields if p.name in denied and p.source]
        return self._paths[key]


def _without_paths(raw: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    """A copy of ``raw`` without the values at these source paths (nested, or flat dotted keys)."""
    raw = dict(raw)
    if READ_ERROR in raw:   # an unreadable row keeps its text, which cannot be cut field by field
        raw[READ_TEXT] = HIDDEN
        return raw
    for path in paths:
        raw.pop(".".join(path), None)
        node = raw
        for step in path[:-1]:
            child = node.get(step)
            if not isinstance(child, dict):
                break
            node[step] = node = dict(child)
        else:
            node.pop(path[-1], None)
    return raw


def _reason(reason: Any, denied: frozenset[str]) -> Any:
    """A reason about a denied field keeps what failed, not the value it quotes."""
    if not isinstance(reason, dict):
        return reason
    named = {reason.get("field"), *str(reason.get("column") or "").split(",")}
    hit = sorted(f for f in named if f in denied)
    if not hit:
        return reason
    out = {k: v for k, v in reason.items() if k not in ("value", "observed_value", "source_id")}
    what = reason.get("expectation") or reason.get("reason") or "check"
    out["message"] = f"{what} on {', '.join(hit)}: the value is hidden (the field is denied to your roles)"
    return out
