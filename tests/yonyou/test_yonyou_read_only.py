"""The connector declares the entities YonBIP takes no writes for, so the hub queues none for them."""
from __future__ import annotations

from connectors.yonyou.connector import ENTITY_OBJECTS, OBJECTS, YonyouConnector
from hub.connector import StreamSpec, WriteChange


def test_payments_are_declared_read_only_and_the_rest_writable() -> None:
    assert YonyouConnector.read_only_entities == frozenset({"payment"})
    writable = set(YonyouConnector.entities) - YonyouConnector.read_only_entities
    assert writable == {"customer", "order"}
    assert all(OBJECTS[ENTITY_OBJECTS[e]].insert_path for e in writable)


def test_check_reports_the_read_only_entities(sim, make_connector) -> None:
    result = make_connector(sim).check()
    assert result.ok and result.info["read_only_entities"] == ["payment"]


def test_a_write_that_still_arrives_is_refused_without_a_call(sim, make_connector) -> None:
    conn = make_connector(sim)
    calls = sim.app.sim.stats["api_calls"]
    stream = StreamSpec(entity="payment", source="collection", key="id", updated_at="pubts", batch_size=10)
    (result,) = conn.write(stream, [WriteChange("p1", "r", None, {"code": "SK-1"})])
    assert not result.ok and not result.retriable and "read-only" in result.error
    assert sim.app.sim.stats["api_calls"] == calls
