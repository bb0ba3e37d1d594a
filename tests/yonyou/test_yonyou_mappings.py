"""The shipped Yonyou mappings validate, map every simulated record, and write back."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from hub.connector import StreamSpec, WriteChange
from hub.mapping import load_mapping, validate_mapping_file

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings" / "yonyou"
SOURCES = {"merchant": "merchants", "voucherorder": "orders", "collection": "receipts"}


def spec(mapping, entity: str) -> StreamSpec:
    return StreamSpec(entity=entity, source=mapping.source, key=mapping.key, updated_at=mapping.updated_at,
                      timezone=str(mapping.timezone), batch_size=25, fields=tuple(mapping.source_paths()),
                      run_started_at=datetime.now(timezone.utc))


@pytest.mark.parametrize("entity", ["customer", "order", "payment"])
def test_mapping_validates_and_maps_every_record(sim, make_connector, entity) -> None:
    path = MAPPINGS / f"{entity}.yaml"
    assert validate_mapping_file(path, entity) == []
    mapping = load_mapping(path, entity)
    conn = make_connector(sim)
    raw = [r for b in conn.read(spec(mapping, entity), None) for r in b.records]
    mapped = [mapping.to_canonical(r) for r in raw]
    assert len(mapped) == len(sim.state[SOURCES[mapping.source]])
    assert all(m.source_ts is not None and m.source_ts.tzinfo is not None for m in mapped)


@pytest.mark.parametrize("entity", ["customer", "order"])
def test_writing_mapped_values_back_changes_nothing(sim, make_connector, entity) -> None:
    mapping = load_mapping(MAPPINGS / f"{entity}.yaml", entity)
    conn = make_connector(sim)
    stream = spec(mapping, entity)
    first = mapping.to_canonical(next(r for b in conn.read(stream, None) for r in b.records))
    (result,) = conn.write(stream, [WriteChange(f"rt-{entity}", "r", first.source_id, mapping.to_source(first.values))])
    assert result.ok, result.error
    after = next(mapping.to_canonical(r) for b in conn.read(stream, None) for r in b.records
                 if str(r["id"]) == first.source_id)
    assert after.values == first.values


def test_new_customer_from_canonical_values(sim, make_connector) -> None:
    mapping = load_mapping(MAPPINGS / "customer.yaml", "customer")
    conn = make_connector(sim)
    values = {"code": "MAP-1", "name": "映射新建有限公司", "tax_id": "91310115MA1H7GQX4A", "phone": "+862161234567",
              "status": "inactive"}
    (result,) = conn.write(spec(mapping, "customer"), [WriteChange("map-new", "r", None, mapping.to_source(values))])
    assert result.ok, result.error
    rec = next(m for m in sim.state["merchants"] if m["code"] == "MAP-1")
    assert rec["name"] == {"simplifiedName": "映射新建有限公司"} and rec["stopstatus"] is True
