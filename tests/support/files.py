"""Editing a database file by hand, as a user with the sqlite3 shell would: tests damage, downgrade or
inspect a file through their own connection, never through the store's."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def sql(path: str | Path, statement: str, params: list | tuple = ()) -> list[tuple]:
    """Run one statement on the file in its own connection and commit; its rows."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()
