"""The ``sql`` connector: any database SQLAlchemy reaches, one table per entity.

Options: ``url`` (an SQLAlchemy URL; its password may come separately as
``password``, a secret), ``schema`` (optional), ``touch_updated_at`` (default
true: a write stamps the table's updated_at column with the time of the
write, as the owning application would). A stream's source names the table;
tables are reflected once per connector. Reads page by keyset on
(updated_at, key) and hand values over as text; writes upsert by key.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import MetaData, Table, create_engine, literal, select
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError

from connectors.sql.reading import column, read_table
from connectors.sql.writing import TableWriter, db_reason
from hub.canonical import ENTITIES
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, FatalError, RetriableError
from hub.secrets import reveal

log = logging.getLogger(__name__)


class SqlConnector(Connector):
    """Tables of one database reached through SQLAlchemy."""

    type_name = "sql"
    entities = tuple(ENTITIES)     # a generic source: any canonical entity, opportunities and approvals too
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"url", "password", "schema", "touch_updated_at"})
    entity_option_keys: frozenset[str] = frozenset()

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.url = self._url()
        self.schema = options.get("schema") or None
        self.touch_updated_at = bool(options.get("touch_updated_at", True))
        self.direction = options.get("direction", "both")
        self._engine: Engine | None = None
        self._tables: dict[str, Table] = {}

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            try:
                self._engine = create_engine(self.url, pool_pre_ping=True)
            except (ArgumentError, NoSuchModuleError, ImportError) as exc:
                raise ConfigError(f"connectors.{self.name}.url: cannot use {self.safe_url}: {exc}") from None
        return self._engine

    def check(self) -> CheckResult:
        """Connect and run ``SELECT 1``; never raises for an unreachable database."""
        info: dict[str, Any] = {"url": self.safe_url}
        try:
            with self.engine.connect() as conn:
                conn.execute(select(literal(1))).scalar_one()
                info["dialect"] = conn.dialect.name
                version = conn.dialect.server_version_info
                info["server_version"] = ".".join(str(v) for v in version) if version else ""
        except (SQLAlchemyError, ConfigError) as exc:
            reason = exc.message if isinstance(exc, ConfigError) else db_reason(exc)
            return CheckResult(False, f"cannot reach {self.safe_url}: {reason}", info)
        return CheckResult(True, f"connected to {info['dialect']} {info['server_version']}".rstrip(), info)

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Batches of the table's rows with updated_at at or after the cursor's ``ts``, and those without one.

        The cursor after each batch is ``{"ts": <aware UTC ISO>, "key": <last key>}``,
        never past ``stream.run_started_at``; rows without an updated_at leave it as it was.

        Raises:
            ConfigError: the table or a named column does not exist.
            RetriableError: the database cannot be reached.
            FatalError: the database refuses the query.
        """
        if self.direction == "out":
            raise ConfigError(f"connector '{self.name}' has direction out; it is not read", entity=stream.entity)
        table = self.table(stream.source, stream)
        try:
            yield from read_table(self.engine, table, stream, cursor)
        except SQLAlchemyError as exc:
            raise self._classify(exc, stream) from exc

    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Upsert ``changes`` by key in one transaction; one result per change.

        Raises:
            ConfigError: the table or its key column does not exist, or the connector is inbound only.
        """
        if self.direction == "in":
            raise ConfigError(f"connector '{self.name}' has direction in; it is not written", entity=stream.entity)
        table = self.table(stream.source, stream)
        column(table, stream.key, "key", stream)
        if stream.updated_at:
            column(table, stream.updated_at, "updated_at", stream)
        return TableWriter(self.engine, table, stream, touch_updated_at=self.touch_updated_at).write(changes)

    def table(self, name: str, stream: StreamSpec | None = None) -> Table:
        """The reflected table ``name`` (cached).

        Raises:
            ConfigError: no such table.
            RetriableError: the database cannot be reached.
        """
        if name not in self._tables:
            entity = stream.entity if stream else None
            try:
                self._tables[name] = Table(name, MetaData(schema=self.schema), autoload_with=self.engine)
            except NoSuchTableError:
                where = f" in schema '{self.schema}'" if self.schema else ""
                raise ConfigError(f"table '{name}' does not exist{where} at {self.safe_url}",
                                  connector=self.name, entity=entity) from None
            except SQLAlchemyError as exc:
                raise self._classify(exc, stream) from exc
        return self._tables[name]

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._tables.clear()

    def _url(self) -> URL:
        raw = reveal(self.options.get("url"))
        if not raw:
            raise ConfigError(f"connectors.{self.name}.url: required, an SQLAlchemy URL such as "
                              f"mysql+pymysql://user@host/db or sqlite:///erp.db")
        try:
            url = make_url(str(raw))
        except ArgumentError:
            raise ConfigError(f"connectors.{self.name}.url: not an SQLAlchemy URL "
                              f"(expected dialect+driver://user:password@host/database)") from None
        password = self.options.get("password")
        if password is not None and password != "":
            url = url.set(password=reveal(password))
        db = url.database
        if url.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith("file:"):
            if not Path(db).is_absolute():  # relative to the config file, like the store's own URL
                url = url.set(database=str((Path(self.base_dir) / db).resolve()))
        return url

    def _classify(self, exc: SQLAlchemyError, stream: StreamSpec | None) -> Exception:
        from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, TimeoutError
        entity = stream.entity if stream else None
        if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, TimeoutError)):
            return RetriableError(f"database {self.safe_url} unavailable: {db_reason(exc)}",
                                  connector=self.name, entity=entity)
        return FatalError(f"database {self.safe_url} refused the query: {db_reason(exc)}",
                          connector=self.name, entity=entity)
