"""Fixtures for connector tests: a throwaway MariaDB database per test session."""
from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

MARIADB_HOST = os.environ.get("TRIAD_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("TRIAD_TEST_MARIADB_PORT", "3306"))


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """``mysql+pymysql://root@127.0.0.1:3306/triad_test_<random>``, dropped at the end of the session.

    Skips (with the reason) only when the server does not answer.
    """
    import pymysql

    try:
        admin = pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="",
                                connect_timeout=3, autocommit=True)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MariaDB server on {MARIADB_HOST}:{MARIADB_PORT} does not answer: {exc}")
    name = f"triad_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}?charset=utf8mb4"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
