"""Helpers shared by the rest and singer tests (this folder is on sys.path: no package on purpose)."""
from __future__ import annotations

import copy
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
TYPES = {"rest": "connectors.rest.connector:RestConnector", "singer": "connectors.singer.connector:SingerConnector"}


def plugin_dir(folder: Path) -> str | None:
    """A folder whose dist-info registers the rest and singer types, when the installed project does not yet.

    Put it on sys.path (in process) or PYTHONPATH (subprocesses) and ``load_registry()`` finds
    both types. Returns None when the installed distribution already registers them.
    """
    have = {ep.name for ep in entry_points(group="triad.connectors")}
    missing = {name: target for name, target in TYPES.items() if name not in have}
    if not missing:
        return None
    info = folder / "triad_rest_singer_entry_points-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: triad-rest-singer-entry-points\nVersion: 0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("[triad.connectors]\n" + "".join(
        f"{name} = {target}\n" for name, target in missing.items()), encoding="utf-8")
    return str(folder)


def subprocess_env(plugins: str | None, **extra: str) -> dict[str, str]:
    """The environment for a `python -m cli` subprocess: plugins on PYTHONPATH, no stray Triad variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER")}
    if plugins:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (plugins, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def sim_api() -> dict[str, Any]:
    """The shipped description of the generic simulator, as a map to vary in tests."""
    return yaml.safe_load((REPO / "config" / "rest" / "simulator.yaml").read_text(encoding="utf-8"))


def variant(api: dict[str, Any], resource: str, **changes: Any) -> dict[str, Any]:
    """A copy of ``api`` with keys of one resource replaced (``list={...}`` and so on)."""
    out = copy.deepcopy(api)
    out["resources"][resource].update(changes)
    return out
