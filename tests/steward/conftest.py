"""A `triad init` project synced once, with the roles and users a steward test needs."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from cli import main


@contextmanager
def synced_project(root: Path, users: str | None = None) -> Iterator[Path]:
    """``root/p`` made by `triad init` and one `sync run`, the current folder while the block runs.

    ``users``: YAML replacing the template's ``roles:`` and ``users:`` sections (the sync then runs as alice).
    """
    mp = pytest.MonkeyPatch()
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        mp.delenv(var, raising=False)
    try:
        assert CliRunner().invoke(main, ["init", str(root / "p")]).exit_code == 0
        args = ["sync", "run"]
        if users is not None:
            cfg = root / "p" / "triad.yaml"
            cfg.write_text(cfg.read_text(encoding="utf-8").split("\nroles:")[0] + users, encoding="utf-8")
            args = ["--user", "alice", *args]
        mp.chdir(root / "p")
        assert CliRunner().invoke(main, args).exit_code == 0
        yield root / "p"
    finally:
        mp.undo()


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the test module's ``template`` project (a fixture each module defines), the current folder."""
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    copy = tmp_path / "p"
    shutil.copytree(template, copy)
    monkeypatch.chdir(copy)
    return copy


@pytest.fixture
def engine(project: Path):  # noqa: ANN201
    from hub.store import make_engine
    eng = make_engine(f"sqlite:///{project / 'triad.db'}")
    yield eng
    eng.dispose()
