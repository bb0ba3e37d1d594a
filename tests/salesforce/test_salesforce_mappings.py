"""The shipped Salesforce mappings: valid, and every seeded record of the simulator maps."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hub.connector import StreamSpec
from hub.mapping import load_mapping, shipped_mappings_dir, validate_mapping_file

ENTITIES = ["customer", "order", "contract", "payment"]


@pytest.mark.parametrize("entity", ENTITIES)
def test_shipped_mapping_is_valid(entity: str) -> None:
    assert validate_mapping_file(shipped_mappings_dir() / "salesforce" / f"{entity}.yaml", entity) == []


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_seeded_record_maps(entity: str, make_sim, make_connector) -> None:
    sim = make_sim(records=120)
    mapping = load_mapping(shipped_mappings_dir() / "salesforce" / f"{entity}.yaml", entity)
    stream = StreamSpec(entity=entity, source=mapping.source, key=mapping.key, updated_at=mapping.updated_at,
                        fields=tuple(mapping.source_paths()), options=mapping.options, batch_size=500,
                        run_started_at=datetime.now(timezone.utc))
    raws = [r for b in make_connector(sim).read(stream, None) for r in b.records]
    assert len(raws) == len(sim.org.ids(mapping.source))
    mapped = [mapping.to_canonical(raw) for raw in raws]          # raises MappingError on any misfit
    assert all(m.source_id.startswith(sim.org.ids(mapping.source)[0][:3]) and m.source_ts for m in mapped)
    if entity == "customer":
        first = next(m for m in mapped if m.values["name"] == "上海星海贸易有限公司")
        assert first.values["country"] == "CN" and first.values["phone"].startswith("+8621")
        assert first.values["customer_type"] == "company" and first.values["owner"]
    if entity == "order":
        assert all(m.values["lines"] for m in mapped)


def test_customer_round_trip_writes_what_it_reads(make_sim) -> None:
    sim = make_sim()
    mapping = load_mapping(shipped_mappings_dir() / "salesforce" / "customer.yaml", "customer")
    raw = sim.org.get("Account", sim.org.ids("Account")[0])
    raw["Owner"] = {"Name": "王伟"}
    out = mapping.to_source(mapping.to_canonical(raw).values)
    assert "Owner" not in out and "Owner.Name" not in out and "CreatedDate" not in out   # read only
    assert out["Name"] == raw["Name"] and out["Active__c"] is raw["Active__c"]
