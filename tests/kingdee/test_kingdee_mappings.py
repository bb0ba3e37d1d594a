"""The shipped Kingdee mappings validate, map every simulated record, and write back."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from hub.connector import StreamSpec, WriteChange
from hub.mapping import load_mapping, validate_mapping_file

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings" / "kingdee"
ENTITIES = ("customer", "order", "payment", "contract")


def spec(mapping, entity: str) -> StreamSpec:
    return StreamSpec(entity=entity, source=mapping.source, key=mapping.key, updated_at=mapping.updated_at,
                      timezone=str(mapping.timezone), batch_size=25, fields=tuple(mapping.source_paths()),
                      run_started_at=datetime.now(timezone.utc))


@pytest.mark.parametrize("entity", ENTITIES)
def test_mapping_validates(entity) -> None:
    path = MAPPINGS / f"{entity}.yaml"
    assert validate_mapping_file(path, entity) == []
    assert "timezone: Asia/Shanghai" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_record_maps_and_writes_back(sim, make_connector, entity) -> None:
    mapping = load_mapping(MAPPINGS / f"{entity}.yaml", entity)
    conn = make_connector(sim)
    stream = spec(mapping, entity)
    raw = [r for b in conn.read(stream, None) for r in b.records]
    mapped = [mapping.to_canonical(r) for r in raw]
    assert len(mapped) == len(sim.state["forms"][mapping.source])
    first = mapped[0]
    assert first.source_id and first.source_ts is not None and first.source_ts.tzinfo is not None
    (result,) = conn.write(stream, [WriteChange(f"rt-{entity}", "r", first.source_id,
                                                mapping.to_source(first.values))])
    assert result.ok, result.error
    again = [mapping.to_canonical(r) for b in conn.read(stream, None) for r in b.records]
    after = next(m for m in again if m.source_id == first.source_id)
    assert after.values == first.values, "writing the mapped values back changes nothing"


def test_customer_semantics(sim, make_connector) -> None:
    mapping = load_mapping(MAPPINGS / "customer.yaml", "customer")
    conn = make_connector(sim)
    raw = [r for b in conn.read(spec(mapping, "customer"), None) for r in b.records]
    values = [mapping.to_canonical(r).values for r in raw]
    assert all(v["tax_id"] and len(v["tax_id"]) == 18 for v in values)
    assert all(v["phone"].startswith("+86") for v in values)
    assert {v["currency"] for v in values} <= {"CNY", "HKD", "EUR", "USD"}
    assert all(v["province"].endswith(("省", "市", "区")) for v in values)


def test_order_lines_map(sim, make_connector) -> None:
    mapping = load_mapping(MAPPINGS / "order.yaml", "order")
    conn = make_connector(sim)
    raw = [r for b in conn.read(spec(mapping, "order"), None) for r in b.records]
    order = mapping.to_canonical(raw[0]).values
    assert order["lines"] and all(line["sku"].startswith("01.02.") for line in order["lines"])
    assert sum(line["amount"] for line in order["lines"]) == order["total_amount"]
