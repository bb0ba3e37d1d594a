"""A create whose answer was lost is not applied twice: a push killed while its create is in flight.

The simulator applies the create, then the push process is SIGKILLed before the answer reaches it. The
next push sends the create under the key of its first attempt (YonBIP's resubmitCheckKey answers with
the first record) and tells the connector it may have been sent (K3Cloud has no key: the record is
looked up by its values); the values changed since reach the system all the same.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import main
from connectors.simkit import SimOptions, SimServer
from hub.config import load_config
from hub.models import Outbox, Xref
from hub.store import make_engine

from .crashkit import Proc

pytestmark = pytest.mark.slow

MAPPING = """source: customers.csv
key: customer_no
updated_at: updated_at
fields:
  name: {from: name, transform: strip}
  email: {from: email, transform: email}
  city: city
  credit_limit: {from: credit_limit, type: decimal}
"""
NAME = "南京长江贸易有限公司"


class KillAfter:
    """WSGI middleware: the first request whose path holds ``marker`` is applied, then ``action`` runs
    (a SIGKILL of the caller) before the answer is sent."""

    def __init__(self, app: Any, marker: str) -> None:
        self.app, self.marker = app, marker
        self.action: Callable[[], None] | None = None
        self.fired = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        body = list(self.app(environ, start_response))
        if self.action is not None and self.marker in environ.get("PATH_INFO", ""):
            action, self.action = self.action, None
            action()
            self.fired.set()
        return body


def export(root: Path, city: str, credit_limit: str, stamp: str) -> None:
    (root / "src" / "customers.csv").write_text(
        "customer_no,name,email,city,credit_limit,updated_at\n"
        f"N001,{NAME},sales@cjmy.example,{city},{credit_limit},{stamp}\n", encoding="utf-8")


def project(root: Path, target: str) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src.yaml").write_text(MAPPING, encoding="utf-8")
    export(root, "南京", "50000", "2026-11-01 09:00:00")
    config = root / "triad.yaml"
    config.write_text(f"""store: {{url: 'sqlite:///{root / "hub.db"}'}}
connectors:
  src: {{type: file, path: ./src, direction: in, entities: {{customer: {{mapping: src.yaml}}}}}}
  tgt:
{target}
outbox: {{max_attempts: 3, backoff_seconds: 1}}
""", encoding="utf-8")
    return config


def triad(config: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output


def push_killed_in_create(config: Path, wire: KillAfter) -> None:
    """`triad sync push` in a subprocess, SIGKILLed once the system has applied its create."""
    proc = Proc(config, "sync", "push")
    wire.action = proc.kill
    proc.wait()
    assert wire.fired.is_set() and proc.killed, "the push was not killed in its create"


def links_and_rows(config: Path) -> tuple[list[str], list[str]]:
    """The target's customer links (their record ids) and the statuses of the rows queued for it."""
    engine = make_engine(load_config(str(config)).store.url)
    xt, ot = Xref.__table__, Outbox.__table__
    try:
        with engine.connect() as conn:
            links = list(conn.scalars(select(xt.c.record_id).where(xt.c.system == "tgt", xt.c.entity == "customer",
                                                                   xt.c.status == "active")))
            rows = list(conn.scalars(select(ot.c.status).where(ot.c.connector == "tgt")))
    finally:
        engine.dispose()
    return links, rows


@pytest.fixture
def serve() -> Iterable[Callable[[Any, str], tuple[KillAfter, str]]]:
    servers: list[SimServer] = []

    def start(app: Any, marker: str) -> tuple[KillAfter, str]:
        wire = KillAfter(app, marker)
        servers.append(SimServer(wire).start())
        return wire, servers[-1].base_url
    yield start
    for server in servers:
        server.stop()


def yonyou_project(root: Path, serve: Callable[[Any, str], tuple[KillAfter, str]]) -> tuple[Any, KillAfter, Path]:
    """A YonBIP simulator whose creates can be interrupted, its project, migrated and read once."""
    from connectors.yonyou.simulator import create_app
    app = create_app(SimOptions(records=2))
    wire, url = serve(app, "/merchant/idempotent/newinsert")
    config = project(root, f"""    type: yonyou
    base_url: {url}
    app_key: triad-client
    app_secret: triad-secret
    backoff: 0.01
    direction: both
    entities: {{customer: {{}}}}""")
    triad(config, "db", "upgrade")
    triad(config, "sync", "run")
    return app, wire, config


def test_a_yonyou_create_retried_with_a_later_change_is_made_once_with_the_later_values(
        tmp_path: Path, serve) -> None:
    app, wire, config = yonyou_project(tmp_path, serve)
    push_killed_in_create(config, wire)
    merchants = app.sim.state.data["merchants"]
    assert [m["city"] for m in merchants if m["name"]["simplifiedName"] == NAME] == ["南京"]
    export(tmp_path, "苏州", "80000", "2026-11-02 09:00:00")       # changed again before the next push
    triad(config, "sync", "run", "-c", "src")
    triad(config, "sync", "push")
    made = [m for m in merchants if m["name"]["simplifiedName"] == NAME]
    assert len(made) == 1, f"created twice: {[m['code'] for m in made]}"
    assert made[0]["city"] == "苏州", "the later value did not reach YonBIP"
    links, rows = links_and_rows(config)
    assert len(links) == 3 and len(set(links)) == 3, links        # two read, one created: one link each
    assert set(rows) == {"done"}, rows
    triad(config, "sync", "run", "-c", "tgt")     # reading it back is no edit: the later value stays
    triad(config, "sync", "push")
    assert made[0]["city"] == "苏州" and len([m for m in merchants if m["name"]["simplifiedName"] == NAME]) == 1


def test_a_kingdee_create_without_a_number_is_found_after_its_push_died(tmp_path: Path, serve) -> None:
    from connectors.kingdee.simulator import create_app
    app = create_app(SimOptions(records=2))
    wire, url = serve(app, "BatchSave")
    config = project(tmp_path, f"""    type: kingdee
    base_url: {url}/k3cloud
    acct_id: triad-acct
    username: demo@triad.local
    password: triad-pass
    backoff: 0.01
    direction: both
    entities: {{customer: {{}}}}""")
    triad(config, "db", "upgrade")
    triad(config, "sync", "run")
    push_killed_in_create(config, wire)
    customers = app.sim.state.data["forms"]["BD_Customer"]
    assert len([c for c in customers if c["FName"] == NAME]) == 1
    triad(config, "sync", "push")          # another process: nothing of the first attempt is remembered
    made = [c for c in customers if c["FName"] == NAME]
    assert len(made) == 1, f"created twice: {[c['FNumber'] for c in made]}"
    links, rows = links_and_rows(config)
    assert len(links) == 3 and len(set(links)) == 3, links
    assert set(rows) == {"done"}, rows


def test_a_yonyou_order_create_replayed_by_its_key_gets_the_later_values(serve) -> None:
    from connectors.yonyou.connector import YonyouConnector
    from connectors.yonyou.simulator import create_app
    from hub.connector import StreamSpec, WriteChange
    app = create_app(SimOptions(records=2))
    _, url = serve(app, "-")
    conn = YonyouConnector("tgt", {"base_url": url, "app_key": "triad-client", "app_secret": "triad-secret",
                                   "backoff": 0.01})
    stream = StreamSpec(entity="order", source="voucherorder", key="id", updated_at="pubts",
                        timezone="Asia/Shanghai", run_started_at=datetime.now(timezone.utc))
    agent = str(app.sim.state.data["merchants"][0]["id"])

    def order(memo: str, qty: str) -> dict[str, Any]:
        return {"code": "SO-LOST", "vouchdate": "2026-11-05T00:00:00+08:00", "agentId": agent, "memo": memo,
                "orderDetails": [{"lineno": "10", "productId!code": "P00001", "qty": qty, "oriTaxUnitPrice": "3280"}]}
    try:
        (first,) = conn.write(stream, [WriteChange("k-first", "r", None, order("first", "2"))])   # answer "lost"
        (again,) = conn.write(stream, [WriteChange("k-first", "r", None, order("later", "5"),
                                                   maybe_sent=datetime.now(timezone.utc))])
    finally:
        conn.close()
    assert first.ok and again.ok and again.source_id == first.source_id, (first, again)
    (saved,) = [o for o in app.sim.state.data["orders"] if o["code"] == "SO-LOST"]
    assert saved["memo"] == "later" and [float(line["qty"]) for line in saved["orderDetails"]] == [5]


def test_ctrl_c_during_a_push_records_the_answer_of_the_create_in_flight(tmp_path: Path, serve) -> None:
    """Ctrl-C while a create is in flight: the push waits for its answer, records it (the link, the row
    done) and stops with exit 130; before, the answer was dropped and the row stayed claimed."""
    import os
    import signal
    import subprocess
    import sys

    from .crashkit import ROOT
    _, wire, config = yonyou_project(tmp_path, serve)
    env = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG")}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config), "sync", "push"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # as a terminal
    wire.action = lambda: os.kill(proc.pid, signal.SIGINT)        # the system has made it; the answer is on its way
    out, err = proc.communicate(timeout=120)
    assert wire.fired.is_set(), "the push sent no create"
    assert proc.returncode == 130, err[-2000:]
    assert "finishing the current batch" in err and "Traceback" not in err
    links, rows = links_and_rows(config)
    assert len(links) == 3 and set(rows) == {"done"}, (links, rows)       # linked, not left claimed
