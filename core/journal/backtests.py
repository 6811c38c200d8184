"""Backtests in the journal (core.backtest): a row per run, a row per decided exchange so a run resumes,
and the Backtest page's jobs (a form and the runs it started, listed and reopened as one)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from core.exchange.errors import StoreError
from core.journal.db import StoreFile, insert, named_errors


def _parsed(row: dict) -> tuple[dict, str | None]:
    """A backtests row with its settings and metrics parsed, and what is damaged about it (None: nothing)."""
    parsed = dict(row)
    for column in ("settings", "metrics"):
        try:
            parsed[column] = json.loads(row[column] or "{}")
        except ValueError as error:
            return row, f"its {column} are damaged and do not read back ({error})"
        if not isinstance(parsed[column], dict):
            return row, f"its {column} are damaged and do not read back (not a JSON object)"
    return parsed, None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Backtests(StoreFile):
    """Stored backtests, their decided days and the Backtest page's jobs."""

    @named_errors
    def start_backtest(self, row: dict) -> None:
        """Write (or update) a backtest as running; a run started before keeps its creation time."""
        with self._write() as db:
            existing = db.execute("select created from backtests where run_key = ?", [row["run_key"]]).fetchone()
            insert(db, "backtests", {**row, "created": existing[0] if existing else row["created"]}, key="run_key")

    @named_errors
    def save_backtest_day(self, row: dict) -> None:
        """Write one decided exchange of a backtest (run_key, day, symbol, outcome, actions, verdicts...)."""
        with self._write() as db:
            insert(db, "backtest_days", row, key="run_key, day, symbol")

    @named_errors
    def backtest_days(self, run_key: str) -> dict[tuple[str, str], dict]:
        """The stored exchanges of a backtest by (day, symbol)."""
        return {(r["day"], r["symbol"]): r for r in self._db["backtest_days"].rows_where("run_key = ?", [run_key])}

    @named_errors
    def finish_backtest(self, run_key: str, status: str, days_done: int, metrics: dict) -> None:
        """Record where a backtest stands (finished, cancelled or paused), how many days it ran, its metrics."""
        with self._write() as db:
            db.execute("update backtests set status = ?, updated = ?, days_done = ?, metrics = ? where run_key = ?",
                       [status, _now(), days_done, json.dumps(metrics), run_key])

    @named_errors
    def pause_backtest(self, run_key: str, days_done: int) -> None:
        """Record how far a backtest paused between two slices has run (its metrics wait for its end)."""
        with self._write() as db:
            db.execute("update backtests set status = 'paused', updated = ?, days_done = ? where run_key = ?",
                       [_now(), days_done, run_key])

    @named_errors
    def set_backtest_status(self, run_key: str, status: str) -> None:
        """Mark a stored backtest (say cancelled by the user: its decided days stay, rerunning it resumes)."""
        with self._write() as db:
            db.execute("update backtests set status = ?, updated = ? where run_key = ?", [status, _now(), run_key])

    @named_errors
    def get_backtest(self, run_key: str) -> dict | None:
        """One stored backtest's row (settings and metrics parsed), or None. A damaged row is a StoreError."""
        rows = list(self._db["backtests"].rows_where("run_key = ?", [run_key]))
        if not rows:
            return None
        parsed, damage = _parsed(rows[0])
        if damage:
            raise StoreError(f"database {self.path}: backtest {run_key}: {damage}")
        return parsed

    @named_errors
    def list_backtests(self, limit: int = 50) -> list[dict]:
        """Stored backtests, newest first, with their headline metrics; a damaged row is left out of the list
        (get_backtest names what is wrong with it)."""
        rows = (_parsed(r) for r in self._db["backtests"].rows_where(order_by="updated desc", limit=limit))
        return [row for row, damage in rows if not damage]

    @named_errors
    def save_backtest_job(self, job_key: str, form: dict, run_keys: list[str]) -> None:
        """Write (or update) one run of the Backtest page: its form and the run keys it has started so far."""
        with self._write() as db:
            existing = db.execute("select created from backtest_jobs where job_key = ?", [job_key]).fetchone()
            insert(db, "backtest_jobs", {"job_key": job_key, "created": existing[0] if existing else _now(),
                                         "form": json.dumps(form), "run_keys": json.dumps(run_keys)}, key="job_key")

    @named_errors
    def backtest_jobs(self, limit: int = 50) -> list[dict]:
        """The Backtest page's runs, newest first, with their forms and run keys parsed."""
        return [{**r, "form": json.loads(r["form"]), "run_keys": json.loads(r["run_keys"])}
                for r in self._db["backtest_jobs"].rows_where(order_by="created desc", limit=limit)]

    @named_errors
    def save_what_if(self, run_key: str, kind: str, rows: list[dict], notes: dict) -> None:
        """Keep a counterfactual study of a stored backtest (kind: "attribution", "sensitivity <limit>",
        "frontier"): its rows and notes, replacing an earlier one of the same kind."""
        with self._write() as db:
            insert(db, "backtest_what_ifs", {"run_key": run_key, "kind": kind, "created": _now(),
                                             "rows": json.dumps(rows, default=str),
                                             "notes": json.dumps(notes, default=str)}, key="run_key, kind")

    @named_errors
    def what_ifs(self, run_key: str) -> dict[str, dict]:
        """The stored studies of a backtest by kind: {"rows": [...], "notes": {...}, "created": ...}."""
        return {r["kind"]: {"rows": json.loads(r["rows"]), "notes": json.loads(r["notes"]), "created": r["created"]}
                for r in self._db["backtest_what_ifs"].rows_where("run_key = ?", [run_key])}

