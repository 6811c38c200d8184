"""The SQLite file under the journal: where it is, one connection per thread, its pragmas, write
transactions, the one translation of SQLite's errors into StoreError, and running the migrations.

WAL, a busy timeout and BEGIN IMMEDIATE writes let threads and processes share the file.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from core.exchange.errors import StoreError
from core.journal import checkpoints, compact

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "player_coach.db"
BUSY_TIMEOUT_MS = 30_000
# Pages the write-ahead log grows to before a commit copies it back into the file (SQLite's default: 1,000): the
# backstop, should the checkpoint thread (core.journal.checkpoints) fall behind. Each checkpoint syncs the disk
# twice, and a house exchange writes ~33 pages: at 1,000 one exchange in ~30 would wait on the disk. A killed
# process loses no commit; a power cut may lose the commits since the last checkpoint.
WAL_CHECKPOINT_PAGES = 4_000


def default_path() -> Path:
    """The database file: $PLAYER_COACH_DB, else data/player_coach.db."""
    return Path(os.environ.get("PLAYER_COACH_DB") or DEFAULT_PATH)


def named_errors(method):
    """A store method whose SQLite errors (a corrupt page, a read-only file, a full disk) come out as a
    StoreError naming the file and the cause. Every public method of the store's parts wears it."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as error:
            cause = "it is read-only here" if self.read_only or "readonly" in str(error) else error
            raise StoreError(f"database {self.path}: {cause}") from None

    return guarded


class StoreFile:
    """The file and its connections; the parts of the store (exchanges, history, presets, backtests) build
    on it. Safe to share between threads; every process may open its own."""

    migrations: Schema  # the schema's history (core.journal.migrations), set by core.journal.store.Store

    def __init__(self, path: str | Path | None = None, create: bool = True):
        """Open the file at `path` (default_path() if none), migrating it to this app's schema. `create`:
        make the file if it is missing or empty; a command that only reads passes False, so it never turns
        a mistyped path into a database."""
        self.path = Path(path) if path else default_path()
        self._local = threading.local()
        self.problem: str | None = None  # why this file opened for listing only (see _load_dictionaries)
        self.note: str | None = None  # what a reader should know about what it sees (see _db)
        self._commits = 0  # since the last checkpoint request (threads may race on it: it only paces them)
        self._watching: sqlite3.Connection | None = None  # see changes()
        self._watching_lock = threading.Lock()
        if not create and (not self.path.is_file() or self.path.stat().st_size == 0):
            what = "no such file" if not self.path.exists() else "not a database file" if not self.path.is_file() \
                else "an empty file, not a database"
            raise StoreError(f"database {self.path}: {what} (only a command that stores something creates one)")
        # A file in a folder the app may not write to can still be read: WAL cannot make its side files
        # there, so it is opened read-only instead, and any write is a StoreError.
        self.read_only = self.path.exists() and not os.access(self.path.parent, os.W_OK)
        try:
            if not create and "exchanges" not in self._db.table_names():
                raise StoreError(f"database {self.path}: not a Player-Coach database (it has no exchanges table)")
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._migrate()
            elif self.migrations.pending(self._db) or self.migrations.newer(self._db) is not None:
                raise StoreError(f"database {self.path}: read-only and from another version of the app; "
                                 "open it once where it can be written to")
            self._load_dictionaries()
            self._commits = 0  # the migrations' commits ask for no checkpoint
        except (OSError, sqlite3.DatabaseError) as error:
            raise StoreError(f"database {self.path}: {error}") from None

    def _load_dictionaries(self) -> None:
        """The packer over the file's dictionaries. A file whose dictionaries are gone (a hand edit) still
        lists what its plain columns hold; `problem` says why nothing more is read or written."""
        dictionaries = dict(self._db.execute("select id, text from dictionaries").fetchall())
        if not dictionaries:
            self.problem = ("its packing dictionary is gone (the dictionaries table is empty), so no round or "
                            "exchange detail reads back; it opens read-only, for listing what is intact")
        self._packer = compact.Packer(dictionaries)

    @property
    def _db(self) -> sqlite_utils.Database:
        """This thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            conn = self._connect()
            conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("pragma foreign_keys = on")
            conn.execute("pragma synchronous = normal")  # WAL + normal: durable across app crashes, fast
            conn.execute(f"pragma wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            conn.create_function("said_contains", 4, self._said_contains)  # History's text search (history.py)
            db = self._local.db = sqlite_utils.Database(conn)
        return db

    def _connect(self) -> sqlite3.Connection:
        """A connection to the file: read-write, or read-only (`mode=ro`: the rows a writer left in the WAL
        count) where the folder cannot be written. Read-only WAL needs the writer's -shm file; without it
        the file is read as it stands (`immutable`) and `note` says that recent rows may be missing."""
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        uri = self.path.resolve().as_uri()  # as_uri quotes spaces and ?
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=False)
            conn.execute("select count(*) from sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:  # "unable to open database file": no -shm, and none can be made
            pass
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.exists() and wal.stat().st_size:
            self.note = (f"read-only without the write-ahead log's index ({self.path.name}-shm): rows written "
                         "since the last checkpoint may be missing")
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False)

    def _said_contains(self, body: bytes | None, words: str, run_id: str, number: int) -> bool:
        raise NotImplementedError  # History's

    @named_errors
    def changes(self) -> int:
        """A number that moves whenever a commit reaches the file, from any thread or process: `pragma
        data_version` of a connection of the store's own that never writes (it moves on every other
        connection's commit). What is worked out from the file may be kept while it stands still."""
        with self._watching_lock:
            if self._watching is None:
                self._watching = self._connect()
            return self._watching.execute("pragma data_version").fetchone()[0]

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction that takes the write lock up front, so concurrent writers queue."""
        if self.problem:
            raise StoreError(f"database {self.path}: {self.problem}")
        db = self._db
        db.conn.execute("begin immediate")  # not through db.execute, which parses it to see it needs no commit
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        db.commit()
        self._commits += 1
        if self._commits >= checkpoints.EVERY:
            self._commits = 0
            checkpoints.request(self.path.resolve())

    def _migrate(self) -> None:
        """Run the pending migrations, each in its own write transaction (a crash keeps every finished one).
        The write lock is taken before looking: two processes opening a new file never both migrate it."""
        db = self._db
        db.execute("pragma journal_mode = wal")
        while True:
            with self._write():
                if (version := self.migrations.newer(db)) is not None:
                    raise StoreError(f"database {self.path}: schema version {version} is newer than this app's "
                                     f"{len(self.migrations.names)}; open it with a newer version of the app")
                self.migrations.adopt(db)
                if not self.migrations.apply_next(db):
                    return

    @property
    def schema_version(self) -> int:
        """How many of the schema's migrations this file has had."""
        return self.migrations.version(self._db)

    @named_errors
    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file and truncate it (size_bytes then counts data only)."""
        with checkpoints.alone():
            self._db.execute("pragma wal_checkpoint(truncate)")

    @named_errors
    def copy_bytes(self) -> bytes:
        """The whole database as one consistent file (the WAL included), for a download."""
        return self._db.conn.serialize()

    def size_bytes(self) -> int:
        """The database size on disk, WAL included."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


class Schema(sqlite_utils.Migrations):
    """sqlite-utils' Migrations over steps in a fixed order; the schema version counts the applied ones
    (also kept in `pragma user_version`, which files from before this class counted migrations in)."""

    def __init__(self, name: str, steps: list[Callable[[sqlite_utils.Database], None]]):
        super().__init__(name)
        self.names = [step.__name__ for step in steps]
        for step in steps:
            self()(step)

    def version(self, db: sqlite_utils.Database) -> int:
        """How many steps this file has had."""
        return len(self.applied(db))

    def newer(self, db: sqlite_utils.Database) -> int | None:
        """The schema version of a file a newer app wrote (it had steps this app does not know), else None."""
        version = db.execute("pragma user_version").fetchone()[0]
        unknown = [m for m in self.applied(db) if m.name not in self.names]
        return max(version, len(self.applied(db))) if unknown or version > len(self.names) else None

    def adopt(self, db: sqlite_utils.Database) -> None:
        """A file written before the store used Migrations counted its steps in user_version: record its
        first N as applied, so none runs twice."""
        if db[self.migrations_table].exists():
            return
        version = db.execute("pragma user_version").fetchone()[0]
        self.ensure_migrations_table(db)
        db[self.migrations_table].insert_all(
            {"migration_set": self.name, "name": name, "applied_at": "before sqlite-utils Migrations"}
            for name in self.names[:version])

    def apply_next(self, db: sqlite_utils.Database) -> bool:
        """Apply the first pending step (in a savepoint of the caller's transaction); False when none was."""
        pending = self.pending(db)
        if pending:
            self.apply(db, stop_before=[m.name for m in pending[1:]])
            db.execute(f"pragma user_version = {self.version(db)}")
        return bool(pending)


# -- writing rows -------------------------------------------------------------------------------
# The loop's writes go through these rather than Table.insert: sqlite-utils re-reads the table's
# schema on every insert, which measured at five times the cost of the write itself. A statement's
# text is made once per table and columns (every exchange writes the same ones), so neither it nor
# sqlite3's cache of prepared statements, which hashes it, is built again for each row.
def insert(db: sqlite_utils.Database, table: str, row: dict, key: str | None = None) -> None:
    """Insert a row; with `key`, update the row that has that key instead (an upsert keeps its children)."""
    db.execute(_insert_sql(table, tuple(row), key), list(row.values()))


def insert_many(db: sqlite_utils.Database, table: str, rows: list[dict], replace: bool = False) -> None:
    """Insert rows that all have the first one's columns (`replace`: a row with the same key is replaced)."""
    if rows:
        db.conn.executemany(_insert_sql(table, tuple(rows[0]), None, "insert or replace" if replace else "insert"),
                            [list(r.values()) for r in rows])


def update(db: sqlite_utils.Database, table: str, columns: dict, key: str, value) -> None:
    """Set `columns` of the row whose `key` column holds `value`."""
    db.execute(_update_sql(table, tuple(columns), key), [*columns.values(), value])


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], key: str | None, verb: str = "insert") -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f"{verb} into {table} ({names}) values ({', '.join('?' * len(columns))})"
    if key:
        sql += f" on conflict({key}) do update set " + ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != key)
    return sql


@functools.lru_cache(maxsize=64)
def _update_sql(table: str, columns: tuple[str, ...], key: str) -> str:
    return f"update {table} set {', '.join(f'{c} = ?' for c in columns)} where {key} = ?"


def batches(db: sqlite_utils.Database, select: str, size: int = 2000) -> Iterator[tuple]:
    """The rows of `select` (rowid first; it ends "rowid > ? order by ... limit ?") a batch at a time, so the
    table may be rewritten meanwhile and a large file never sits in memory at once."""
    last = -1
    while rows := db.execute(select, [last, size]).fetchall():
        yield from rows
        last = rows[-1][0]


def chunks(items: Iterable, size: int) -> Iterator[tuple]:
    """Tuples of `size` items, the last one shorter (itertools.batched, which Python 3.11 lacks)."""
    items = iter(items)
    while chunk := tuple(itertools.islice(items, size)):
        yield chunk


def compact_json(value) -> str:
    """JSON as the store packs it: no spaces, non-ASCII kept."""
    return _COMPACT.encode(value)


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # what json.dumps would build for each call
