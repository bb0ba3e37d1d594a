"""Shared fixtures: throwaway stores on SQLite and on the PostgreSQL server of this machine."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

PG_ADMIN_URL = os.environ.get("TRIAD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_admin():
    from sqlalchemy import create_engine
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the PostgreSQL server; fails (not skips) when it does not answer."""
    try:
        with _pg_admin().connect() as conn:
            conn.exec_driver_sql("select 1")
    except Exception as exc:  # CI starts the server; a silent skip would hide a broken setup
        pytest.fail(f"PostgreSQL does not answer at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL


@contextmanager
def _throwaway_database(server_url: str, prefix: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped (its sessions ended) when the block ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with _throwaway_database(pg_server, "triad_t") as url:
        yield url


@pytest.fixture
def second_pg_url(pg_server: str) -> Iterator[str]:
    """Another one, for a test that compares two stores."""
    with _throwaway_database(pg_server, "triad_t") as url:
        yield url


@pytest.fixture(scope="session")
def pg_session_url(pg_server: str) -> Iterator[str]:
    """One PostgreSQL database for all tests of a session that recreate their own tables."""
    with _throwaway_database(pg_server, "triad_c") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store_in_env(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``store_url`` (SQLite, then PostgreSQL) as $TRIAD_DATABASE_URL, and no other TRIAD_ setting of the caller's."""
    monkeypatch.setenv("TRIAD_DATABASE_URL", store_url)
    monkeypatch.delenv("TRIAD_CONFIG", raising=False)
    monkeypatch.delenv("TRIAD_USER", raising=False)
    return store_url


@pytest.fixture
def migrated(store_url: str):
    """An engine on a store migrated to head."""
    from hub.store import make_engine, upgrade
    engine = make_engine(store_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def start_sims():
    """``start(factory, **kwargs)`` builds a running simulator wrapper; every one is stopped at teardown."""
    started = []

    def start(factory, **kwargs):
        made = factory(**kwargs)
        started.append(made)
        return made

    yield start
    for made in started:
        made.stop()


@pytest.fixture
def init_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project made by `triad init` (its sample exports and mappings, a SQLite store), as the current folder."""
    from click.testing import CliRunner

    from cli import main
    monkeypatch.delenv("TRIAD_DATABASE_URL", raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "p")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"
