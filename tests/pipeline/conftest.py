"""A project made by `triad init` (its sample exports and mappings), as the current folder."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(init_project: Path) -> Path:
    return init_project
