"""The journal on the command line: the --db option and opening the store for a command (core/__main__.py,
core/cli and core/mcp share them)."""

from __future__ import annotations

import argparse
import sys

from core.journal.store import Store


def db_path(text: str) -> str:
    """--db: a file name; an empty one (an unset shell variable) is refused, never the default database."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a SQLite file, got an empty name (an unset variable?)")
    return text


def open_store(path: str | None, create: bool = True) -> Store:
    """The store at --db (else the default), for a command that writes (`create`) or only reads (a missing
    or empty file is then a StoreError, never a new database). What a reader should know about the file
    (opened for listing only, rows that may be missing) goes to stderr."""
    store = Store(path, create=create)
    for said in (store.problem, store.note):
        if said:
            print(f"warning: database {store.path}: {said}", file=sys.stderr)
    return store
