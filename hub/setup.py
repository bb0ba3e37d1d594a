"""`triad init` and `triad config validate`: a working project in one command, and a full check of it."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from hub.config import TriadConfig, load_config
from hub.errors import ConfigError, TriadError, UsageError
from hub.secrets import masked_url

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = PACKAGE_ROOT / "config" / "triad.example.yaml"
SAMPLES = PACKAGE_ROOT / "config" / "samples"


def init_project(directory: str, *, force: bool = False) -> dict[str, Any]:
    """Write triad.yaml, mappings/ and sample exports into DIRECTORY and migrate the store.

    ``force`` replaces triad.yaml only: sample exports and mappings already there are the user's
    (edited, or real data by now) and stay as they are. When the store cannot be set up, what this
    call wrote is taken back (a replaced triad.yaml gets its old text), so a second try starts clean.

    Raises:
        UsageError: triad.yaml exists already and ``force`` is not set, or DIRECTORY cannot be written.
        TriadError: the store cannot be opened (down, refused, unknown database, bad credentials).
    """
    from sqlalchemy.exc import DatabaseError
    from hub.sqlite_checkpoint import dispose
    from hub.store import current_revision, make_engine, upgrade
    root = Path(directory)
    made: list[Path] = []         # files and folders this call created, in order
    try:
        _make_folder(root, made)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {root}: {exc.strerror or exc}") from None
    cfg_path = root / "triad.yaml"
    if cfg_path.exists() and not force:
        raise UsageError(f"{cfg_path} exists already (use --force to overwrite it)")
    previous = cfg_path.read_bytes() if cfg_path.exists() else None
    try:
        try:
            if previous is None:
                made.append(cfg_path)
            shutil.copyfile(TEMPLATE, cfg_path)
            if SAMPLES.is_dir():
                for src in SAMPLES.rglob("*"):
                    if src.is_file() and src.name != "__init__.py":
                        dest = root / src.relative_to(SAMPLES)
                        if not dest.exists():
                            _make_folder(dest.parent, made)
                            made.append(dest)
                            shutil.copyfile(src, dest)
            _make_folder(root / "mappings", made)
        except OSError as exc:
            raise UsageError(f"cannot write into {root}: {exc.strerror or exc}"
                             + (f" ({exc.filename})" if exc.filename else "")) from None
        cfg = load_config(str(cfg_path))
        engine = make_engine(cfg.store.url)
        try:
            existed = current_revision(engine) is not None   # a store made before keeps its data
            upgrade(engine)
        except DatabaseError as exc:   # the wording and exit code of every other command's failed open
            from hub.context import store_open_error
            raise store_open_error(cfg.store.url, exc) from None
        finally:
            dispose(engine)
    except BaseException:
        _take_back(made, cfg_path, previous)
        raise
    return {"directory": str(root.resolve()), "config": str(cfg_path), "store": masked_url(cfg.store.url),
            "store_existed": existed, "store_from_env": bool(os.environ.get("TRIAD_DATABASE_URL"))}


def _make_folder(folder: Path, made: list[Path]) -> None:
    """``mkdir -p``, noting each folder it creates."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for p in reversed(missing):
        p.mkdir(exist_ok=True)
        made.append(p)


def _take_back(made: list[Path], cfg_path: Path, previous: bytes | None) -> None:
    """Undo a failed init: remove what it created (a folder only when empty), restore a replaced triad.yaml."""
    for p in reversed(made):
        try:
            p.rmdir() if p.is_dir() else p.unlink(missing_ok=True)
        except OSError:
            pass
    if previous is not None:
        try:
            cfg_path.write_bytes(previous)
        except OSError:
            pass


def validate_all(cfg: TriadConfig) -> dict[str, Any]:
    """Every problem in the config and the mappings it uses (empty list when all is well), and warnings:
    what the config asks that will not happen, though the rest works."""
    from hub.connector import load_registry
    from hub.mapping import find_mapping, validate_mapping_file
    problems: list[str] = []
    warnings: list[str] = []
    connectors = []
    registry = load_registry()
    for name, c in cfg.connectors.items():
        connectors.append({"name": name, "type": c.type, "direction": c.direction, "entities": list(c.entities)})
        if c.type not in registry:
            problems.append(f"connectors.{name}.type: type '{c.type}' is known but not installed here")
            continue
        cls = registry[c.type]
        if "retries" in c.options:
            from hub.http import retry_attempts
            try:
                retry_attempts(c.options["retries"])
            except ConfigError as exc:
                problems.append(f"connectors.{name}.retries: {exc.message}")
        validate_options = getattr(cls, "validate_options", None)
        if validate_options is not None:   # connectors with their own description files (rest, singer)
            prefix = f"connectors.{name}"
            problems += [p if p.startswith(prefix) else f"{prefix}: {p}"
                         for p in validate_options(name, c.options, str(cfg.base_dir))]
        else:   # the others check their options when built (no I/O then): build it here, not at the first run
            problems += _build_problems(cls, name, c.options, str(cfg.base_dir))
        option_warnings = getattr(cls, "option_warnings", None)
        if option_warnings is not None:   # valid, but it will not work as things are (a folder not there)
            warnings += option_warnings(name, c.options, str(cfg.base_dir))
        for entity, binding in c.entities.items():
            if entity not in cls.entities:
                problems.append(f"connectors.{name}.entities.{entity}: the {c.type} connector does not offer "
                                f"{entity}; it offers {', '.join(cls.entities)}")
                continue
            if entity in getattr(cls, "read_only_entities", frozenset()) and c.direction != "in":
                (problems if c.direction == "out" else warnings).append(read_only_note(name, c.type, entity, c.direction))
            try:
                path = find_mapping(c.type, entity, binding.mapping, str(cfg.base_dir))
            except ConfigError as exc:
                problems.append(f"connectors.{name}.entities.{entity}.mapping: {exc}")
                continue
            problems += [str(i) for i in validate_mapping_file(str(path), entity)]
    if cfg.serve.oidc is not None:   # checked here too, not only when `triad serve` starts
        from hub.api.auth import oidc_config
        try:
            oidc_config(cfg)
        except ConfigError as exc:
            problems.append(str(exc))
    return {"problems": _with_lines(cfg, problems), "warnings": _with_lines(cfg, warnings), "connectors": connectors}


def store_report(ctx: Any, *, check: bool = True) -> dict[str, Any]:
    """The store a command would use (password masked), whether ``$TRIAD_DATABASE_URL`` named it, and, when
    ``check``, why it cannot be used now (``problem``: down, refused, no such file or database, not migrated;
    ``config_error`` when the fault is the URL's, as a file there that is no database)."""
    cfg = ctx.config()
    out: dict[str, Any] = {"url": masked_url(cfg.store.url), "from_env": bool(os.environ.get("TRIAD_DATABASE_URL")),
                           "problem": None, "config_error": False}
    if check:
        try:
            ctx.engine()
        except TriadError as exc:   # ConfigError too
            out["problem"] = str(exc) if str(exc).startswith("store.url") else f"store.url: {exc}"
            out["config_error"] = isinstance(exc, ConfigError)
    return out


def _with_lines(cfg: TriadConfig, messages: list[str]) -> list[str]:
    """Each message naming a key path of the config file, with the line the key is written on."""
    from hub.config_lines import line_map, with_lines
    path = getattr(cfg, "path", None)
    if not messages or path is None:
        return messages
    try:
        lines = line_map(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return messages
    return [with_lines(m, lines, str(path)) for m in messages]


def _build_problems(cls: Any, name: str, options: dict[str, Any], base_dir: str) -> list[str]:
    """What building the connector refuses in its options (a required key missing, a bad value)."""
    try:
        connector = cls(name, options, base_dir=base_dir)
    except ConfigError as exc:
        return [exc.message]
    except Exception as exc:   # noqa: BLE001 - a connector's own check, whatever it raises, is a problem here
        return [f"connectors.{name}: cannot be set up: {type(exc).__name__}: {exc}"]
    try:
        connector.close()
    except Exception:   # noqa: BLE001 - nothing was opened that matters
        pass
    return []


def read_only_note(name: str, type_name: str, entity: str, direction: str) -> str:
    """Direction out on a read-only entity syncs nothing (a problem); both only reads it (a warning)."""
    where = f"connectors.{name}.entities.{entity}: the {type_name} connector cannot write {entity}"
    if direction == "out":
        return f"{where}, and direction out does not read it: nothing would sync (use direction in or both)"
    return f"{where}; it is read only, no writes are queued for it (direction both applies to the other entities)"


def load_and_validate(path: str | None) -> TriadConfig:
    cfg = load_config(path)
    report = validate_all(cfg)
    if report["problems"]:
        raise ConfigError("\n".join(report["problems"]))
    return cfg
