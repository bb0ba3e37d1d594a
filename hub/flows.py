"""The flow engine: golden changes start flow runs; each run walks its steps, creating and updating
golden records (which reach the systems through the outbox) and waiting for events.

Idempotent by construction: a run is keyed by the history row that triggered it
(a replayed webhook that changes nothing writes no history, so starts nothing),
and a step that created a record remembers it, so a retry never creates a second one.

Flows react to changes made after they are configured: the first pass places the
history cursor at the head of ``field_history`` (a hub that adds `flows:` does not
replay its past). Runs are moved by whoever runs the flows (`triad sync run`,
`flows run`, `worker`, the scheduler's sync jobs, `serve`'s inbox thread); each run's
row is locked while it moves, so several processes share the work safely.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from hub import golden, subscriptions
from hub.changefeed import head, lock_history
from hub.canonical import ENTITIES
from hub.errors import NotFound, UsageError
from hub.flow_model import Flow, Step, constant  # noqa: F401 - constant is used here and by tests
from hub.merge import CREATED
from hub.models import FieldHistory, FlowRun, FlowStep, Outbox, StreamState
from hub.outbox import OutboxQueue
from hub.sqlutil import chunks, upsert
from hub.streams import Parts
from hub.types import new_id, utcnow
from hub.values import decode, encode

log = logging.getLogger(__name__)
CURSOR_KEY = ("__flows__", "history")
SCAN = 5000


@dataclass
class FlowReport:
    started: int = 0
    advanced: int = 0
    waiting: int = 0
    done: int = 0
    failed: int = 0
    runs: list[str] = field(default_factory=list)
    outbox_ids: list[str] = field(default_factory=list)    # rows the steps queued (the real-time path pushes them)

    def as_dict(self) -> dict[str, Any]:
        return {"started": self.started, "advanced": self.advanced, "waiting": self.waiting, "done": self.done,
                "failed": self.failed, "runs": self.runs}


def run_flows(engine: Engine, parts: Parts, *, changed_only: bool = False) -> FlowReport:
    """Start runs for new trigger events, then move open runs as far as they can go.

    Flows see the golden changes made after they were configured: the first pass
    starts reading the change history at its head (:func:`start_cursor`).

    Args:
        changed_only: the automatic path (scheduler jobs, `triad serve`): return at once when
            no golden change came since the last pass, and move only the runs waiting on a
            record that changed (and runs left ``running``). Otherwise every open run moves.
    """
    report = FlowReport()
    flows = {f.name: f for f in parts.cfg.flows}
    if not flows or (changed_only and not _news(engine, flows)):
        return report
    since, top = _start_runs(engine, flows, report)
    for run_id in _runs_to_move(engine, flows, since, top, changed_only):
        try:
            status = advance(engine, parts, flows, run_id, skip_locked=True, outbox_ids=report.outbox_ids)
        except Exception:   # a database error in one run must not stop the others (or the worker)
            log.exception("flow run %s could not be moved on; it stays open for the next pass", run_id)
            continue
        if status is None:  # another process is moving it
            continue
        report.advanced += 1
        report.runs.append(run_id)
        if status in ("waiting", "done", "failed"):
            setattr(report, status, getattr(report, status) + 1)
    return report


def start_cursor(engine: Engine) -> None:
    """Flows react from now on: place their history cursor at the head of the change history, if not yet placed.

    Long-running processes call it when they start, so the changes of their first sync count.
    """
    with engine.begin() as conn:
        _place_cursor(conn)


def _place_cursor(conn: Connection) -> None:
    st = StreamState.__table__
    upsert(conn, st, [{"connector": CURSOR_KEY[0], "entity": CURSOR_KEY[1], "cursor": {"seq": head(conn)},
                       "updated_at": utcnow()}], ["connector", "entity"], [])


def _cursor_where() -> Any:
    st = StreamState.__table__
    return (st.c.connector == CURSOR_KEY[0]) & (st.c.entity == CURSOR_KEY[1])


def _news(engine: Engine, flows: dict[str, Flow]) -> bool:
    """Golden changes the flows have not seen yet, or runs left ``running``: two indexed reads, no scan."""
    st, fr = StreamState.__table__, FlowRun.__table__
    with engine.connect().execution_options(triad_readonly=True) as conn:
        cursor = conn.scalar(select(st.c.cursor).where(_cursor_where()))
        if cursor is None or int(cursor.get("seq", 0)) < head(conn):
            return True
        return conn.scalar(select(fr.c.id).where(fr.c.status == "running", fr.c.flow.in_(sorted(flows))).limit(1)) \
            is not None


def _start_runs(engine: Engine, flows: dict[str, Flow], report: FlowReport) -> tuple[int, int]:
    """Start a run for each trigger event after the cursor; returns the history range read, (after, up to].

    The cursor row stays locked until commit, so two processes never read the same range:
    the second one waits and then reads only what came after.
    """
    ht, st = FieldHistory.__table__, StreamState.__table__
    entities = sorted({f.when.entity for f in flows.values()})
    with engine.begin() as conn:
        cursor = conn.scalar(select(st.c.cursor).where(_cursor_where()).with_for_update())
        if cursor is None:
            _place_cursor(conn)
            cursor = conn.scalar(select(st.c.cursor).where(_cursor_where()).with_for_update())
        since = last = int((cursor or {}).get("seq", 0))
        top = head(conn)     # read under the lock: every row up to it is committed
        while last < top:
            rows = list(conn.execute(select(ht).where(ht.c.seq > last, ht.c.seq <= top, ht.c.entity.in_(entities))
                                     .order_by(ht.c.seq).limit(SCAN)))
            new_runs = [run for h in rows for run in _triggered(flows, h)]
            if new_runs:
                upsert(conn, FlowRun.__table__, new_runs, ["flow", "trigger_key"], [])
                report.started += len(new_runs)
            last = rows[-1].seq if len(rows) == SCAN else top
        if top != since:
            conn.execute(update(st).where(_cursor_where()).values(cursor={"seq": top}, updated_at=utcnow()))
    return since, top


def _triggered(flows: dict[str, Flow], h: Any) -> list[dict[str, Any]]:
    """The runs one history row starts."""
    out = []
    for flow in flows.values():
        t = flow.when
        if h.entity != t.entity or (t.system and h.system != t.system):
            continue
        if h.field == t.field:
            value = h.new
        elif h.field == CREATED and t.on_create:
            value = (h.new or {}).get(t.field)
        else:
            continue
        if value is not None and value == encode(decode(t.becomes, ENTITIES[t.entity].fields[t.field])):
            out.append({"id": new_id(), "flow": flow.name, "trigger_key": f"{h.record_id}:{h.seq}",
                        "entity": h.entity, "record_id": h.record_id, "status": "running",
                        "context": {"records": {"trigger": h.record_id}, "next": 0},
                        "created_at": utcnow(), "updated_at": utcnow()})
    return out


def _runs_to_move(engine: Engine, flows: dict[str, Flow], since: int, top: int, changed_only: bool) -> list[str]:
    """Open runs, oldest first; with ``changed_only`` the running ones and those waiting on a changed record."""
    fr, ht = FlowRun.__table__, FieldHistory.__table__
    q = select(fr.c.id, fr.c.status, fr.c.context).where(fr.c.flow.in_(sorted(flows))).order_by(fr.c.created_at, fr.c.id)
    if changed_only and top == since:
        q = q.where(fr.c.status == "running")
    else:
        q = q.where(fr.c.status.in_(["running", "waiting"]))
    with engine.connect() as conn:
        runs = list(conn.execute(q))
        if not changed_only:
            return [r.id for r in runs]
        records = {r.id: set(((r.context or {}).get("records") or {}).values()) for r in runs}
        wanted = sorted(set().union(*records.values()))
        changed: set[str] = set()
        for part in chunks(wanted, 500):
            changed.update(conn.scalars(select(ht.c.record_id).distinct().where(
                ht.c.seq > since, ht.c.seq <= top, ht.c.record_id.in_(part))))
    return [r.id for r in runs if r.status == "running" or records[r.id] & changed]


def advance(engine: Engine, parts: Parts, flows: dict[str, Flow], run_id: str, *, skip_locked: bool = False,
            outbox_ids: list[str] | None = None) -> str | None:
    """Move one run forward in one transaction; returns its status.

    The run's row stays locked to the end, so no two processes move one run. With
    ``skip_locked`` a run another process holds (or that closed meanwhile) is left
    alone and None is returned. ``outbox_ids`` collects the outbox rows the steps queue.
    """
    fr = FlowRun.__table__
    with engine.begin() as conn:
        q = select(fr).where(fr.c.id == run_id)
        if skip_locked:
            q = q.where(fr.c.status.in_(["running", "waiting"])).with_for_update(skip_locked=True)
        else:
            q = q.with_for_update()
        run = conn.execute(q).mappings().first()
        if run is None:
            if skip_locked:
                return None
            raise NotFound(f"no flow run {run_id} (see `triad flows list`)")
        flow = flows.get(run["flow"])
        if flow is None:
            return run["status"]
        ctx = dict(run["context"] or {})
        records: dict[str, str] = dict(ctx.get("records") or {})
        i = int(ctx.get("next", 0))
        status = "running"
        now = utcnow()
        queued: list[str] = []
        while i < len(flow.steps):
            step = flow.steps[i]
            row = _step_row(conn, run_id, i, step, now)
            try:
                if not _condition(conn, flow, records, step.when):
                    _finish_step(conn, row, "skipped", {}, now)
                    i += 1
                    continue
                result = _execute(conn, parts, flow, step, records, now, row, queued)
                if step.wait_for and not _waited(conn, flow, records, step):
                    _mark(conn, row, "waiting", result, now)
                    status = "waiting"
                    break
                _finish_step(conn, row, "done", result, now)
                i += 1
            except (UsageError, ValueError, KeyError, ArithmeticError) as exc:
                error = f"step {i} '{step.name}': {_reason(exc)}"
                _mark(conn, row, "failed", {}, now, error=error)
                status = "failed"
                log.warning("flow %s run %s failed at %s", flow.name, run_id, error)
                break
        else:
            status = "done"
        ctx.update(records=records, next=i)
        conn.execute(update(fr).where(fr.c.id == run_id).values(status=status, context=ctx, updated_at=now))
    if outbox_ids is not None:
        outbox_ids.extend(queued)
    return status


def _reason(exc: Exception) -> str:
    """What went wrong, readable: a KeyError's message without quotes, a bare decimal error named."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, InvalidOperation):     # its str() is only "[<class 'decimal.ConversionSyntax'>]"
        return "a value is not a decimal number"
    return str(exc)


def _step_row(conn: Connection, run_id: str, i: int, step: Step, now: datetime) -> dict[str, Any]:
    fs = FlowStep.__table__
    row = conn.execute(select(fs).where(fs.c.run_id == run_id, fs.c.step_no == i)).mappings().first()
    if row is None:
        row = {"id": new_id(), "run_id": run_id, "step_no": i, "name": step.name, "action": step.action,
               "status": "pending", "attempts": 0, "result": {}, "error": None, "started_at": now, "finished_at": None}
        conn.execute(insert(fs), [row])
    return dict(row)


def _mark(conn: Connection, row: dict, status: str, result: dict, now: datetime, error: str | None = None) -> None:
    fs = FlowStep.__table__
    conn.execute(update(fs).where(fs.c.id == row["id"]).values(
        status=status, result={**(row.get("result") or {}), **result}, error=error,
        attempts=fs.c.attempts + (1 if status == "failed" else 0)))    # a pass that finds it still waiting is no attempt


def _finish_step(conn: Connection, row: dict, status: str, result: dict, now: datetime) -> None:
    fs = FlowStep.__table__
    conn.execute(update(fs).where(fs.c.id == row["id"]).values(
        status=status, result={**(row.get("result") or {}), **result}, error=None, finished_at=now))


def _value_of(conn: Connection, flow: Flow, records: dict[str, str], ref: str) -> Any:
    """``trigger.amount`` or ``budget.status`` or ``budget.id``: the encoded golden value."""
    name, _, field_name = ref.partition(".")
    rid = records.get(name)
    if rid is None:
        return None
    entity = flow.entity_of(name)
    if field_name == "id":
        return _live(conn, entity, rid, records, name).id
    row = _live(conn, entity, rid, records, name)
    return row.values.get(field_name)


def _live(conn: Connection, entity: str, rid: str, records: dict[str, str], name: str,
          lock: bool = False) -> golden.GoldenRow:
    """The record a run refers to as ``name``; one a steward merged away is its survivor from then on
    (steps applied to the tombstone reached no system: it gets no writes)."""
    for _ in range(10):   # a chain of merges, never a loop
        row = golden.load(conn, entity, [rid], lock=lock).get(rid)
        if row is None:
            raise KeyError(f"{entity} {rid} of {name} no longer exists")
        if not row.merged_into:
            records[name] = rid
            return row
        rid = row.merged_into
    raise KeyError(f"{entity} {records.get(name)} of {name}: too many merges to follow")


def _condition(conn: Connection, flow: Flow, records: dict[str, str], when: dict[str, Any]) -> bool:
    for ref, expected in when.items():
        actual = _value_of(conn, flow, records, ref)
        wanted = expected if isinstance(expected, list) else [expected]
        if actual not in _encoded(wanted):
            return False
    return True


def _encoded(values: list[Any]) -> list[Any]:
    """Values written in the config as stored values compare: text as it is, numbers and dates encoded."""
    return [v if isinstance(v, str) else encode(v) for v in values]


# an approval withdrawn or cancelled in the OA system is never decided: waiting on it would wait forever
ENDS_WITHOUT_DECISION = {("approval", "status"): ["cancelled"]}


def _waited(conn: Connection, flow: Flow, records: dict[str, str], step: Step) -> bool:
    """Whether the awaited value came. One of ``fail_on`` (by default a cancelled approval) fails the step:
    the record waited on is let go, so `triad flows retry` raises (or makes) it afresh."""
    w = step.wait_for
    assert w is not None
    actual = _value_of(conn, flow, records, f"{w.record}.{w.field}")
    if w.present:
        return actual not in (None, "")
    if actual in _encoded(w.in_ or []):
        return True
    ends = w.fail_on if w.fail_on is not None else ENDS_WITHOUT_DECISION.get((flow.entity_of(w.record), w.field), [])
    if actual in _encoded(ends):
        rid = records.get(w.record)
        if w.record == step.name:
            records.pop(w.record)
        raise ValueError(f"{w.record}.{w.field} is {actual} ({flow.entity_of(w.record)} {rid}): what it waits for "
                         f"will not come; `triad flows retry` starts the step again")
    return False


def _values(conn: Connection, flow: Flow, records: dict[str, str], step: Step, entity: str,
            now: datetime) -> dict[str, Any]:
    types = ENTITIES[entity].fields
    out: dict[str, Any] = {}
    for f, v in step.set.items():
        if f not in types:
            raise UsageError(f"{entity} has no field '{f}'")
        out[f] = constant(f, v, types[f], now)
    for f, ref in step.copy_.items():
        if f not in types:
            raise UsageError(f"{entity} has no field '{f}'")
        out[f] = _value_of(conn, flow, records, ref)
    return out


def _execute(conn: Connection, parts: Parts, flow: Flow, step: Step, records: dict[str, str], now: datetime,
             row: dict[str, Any], queued: list[str]) -> dict[str, Any]:
    who = f"flow:{flow.name}"
    if step.action == "wait":
        return {}
    if step.action in ("create_record", "raise_approval"):
        if step.name in records:          # created on an earlier pass: never twice
            return {"record_id": records[step.name]}
        entity = step.entity or "approval"
        values = _values(conn, flow, records, step, entity, now)
        if step.action == "raise_approval":
            values.setdefault("status", "pending")
            values.setdefault("submitted_at", encode(now))
            values.setdefault("subject_entity", flow.when.entity)
            values.setdefault("subject_id", records["trigger"])
        if step.line is not None:
            from hub.canonical import ORDER_LINE_FIELDS
            line: dict[str, Any] = {"line_no": 1}
            for f, v in step.line.set.items():
                line[f] = constant(f"line.{f}", v, ORDER_LINE_FIELDS.get(f, "string"), now)
            for f, ref in step.line.copy_.items():
                line[f] = _value_of(conn, flow, records, ref)
            if line.get("amount") is None and line.get("quantity") and line.get("unit_price"):
                from decimal import Decimal
                line["amount"] = encode(Decimal(str(line["quantity"])) * Decimal(str(line["unit_price"])))
            values["lines"] = [line]
        rid = new_id()
        if step.number:
            values.setdefault(step.number, f"{step.number_prefix}{rid[-8:]}")
        values = {k: v for k, v in values.items() if v is not None}
        golden.insert_new(conn, entity, [(rid, values, {CREATED: [who, encode(now)]})], now)
        history = [{"entity": entity, "record_id": rid, "field": CREATED, "old": None, "new": values, "system": who,
                    "user": None, "run_id": None, "reason": "flow", "at": now}]
        lock_history(conn)
        conn.execute(insert(FieldHistory.__table__), history)
        subscriptions.queue_changes(conn, entity, history, None, now)
        queue = OutboxQueue(entity, None, now)
        for target in step.systems or parts.out_systems(entity):
            queue.queue(target, rid, values)
        mine = [r["id"] for r in queue.rows.values()]
        queued.extend(mine)
        queue.flush(conn)
        records[step.name] = rid
        return {"record_id": rid, "entity": entity, "values": values, "outbox": mine}
    # update_record
    target = records.get(step.target or "trigger")
    entity = flow.entity_of(step.target or "trigger")
    if target is None:
        raise KeyError(f"step {step.name}: no record for {step.target}")
    values = _values(conn, flow, records, step, entity, now)
    row_g = _live(conn, entity, target, records, step.target or "trigger", lock=True)
    target = row_g.id
    changed = {f: v for f, v in values.items() if row_g.values.get(f) != v}
    mine: list[str] = []
    if changed:
        history = [{"entity": entity, "record_id": target, "field": f, "old": row_g.values.get(f), "new": v,
                    "system": who, "user": None, "run_id": None, "reason": "flow", "at": now}
                   for f, v in changed.items()]
        row_g.values.update(changed)
        row_g.provenance = {**row_g.provenance, **{f: [who, encode(now)] for f in changed}}
        golden.update_changed(conn, entity, [(row_g, row_g.provenance)], now)
        lock_history(conn)
        conn.execute(insert(FieldHistory.__table__), history)
        subscriptions.queue_changes(conn, entity, history, None, now)
        queue = OutboxQueue(entity, None, now)
        for t in step.systems or parts.out_systems(entity):
            queue.queue(t, target, changed)
        mine = [r["id"] for r in queue.rows.values()]
        queued.extend(mine)
        queue.flush(conn)
    return {"record_id": target, "entity": entity, "changed": changed, "outbox": mine}


def list_runs(engine: Engine, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    fr = FlowRun.__table__
    q = select(fr).order_by(fr.c.created_at.desc(), fr.c.id.desc()).limit(limit)
    if status:
        q = q.where(fr.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def show_run(engine: Engine, run_id: str) -> dict[str, Any]:
    """The run, its steps, and for a step that wrote a record the writes it queued (``deliveries``): a step
    is done when its record is golden and queued; whether each system took it is told here."""
    fr, fs = FlowRun.__table__, FlowStep.__table__
    with engine.connect() as conn:
        run = conn.execute(select(fr).where(fr.c.id == run_id)).mappings().first()
        if run is None:
            raise NotFound(f"no flow run {run_id} (see `triad flows list`)")
        steps = [dict(s) for s in conn.execute(select(fs).where(fs.c.run_id == run_id).order_by(fs.c.step_no)).mappings()]
        for step in steps:
            step["deliveries"] = _deliveries(conn, step)
    return {**dict(run), "steps": steps}


def _deliveries(conn: Connection, step: dict[str, Any]) -> list[dict[str, Any]]:
    """Where the writes a step queued for its record stand (``result.outbox``: their outbox ids)."""
    ids = (step.get("result") or {}).get("outbox") or []
    if not ids:
        return []
    ot = Outbox.__table__
    rows = conn.execute(select(ot.c.id, ot.c.connector, ot.c.status, ot.c.attempts, ot.c.last_error)
                        .where(ot.c.id.in_(ids)).order_by(ot.c.connector)).mappings()
    return [dict(r) for r in rows]


def retry_run(engine: Engine, parts: Parts, run_id: str) -> str:
    """A failed run goes back to running from its failed step."""
    fr = FlowRun.__table__
    with engine.begin() as conn:
        res = conn.execute(update(fr).where(fr.c.id == run_id, fr.c.status == "failed").values(status="running"))
        if res.rowcount == 0:
            run = conn.execute(select(fr.c.status).where(fr.c.id == run_id)).first()
            if run is None:
                raise NotFound(f"no flow run {run_id} (see `triad flows list`)")
            raise UsageError(f"flow run {run_id} is {run.status}, not failed")
    return advance(engine, parts, {f.name: f for f in parts.cfg.flows}, run_id)
