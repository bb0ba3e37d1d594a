"""Fixtures for the singer connector tests: a scripted tap, the real taps."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from singer_helpers import FAKE_TAP, find_tap_postgres  # noqa: E402

from connectors.singer.connector import SingerConnector  # noqa: E402


@pytest.fixture(scope="session")
def tap_postgres() -> str:
    found = find_tap_postgres()
    if found is None:
        message = ("tap-postgres is not installed: python -m venv \"$VIRTUAL_ENV/taps/tap-postgres\" && "
                   "\"$VIRTUAL_ENV/taps/tap-postgres/bin/pip\" install 'meltanolabs-tap-postgres>=0.8.3,<0.11'")
        if os.environ.get("CI"):
            pytest.fail(message)      # CI installs it: a silent skip would hide a broken setup
        pytest.skip(message)
    return found


@pytest.fixture
def make_fake() -> Iterator[Callable[..., SingerConnector]]:
    """A SingerConnector running tests/singer/fake_tap.py with the given tap config."""
    made: list[SingerConnector] = []

    def make(base_dir: Path, tap_config: dict[str, Any], **options: Any) -> SingerConnector:
        conn = SingerConnector("legacy", {"command": [sys.executable, str(FAKE_TAP)], "config": tap_config,
                                          **options}, base_dir=str(base_dir))
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()
