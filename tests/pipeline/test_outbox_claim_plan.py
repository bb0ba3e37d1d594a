"""A push claims a batch of the outbox by reading that batch: the claim walks the partial index over pending
rows in order (a backlog of 200,000 queued writes made every 200-row claim sort the whole backlog: pushing
it was quadratic). On SQLite this needs the outbox's statistics, which a push gathers first."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import event

from cli import main
from hub.store import make_engine


def test_claims_read_the_pending_rows_through_their_indexes(project: Path, monkeypatch):
    assert CliRunner().invoke(main, ["sync", "run"]).exit_code == 0
    seen: list[tuple[str, tuple]] = []

    def note(conn, cursor, statement, params, context, many) -> None:  # noqa: ANN001
        if re.match(r"\s*SELECT\b.*\bFROM outbox\b", statement, re.S) and "status = 'pending'" in statement:
            seen.append((statement, tuple(params)))

    real = make_engine

    def watched(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        engine = real(*args, **kwargs)
        event.listen(engine, "before_cursor_execute", note)
        return engine
    monkeypatch.setattr("hub.store.make_engine", watched)
    r = CliRunner().invoke(main, ["--json", "sync", "push"])
    assert r.exit_code == 0, r.output
    claims = [s for s in seen if "ORDER BY outbox.created_at" in s[0]]
    assert claims, [s[0][:80] for s in seen]
    db = sqlite3.connect(project / "triad.db")
    try:
        statement, params = claims[0]
        plan = " | ".join(row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + statement, params))
    finally:
        db.close()
    assert "USING INDEX ix_outbox_pending" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
