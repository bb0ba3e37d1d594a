"""Payments are read-only in YonBIP: with direction both the hub reads them and queues no writes to them."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from hub.config import load_config
from hub.setup import validate_all
from hub.streams import Parts

PAYMENTS = """payment_no,customer_no,order_no,contract_no,amount,currency,paid_at,method,status,reference,updated_at
P0001,C0001,,,1000.00,CNY,2026-11-05 10:00:00,bank,received,ref-1,2026-11-05 10:00:00
P0002,C0002,,,2500.00,CNY,2026-11-06 11:00:00,bank,received,ref-2,2026-11-06 11:00:00
"""


def add_yonyou(project: Path, url: str) -> None:
    """The init project's erp also sends payments; a YonBIP connector syncs customers and payments."""
    (project / "exports" / "erp" / "payments.csv").write_text(PAYMENTS, encoding="utf-8")
    text = (project / "triad.yaml").read_text(encoding="utf-8")
    text = text.replace("      order: {mapping: mappings/erp_order.yaml}\n",
                        "      order: {mapping: mappings/erp_order.yaml}\n      payment: {}\n", 1)
    text = text.replace("connectors:\n", f"""connectors:
  yy:
    type: yonyou
    base_url: {url}
    app_key: triad-client
    app_secret: triad-secret
    backoff: 0.01
    direction: both
    entities: {{customer: {{}}, payment: {{}}}}
""", 1)
    (project / "triad.yaml").write_text(text, encoding="utf-8")


def triad(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, ["--json", *args])


def test_no_writes_are_queued_to_a_read_only_entity(init_project: Path, sim) -> None:
    add_yonyou(init_project, sim.url)
    parts = Parts(load_config(str(init_project / "triad.yaml")))
    assert "yy" not in parts.out_systems("payment") and "yy" in parts.out_systems("customer")
    assert triad("sync", "run").exit_code == 0
    pushed = triad("sync", "push")
    assert pushed.exit_code == 0, pushed.output
    items = json.loads(triad("outbox", "list", "--limit", "1000").stdout)["items"]
    assert not [i for i in items if i["connector"] == "yy" and i["entity"] == "payment"]
    assert [i for i in items if i["connector"] == "yy" and i["entity"] == "customer"]


def test_config_validate_warns_for_both_and_refuses_out(init_project: Path, sim) -> None:
    add_yonyou(init_project, sim.url)
    report = validate_all(load_config(str(init_project / "triad.yaml")))
    assert report["problems"] == []
    assert any("connectors.yy.entities.payment" in w and "read only" in w for w in report["warnings"])
    config = init_project / "triad.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "direction: both\n    entities: {customer: {}, payment: {}}", "direction: out\n    entities: {payment: {}}"),
        encoding="utf-8")
    result = triad("config", "validate")
    assert result.exit_code == 2 and "nothing would sync" in result.output
