"""Fresh planner statistics after the hub wrote many rows.

PostgreSQL plans a query from statistics that only ANALYZE (or autovacuum, a minute or more later, and
not at all where it is turned off) gathers. Right after a load, a table of 20,000 xref rows still looks
empty to the planner, and the pipeline's batched key lookup (``source_id IN (...)`` on the unique
``(entity, system, source_id)`` index) is planned as a scan of every row of the system per key: a
re-sync of those 20,000 rows took 56 s instead of 2. So after a committed batch the hub analyzes the
tables that changed by more than half (plus a thousand rows) since their last analysis: a growing
table is analyzed a logarithmic number of times, a steady one rarely. SQLite needs statistics for one
choice only: which index claims a batch of the outbox (:func:`refresh_outbox`).
"""
from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, Engine, text

from hub.models import Base

log = logging.getLogger(__name__)

MIN_CHANGED = 1000        # rows changed since the last analysis before a table is looked at again
CHANGED_SHARE = 0.5       # ... and this share of the rows it had then
SQLITE_SAMPLE = 1000      # rows of each index SQLite's ANALYZE looks at (SQLite's own advice: 100-1000)

# ANALYZE of a table is for its owner, the database's owner or a superuser (and, from PostgreSQL 17,
# whoever holds MAINTAIN on it); for any other role PostgreSQL skips the table with a warning in its log
_MAY_ANALYZE = ("(pg_has_role(c.relowner, 'USAGE')"
                " OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')"
                " OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user){maintain})")
_STALE = """
    SELECT s.relname, {may} AS may
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema() AND s.relname = ANY(:tables)
      AND s.n_mod_since_analyze > :least + :share * greatest(c.reltuples, 0)
    ORDER BY s.relname
"""
_told: set[str] = set()    # store URLs whose role was told once that it cannot analyze some tables


def _stale_query(conn: Connection) -> Any:
    maintain = " OR has_table_privilege(c.oid, 'MAINTAIN')" if (conn.dialect.server_version_info or (0,)) >= (17,) \
        else ""
    return text(_STALE.format(may=_MAY_ANALYZE.format(maintain=maintain)))


_can_flush: dict[str, bool] = {}   # store URL -> may this role call pg_stat_force_next_flush (asked once)


def count_now(conn: Connection) -> None:
    """Inside a batch's transaction: have its row counts published when it commits, not up to 10 s later
    (PostgreSQL 15+ batches them per backend), so the check after the batch sees them. Where the role may
    not call the function (an error would abort the batch) the counts come later, and so does the analysis."""
    if conn.dialect.name != "postgresql" or (conn.dialect.server_version_info or (0,)) < (15,):
        return
    url = str(conn.engine.url)
    if url not in _can_flush:
        _can_flush[url] = bool(conn.scalar(text(
            "SELECT has_function_privilege('pg_catalog.pg_stat_force_next_flush()', 'EXECUTE')")))
    if _can_flush[url]:
        conn.execute(text("SELECT pg_stat_force_next_flush()"))


def refresh(engine: Engine) -> list[str]:
    """ANALYZE the store's tables whose statistics lag their rows; returns their names (PostgreSQL only).

    Never raises: statistics make plans better, and a sync must not fail for want of them (a role
    that may not analyze a table leaves it, and is told so once)."""
    if engine.dialect.name != "postgresql":
        return []
    try:
        with engine.connect() as conn:
            found = conn.execute(_stale_query(conn), {"tables": sorted(Base.metadata.tables), "least": MIN_CHANGED,
                                                      "share": CHANGED_SHARE}).all()
            conn.rollback()      # ANALYZE runs outside a transaction: it holds no lock of a batch's
            stale = [name for name, may in found if may]
            barred = [name for name, may in found if not may]
            url = str(engine.url)
            if barred and url not in _told:
                _told.add(url)
                log.warning("the planner statistics of %s lag their rows, and only their owner may refresh them "
                            "(this role is %s): run ANALYZE as the owner after a large load, or keep autovacuum "
                            "on; lookups may be slow until then", ", ".join(barred),
                            conn.scalar(text("SELECT current_user")))
            if not stale:
                return []
            started = time.monotonic()
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in stale:
                auto.execute(text(f'ANALYZE "{table}"'))
            log.info("analyzed %s in %.2f s (their planner statistics lagged their rows)", ", ".join(stale),
                     time.monotonic() - started)
            return stale
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("could not refresh planner statistics: %s", exc)
        return []


def refresh_outbox(engine: Engine) -> None:
    """Before a push drains the outbox: on SQLite, statistics of the outbox (sampled, a few milliseconds),
    without which SQLite claims each batch through the index with most columns constrained and sorts every
    pending row; with them it walks the partial index of pending rows in order. PostgreSQL: as ``refresh``."""
    if engine.dialect.name == "postgresql":
        refresh(engine)
        return
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_SAMPLE}")
            conn.exec_driver_sql("ANALYZE outbox")
    except Exception as exc:  # noqa: BLE001 - see refresh
        log.warning("could not refresh the outbox's planner statistics: %s", exc)

