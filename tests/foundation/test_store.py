"""The schema comes from the migrations, matches the models, and its constraints hold on both dialects."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from hub.models import Customer, Order, Xref
from hub.store import current_revision, head_revision, schema_diff
from hub.types import new_id

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def test_migrations_reach_head_and_match_models(migrated):
    assert current_revision(migrated) == head_revision()
    assert schema_diff(migrated) == []


def test_duplicate_xref_is_rejected(migrated):
    row = dict(entity="customer", system="erp", source_id="C-1", record_id=new_id(), status="active",
               created_at=NOW, updated_at=NOW)
    with migrated.begin() as conn:
        conn.execute(insert(Xref.__table__), [dict(row, id=new_id())])
    with pytest.raises(IntegrityError):
        with migrated.begin() as conn:
            conn.execute(insert(Xref.__table__), [dict(row, id=new_id(), record_id=new_id())])


def test_foreign_keys_are_enforced(migrated):
    with pytest.raises(IntegrityError):
        with migrated.begin() as conn:
            conn.execute(insert(Order.__table__), [dict(id=new_id(), order_no="SO-1", customer_id="missing",
                                                        updated_at=NOW, provenance={}, version=1)])


def test_timestamps_round_trip_as_aware_utc_and_money_as_decimal(migrated):
    from decimal import Decimal
    cid = new_id()
    with migrated.begin() as conn:
        conn.execute(insert(Customer.__table__), [dict(id=cid, name="上海星海贸易有限公司", credit_limit=Decimal("1234.50"),
                                                       updated_at=NOW, provenance={}, version=1)])
    with migrated.connect() as conn:
        row = conn.execute(select(Customer.__table__).where(Customer.__table__.c.id == cid)).one()
    assert row.updated_at == NOW and row.updated_at.tzinfo is not None
    assert row.credit_limit == Decimal("1234.50")
    assert row.name == "上海星海贸易有限公司"


def test_naive_timestamps_are_refused(migrated):
    with pytest.raises(Exception, match="naive"):
        with migrated.begin() as conn:
            conn.execute(insert(Customer.__table__), [dict(id=new_id(), updated_at=datetime(2026, 1, 1),
                                                           provenance={}, version=1)])


def test_models_cover_the_canonical_catalogue():
    from hub.canonical import ENTITIES
    from hub.models import GOLDEN_MODELS
    for name, ent in ENTITIES.items():
        cols = GOLDEN_MODELS[name].__table__.c
        assert [f for f in ent.fields if f != "lines" and f not in cols] == []


def test_a_store_of_the_first_revision_upgrades_with_its_rows(store_url: str):
    from hub.models import SourceState
    from hub.store import make_engine, upgrade
    engine = make_engine(store_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:   # a merge base as revision 0001 stored it
            conn.exec_driver_sql(
                "INSERT INTO source_state (entity, system, source_id, record_id, \"values\", row_hash, seen_at) "
                "VALUES ('customer', 'erp', 'C1', '01J0000000000000000000000R', '{\"city\": \"Shanghai\"}', 'h', "
                "'2026-11-01 08:00:00')")
        upgrade(engine)
        assert current_revision(engine) == head_revision() and schema_diff(engine) == []
        st = SourceState.__table__
        with engine.connect() as conn:
            row = conn.execute(select(st.c["values"], st.c.written)).one()
        assert row == ({"city": "Shanghai"}, None)
    finally:
        engine.dispose()


def test_json_is_stored_as_compact_utf8_text_and_reads_back_the_same(migrated):
    """Chinese text takes its UTF-8 bytes, not six-byte escapes; on SQLite a lone surrogate (which no UTF-8
    encodes) still stores, as its JSON escape (PostgreSQL's JSON refuses it either way: the pipeline parks
    such values as escape text), and every value reads back as it went in."""
    from hub.store import compact_json
    assert compact_json({"name": "上海测试", "n": [1, 2]}) == '{"name":"上海测试","n":[1,2]}'
    assert compact_json({"x": "a\ud800"}) == '{"x":"a\\ud800"}'
    raws = {"q1": {"name": "上海测试贸易有限公司", "city": "上海"}}
    if migrated.dialect.name == "sqlite":
        raws["q2"] = {"note": "a\ud800b"}
    _park_and_read_back(migrated, raws)
    if migrated.dialect.name == "sqlite":
        with migrated.connect() as conn:
            text = conn.exec_driver_sql("SELECT raw FROM quarantine WHERE id = 'q1'").scalar()
        assert text == '{"name":"上海测试贸易有限公司","city":"上海"}'


def test_json_the_fast_path_cannot_write_or_read_exactly_goes_through_the_standard_library(migrated):
    """orjson writes NaN as null, refuses integers beyond 64 bits and reads long integers as floats: such
    values take the standard library's way, so a quarantined raw payload (a JSON-lines source may hold
    any of them) reads back exactly as it went in; what JSON cannot hold is refused as before."""
    import datetime as dt
    import math

    from hub.store_json import dumps, loads
    assert dumps({"n": float("nan")}) == '{"n":NaN}' and math.isnan(loads('{"n":NaN}')["n"])
    big = 2 ** 70 + 1     # not a float's value: a float read back would differ
    assert dumps({"n": big}) == '{"n":1180591620717411303425}'
    assert loads('{"n":1180591620717411303425}') == {"n": big} and type(loads(str(big))) is int
    assert loads(b'{"a":"\\ud800"}') == {"a": "\ud800"}
    assert dumps({1: "a"}) == '{"1":"a"}'
    with pytest.raises(TypeError):
        dumps({"at": dt.datetime(2026, 1, 1)})
    raws = {"q1": {"big": big, "long": -(10 ** 19 + 1), "none": None, "f": 1.5, "name": "上海"}}
    if migrated.dialect.name == "sqlite":    # PostgreSQL's JSON refuses NaN and infinities
        raws["q2"] = {"nan": float("inf")}
    _park_and_read_back(migrated, raws)


def _park_and_read_back(engine, raws: dict) -> None:  # noqa: ANN001
    """Park each raw payload as a quarantine row and check that every one reads back as it went in."""
    from hub.models import Quarantine
    qt = Quarantine.__table__
    with engine.begin() as conn:
        conn.execute(insert(qt), [dict(id=qid, connector="erp", entity="customer", source_id=qid, raw_hash=qid,
                                       kind="read", raw=raw, reasons=[], status="parked", created_at=NOW,
                                       updated_at=NOW) for qid, raw in raws.items()])
    with engine.connect() as conn:
        assert dict(conn.execute(select(qt.c.id, qt.c.raw)).all()) == raws
