"""Fixtures for identity tests (the hub itself is in helpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Hub, make_hub


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    h = make_hub(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)
    yield h
    h.engine.dispose()


@pytest.fixture
def pg_hub(tmp_path: Path, pg_url: str) -> Hub:
    h = make_hub(pg_url, tmp_path)
    yield h
    h.engine.dispose()
