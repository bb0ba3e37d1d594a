"""WAL checkpoints of a SQLite store run in a thread of their own, not inside the commits that fill the log."""
from __future__ import annotations

import os
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from hub import sqlite_checkpoint
from hub.store import make_engine


def log_frames(db: Path) -> tuple[int, int]:
    """(frames in the log, frames already copied into the database), from the WAL index header."""
    head = (db.parent / (db.name + "-shm")).read_bytes()[:136]
    return struct.unpack_from("<I", head, 16)[0], struct.unpack_from("<I", head, 96)[0]


def fill_log(engine, rows: int = 6000) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS blob (x BLOB)"))
        conn.execute(text("INSERT INTO blob VALUES (:x)"), [{"x": os.urandom(900)} for _ in range(rows)])


def test_a_commit_past_a_thousand_pages_does_not_copy_the_log_itself(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{db}")
    sqlite_checkpoint.checkpointer_of(engine).close(wait=5)   # only the committing connection could copy now
    fill_log(engine)
    frames, copied = log_frames(db)
    assert frames > 1000 and copied == 0      # SQLite's default would have copied them in the commit
    engine.dispose()


def test_the_thread_copies_the_log_soon_after_a_commit(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{db}")
    fill_log(engine)
    deadline = time.monotonic() + 10
    while True:
        frames, copied = log_frames(db)
        if frames > 1000 and copied == frames:
            break
        assert time.monotonic() < deadline, f"log not checkpointed: {copied} of {frames} frames"
        time.sleep(0.05)
    with engine.connect() as conn:   # and the data is all there
        assert conn.execute(text("SELECT count(*) FROM blob")).scalar() == 6000
    engine.dispose()


def test_in_memory_stores_have_no_checkpointer() -> None:
    engine = make_engine("sqlite://")
    assert sqlite_checkpoint.checkpointer_of(engine) is None
    engine.dispose()


def test_backstop_and_log_limit_are_set_on_every_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == sqlite_checkpoint.BACKSTOP_PAGES
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == sqlite_checkpoint.LOG_SIZE_LIMIT
    engine.dispose()


def test_a_process_that_ends_leaves_the_store_file_whole(tmp_path: Path) -> None:
    # an admin who copies the .db file after a run must get every change: no log left beside it
    db = tmp_path / "hub.db"
    code = ("import os, sys; from sqlalchemy import text; from hub.store import make_engine\n"
            f"e = make_engine('sqlite:///{db}')\n"
            "with e.begin() as c:\n"
            "    c.execute(text('CREATE TABLE blob (x BLOB)'))\n"
            "    c.execute(text('INSERT INTO blob VALUES (:x)'), [{'x': os.urandom(900)} for _ in range(6000)])\n"
            "import time; time.sleep(1)\n")    # the checkpointer has run by now
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert not (tmp_path / "hub.db-wal").exists()
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM blob").fetchone()[0] == 6000


def test_a_disposed_engine_s_files_do_not_change_under_a_copy(tmp_path: Path) -> None:
    # a folder copied right after its engine was disposed (tests copy template projects so) must not
    # see the log vanish half-way: the thread's checkpoint is never the last connection to close
    db = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{db}")
    fill_log(engine)
    engine.dispose()
    before = sorted(p.name for p in tmp_path.iterdir())
    time.sleep(sqlite_checkpoint.MIN_INTERVAL + 0.5)    # the checkpoint the commit asked for has run
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sqlite_checkpoint.checkpointer_of(engine) is not None


def test_dispose_lets_the_thread_finish_then_closes_every_connection(tmp_path: Path) -> None:
    # disposed while the thread held a connection, the engine left that one open: the log stayed
    # beside the file until a garbage collection, which a `triad` process skips at exit
    import threading

    from sqlalchemy import event
    db = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{db}")
    holding = threading.Event()

    @event.listens_for(engine, "checkout")
    def _slow_checkpoint(*_args) -> None:  # noqa: ANN002
        if threading.current_thread().name.startswith("wal-checkpoint"):
            holding.set()
            time.sleep(0.5)

    fill_log(engine)
    assert holding.wait(10), "the checkpoint thread never took a connection"
    sqlite_checkpoint.dispose(engine)
    assert not (tmp_path / "hub.db-wal").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM blob").fetchone()[0] == 6000


def test_a_triad_process_closes_its_stores_and_skips_the_last_collection(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    code = ("import atexit, gc, os\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"   # runs last
            "import cli; cli.skip_final_collection_at_exit()\n"
            "from sqlalchemy import text; from hub.store import make_engine\n"
            f"e = make_engine('sqlite:///{db}')\n"
            "with e.begin() as c:\n"
            "    c.execute(text('CREATE TABLE blob (x BLOB)'))\n"
            "    c.execute(text('INSERT INTO blob VALUES (:x)'), [{'x': os.urandom(900)} for _ in range(6000)])\n")
    p = subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2],
                       timeout=120, capture_output=True, text=True)
    assert p.stdout.strip() == "frozen True"
    assert not (tmp_path / "hub.db-wal").exists()    # the engine was never disposed: the exit closed it
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM blob").fetchone()[0] == 6000
