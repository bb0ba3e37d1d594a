"""Who holds a stream lease or an outbox claim, and whether that process is known to be gone.

Leases (:mod:`hub.sync`) and claims (:mod:`hub.push`) name their holder ``host:pid``, optionally
followed by ``:role`` (``sweep``, ``inbox``...). A holder on this host whose process no longer
exists is dead: its lease or claim is taken over at once. A holder elsewhere is only known dead
when its lease or claim runs out.

``host`` is the host name plus, on Linux, a mark of the kernel boot and the pid namespace
(``name/1a2b3c4d``): two containers sharing a host name (``--network host`` shares it) have
separate pid namespaces, and one must not read the other's live pid as a dead process of its own.
"""
from __future__ import annotations

import functools
import hashlib
import os
import socket
from pathlib import Path


@functools.lru_cache(maxsize=1)
def this_host() -> str:
    """This host's name, with the boot and pid-namespace mark where the system shows them."""
    name = socket.gethostname()
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        space = os.stat("/proc/self/ns/pid").st_ino
    except OSError:      # not Linux: the host name alone
        return name
    return f"{name}/{hashlib.sha1(f'{boot}:{space}'.encode()).hexdigest()[:8]}"


def worker_id(role: str | None = None) -> str:
    """``host:pid`` (``host:pid:role``) of this process, as recorded on leases and claims."""
    me = f"{this_host()}:{os.getpid()}"
    return f"{me}:{role}" if role else me


def dead_here(holder: str) -> bool:
    """True when ``holder`` names a process of this host (and pid namespace) that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.split(":", 1)[0]
    if host != this_host() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):    # alive under another user; or no such pid number at all
        return False
    return False
