"""Running a Singer tap: finding the executable, private config files, the subprocess, its stderr.

The tap's config is written to a file only the Triad user can read, in a
temporary folder removed after the run; secrets are revealed only there.
stderr goes to a file (a pipe nobody reads would block a chatty tap) and its
tail is what a failure reports, with known secret values masked.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from hub.errors import ConfigError, FatalError
from hub.secrets import MASK, Secret

log = logging.getLogger(__name__)

STDERR_TAIL = 4000          # characters of stderr a failure message carries


def reveal_all(value: Any) -> Any:
    """A copy with every Secret replaced by its value (for the tap's own config file)."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {k: reveal_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal_all(v) for v in value]
    return value


def find_executable(name: str, base_dir: str | Path) -> str | None:
    """A tap executable: a path (relative to triad.yaml's folder), next to this Python, or on PATH."""
    if os.sep in name or (os.altsep and os.altsep in name):
        path = Path(name) if Path(name).is_absolute() else Path(base_dir) / name
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def resolve_command(options: dict[str, Any], base_dir: str | Path, connector: str) -> list[str]:
    """The tap's argv from ``command`` (a list or a shell-style string) or ``tap`` (an executable name).

    Raises:
        ConfigError: neither is given, or the executable cannot be found.
    """
    command = options.get("command")
    if command is not None:
        argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        key = "command"
    elif options.get("tap"):
        argv, key = [str(options["tap"])], "tap"
    else:
        raise ConfigError(f"connectors.{connector}: give `tap: <executable>` (e.g. tap-jsonl) or "
                          f"`command: [<path to the tap>, <args>...]`")
    if not argv:
        raise ConfigError(f"connectors.{connector}.command: empty command")
    found = find_executable(argv[0], base_dir)
    if found is None:
        raise ConfigError(f"connectors.{connector}.{key}: tap executable '{argv[0]}' not found (looked next to "
                          f"{sys.executable} and on PATH); install it (pip install {Path(argv[0]).name}), or give "
                          f"its path in `command:` (a tap in its own virtualenv, say)")
    return [found, *argv[1:]]


def tap_label(argv: list[str]) -> str:
    """How messages name a tap: its executable, or the script an interpreter runs."""
    first = Path(argv[0]).name
    if first.startswith("python") and len(argv) > 1 and not argv[1].startswith("-"):
        return Path(argv[1]).name
    return first


def write_private_json(path: Path, data: Any) -> Path:
    """Write JSON readable by this user only (configs hold passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, default=str)
    return path


def mask(text: str, secrets: set[str]) -> str:
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


class TapRun:
    """One running tap: stdout line by line, stderr kept in a file, stopped for sure at the end.

    Args:
        argv: the full command line.
        cwd: the working folder (triad.yaml's, so relative paths in the tap config work).
        env: extra environment variables.
        workdir: where stderr is kept.
        secrets: values masked in the stderr tail.
    """

    def __init__(self, argv: list[str], cwd: str | Path, env: dict[str, str], workdir: Path,
                 secrets: set[str]) -> None:
        self.argv, self.secrets, self.label = argv, secrets, tap_label(argv)
        self.stderr_path = workdir / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        log.info("starting tap %s: %s", self.label, " ".join(shlex.quote(a) for a in argv[1:]))
        try:
            self.proc = subprocess.Popen(argv, cwd=str(cwd), env=full_env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                         encoding="utf-8", errors="replace", bufsize=1)
        except OSError as exc:
            self._stderr.close()
            raise FatalError(f"cannot start the tap {self.label}: {exc}") from exc

    def lines(self) -> Iterator[str]:
        assert self.proc.stdout is not None
        yield from self.proc.stdout

    def wait(self) -> int:
        return self.proc.wait()

    def stderr_tail(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return ""
        text = data[-STDERR_TAIL:].decode("utf-8", "replace").strip()
        return mask(text, self.secrets)

    def failure(self, code: int, connector: str) -> FatalError:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        tail = self.stderr_tail()
        return FatalError(f"the tap {self.label} {how}" + (f"; its stderr ends with:\n{tail}" if tail else
                                                           " (no stderr)"), connector=connector)

    def stop(self) -> None:
        """End the tap if it still runs (the reader stopped early or failed), and close the files."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def run_to_end(argv: list[str], cwd: str | Path, env: dict[str, str], workdir: Path, secrets: set[str],
               connector: str, timeout: float) -> str:
    """Run a tap to completion (``--discover``) and return its stdout.

    Raises:
        FatalError: the tap failed or took longer than ``timeout`` seconds; the stderr tail is included.
    """
    run = TapRun(argv, cwd, env, workdir, secrets)
    try:
        out, _ = run.proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        run.stop()
        raise FatalError(f"the tap {run.label} did not finish within {timeout:g}s", connector=connector) from exc
    finally:
        run.stop()
    if run.proc.returncode != 0:
        raise run.failure(run.proc.returncode, connector)
    return out
