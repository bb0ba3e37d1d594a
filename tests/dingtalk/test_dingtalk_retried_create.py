"""A create whose answer is late: DingTalk started the instance, the connector timed out waiting.

The create is not sent again in the same call; the outbox's later retry (here a new connector,
as in another process) finds the instance by its dedupe component instead of starting a second.
"""
from __future__ import annotations

import time
from types import SimpleNamespace
from decimal import Decimal
from typing import Any, Callable

from connectors.dingtalk.simulator import create_app
from connectors.simkit import SimOptions
from hub.connector import StreamSpec, WriteChange
from hub.mapping import load_mapping, shipped_mappings_dir

MAPPING = load_mapping(shipped_mappings_dir() / "dingtalk" / "approval.yaml", "approval")
CREATE_PATH = "/v1.0/workflow/processInstances"
LATE_BY = 0.6          # seconds the answer to a create is held after the instance exists


def late_create_answers(app: Any) -> Callable[..., Any]:
    """The simulator, answering every create only after LATE_BY seconds (the instance is made at once)."""
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        out = list(app(environ, start_response))
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].rstrip("/") == CREATE_PATH:
            time.sleep(LATE_BY)
        return out
    return wrapped


def holders(app: Any, change_id: str) -> list[str]:
    """Instances whose dedupe component holds ``change_id``."""
    return [i["id"] for i in app.sim.workflow.instances.values()
            if any(f["name"] == "Triad变更号" and f["value"] == change_id for f in i["form"])]


def test_a_timed_out_create_starts_one_instance(serve_wsgi: Callable[[Any], Any],
                                                make_connector: Callable[..., Any], stream: StreamSpec) -> None:
    app = create_app(SimOptions(records=10))
    server = serve_wsgi(late_create_answers(app))
    sim = SimpleNamespace(url=server.base_url)     # what make_connector reads of a simulator
    applicant = app.sim.workflow.data["users"][2]["userId"]
    canonical = {"kind": "budget", "subject_entity": "order", "subject_id": "OPP-1", "status": "pending",
                 "applicant": applicant, "amount": Decimal("1000.00"), "currency": "CNY"}
    change = WriteChange("chg-1", "rec-1", None, MAPPING.to_source(canonical))

    (first,) = make_connector(sim, timeout=LATE_BY / 3, retries=3).write(stream, [change])
    assert not first.ok and first.retriable            # no answer: the outbox tries again later
    time.sleep(LATE_BY)
    assert len(holders(app, "chg-1")) == 1             # sent once, not once per retry

    (again,) = make_connector(sim, timeout=LATE_BY / 3, retries=3).write(stream, [change])
    assert again.ok and [again.source_id] == holders(app, "chg-1")
