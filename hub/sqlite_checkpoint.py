"""WAL checkpoints of a SQLite store, run beside the writers instead of inside their commits.

By default SQLite checkpoints in the connection whose commit takes the
write-ahead log past 1,000 pages: that commit then also copies the whole log
back into the database file and syncs it. A batch of 10,000 updates spread
over a million-record store dirties some 30,000 pages, so two thirds of its
commit time was the checkpoint. Here each engine gets one daemon thread that
runs a PASSIVE checkpoint (it never waits for readers or writers) on an idle
connection of the engine's pool after commits, at most once a second, while
the next batch is being read and mapped; sqlite3 releases the GIL while it
works, so on two cores the copy runs in parallel with the pipeline. The
commit-time checkpoint stays as a backstop at a much larger log size
(``BACKSTOP_PAGES``), should the thread fall behind; the log file is cut back
to ``LOG_SIZE_LIMIT`` once emptied.

Checkpoint timing changes nothing about durability or atomicity: a committed
transaction is in the log, and whoever opens the file next replays it.
"""
from __future__ import annotations

import atexit
import logging
import sqlite3
import threading
import weakref

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

# the committing connection checkpoints past this (4 KB pages: 512 MB; one batch of 10,000 updates
# spread over a million records writes some 180 MB of log)
BACKSTOP_PAGES = 131072
LOG_SIZE_LIMIT = 64 * 1024 * 1024   # bytes the log file is cut back to once a checkpoint has emptied it
# seconds between checkpoints: the commits of a second share one copy and one sync. (How many log
# pages are waiting is in the -shm file, but this process must never open and close that file
# itself: closing any descriptor of a file drops every POSIX lock the process holds on it, and
# another process would then reset the shared memory under SQLite's feet: SIGBUS.)
MIN_INTERVAL = 1.0


class Checkpointer:
    """Checkpoints one database file's log in a background thread, woken by commits."""

    def __init__(self, engine: Engine, path: str) -> None:
        self.path = path
        self._engine = weakref.ref(engine)    # the thread must not keep the engine alive
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint:{path}", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def close(self, wait: float = 0.0) -> None:
        """Stop the thread (after the checkpoint in progress); ``wait``: seconds to wait for it."""
        self._stopped.set()
        self._wake.set()
        if wait:
            self._thread.join(wait)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopped.is_set():
                break
            self._checkpoint()
            if self._stopped.wait(MIN_INTERVAL):
                break

    def _checkpoint(self) -> None:
        # on an idle connection of the engine's own pool, never a new one: one opened and closed
        # here could be the last on the file (the engine disposed meanwhile), and the last to close
        # removes the log while someone may be copying the folder; with no idle connection the
        # engine has been disposed or is busy, and the last close or the next commit will copy
        engine = self._engine()
        if engine is None:
            self._stopped.set()
            return
        idle = getattr(engine.pool, "checkedin", None)
        if idle is None or idle() == 0:
            return
        try:
            raw = engine.raw_connection()
        except Exception as exc:  # noqa: BLE001 - file gone, pool closed: nothing to copy
            log.debug("checkpoint of %s skipped: %s", self.path, exc)
            return
        try:
            cur = raw.cursor()
            busy, pages, done = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            cur.close()
            # pages a reader still needs stay in the log; the next commit's checkpoint copies them
            log.debug("checkpoint of %s: busy=%s, %s of %s log pages", self.path, busy, done, pages)
        except sqlite3.Error as exc:   # locked for a moment: the next commit tries again
            log.debug("checkpoint of %s skipped: %s", self.path, exc)
        finally:
            raw.close()     # back to the pool


def attach(engine: Engine, path: str) -> Checkpointer:
    """Move ``engine``'s checkpoints off its commits (the engine must be a SQLite file in WAL mode)."""
    checkpointer = Checkpointer(engine, path)
    pending = threading.local()

    @event.listens_for(engine, "connect")
    def _backstop(dbapi_conn, _record):  # noqa: ANN001
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cur.execute(f"PRAGMA journal_size_limit={LOG_SIZE_LIMIT}")
        cur.close()

    @event.listens_for(engine, "commit")
    def _after_commit(conn):  # noqa: ANN001
        pending.poke = True

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, _record):  # noqa: ANN001
        # after the commit has really happened (the "commit" event fires just before it)
        if getattr(pending, "poke", False):
            pending.poke = False
            checkpointer.poke()

    weakref.finalize(engine, checkpointer.close)
    _of[engine] = checkpointer
    return checkpointer


def dispose(engine: Engine) -> None:
    """Close ``engine``'s connections, its checkpoint thread first (after the checkpoint in progress).

    The thread checks a connection out while it copies; disposed meanwhile, the engine would leave
    that one open until the garbage collector found it, and only the close of the last connection
    takes the rest of the log into the database file and removes it (a copy of the file alone is
    then the whole store). Any engine, SQLite or not; one used again afterwards has its log copied
    by the commits past the backstop only.
    """
    checkpointer = _of.get(engine)
    if checkpointer is not None:
        checkpointer.close(wait=60.0)
    engine.dispose()


def dispose_all() -> None:
    """:func:`dispose` every engine that has a checkpoint thread (at exit)."""
    for engine in list(_of.keys()):
        dispose(engine)


def checkpointer_of(engine: Engine) -> Checkpointer | None:
    """The checkpointer attached to ``engine`` (None for in-memory and PostgreSQL stores)."""
    return _of.get(engine)


_of: "weakref.WeakKeyDictionary[Engine, Checkpointer]" = weakref.WeakKeyDictionary()


@atexit.register
def _finish() -> None:
    """Let a checkpoint in progress end before the process does: the engine's connections close
    after this, and the last of them can then take the log back into the file and remove it."""
    for checkpointer in list(_of.values()):
        checkpointer.close(wait=60.0)
