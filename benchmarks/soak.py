"""Fault soak: a Salesforce CRM and a Kingdee ERP (simulators) with injected faults and users editing
both sides, run for a fixed number of `sync run` / `sync push` cycles; then the ledger check.

Each cycle: users edit phone, e-mail, name and city directly in the simulators (some records on both
sides between two syncs: concurrent edits) and create a few customers; every change goes into the
driver's ledger with its time. Then the hub syncs in and pushes out while the simulators fail 10 %
of calls with 5xx, throttle (429 / Kingdee MsgCode 14), cut bodies in half, add latency spikes,
expire tokens, spend a request budget, or (Kingdee) store a save and answer after the client gave
up. After the cycles the faults stop and the hub settles (sync + push until the outbox holds no
pending row); then :func:`hub.ledger.check` proves every change golden, in an open or settled
conflict, superseded or quarantined with a reason, nothing duplicated, and every system agreeing
with the golden store except on open conflicts. Prints one JSON line.

    python benchmarks/soak.py --records 200 --cycles 30
    python benchmarks/soak.py --records 200 --cycles 30 --store postgresql+psycopg://postgres@127.0.0.1:5432/soak
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:          # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from connectors.simkit import SimOptions, SimServer  # noqa: E402
from hub.ledger import Change, check, outbox_depth  # noqa: E402

ENTITY = "customer"
# canonical field -> the system's field, for the edits users make
SOURCE_FIELDS = {"crm": {"phone": "Phone", "email": "Email__c", "name": "Name", "city": "BillingCity"},
                 "erp": {"phone": "FTEL", "email": "FEMail", "name": "FName", "city": "FCITY"}}
CITIES = ("上海", "北京", "深圳", "杭州", "成都", "南京", "苏州", "武汉", "西安", "天津")
SHANGHAI = ZoneInfo("Asia/Shanghai")
KD_TIMEOUT = 0.8       # the Kingdee client's timeout: a save answered later than this is retried


def project_config(crm_url: str, erp_url: str, store: str, max_attempts: int = 8) -> dict[str, Any]:
    """The soak project's triad.yaml as data (tests adjust it before it is written)."""
    return {
        "store": {"url": store},
        "connectors": {
            "crm": {"type": "salesforce", "base_url": crm_url,
                    "auth": {"grant": "password", "client_id": "triad-client", "client_secret": "triad-secret",
                             "username": "demo@triad.local", "password": "triad-pass"},
                    "retry": {"attempts": 4, "backoff": 0.02, "max_wait": 0.2, "timeout": 10},
                    "entities": {"customer": {}}},
            "erp": {"type": "kingdee", "base_url": f"{erp_url}/k3cloud", "acct_id": "triad-acct",
                    "username": "demo@triad.local", "password": "triad-pass", "retries": 2, "backoff": 0.02,
                    "timeout": KD_TIMEOUT, "entities": {"customer": {"mapping": "erp_customer.yaml"}}},
        },
        "survivorship": {"customer": {
            "default": "most_recent",        # the later of two concurrent edits wins, recorded as an auto conflict
            "priority": ["erp", "crm"],
            "fields": {"email": "manual",    # a steward decides between two e-mail addresses: open conflicts
                       "code": {"rule": "priority"}, "created_at": {"rule": "priority"}}}},
        "matching": {"customer": {"exact": ["tax_id"]}},
        "outbox": {"max_attempts": max_attempts, "backoff_seconds": 0.2, "max_backoff_seconds": 2},
    }


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, dictionaries key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@dataclass
class SoakOptions:
    records: int = 40            # customers generated in each simulator
    cycles: int = 6
    seed: int = 7
    edits: int | None = None     # edits per system per cycle (default: records // 6, at least 3)
    concurrent: float = 0.3      # share of edits made to the same field on both sides
    inserts: int = 1             # new customers per system per cycle
    overlap: float = 0.25        # share of CRM accounts that are ERP customers too (same tax id)
    faults: bool = True
    store: str | None = None     # database URL; default SQLite in the work folder
    workdir: str | None = None
    max_attempts: int = 8
    settle_rounds: int = 15


@dataclass
class Systems:
    """The two simulators, served on 127.0.0.1, and the users' edit hooks."""

    crm: Any
    erp: Any
    servers: dict[str, SimServer] = field(default_factory=dict)

    @classmethod
    def start(cls, records: int, seed: int, wrap: Callable[[str, Any], Any] | None = None) -> "Systems":
        """Both simulators, served; ``wrap(name, app)`` may put a middleware in front of each."""
        from connectors.kingdee.simulator import create_app as kingdee_app
        from connectors.salesforce.simulator import create_app as salesforce_app
        systems = cls(salesforce_app(SimOptions(seed=seed, records=records)),
                      kingdee_app(SimOptions(seed=seed + 1, records=records)))
        wrap = wrap or (lambda name, app: app)
        systems.servers = {"crm": SimServer(wrap("crm", systems.crm)).start(),
                           "erp": SimServer(wrap("erp", systems.erp)).start()}
        return systems

    def url(self, name: str) -> str:
        return self.servers[name].base_url

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()

    # -- users at work -----------------------------------------------------------------------------
    def edit(self, system: str, sid: str, values: dict[str, Any]) -> None:
        """Change a record as a user would (the system validates and stamps it)."""
        if system == "crm":
            self.crm.sim.edit("Account", sid, values)
        else:
            self._kingdee_save({"FCUSTID": int(sid), **values}, list(values))

    def insert(self, system: str, values: dict[str, Any]) -> str:
        if system == "crm":
            return self.crm.sim.create("Account", values)
        return str(self._kingdee_save(values, None)["Id"])

    def _kingdee_save(self, model: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        from connectors.kingdee import sim_forms, sim_save
        state = self.erp.sim.state
        payload: dict[str, Any] = {"Model": model}
        if fields is not None:
            payload["NeedUpDateFields"] = fields
        with state.lock:
            result = sim_save.save(state.data, sim_forms.form_of("BD_Customer"), payload, batch=False,
                                   now=datetime.now(SHANGHAI).replace(tzinfo=None))["Result"]
            state.save()
        if not result["ResponseStatus"]["IsSuccess"]:
            raise RuntimeError(f"kingdee save refused: {result['ResponseStatus']['Errors']}")
        return result

    def live_ids(self, system: str) -> list[str]:
        if system == "crm":
            return self.crm.sim.ids("Account")
        return [str(c["FCUSTID"]) for c in self.erp.sim.state.data["forms"]["BD_Customer"]]

    # -- faults ------------------------------------------------------------------------------------
    def faults(self, rng: random.Random, on: bool) -> dict[str, Any]:
        """Set this cycle's faults on both simulators (read live by their fault injectors); what was set."""
        crm, erp = self.crm.sim.options, self.erp.sim.options
        for o in (crm, erp):
            o.fail_rate = o.rate_limit_rate = o.truncate_rate = 0.0
            o.latency_ms, o.token_ttl, o.request_budget = 0, None, None
        erp.extra["write_latency_ms"] = 0
        if not on:
            return {}
        chosen: dict[str, Any] = {"5xx": 0.10, "429": 0.05, "truncated": 0.03}
        for o in (crm, erp):   # Kingdee answers its throttling as MsgCode 14 in an HTTP 200 body
            o.fail_rate, o.rate_limit_rate, o.truncate_rate = 0.10, 0.05, 0.03
        if rng.random() < 0.3:
            chosen["latency_ms"] = crm.latency_ms = erp.latency_ms = rng.choice((20, 60, 120))
        if rng.random() < 0.4:
            chosen["token_ttl"] = crm.token_ttl = erp.token_ttl = 0.3
        if rng.random() < 0.25:
            name = rng.choice(("crm", "erp"))
            spent = self.crm.sim.api_calls if name == "crm" else self.erp.sim.calls
            (crm if name == "crm" else erp).request_budget = spent + rng.randint(2, 12)
            chosen["budget"] = name
        if rng.random() < 0.15:
            erp.extra["write_latency_ms"] = int(KD_TIMEOUT * 1000) + 200
            chosen["ack_lost"] = "erp"
        return chosen

    def fault_stats(self) -> dict[str, Any]:
        return {"crm": dict(self.crm.stats), "erp": {**self.erp.stats, **self.erp.sim.stats}}


def write_project(root: Path, systems: "Systems", store: str | None = None, max_attempts: int = 8,
                  overrides: dict[str, Any] | None = None) -> Path:
    """triad.yaml (``overrides`` merged into :func:`project_config`) and the ERP mapping in ``root``;
    the store migrated to head."""
    import yaml

    from hub.config import load_config
    from hub.store import make_engine, upgrade
    root.mkdir(parents=True, exist_ok=True)
    cfg = project_config(systems.url("crm"), systems.url("erp"), store or "sqlite:///hub.db", max_attempts)
    cfg = merged(cfg, overrides or {})
    (root / "triad.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    # the shipped Kingdee mapping, for an ERP that also holds the CRM's foreign customers: their
    # tax ids are VAT ids (not USCCs) and their provinces have no K3Cloud code, so it reads those only
    mapping = yaml.safe_load((ROOT / "mappings" / "kingdee" / "customer.yaml").read_text(encoding="utf-8"))
    mapping["fields"]["tax_id"] = {"from": "FTAXREGISTERCODE", "transform": ["strip", "upper"]}
    mapping["fields"]["province"]["readonly"] = True
    (root / "erp_customer.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False),
                                            encoding="utf-8")
    engine = make_engine(load_config(str(root / "triad.yaml")).store.url)   # relative to the config file
    upgrade(engine)
    engine.dispose()
    return root / "triad.yaml"


def mirror(systems: Systems, rng: random.Random, share: float) -> int:
    """Make some CRM accounts the same companies as ERP customers, as sales keyed them in (same tax id,
    number, name, contacts and address): linked by the exact tax id match at the first sync."""
    customers = [c for c in systems.erp.sim.state.data["forms"]["BD_Customer"]
                 if c.get("FTAXREGISTERCODE") and (c.get("FCOUNTRY") or {}).get("FNumber") == "CN"]
    accounts = systems.live_ids("crm")
    n = min(len(customers), len(accounts), int(len(accounts) * share))
    for account, c in zip(rng.sample(accounts, n), rng.sample(customers, n)):
        systems.edit("crm", account, {
            "TaxId__c": c["FTAXREGISTERCODE"], "AccountNumber": c["FNumber"], "Name": c["FName"],
            "Phone": c.get("FTEL"), "Email__c": c.get("FEMail"), "BillingCity": c.get("FCITY"),
            "BillingStreet": c.get("FADDRESS"), "BillingPostalCode": c.get("FZIP"), "BillingCountry": "China",
            "BillingState": (c.get("FPROVINCIAL") or {}).get("FName"), "CurrencyIsoCode": "CNY"})
    return n


class Users:
    """Random edits and inserts in both systems; every change is recorded in the ledger."""

    def __init__(self, systems: Systems, rng: random.Random) -> None:
        self.systems, self.rng = systems, rng
        self.ledger: list[Change] = []
        self.seq = 0

    def value(self, f: str) -> str:
        """A new value for ``f``, already in canonical form (so the ledger holds what golden will)."""
        self.seq += 1
        n, city = self.seq, self.rng.choice(CITIES)
        return {"phone": f"+86216{n % 10_000_000:07d}", "email": f"buyer{n}@soak{n % 97}.example.com",
                "name": f"{city}恒{n}贸易有限公司"}.get(f, f"{city}{n}")

    def change(self, system: str, sid: str, fields: dict[str, str]) -> None:
        self.systems.edit(system, sid, {SOURCE_FIELDS[system][f]: v for f, v in fields.items()})
        at = datetime.now(timezone.utc)
        self.ledger += [Change(system, sid, f, v, at) for f, v in fields.items()]

    def cycle(self, pairs: list[tuple[str, str]], edits: int, concurrent: float, inserts: int) -> dict[str, int]:
        """One round of user work between two syncs."""
        counts = {"edits": 0, "concurrent": 0, "inserts": 0}
        rng = self.rng
        for _ in range(edits):
            f = rng.choice(tuple(SOURCE_FIELDS["crm"]))
            if pairs and rng.random() < concurrent:
                crm_sid, erp_sid = rng.choice(pairs)
                first, second = rng.sample([("crm", crm_sid), ("erp", erp_sid)], 2)
                self.change(*first, {f: self.value(f)})
                self.change(*second, {f: self.value(f)})
                counts["concurrent"] += 1
                counts["edits"] += 2
                continue
            for system in ("crm", "erp"):
                ids = self.systems.live_ids(system)
                fields = {g: self.value(g) for g in rng.sample(tuple(SOURCE_FIELDS[system]), rng.randint(1, 2))}
                self.change(system, rng.choice(ids), fields)
                counts["edits"] += len(fields)
        for _ in range(inserts):
            for system in ("crm", "erp"):
                self.insert(system)
                counts["inserts"] += 1
        return counts

    def insert(self, system: str) -> str:
        from connectors.salesforce.data import org_code_check_digit, uscc_check_digit
        self.seq += 1
        values = {f: self.value(f) for f in SOURCE_FIELDS[system]}
        body = f"9{self.seq:07d}"      # a region no generated company uses: the tax id is new to both systems
        head = "91469027" + body + org_code_check_digit(body)
        tax = head + uscc_check_digit(head)
        code = f"SOAK-{system.upper()}-{self.seq:06d}"
        raw = {SOURCE_FIELDS[system][f]: v for f, v in values.items()}
        if system == "crm":
            raw.update(AccountNumber=code, TaxId__c=tax, BillingCountry="China", CurrencyIsoCode="CNY", Active__c=True)
        else:
            raw.update(FNumber=code, FTAXREGISTERCODE=tax, FCreateOrgId={"FNumber": "100"},
                       FCOUNTRY={"FNumber": "CN"}, FTRADINGCURRID={"FNumber": "PRE001"})
        sid = self.systems.insert(system, raw)
        at = datetime.now(timezone.utc)
        self.ledger += [Change(system, sid, f, v, at) for f, v in values.items()]
        return sid


def linked_pairs(engine: Any) -> list[tuple[str, str]]:
    """(CRM id, ERP id) of golden customers linked in both systems."""
    from sqlalchemy import text
    with engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(text(
            "select a.source_id, b.source_id from xref a join xref b on a.record_id = b.record_id "
            "where a.entity = 'customer' and b.entity = 'customer' and a.system = 'crm' and b.system = 'erp' "
            "and a.status = 'active' and b.status = 'active' order by a.source_id"))]


def hub_round(engine: Any, config: Path, tally: dict[str, int]) -> None:
    """`triad sync run` then `triad sync push`, as two CLI invocations would (fresh parts each)."""
    from hub.config import load_config
    from hub.push import push
    from hub.streams import Parts
    from hub.sync import run_sync
    parts = Parts(load_config(str(config)))
    try:
        for r in run_sync(engine, parts, user="soak"):
            tally[f"streams_{r.status}"] = tally.get(f"streams_{r.status}", 0) + 1
    finally:
        parts.close()
    parts = Parts(load_config(str(config)))
    try:
        for p in push(engine, parts):
            for k in ("written", "created", "failed", "dead", "deferred"):
                tally[f"push_{k}"] = tally.get(f"push_{k}", 0) + p.counts[k]
    finally:
        parts.close()


def settle(engine: Any, config: Path, rounds: int, tally: dict[str, int]) -> int | None:
    """Sync and push until a round reads nothing new, writes nothing and leaves nothing pending; the
    rounds used (None: not settled within ``rounds``). A round that wrote is followed by one that reads
    the systems back (echoes, records the push created)."""
    from sqlalchemy import func, select

    from hub.models import Outbox
    ot = Outbox.__table__
    for n in range(1, rounds + 1):
        with engine.connect() as conn:
            before = conn.scalar(select(func.count()).select_from(ot))
        wrote = tally.get("push_written", 0) + tally.get("push_failed", 0) + tally.get("push_dead", 0)
        hub_round(engine, config, tally)
        wrote = tally.get("push_written", 0) + tally.get("push_failed", 0) + tally.get("push_dead", 0) - wrote
        with engine.connect() as conn:
            after = conn.scalar(select(func.count()).select_from(ot))
            waiting = conn.scalar(select(func.min(ot.c.next_attempt_at)).where(ot.c.status == "pending"))
        if waiting is None and after == before and not wrote:
            return n
        if waiting is not None:     # back off like a scheduler would, never long
            wait = (waiting.replace(tzinfo=waiting.tzinfo or timezone.utc) - datetime.now(timezone.utc)).total_seconds()
            time.sleep(min(max(wait, 0.0), 2.5))
    return None


def run(opts: SoakOptions) -> dict[str, Any]:
    """The whole soak; returns the figures (and the ledger report's details)."""
    from hub.config import load_config
    from hub.store import make_engine
    from hub.streams import Parts
    t0 = time.perf_counter()
    rng = random.Random(opts.seed)
    edits = opts.edits if opts.edits is not None else max(3, opts.records // 6)
    systems = Systems.start(opts.records, opts.seed)
    tmp = None if opts.workdir else tempfile.TemporaryDirectory(prefix="triad-soak-")
    root = Path(opts.workdir or tmp.name)  # type: ignore[union-attr]
    tally: dict[str, int] = {}
    try:
        config = write_project(root, systems, opts.store, opts.max_attempts)
        cfg = load_config(str(config))
        engine = make_engine(cfg.store.url)
        users = Users(systems, rng)
        mirrored = mirror(systems, rng, opts.overlap)
        hub_round(engine, config, tally)            # the initial load and push: both sides know everyone
        settle(engine, config, opts.settle_rounds, tally)
        work = {"edits": 0, "concurrent": 0, "inserts": 0}
        faults: dict[str, int] = {}
        for _ in range(opts.cycles):
            done = users.cycle(linked_pairs(engine), edits, opts.concurrent, opts.inserts)
            for k, v in done.items():
                work[k] += v
            for k in systems.faults(rng, opts.faults):
                faults[k] = faults.get(k, 0) + 1
            hub_round(engine, config, tally)
        systems.faults(rng, False)
        rounds = settle(engine, config, opts.settle_rounds, tally)
        parts = Parts(cfg)
        try:
            report = check(engine, parts, ENTITY, users.ledger, exact_keys=("tax_id",))
        finally:
            parts.close()
        depth = outbox_depth(engine)
        engine.dispose()
    finally:
        systems.stop()
        if tmp is not None:
            tmp.cleanup()
    out = report.as_dict()
    return {"records": opts.records, "cycles": opts.cycles, "store": "postgresql" if opts.store else "sqlite",
            "changes": len(users.ledger), **work, "mirrored": mirrored,
            **{k: out[k] for k in ("golden", "pending", "open_conflict", "auto", "superseded", "quarantined",
                                   "lost", "duplicates", "disagreements", "failed_writes", "unreadable",
                                   "dead")},
            "outbox": depth, "settle_rounds": rounds, "fault_cycles": faults, "hub": tally,
            "injected": systems.fault_stats(), "wall_s": round(time.perf_counter() - t0, 1),
            "details": {k: out[k] for k in ("lost_items", "quarantine_reasons", "duplicate_items",
                                            "disagreement_items", "failed_write_items", "unreadable_items",
                                            "dead_items")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--edits", type=int, default=None, help="edits per system per cycle")
    ap.add_argument("--store", default=None, help="database URL (default: SQLite in the work folder)")
    ap.add_argument("--workdir", default=None, help="keep the project here (default: a temporary folder)")
    ap.add_argument("--no-faults", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    result = run(SoakOptions(records=a.records, cycles=a.cycles, seed=a.seed, edits=a.edits, store=a.store,
                             workdir=a.workdir, faults=not a.no_faults))
    print(json.dumps(result, ensure_ascii=False, default=str))
    return 0 if result["lost"] == result["duplicates"] == result["disagreements"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
