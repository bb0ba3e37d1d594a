"""Durations on the command line: every option takes the same forms, and a bad one is a clear exit 2."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from hub.types import utcnow


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The `triad init` project on SQLite, in single-user mode (whoever runs it is admin)."""
    for name in ("TRIAD_CONFIG", "TRIAD_USER", "TRIAD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "p")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "p")
    return tmp_path / "p"


def triad(*args: str, code: int = 0):  # noqa: ANN201
    r = CliRunner().invoke(main, ["--user", "root", "--json", *args])
    assert r.exit_code == code, (args, r.output, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception   # no traceback
    return json.loads(r.stdout) if code == 0 else r.output


@pytest.mark.parametrize("text,length", [("1.5H", timedelta(minutes=90)), ("2W", timedelta(weeks=2)),
                                         (" 3 d ", timedelta(days=3))])
def test_every_option_takes_the_same_forms(project: Path, text: str, length: timedelta):
    made = triad("tokens", "create", "--user", "root", "--expires", text)
    expires = datetime.fromisoformat(made["expires_at"])
    assert abs(expires - (utcnow() + length)) < timedelta(minutes=1)
    assert triad("conflicts", "list", "--older-than", text)["conflicts"] == []
    assert triad("audit", "list", "--since", text)["entries"]   # the token just made is audited


@pytest.mark.parametrize("args", [["tokens", "create", "--user", "root", "--expires", "soon"],
                                  ["conflicts", "list", "--older-than", "soon"], ["audit", "list", "--since", "soon"]])
def test_a_bad_duration_names_the_option_the_forms_and_an_example(project: Path, args: list[str]):
    out = triad(*args, code=2)
    assert f"{args[-2]} 'soon': expected a positive duration like 30m, 12h, 7d, 2w" in out


def test_an_endless_schedule_interval_is_a_usage_error_not_a_crash(project: Path):
    """The config takes `every: 99999999999d`; the scheduler must refuse it clearly, not overflow."""
    cfg = project / "triad.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("every: 30s", "every: 99999999999d"), encoding="utf-8")
    out = triad("scheduler", "start", code=2)
    assert "every '99999999999d': too long; at most 36500 days" in out
