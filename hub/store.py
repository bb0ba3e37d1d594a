"""Opening the store: engines with the right per-dialect settings, and alembic in code.

SQLite gets WAL, enforced foreign keys and a busy timeout; PostgreSQL goes
through psycopg 3. The schema is created only by the migrations.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from hub import store_json
from hub.errors import ConfigError, TriadError, UsageError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def compact_json(value: Any) -> str:
    """JSON as the store keeps it: UTF-8 text as it is (a Chinese name takes 3 bytes a character, not the
    6 of a ``\\uXXXX`` escape) and no blanks between items. source_state and field_history hold every
    record's values as JSON, so this is most of the store's bytes: fewer pages to write and to cache."""
    return store_json.dumps(value)


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the hub store.

    Raises:
        ConfigError: the URL cannot be parsed or names an unknown driver.
    """
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"store.url: cannot parse database URL: {exc}") from exc
    # bound values are customer data: kept out of error messages and logs
    kwargs: dict = {"echo": echo, "future": True, "hide_parameters": True, "json_serializer": compact_json,
                    "json_deserializer": store_json.loads}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
        db = parsed.database
        if db and db != ":memory:":
            target = Path(db).expanduser().resolve()
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"store.url: cannot create the folder of {target}: {exc.strerror or exc}") from None
            if target.is_dir():
                raise ConfigError(f"store.url: {target} is a folder, not a database file")
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except Exception as exc:  # missing driver, bad options
        raise ConfigError(f"store.url: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        _tune_sqlite(engine)
        if parsed.database and parsed.database != ":memory:" and "mode=memory" not in str(parsed.query):
            from hub.sqlite_checkpoint import attach
            attach(engine, str(Path(parsed.database).expanduser().resolve()))
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # take transaction control from the driver so BEGIN IMMEDIATE can serialize writers
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")   # durable across process crashes in WAL mode
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        # writers take the lock up front: a batch reads golden rows and writes them back in one transaction;
        # connections marked read-only (the data API) read a snapshot without queueing behind writers
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("triad_readonly") else "BEGIN IMMEDIATE")


def alembic_config(url: str):  # noqa: ANN201 - alembic type imported lazily
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command
    from alembic.util import CommandError
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, revision)
        except CommandError as exc:   # an unknown or ambiguous revision
            raise UsageError(f"cannot upgrade to {revision!r}: {exc} (revisions: `triad db current`; "
                             f"default: head)") from None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory
    cfg = alembic_config("sqlite://")
    return ScriptDirectory.from_config(cfg).get_current_head()


def schema_diff(engine: Engine) -> list:
    """Differences between the models and the database (empty when they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from hub.models import EXTERNAL_TABLES, metadata

    def include(obj, name, type_, reflected, compare_to):  # noqa: ANN001
        return not (type_ == "table" and name in EXTERNAL_TABLES)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include})
        return compare_metadata(ctx, metadata)


def describe_difference(diff: Any) -> str:
    """One of :func:`schema_diff`'s differences as an admin reads it (alembic's own form is a tuple of objects).

    "add" means the migrations would add what the models have and the database lacks; "remove" the reverse.
    """
    if isinstance(diff, list):          # alembic groups the changes of one column
        return "; ".join(describe_difference(d) for d in diff)
    op, *args = diff
    kind, _, what = op.partition("_")
    where = {"add": "in the models, not in the database", "remove": "in the database, not in the models"}
    try:
        if what == "table":
            return f"table {args[0].name}: {where[kind]}"
        if what == "column":
            return f"column {args[1]}.{args[2].name}: {where[kind]}"
        if what in ("index", "constraint", "fk"):
            obj = args[0]
            table = getattr(getattr(obj, "table", None), "name", None) or getattr(obj, "parent", None)
            cols = ", ".join(c.name for c in getattr(obj, "columns", []))
            return f"{what} {obj.name or '(unnamed)'} on {table}({cols}): {where[kind]}"
        if kind == "modify":
            _, table, column, _, before, after = args
            return f"column {table}.{column}: {what} {before} in the database, {after} in the models"
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        pass
    return str(diff)


def _stamped_revision(engine: Engine) -> str | None:
    """The revision in ``alembic_version``, read without importing alembic (None if not there)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return None
    return rows[0] if len(rows) == 1 else None


def _single_head() -> str | None:
    """The one revision no migration builds on, read from the migration files' headers
    (alembic itself costs most of a second to import); None unless there is exactly one."""
    import re
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def ensure_current(engine: Engine) -> None:
    """Refuse to work on a database that is not at the latest migration."""
    stamped = _stamped_revision(engine)
    if stamped is not None and stamped == _single_head():
        return
    cur, head = current_revision(engine), head_revision()
    if cur != head:
        raise TriadError(f"database is at revision {cur or 'none'}, the code expects {head}: run `triad db upgrade`")
