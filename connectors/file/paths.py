"""Keep every file the connector touches inside its configured folder (SPEC section 8)."""
from __future__ import annotations

import glob as globlib
from pathlib import Path, PurePosixPath, PureWindowsPath

from hub.errors import ConfigError

DELETED_SUFFIX = ".deleted"


def check_relative(pattern: str, *, connector: str | None = None) -> str:
    """Refuse names that could leave the folder before touching the file system.

    Raises:
        ConfigError: the name is empty, absolute, has a drive, or contains ``..``.
    """
    if not pattern or not pattern.strip():
        raise ConfigError("empty file name", connector=connector)
    win = PureWindowsPath(pattern)
    posix = PurePosixPath(pattern.replace("\\", "/"))
    if posix.is_absolute() or win.drive or win.root:
        raise ConfigError(f"file name '{pattern}' is absolute; name a file inside the folder", connector=connector)
    if ".." in posix.parts:
        raise ConfigError(f"file name '{pattern}' leaves the folder ('..' is not allowed)", connector=connector)
    return posix.as_posix()


def inside(root: Path, candidate: Path, *, connector: str | None = None) -> Path:
    """``candidate`` resolved (symlinks followed), refused when it lands outside ``root``.

    Raises:
        ConfigError: the resolved path is outside ``root``.
    """
    real_root = root.resolve()
    real = candidate.resolve()
    if real != real_root and not real.is_relative_to(real_root):
        raise ConfigError(f"'{candidate}' resolves to '{real}', outside the folder '{real_root}'",
                          connector=connector)
    return real


def is_glob(pattern: str) -> bool:
    return globlib.has_magic(pattern)


def matching_files(root: Path, pattern: str, *, connector: str | None = None,
                   deleted: bool = False) -> list[Path]:
    """The files a stream source names, sorted by name.

    Side files (``*.deleted.csv``) are data files only when ``deleted`` is set;
    hidden files (our own temp files among them) never are.

    Raises:
        ConfigError: the name leaves the folder, directly or through a symlink.
    """
    rel = check_relative(pattern, connector=connector)
    if is_glob(rel):
        found = [p for p in root.glob(rel) if not p.name.startswith(".")]
    else:
        found = [root / rel] if (root / rel).exists() else []
    files = []
    for p in found:
        real = inside(root, p, connector=connector)
        if real.is_file() and Path(p.name).stem.endswith(DELETED_SUFFIX) == deleted:
            files.append(p)
    return sorted(files)


def deleted_pattern(pattern: str) -> str:
    """``customers.csv`` -> ``customers.deleted.csv`` (``exports/c*.xlsx`` -> ``exports/c*.deleted.csv``)."""
    rel = PurePosixPath(check_relative(pattern))
    stem = rel.name.rsplit(".", 1)[0] if "." in rel.name else rel.name
    return (rel.parent / f"{stem}{DELETED_SUFFIX}.csv").as_posix()
