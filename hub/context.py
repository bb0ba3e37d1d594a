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
        if self._config is None:
            self._config = load_config(self.config_path, required=required)
            install_redaction(self._config)
        return self._config

    def engine(self, *, check_schema: bool = True) -> Engine:
        """The hub store; by default refuses a database that is not migrated to head."""
        if self._engine is None:
            from hub.store import ensure_current, make_engine
            self._engine = make_engine(self.config(required=False).store.url)
            if check_schema:
                ensure_current(self._engine)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def install_redaction(cfg: TriadConfig) -> None:
    """Mask every configured secret in all log output."""
    values = secret_values(cfg.model_dump(mode="python", exclude={"path"}))
    values |= secret_values({"url": _url_password(cfg.store.url)})
    if not values:
        return
    flt = RedactingFilter(values)
    root = logging.getLogger()
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
