"""The file connector's cursor: the newest change time taken in, and the files read in full.

Stored as ``{"ts": ISO time or null, "files": {name: "size:mtime_ns:inode"}}``.
An export folder usually holds one big full export beside small delta files;
a file whose size, modification time and inode are those recorded when the
last read finished has not been written since, so an incremental read passes
over it without opening it (every row in it was taken in then, or is older
than the cursor). A read with no cursor (``sync run --full``) reads every file.
A plain ISO string (the cursor of earlier versions) is read as ``{"ts": it}``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.file.timestamps import parse_cursor_ts, to_iso
from hub.errors import ConfigError

# A file written this recently may still be being written, or its file system may keep
# modification times in whole seconds: it is read again next time rather than trusted.
SETTLE_SECONDS = 2.0


@dataclass
class FileCursor:
    since: datetime | None = None
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any) -> "FileCursor":
        """Raises ConfigError: the stored value is not a file connector cursor."""
        if value is None or isinstance(value, (str, datetime)):
            return cls(parse_cursor_ts(value))
        if isinstance(value, dict) and set(value) <= {"ts", "files"} and isinstance(value.get("files", {}), dict):
            return cls(parse_cursor_ts(value.get("ts")), {str(k): str(v) for k, v in value.get("files", {}).items()})
        raise ConfigError(f"cursor {value!r} is not an ISO timestamp or a file cursor ({{'ts': ..., 'files': "
                          f"...}}); `triad sync run --full` reads the stream again and stores a new cursor")

    def to_json(self) -> dict[str, Any] | None:
        if self.since is None and not self.files:
            return None
        return {"ts": to_iso(self.since) if self.since is not None else None, "files": dict(sorted(self.files.items()))}


def file_mark(path: Path, now: float | None = None) -> str | None:
    """``size:mtime_ns:inode`` of a file that has settled, else None (it is then always read)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if (now if now is not None else time.time()) - st.st_mtime < SETTLE_SECONDS:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
