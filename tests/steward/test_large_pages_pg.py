"""Pages larger than PostgreSQL's 65,535 bind parameters: the ids of a page are looked up in chunks."""
from __future__ import annotations

from hub.records import _xrefs
from hub.store import make_engine, upgrade


def test_a_page_of_more_ids_than_parameters_is_read(pg_url: str):
    engine = make_engine(pg_url)
    upgrade(engine)
    try:
        with engine.connect() as conn:
            assert _xrefs(conn, "customer", [f"R{i:06d}" for i in range(70_000)]) == {}
    finally:
        engine.dispose()
