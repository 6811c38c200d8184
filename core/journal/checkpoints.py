"""The write-ahead log folded back into the database file off the writers' path.

SQLite folds its WAL into the file (a checkpoint) inside whichever commit finds the log past
`wal_autocheckpoint` pages, and that commit then waits on two disk syncs: tens of milliseconds, one exchange in
~120 with the store. SQLite's advice for writers that must not wait is to checkpoint from another thread. One
daemon thread a process does it, with a connection of its own, once a file has had `EVERY` commits since the last
(a house exchange commits 2.5 times and writes ~33 pages, so that is ~1,300 pages, ~5 MB). The writers'
own autocheckpoint stays as the backstop should this thread fall behind.

A checkpoint is crash-safe at any point, so the thread may die with the process. A fork waits for a checkpoint
under way to end, so a child never inherits SQLite's locks half-held; the child starts its own thread when it
writes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

EVERY = 100  # commits to a file between two requests for a checkpoint

_wanted: set[Path] = set()  # the files to checkpoint next
_wake = threading.Event()
_running = threading.Lock()  # held while a checkpoint runs, and by a fork
_start = threading.Lock()
_thread: threading.Thread | None = None


def request(path: Path) -> None:
    """Ask for a checkpoint of `path` soon, from the checkpoint thread (started on the first request)."""
    global _thread
    _wanted.add(path)
    if _thread is None:
        with _start:
            if _thread is None:
                _thread = threading.Thread(target=_serve, name="wal-checkpoints", daemon=True)
                _thread.start()
    _wake.set()


def alone():
    """A lock to hold around a checkpoint of one's own (Store.checkpoint's truncate), so that it never finds this
    thread's checkpoint under way and gives up."""
    return _running


def _serve() -> None:
    while True:
        _wake.wait()
        _wake.clear()
        while _wanted:
            path = _wanted.pop()
            with _running:
                _checkpoint(path)


def _checkpoint(path: Path) -> None:
    """A passive checkpoint: it copies what no reader still needs and never blocks a writer. Any error (a file
    gone, the disk full) leaves the log to the writers' own checkpoints."""
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=1)  # rw: a file gone is not made anew
        try:
            conn.execute("pragma synchronous = normal")  # the writers' setting: the syncs a checkpoint needs
            conn.execute("pragma wal_checkpoint(passive)")
        finally:
            conn.close()
    except sqlite3.Error:
        pass


def _forked() -> None:
    """In a forked child: no thread serves it yet, its parent's requests are the parent's, and the locks are new
    (the parent's thread may have held one when the process forked)."""
    global _wake, _running, _start, _thread
    _wake, _running, _start, _thread = threading.Event(), threading.Lock(), threading.Lock(), None
    _wanted.clear()


os.register_at_fork(before=lambda: _running.acquire(), after_in_parent=lambda: _running.release(),
                    after_in_child=_forked)
