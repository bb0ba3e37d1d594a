"""Fixtures for the hostile-input tests: the corpus, a throwaway `triad init` project on SQLite, and
a CLI runner that fails the test on any traceback (a crash is never an acceptable answer to bad input)."""
from __future__ import annotations

import json
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

CORPUS = Path(__file__).resolve().parent / "corpus"
SQL_ID = "'; DROP TABLE customer;--"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)     # a command that falls back to ./triad.yaml or ./triad.db stays in the sandbox


@dataclass
class Outcome:
    """What one CLI invocation did: exit code, streams, and the JSON document if one was printed."""

    code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def crashed(self) -> bool:
        return self.exception is not None

    def describe(self) -> str:
        if self.exception is not None:
            tb = "".join(traceback.format_exception(self.exception))
            return f"exit {self.code} with a traceback:\n{tb[-2500:]}"
        return f"exit {self.code}\nstdout: {self.stdout[-1500:]}\nstderr: {self.stderr[-1500:]}"


def run_cli(*args: str, config: Path | None = None) -> Outcome:
    """Invoke `triad` in-process; an exception other than SystemExit is recorded, never re-raised."""
    from cli import main
    argv = (["--config", str(config)] if config is not None else []) + list(args)
    r = CliRunner().invoke(main, argv, catch_exceptions=True)
    exc = None if r.exception is None or isinstance(r.exception, SystemExit) else r.exception
    return Outcome(r.exit_code, r.stdout, r.stderr, exc)


def clean(outcome: Outcome, *codes: int) -> Outcome:
    """Assert no traceback, one of ``codes`` as exit code, and some message for a non-zero exit."""
    assert not outcome.crashed, outcome.describe()
    assert "Traceback" not in outcome.output, outcome.describe()
    assert outcome.code in codes, outcome.describe()
    if outcome.code != 0:
        assert outcome.output.strip(), "a non-zero exit must say why"
    return outcome


@dataclass
class Project:
    """A `triad init` project: ERP and CRM file connectors over CSV exports, SQLite store."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "triad.yaml"

    @property
    def erp(self) -> Path:
        return self.root / "exports" / "erp"

    @property
    def crm(self) -> Path:
        return self.root / "exports" / "crm"

    def triad(self, *args: str) -> Outcome:
        return run_cli(*args, config=self.config)

    def ok(self, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
        """Run with --json, assert a clean exit with one of ``codes``, return the JSON document."""
        out = clean(self.triad("--json", *args), *codes)
        return out.json

    def sync(self, *args: str, codes: tuple[int, ...] = (0, 1)) -> dict[tuple[str, str], dict]:
        doc = self.ok("sync", "run", *args, codes=codes)
        return {(r["connector"], r["entity"]): r for r in doc["runs"]}

    def quarantine(self) -> list[dict]:
        return self.ok("quarantine", "list", "--limit", "500")["items"]

    def customers(self, *where: str) -> list[dict]:
        args = [a for w in where for a in ("--where", w)]
        return self.ok("records", "list", "customer", "--limit", "500", *args)["records"]

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def erp_source(self, file_name: str) -> None:
        """Point the ERP customer mapping at ``file_name`` (a file or pattern inside exports/erp)."""
        self.edit("mappings/erp_customer.yaml", "source: customers.csv", f"source: '{file_name}'")

    def engine(self) -> Any:
        from hub.config import load_config
        from hub.store import make_engine
        return make_engine(load_config(str(self.config)).store.url)

    def scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`triad init` once per session; each test copies it (the store is a file next to triad.yaml)."""
    mp = pytest.MonkeyPatch()
    for var in ("TRIAD_DATABASE_URL", "TRIAD_CONFIG", "TRIAD_USER"):
        mp.delenv(var, raising=False)
    root = tmp_path_factory.mktemp("badinput-template") / "p"
    try:
        clean(run_cli("init", str(root)), 0)
    finally:
        mp.undo()
    return root


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Project:
    root = tmp_path / "p"
    shutil.copytree(template, root)
    return Project(root)


def tree_snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every regular file under ``root`` (relative path -> bytes), leaving out paths under ``skip``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not p.is_symlink() and not any(rel == s or rel.startswith(s + "/") for s in skip):
            out[rel] = p.read_bytes()
    return out
