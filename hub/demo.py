"""`triad demo`: the whole story on one machine in under a minute.

A Salesforce CRM, an SAP ERP and DingTalk approvals (simulators speaking their
real wire formats) and an embedded SQLite hub: an initial sync of overlapping
data, identity and a conflict, then the lead-to-order flow from a CRM deal
through an OA approval to orders in both systems, the ERP's shipment back to
the CRM, and the customer's rating to the OA side for review.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select

from hub.context import Context
from hub.errors import TriadError, UsageError
from hub.demo_systems import CALLBACK_TOKEN, DemoSystems, early_opportunity, free_port, overlap, start_systems
from hub.streams import Parts

CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
# the first line of every triad.yaml the demo writes: a folder holding another triad.yaml is not the demo's
MARKER = "# Written by `triad demo`, which rewrites this file and recreates triad-demo.db on each run."


@dataclass
class Story:
    """Prints each hop with its elapsed time and keeps it for --json."""

    say: Callable[[str], None]
    t0: float = field(default_factory=time.perf_counter)
    hops: list[dict[str, Any]] = field(default_factory=list)

    def hop(self, title: str, *lines: str, **facts: Any) -> None:
        at = time.perf_counter() - self.t0
        self.hops.append({"at": round(at, 2), "title": title, "lines": list(lines), **facts})
        self.say(f"[bold cyan][{at:5.1f}s][/bold cyan] [bold]{title}[/bold]")
        for line in lines:
            self.say(f"         {line}")


class Hub:
    """The hub's own operations, as the CLI would run them, for one demo project."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.engine = ctx.engine()
        self.parts = Parts(ctx.config())

    def sync(self, *connectors: str) -> list[Any]:
        from hub.flows import run_flows
        from hub.sync import run_sync
        reports = run_sync(self.engine, self.parts, connectors=connectors, user="demo")
        self.flows = run_flows(self.engine, self.parts)
        return reports

    def push(self) -> list[Any]:
        from hub.push import push
        return push(self.engine, self.parts)

    def settle(self, done: Callable[[], Any], reports: list[Any] | None = None, seconds: float = 20.0) -> Any:
        """Push until ``done()`` holds (the server's worker may hold some rows for a moment)."""
        deadline = time.time() + seconds
        while True:
            result = done()
            if result or time.time() > deadline:
                return result
            pushed = self.push()
            if reports is not None:
                reports[:] = pushed
            if not done():
                time.sleep(0.1)

    def one(self, model: Any, **where: Any) -> Any:
        t = model.__table__
        with self.engine.connect() as conn:
            q = select(t)
            for k, v in where.items():
                q = q.where(t.c[k] == v)
            return conn.execute(q.limit(1)).mappings().first()

    def xref(self, entity: str, record_id: str, system: str) -> str | None:
        from hub.models import Xref
        xt = Xref.__table__
        with self.engine.connect() as conn:
            return conn.scalar(select(xt.c.source_id).where(xt.c.entity == entity, xt.c.record_id == record_id,
                                                            xt.c.system == system))

    def golden_id(self, entity: str, system: str, source_id: str) -> str | None:
        from hub.models import Xref
        xt = Xref.__table__
        with self.engine.connect() as conn:
            return conn.scalar(select(xt.c.record_id).where(xt.c.entity == entity, xt.c.system == system,
                                                            xt.c.source_id == source_id))

    def close(self) -> None:
        self.parts.close()


def _count(reports: list[Any], key: str, connector: str | None = None, entity: str | None = None) -> int:
    return sum(r.counts[key] for r in reports if (connector in (None, r.connector)) and (entity in (None, r.entity)))


def check_folder(directory: Path) -> None:
    """Refuse a folder whose triad.yaml the demo did not write: the demo would replace it."""
    config = directory / "triad.yaml"
    if not config.is_file():
        return
    with config.open(encoding="utf-8", errors="replace") as f:
        first = f.readline().rstrip("\r\n")
    if first != MARKER:
        raise UsageError(f"{config} was not written by `triad demo`, which would replace it: pick an empty "
                         f"folder with --dir, or remove that triad.yaml")


def demo_config(values: dict[str, str]) -> str:
    """The shipped demo config, marked as the demo's, its ``${TRIAD_DEMO_*}`` defaults set to ``values``.

    The variables stay, so the file's addresses still come from the environment when it is set.
    """
    def default(m: re.Match) -> str:
        return "${%s:-%s}" % (m.group(1), values[m.group(1)])
    text = re.sub(r"\$\{(TRIAD_DEMO_[A-Z_]+)(?::-[^}]*)?\}", default, CONFIG.read_text(encoding="utf-8"))
    return f"{MARKER}\n{text}"


def prepare(directory: Path, systems: DemoSystems) -> Context:
    """A fresh project folder with the shipped demo config pointed at the running simulators."""
    check_folder(directory)
    if directory.exists():
        for name in ("triad-demo.db", "triad-demo.db-wal", "triad-demo.db-shm"):
            (directory / name).unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    # the project's triad.yaml names the running simulators, so the commands printed at the end work as they are
    values = {"TRIAD_DEMO_CRM_URL": systems.url("crm"), "TRIAD_DEMO_ERP_URL": systems.url("erp"),
              "TRIAD_DEMO_OA_URL": systems.url("oa"), "TRIAD_DEMO_OA_TOKEN": CALLBACK_TOKEN,
              "TRIAD_DEMO_OA_AES_KEY": systems.aes_key,
              "TRIAD_DEMO_OA_USER": systems.oa.sim.state.data["users"][1]["userId"]}
    (directory / "triad.yaml").write_text(demo_config(values), encoding="utf-8")
    # this run talks to the simulators it started, whatever the environment names
    for name in ("TRIAD_DATABASE_URL", *values):
        os.environ.pop(name, None)
    ctx = Context(config_path=str(directory / "triad.yaml"), user_name="demo")
    from hub.sqlite_checkpoint import dispose
    from hub.store import make_engine, upgrade
    engine = make_engine(ctx.config().store.url)
    upgrade(engine)
    dispose(engine)
    return ctx


def start_server(ctx: Context, port: int) -> tuple[Any, threading.Thread]:
    """`triad serve` in a thread: DingTalk's callbacks arrive over real HTTP."""
    import uvicorn

    from hub.server import create_app
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, name="triad-serve", daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    return server, thread


def callbacks_sent(systems: DemoSystems, known: set[str]) -> bool:
    """Every approval instance made since ``known`` was taken has had its ``start`` callback sent.

    The simulator sends that callback from a background thread after it answers the create call.
    """
    sim = systems.oa.sim
    started = {d.event.get("processInstanceId") for d in list(sim.deliveries) if d.event.get("type") == "start"}
    return set(sim.workflow.instances) - known <= started


def pending_work(engine: Any) -> dict[str, int]:
    """Inbox and outbox rows still waiting to be processed or delivered."""
    from sqlalchemy import func

    from hub.models import Inbox, Outbox
    with engine.connect() as conn:
        return {name: int(conn.scalar(select(func.count()).where(t.c.status == "pending")) or 0)
                for name, t in (("inbox", Inbox.__table__), ("outbox", Outbox.__table__))}


def finish(hub: Hub, systems: DemoSystems, server: Any, thread: threading.Thread, known: set[str]) -> dict[str, int]:
    """Finish the demo's own work while the simulators still answer: the events they sent, then the outbox.

    Stopped with work pending, a later `triad worker` would take those rows and fail against systems
    that are gone. Returns what is still pending (nothing, unless a system refused a write).
    """
    from hub.inbox_processor import InboxProcessor
    from hub.push import push_ids
    from hub.worker import drain
    wait_for(lambda: callbacks_sent(systems, known), 5.0)
    server.should_exit = True          # the server's worker stops after the batch it is running
    thread.join(40.0)
    proc = InboxProcessor(hub.engine, hub.parts, worker="triad-demo")
    try:
        drain(proc, lambda ids: push_ids(hub.engine, hub.parts, ids, worker="triad-demo"), threading.Event())
    finally:
        proc.close()
    drain_outbox(hub)
    return pending_work(hub.engine)


def drain_outbox(hub: Hub, seconds: float = 30.0) -> None:
    """Push until no outbox row is pending, or the next one is due only after ``seconds``.

    One pass leaves the rows backing off after a failure (a slow or throttling system) pending,
    and once the demo ends nothing could deliver them to its simulators.
    """
    from sqlalchemy import func

    from hub.models import Outbox
    from hub.types import utcnow
    ot = Outbox.__table__
    deadline = time.time() + seconds
    while True:
        hub.push()
        with hub.engine.connect() as conn:
            due = conn.scalar(select(func.min(ot.c.next_attempt_at)).where(ot.c.status == "pending"))
        if due is None:
            return
        if due.tzinfo is None:
            due = due.replace(tzinfo=utcnow().tzinfo)
        wait = max(0.1, (due - utcnow()).total_seconds())
        if time.time() + wait > deadline:
            return
        time.sleep(wait)


def wait_for(check: Callable[[], Any], seconds: float) -> Any:
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    return None


def run_demo(directory: Path, say: Callable[[str], None], *, keep: bool = False, seed: int = 42,
             records: int = 30) -> dict[str, Any]:
    from hub.models import Approval, Conflict, Opportunity, Order
    check_folder(directory)            # before anything starts: the folder may be someone's project
    story = Story(say)
    port = free_port()
    systems = start_systems(seed, records, f"http://127.0.0.1:{port}/webhooks/oa")
    mirrored = overlap(systems)
    deal = early_opportunity(systems)
    known = set(systems.oa.sim.workflow.instances)
    ctx = prepare(directory, systems)
    server, thread = start_server(ctx, port)
    hub = Hub(ctx)
    summary: dict[str, Any] = {"directory": str(directory.resolve()), "config": str(directory / "triad.yaml")}
    cfg = f"--config {directory}/triad.yaml"
    try:
        story.hop("Three systems are up",
                  f"CRM  Salesforce REST   {systems.url('crm')}",
                  f"ERP  SAP OData v2      {systems.url('erp')}",
                  f"OA   DingTalk workflow {systems.url('oa')}",
                  f"hub  triad serve       http://127.0.0.1:{port} (webhooks, /healthz, /api/v1), store {directory}/triad-demo.db")

        reports = hub.sync()
        story.hop("Initial sync: every system into the golden store",
                  *[f"{r.connector}/{r.entity}: read {r.counts['read']}, created {r.counts['created']}, "
                    f"linked {r.counts['linked']}, quarantined {r.counts['quarantined']}" for r in reports])
        if any(r.status != "ok" for r in reports):
            raise TriadError("; ".join(f"{r.connector}/{r.entity}: {r.error}" for r in reports if r.error))

        linked = []
        for m in mirrored:
            rid = hub.golden_id("customer", "crm", m["account"])
            if rid and hub.xref("customer", rid, "erp"):
                linked.append(rid)
        summary["linked_customer"] = linked[0] if linked else None
        story.hop("Identity: the same companies in CRM and ERP became one golden customer each",
                  f"{len(linked)} of {len(mirrored)} overlapping companies linked by their tax id "
                  f"(统一社会信用代码), even where sales shortened the name",
                  *[f"{m['name']}: crm {m['account']} = erp {m['partner']}" for m in mirrored[:3]])

        with hub.engine.connect() as conn:
            ct = Conflict.__table__
            conflicts = list(conn.execute(select(ct).where(ct.c.entity == "customer").order_by(ct.c.created_at)).mappings())
        open_c = [c for c in conflicts if c["status"] == "open"]
        auto_c = [c for c in conflicts if c["status"] == "auto"]
        shown = open_c + [c for c in auto_c if c["rule"] == "most_recent"][:2]
        lines = [f"{c['field']}: {c['rule']} -> {c['status']} (golden {c['golden']!r}), values {dict(c['values'])}"
                 for c in shown]
        by_rule: dict[str, int] = {}
        for c in auto_c:
            by_rule[f"{c['field']} ({c['rule']})"] = by_rule.get(f"{c['field']} ({c['rule']})", 0) + 1
        lines.append("settled: " + ", ".join(f"{k} x{v}" for k, v in sorted(by_rule.items(), key=lambda kv: -kv[1])))
        summary["open_conflict"] = open_c[0]["id"] if open_c else None
        story.hop(f"Conflicts: {len(auto_c)} settled by the rules, {len(open_c)} waiting for a steward", *lines)

        # --- the lead-to-order flow --------------------------------------------------------------
        systems.crm.sim.update("Opportunity", deal["Id"], {"StageName": "Proposal/Price Quote"})
        t = time.perf_counter()
        hub.sync("crm")
        opp_id = hub.golden_id("opportunity", "crm", deal["Id"])
        approval = hub.one(Approval, subject_id=opp_id, kind="budget")
        pushes: list[Any] = []
        # the server's worker may be pushing the same rows: keep draining until the write has landed
        instance = hub.settle(lambda: approval and hub.xref("approval", approval["id"], "oa"), pushes)
        summary["opportunity"] = opp_id
        story.hop("CRM: the deal reaches Proposal -> the flow raises a budget approval in DingTalk",
                  f"deal {deal['Name']} ({deal['Id']}), {deal.get('Amount')} {deal.get('CurrencyIsoCode')}",
                  f"approval {approval['id'] if approval else '?'} -> DingTalk instance {instance} "
                  f"in {time.perf_counter() - t:.2f}s")
        if not instance:
            raise TriadError("the budget approval did not reach DingTalk: " +
                               "; ".join(f"{p.connector}/{p.entity}: {p.error}" for p in pushes if p.error))

        t = time.perf_counter()
        systems.oa.sim.decide(instance, "agree", systems.oa.sim.state.data["users"][0]["userId"],
                              remark="预算内，同意")
        decided = wait_for(lambda: (hub.one(Approval, id=approval["id"]) or {}).get("status") == "approved", 5.0)
        via = "callback" if decided else "polling"
        if not decided:
            hub.sync("oa")
        hub.sync()
        order = hub.one(Order, opportunity_id=opp_id)
        both = hub.settle(lambda: order and hub.xref("order", order["id"], "crm") and hub.xref("order", order["id"], "erp"))
        opp = hub.one(Opportunity, id=opp_id)
        sf_order = hub.xref("order", order["id"], "crm") if order else None
        sap_order = hub.xref("order", order["id"], "erp") if order and both else None
        summary["order"] = order["id"] if order else None
        story.hop(f"OA: the manager approves -> Triad hears it by {via}, the deal is won, the order goes to CRM and ERP",
                  f"approval approved, opportunity stage {opp['stage']}",
                  f"order {order['order_no'] if order else '?'}: Salesforce Order {sf_order}, SAP sales order {sap_order}",
                  f"{time.perf_counter() - t:.2f}s from the decision to both orders")
        if not (sf_order and sap_order):
            raise TriadError("the order did not reach both systems")

        t = time.perf_counter()
        systems.erp.store.update("A_SalesOrder", sap_order, {
            "OverallSDProcessStatus": "B", "OverallDeliveryStatus": "C", "YY1_TrackingNumber_SDH": "SF1029384756"})
        hub.sync("erp")
        hub.settle(lambda: systems.crm.sim.get("Order", sf_order).get("TrackingNumber__c"))
        account = systems.crm.sim.get("Order", sf_order)
        story.hop("ERP: the order ships -> status and tracking number flow back to the CRM",
                  f"SAP {sap_order}: delivered, tracking SF1029384756",
                  f"Salesforce {sf_order}: ShippingStatus__c={account.get('ShippingStatus__c')}, "
                  f"TrackingNumber__c={account.get('TrackingNumber__c')} ({time.perf_counter() - t:.2f}s)")

        t = time.perf_counter()
        systems.crm.sim.update("Order", sf_order, {"Satisfaction__c": 9})
        hub.sync("crm")
        review = hub.one(Approval, subject_id=order["id"], kind="performance_review")
        review_instance = hub.settle(lambda: review and hub.xref("approval", review["id"], "oa"))
        story.hop("CRM: the customer rates the delivery 9/10 -> a satisfaction review lands in DingTalk",
                  f"review approval {review['id'] if review else '?'} -> DingTalk instance {review_instance} "
                  f"({time.perf_counter() - t:.2f}s)")

        from hub.flows import list_runs
        runs = list_runs(hub.engine)
        summary.update(flow_runs=[{"id": r["id"], "status": r["status"]} for r in runs],
                       elapsed=round(time.perf_counter() - story.t0, 1))
        story.hop("Done", f"flow run {runs[0]['id']}: {runs[0]['status']}" if runs else "no flow run",
                  f"the whole story took {summary['elapsed']}s")
        say("\nExplore further:" if keep else "\nExplore further (while the simulators run, use --keep):")
        for cmd in (f"triad {cfg} records show customer {summary['linked_customer']}",
                    f"triad {cfg} conflicts list --status open",
                    f"triad {cfg} flows show {runs[0]['id'] if runs else 'RUN_ID'}",
                    f"triad {cfg} records history order {summary['order']}",
                    f"triad {cfg} runs list"):
            say(f"  {cmd}")
        summary["hops"] = story.hops
        if keep:
            say("\n--keep: simulators and `triad serve` keep running; Ctrl-C stops them.")
            from hub.interrupts import finish_batch_on_ctrl_c
            # the first Ctrl-C says what comes next (finishing can take seconds); a second stops at once
            # `kill` too: a demo run as a shell's background job ignores Ctrl-C, and killed outright it would
            # leave its pending work to systems that are gone
            with finish_batch_on_ctrl_c("Ctrl-C: finishing the demo's pending work, then stopping "
                                        "(Ctrl-C again to stop at once)", sigterm=True,
                                        first_term="SIGTERM: finishing the demo's pending work, then stopping") as stop:
                while not stop.wait(0.5):
                    pass
    finally:
        try:
            left = finish(hub, systems, server, thread, known)
            summary["pending"] = left
            if any(left.values()):
                say(f"\n{left['inbox']} inbox and {left['outbox']} outbox row(s) are still pending "
                    f"(see `triad {cfg} outbox list`)")
        finally:
            hub.close()
            systems.stop()
    return summary
