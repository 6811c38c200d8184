"""The write-ahead log is folded into the database file by a thread of its own, not inside a writer's commit."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import core
from core.journal import checkpoints

WORLD = core.WorldState(symbol="MSFT", as_of="2025-03-04 10:00", price=412.5, sma5=416.6, sma10=412.5)


@pytest.fixture
def folded(monkeypatch):
    """`folded(path)`: an event the thread sets when it has checkpointed that file (from now on)."""
    events: dict[Path, threading.Event] = {}
    real = checkpoints._checkpoint

    def checkpoint(path: Path) -> None:
        real(path)
        if path in events:
            events[path].set()

    monkeypatch.setattr(checkpoints, "_checkpoint", checkpoint)
    return lambda path: events.setdefault(path.resolve(), threading.Event())


@pytest.fixture
def opened(monkeypatch):
    """`opened(path)`: a new store, its tables in the file itself, that asks for a checkpoint every 3 commits from
    then on (its migrations' commits ask for none)."""
    def open_store(path: Path) -> core.Store:
        monkeypatch.setattr(checkpoints, "EVERY", 100)
        store = core.Store(path)
        store.checkpoint()
        monkeypatch.setattr(checkpoints, "EVERY", 3)
        return store

    return open_store


def exchanges_in_the_file_alone(path: Path) -> int:
    """How many exchanges the database file holds without its write-ahead log (what a checkpoint copied in)."""
    alone = path.with_name("alone.db")
    shutil.copyfile(path, alone)
    conn = sqlite3.connect(alone)
    try:
        return conn.execute("select count(*) from exchanges").fetchone()[0]
    finally:
        conn.close()


def record(store: core.Store, n: int, first: int = 0) -> None:
    for i in range(first, first + n):  # one commit each
        store.record(core.run_exchange_sync(WORLD, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(),
                                            core.HouseCoach(), run_id=f"r{i}"))


def test_every_third_commit_has_the_thread_fold_the_log_into_the_file(tmp_path, folded, opened):
    path = tmp_path / "journal.db"
    store = opened(path)
    done = folded(path)
    record(store, 2)
    assert exchanges_in_the_file_alone(path) == 0  # two commits: in the log only, and no writer folded it
    record(store, 1, first=2)
    assert done.wait(30)
    assert exchanges_in_the_file_alone(path) == 3
    assert len(store.list_exchanges()) == 3


def test_a_forked_child_gets_a_checkpoint_thread_of_its_own(tmp_path, folded, opened):
    parent = tmp_path / "parent" / "journal.db"
    done = folded(parent)
    record(opened(parent), 3)
    assert done.wait(30)  # the parent's thread is running when the process forks
    child = tmp_path / "child" / "journal.db"
    done = folded(child)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its own thread folds its own file's log
        try:
            record(opened(child), 3)
            os._exit(0 if done.wait(30) and exchanges_in_the_file_alone(child) == 3 else 1)
        finally:
            os._exit(2)
    assert exit_code(pid, within=60) == 0


def exit_code(pid: int, within: float) -> int | None:
    """The child's exit code, or None (the child killed) if it has not ended `within` seconds: a deadlock."""
    for _ in range(int(within * 10)):
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_checkpoint_of_a_file_gone_makes_no_file(tmp_path):
    gone = tmp_path / "gone.db"
    checkpoints._checkpoint(gone)
    assert not gone.exists()
