"""The ``singer`` connector: any Singer tap as a source, its STATE kept by Triad.

triad.yaml::

    connectors:
      legacy:
        type: singer
        direction: in                      # taps only read
        tap: tap-jsonl                     # an executable next to Triad's Python or on PATH, or:
        # command: [./taps/tap-postgres/bin/tap-postgres]   (argv; a path is relative to triad.yaml)
        config: {path: ./exports/*.jsonl, stream_name: customers}   # the tap's own config (or config_file: x.json)
        catalog: discover                  # discover (default) | none (the tap's defaults) | path/to/catalog.json
        streams: {customers: customer}     # Singer stream -> entity (default: the mapping's `source`)
        entities:
          customer: {mapping: mappings/legacy_customer.yaml, replication_key: updated_at}

Other options: ``env`` (extra environment variables), ``catalog_flag`` (``--properties``
for old taps), ``discover_timeout`` (seconds). A stream entry may be a map:
``{entity: customer, replication_key: updated_at, replication_method: INCREMENTAL}``.

Each read runs the tap with ``--config``, ``--state`` (the cursor Triad committed,
which *is* the tap's last STATE) and ``--catalog`` (only this entity's streams
selected), in triad.yaml's folder. The STATE goes back to Triad as the cursor of
the batch it closes (see :mod:`connectors.singer.messages`), so it is committed
in the same transaction as the records it covers. A failing tap stops the stream
with the end of its stderr in the message.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from connectors.singer.catalog import Wanted, select, stream_names
from connectors.singer.messages import Reading, batches
from connectors.singer.process import (TapRun, resolve_command, reveal_all, run_to_end, tap_label,
                                       write_private_json)
from hub.canonical import ENTITIES
from hub.connector import Batch, CheckResult, Connector, StreamSpec, WriteChange, WriteResult
from hub.errors import ConfigError, FatalError, TriadError
from hub.secrets import secret_values

log = logging.getLogger(__name__)


def parse_streams(raw: Any, connector: str) -> dict[str, dict[str, Any]]:
    """``streams:`` as {stream: {entity, replication_key, replication_method}}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"connectors.{connector}.streams: expected a map of Singer stream -> entity")
    out: dict[str, dict[str, Any]] = {}
    for name, target in raw.items():
        entry = {"entity": target} if isinstance(target, str) else target
        if not isinstance(entry, dict) or entry.get("entity") not in ENTITIES:
            raise ConfigError(f"connectors.{connector}.streams.{name}: expected an entity "
                              f"({', '.join(ENTITIES)}) or {{entity: ..., replication_key: ...}}")
        unknown = set(entry) - {"entity", "replication_key", "replication_method"}
        if unknown:
            raise ConfigError(f"connectors.{connector}.streams.{name}: unknown key '{sorted(unknown)[0]}'; "
                              f"known: entity, replication_key, replication_method")
        out[str(name)] = entry
    return out


class SingerConnector(Connector):
    """Runs a Singer tap per read (see the module docstring)."""

    type_name = "singer"
    # keys of the connector block and of an entity block besides the common ones (hub.config rejects others)
    option_keys = frozenset({"tap", "command", "config", "config_file", "catalog", "catalog_flag",
                             "discover_timeout", "env", "streams"})
    entity_option_keys = frozenset({"replication_key", "replication_method"})
    entities = tuple(ENTITIES)
    directions = ("in",)

    def __init__(self, name: str, options: dict[str, Any], *, base_dir: str = ".") -> None:
        super().__init__(name, options, base_dir=base_dir)
        self.argv = resolve_command(options, base_dir, name)
        self.streams = parse_streams(options.get("streams"), name)
        self.catalog_mode = str(options.get("catalog", "discover"))
        self.catalog_flag = str(options.get("catalog_flag", "--catalog"))
        self.discover_timeout = float(options.get("discover_timeout", 300))
        env = options.get("env") or {}
        if not isinstance(env, dict):
            raise ConfigError(f"connectors.{name}.env: expected a map of variable -> value")
        self.env = {str(k): str(v) for k, v in reveal_all(env).items()}
        self.secrets = secret_values(options)
        config, config_file = options.get("config"), options.get("config_file")
        if config is not None and not isinstance(config, dict):
            raise ConfigError(f"connectors.{name}.config: expected a map (the tap's own settings)")
        self.config = reveal_all(config or {})
        self.config_file = str(Path(base_dir) / config_file) if config_file else None
        self._catalog: dict[str, Any] | None = None
        self.process: Any = None              # the running tap's Popen (diagnostics, kill tests)
        self.last_reading: Reading | None = None

    @classmethod
    def validate_options(cls, name: str, options: dict[str, Any], base_dir: str = ".") -> list[str]:
        """Problems of a connector block without running the tap (for `triad config validate`)."""
        try:
            cls(name, options, base_dir=base_dir)
        except ConfigError as exc:
            return [exc.message]
        return []

    # -- plumbing -----------------------------------------------------------------------------------
    def _wanted(self, stream: StreamSpec) -> list[Wanted]:
        opts = stream.options or {}
        found = [Wanted(name, e.get("replication_key") or opts.get("replication_key"),
                        e.get("replication_method") or opts.get("replication_method"))
                 for name, e in self.streams.items() if e["entity"] == stream.entity]
        return found or [Wanted(stream.source, opts.get("replication_key"), opts.get("replication_method"))]

    def _config_path(self, workdir: Path) -> str:
        if self.config_file:
            return self.config_file
        return str(write_private_json(workdir / "config.json", self.config))

    def _discover(self, workdir: Path) -> dict[str, Any]:
        if self._catalog is None:
            argv = [*self.argv, "--config", self._config_path(workdir), "--discover"]
            out = run_to_end(argv, self.base_dir, self.env, workdir, self.secrets, self.name, self.discover_timeout)
            try:
                self._catalog = json.loads(out)
            except ValueError as exc:
                raise FatalError(f"the tap's --discover output is not a JSON catalog: {exc}",
                                 connector=self.name) from exc
        return self._catalog

    def _catalog_doc(self, workdir: Path) -> dict[str, Any]:
        if self.catalog_mode == "discover":
            return self._discover(workdir)
        path = Path(self.base_dir) / self.catalog_mode
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"connectors.{self.name}.catalog: cannot read the catalog {path}: {exc}") from exc

    # -- contract -----------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Run the tap's discovery (it connects to its system); ``catalog: none`` only finds the executable."""
        tap = tap_label(self.argv)
        info: dict[str, Any] = {"tap": self.argv[0]}
        if self.catalog_mode == "none":
            return CheckResult(True, f"{tap} found at {self.argv[0]} (catalog: none, so it was not run)", info)
        workdir = Path(tempfile.mkdtemp(prefix="triad-singer-"))
        try:
            info["streams"] = stream_names(self._discover(workdir))
            if self.catalog_mode != "discover":
                self._catalog_doc(workdir)
        except TriadError as exc:
            return CheckResult(False, f"{tap} check failed: {exc}", info)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return CheckResult(True, f"{tap} discovered {len(info['streams'])} stream(s): {', '.join(info['streams'])}",
                           info)

    def read(self, stream: StreamSpec, cursor: Any) -> Iterator[Batch]:
        """Run the tap from ``cursor`` (its last committed STATE) and yield batches closed by STATEs."""
        wanted = self._wanted(stream)
        workdir = Path(tempfile.mkdtemp(prefix="triad-singer-"))
        try:
            argv = [*self.argv, "--config", self._config_path(workdir)]
            if cursor is not None:
                argv += ["--state", str(write_private_json(workdir / "state.json", cursor))]
            names = {w.stream for w in wanted}       # the names the tap's RECORDs of this entity carry
            if self.catalog_mode != "none":
                catalog, names = select(self._catalog_doc(workdir), wanted, self.name)
                argv += [self.catalog_flag, str(write_private_json(workdir / "catalog.json", catalog))]
            run = TapRun(argv, self.base_dir, self.env, workdir, self.secrets)
            self.process = run.proc
            reading = Reading()
            try:
                yield from batches(run.lines(), names, cursor, stream.batch_size, self.name, reading,
                                   selected=self.catalog_mode != "none")
                code = run.wait()
                if code != 0:
                    raise run.failure(code, self.name)
            finally:
                run.stop()
                self.last_reading = reading
            self._log_reading(reading, names, stream)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _log_reading(self, reading: Reading, names: set[str], stream: StreamSpec) -> None:
        where = {"connector": self.name, "entity": stream.entity}
        log.info("tap run done: %d records (%d unreadable), %d states, %d records of other streams",
                 reading.records, reading.unreadable, reading.states, reading.other_records, extra=where)
        if reading.other_records and self.catalog_mode != "none":
            log.warning("the tap sent records of streams it was not asked for (%s); they were not read",
                        ", ".join(sorted(reading.other_streams)), extra=where)
        for label, info in reading.schemas.items():
            keys = info.key_properties if label in names else []
            if keys and stream.key not in keys:   # a mapping keyed on another field merges records wrongly
                log.warning("the mapping's key %s is not the key the tap declares for %s (%s)", stream.key,
                            label, ", ".join(keys), extra=where)

    def write(self, stream: StreamSpec, changes: list[WriteChange]) -> list[WriteResult]:
        """Singer taps only read: every change is refused (give the connector ``direction: in``)."""
        return [WriteResult(ch.change_id, False, ch.source_id,
                            error=f"connector {self.name} is a Singer tap, which only reads; set direction: in")
                for ch in changes]
