"""What one CLI invocation works with: the config, the store, the caller. Passed explicitly, never global."""
from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from hub.config import TriadConfig, load_config
from hub.secrets import RedactingFilter, secret_values


@dataclass
class Context:
    config_path: str | None = None
    user_name: str | None = None
    as_json: bool = False
    _config: TriadConfig | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def user(self) -> str:
        if self.user_name:
            return self.user_name
        env = os.environ.get("TRIAD_USER")
        if env:
            return env
        try:
            return getpass.getuser()
        except Exception:  # no login name in some containers
            return "unknown"

    def config(self, required: bool = True) -> TriadConfig:
        """The config; without a file, defaults (a store at ./triad.db or $TRIAD_DATABASE_URL) only when
        ``required`` is false and no file was named: a --config or $TRIAD_CONFIG that does not exist is
        an error for every command, never a silent fresh store."""
        required = required or bool(self.config_path or os.environ.get("TRIAD_CONFIG"))
        if self._config is not None and required and self._config.path is None:
            self._config = None     # defaults were enough for an earlier step, not for this one
        if self._config is None:
            self._config = load_config(self.config_path, required=required)
            install_redaction(self._config)
        return self._config

    def engine(self, *, check_schema: bool = True, create: bool = False) -> Engine:
        """The hub store; by default refuses a database that is not migrated to head. Only ``create``
        (`triad db upgrade`) makes a SQLite file (and its folder) that does not exist yet."""
        if self._engine is None:
            from sqlalchemy.exc import DatabaseError
            from hub.store import ensure_current, make_engine
            cfg = self.config(required=False)
            if cfg.path is None and not os.environ.get("TRIAD_DATABASE_URL"):
                # no config and no store named: making ./triad.db here would be a store nobody asked for
                self.config(required=True)     # raises: no such config file (create one with `triad init` ...)
            url = cfg.store.url
            if not create:
                _refuse_missing_sqlite_file(url)
            self._engine = make_engine(url)
            try:
                with self._engine.connect():
                    pass
                if check_schema:
                    ensure_current(self._engine)
            except DatabaseError as exc:   # down, refused, unknown database, bad credentials, not a database
                self._engine.dispose()
                self._engine = None
                raise store_open_error(url, exc) from None
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            from hub.sqlite_checkpoint import dispose
            dispose(self._engine)


def store_open_error(url: str, exc: Exception) -> Exception:
    """What to tell of a store that would not open: a SQLite store.url naming a file that is no database is
    a config error (exit 2, as a folder there is); anything else is the store failing now (exit 1)."""
    from hub.errors import ConfigError, TriadError
    from hub.secrets import masked_url
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if url.startswith("sqlite") and "file is not a database" in reason:
        from sqlalchemy.engine import make_url
        return ConfigError(f"store.url: {make_url(url).database} is not a SQLite database ({reason})")
    return TriadError(f"cannot open the store at {masked_url(url)}: {reason}")


def _refuse_missing_sqlite_file(url: str) -> None:
    """Only `triad db upgrade` creates a store: any other command on a SQLite file that does not exist
    says so instead of leaving an empty database (and its folders) behind, a mistyped path's stray."""
    from sqlalchemy.engine import make_url
    from hub.errors import TriadError
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:") \
            or parsed.query.get("uri") or os.path.exists(database):
        return
    folder = os.path.dirname(os.path.abspath(database))
    while not os.path.exists(folder):       # the nearest folder that exists, where it would be made
        folder = os.path.dirname(folder)
    if os.path.isdir(folder):               # under a file, opening it says what is wrong (a config error)
        raise TriadError(f"no store at {database}: run `triad db upgrade` to create it")


def install_redaction(cfg: TriadConfig) -> None:
    """Mask every configured secret in all log output."""
    values = secret_values(cfg.model_dump(mode="python", exclude={"path"}))
    values |= secret_values({"url": _url_password(cfg.store.url)})
    root = logging.getLogger()     # installed even without configured secrets: it masks minted ones too
    # one filter holding every secret configured in this process (a second config, as in a test run of many
    # commands, joins the first): with two filters, the one added first could mask a shorter secret inside a
    # longer one and leave the rest of the longer one for the second filter not to recognize
    for owner in (root, *root.handlers):
        for old in [f for f in owner.filters if isinstance(f, RedactingFilter)]:
            values |= set(old.values)
            owner.removeFilter(old)
    flt = RedactingFilter(values)
    for h in root.handlers:
        h.addFilter(flt)
    root.addFilter(flt)


def _url_password(url: str) -> Any:
    from hub.secrets import Secret
    try:
        from sqlalchemy.engine import make_url
        pw = make_url(url).password
    except Exception:
        return None
    return Secret(pw) if pw else None
