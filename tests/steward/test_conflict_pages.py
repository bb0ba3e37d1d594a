"""`conflicts list` reads one page, not the whole table (auto conflicts pile up for good): the page is cut
in SQL, and a filter on the systems involved stops reading once the page is full."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import delete, event, insert

from hub.conflicts import list_conflicts
from hub.models import Conflict
from hub.store import make_engine

from .conftest import synced_project

N = 300
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with synced_project(tmp_path_factory.mktemp("pages")) as root:
        eng = make_engine(f"sqlite:///{Path(root) / 'triad.db'}")
        with eng.begin() as conn:
            conn.execute(delete(Conflict.__table__))
            conn.execute(insert(Conflict.__table__), [{
                "id": f"C{i:04d}", "entity": "customer", "record_id": f"R{i:04d}", "field": "phone",
                "status": "auto", "rule": "priority",
                "values": {"erp": "1", "crm": "2"} if i % 3 == 0 else {"erp": "1", "oa": "3"},
                "timestamps": {}, "golden": "1", "winner": "erp", "note": None, "run_id": None,
                "created_at": START + timedelta(seconds=i), "resolved_at": None, "resolved_by": None}
                for i in range(N)])
        yield eng
        eng.dispose()


def conflict_reads(engine, **kwargs) -> tuple[list[str], list[str]]:  # noqa: ANN001
    """(the ids listed, the statements that read the conflict table)."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if re.match(r'\s*SELECT\b.*\bFROM "?conflict"?\s', statement, re.S):   # "conflict" is quoted on SQLite
            seen.append(statement)
    event.listen(engine, "before_cursor_execute", note)
    try:
        rows = list_conflicts(engine, status="auto", **kwargs)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return [r["id"] for r in rows], seen


def test_a_page_is_cut_in_the_query(engine):
    ids, statements = conflict_reads(engine, limit=10, offset=20)
    assert ids == [f"C{i:04d}" for i in range(20, 30)]
    assert len(statements) == 1 and "LIMIT" in statements[0].upper(), statements


def test_a_filter_on_a_system_pages_over_the_matching_rows(engine):
    ids, _ = conflict_reads(engine, system="crm", limit=5, offset=3)
    assert ids == [f"C{i:04d}" for i in range(0, N, 3)][3:8]
    ids, _ = conflict_reads(engine, system="oa", limit=1000)
    assert len(ids) == N - len(range(0, N, 3))
    assert conflict_reads(engine, system="dingtalk")[0] == []
