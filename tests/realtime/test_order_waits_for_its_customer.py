"""An order whose customer has not reached a system yet waits (SPEC §5 outbound); once the customer is
created there, the order is due at once, not after its retry delay (another worker may create the customer
while this one holds the order)."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from hub.config import load_config
from hub.push import push_stream
from hub.store import make_engine
from hub.streams import Parts


def triad(*args: str) -> dict:
    r = CliRunner().invoke(main, ["--json", *args], catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output
    return json.loads(r.stdout)


def test_an_order_held_for_its_customer_goes_as_soon_as_the_customer_is_there(init_project: Path):
    triad("sync", "run")
    cfg = load_config(str(init_project / "triad.yaml"))
    engine, parts = make_engine(cfg.store.url), Parts(cfg)
    first = push_stream(engine, parts, "crm", "order")           # the crm's customers are not created yet
    assert first.counts["deferred"] >= 1
    waiting = [i for i in triad("outbox", "list", "--connector", "crm", "--status", "pending")["items"]
               if i["entity"] == "order"]
    assert waiting and all("to reach this system first" in (i["last_error"] or "") for i in waiting)
    push_stream(engine, parts, "crm", "customer")                 # another worker creates them
    after = push_stream(engine, parts, "crm", "order")            # at once: no 30 s wait
    assert after.counts["written"] == first.counts["deferred"] and after.counts["deferred"] == 0
    parts.close()
    engine.dispose()
