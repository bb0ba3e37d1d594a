"""A project made by `triad init` (its sample exports and mappings), as the current folder."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "p")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"
