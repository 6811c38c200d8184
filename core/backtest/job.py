"""Stored backtests as a trader looks them up: one entry per thing that was run (a comparison of two
presets is one), each with its true state.

A run is stored as "running" when it starts and "paused" between the page's slices; neither says
whether anything is still advancing it. A run that no page has written to for STALE_AFTER (a crash,
a closed tab) is *interrupted*: its decided days are kept, and running it again resumes it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

STALE_AFTER = timedelta(minutes=2)
"""A run not written to for this long is interrupted; the page writes after every slice (a few seconds)."""


def run_state(row: dict, now: datetime, live: Collection[str] = ()) -> str:
    """finished or cancelled as stored; running while something advances it (its key in `live`, or
    written to within STALE_AFTER); else interrupted."""
    if row["status"] in ("finished", "cancelled"):
        return row["status"]
    if row["run_key"] in live or now - datetime.fromisoformat(row["updated"]) < STALE_AFTER:
        return "running"
    return "interrupted"


@dataclass
class PastRun:
    """One entry of the past-runs list: its stored runs in order (one per preset) and the form that ran them."""

    key: str  # the job's key, or the run's key for a run started elsewhere (the CLI, Python)
    created: str
    form: dict  # symbols, start, end, presets, agents (the page's label, None outside the page), depth, costs
    runs: list[dict]  # the stored backtest rows, in the form's preset order
    state: str  # finished | running | interrupted | cancelled

    @property
    def run_keys(self) -> list[str]:
        return [r["run_key"] for r in self.runs]


def _form_of(row: dict) -> dict:
    """The form of a run started outside the page, read back from its stored row."""
    settings = row["settings"]
    return {"symbols": row["symbol"].split(","), "start": row["start"], "end": row["end"], "presets": [row["preset"]],
            "agents": None, "player": row["player"], "depth": row["depth"],
            **{k: settings[k] for k in ("capital", "fee_bps", "slippage_bps", "max_hold_days") if k in settings}}


def _job_state(states: list[str], complete: bool) -> str:
    """The state of several runs seen as one: any still running, then a cancel, then a crash, else finished."""
    for state in ("running", "cancelled", "interrupted"):
        if state in states:
            return state
    return "finished" if complete else "interrupted"  # a crash between two presets' runs


def past_runs(store, live: Collection[str] = (), now: datetime | None = None, limit: int = 50) -> list[PastRun]:
    """The stored backtests, newest first: each page job (one or two presets) as one entry, and every
    other stored run on its own. `live` holds the keys this session is advancing now."""
    now = now or datetime.now(timezone.utc)
    rows = {r["run_key"]: r for r in store.list_backtests(limit=limit)}
    entries, claimed = [], set()
    for job in store.backtest_jobs(limit=limit):
        runs = [rows.get(k) or store.get_backtest(k) for k in job["run_keys"]]
        runs = [r for r in runs if r is not None]
        claimed.update(job["run_keys"])
        states = [run_state(r, now, live) for r in runs]
        if job["job_key"] in live:
            states.append("running")
        complete = len(runs) == len(job["form"]["presets"])
        entries.append(PastRun(job["job_key"], job["created"], job["form"], runs, _job_state(states, complete)))
    for key, row in rows.items():
        if key not in claimed:
            entries.append(PastRun(key, row["created"], _form_of(row), [row], run_state(row, now, live)))
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries[:limit]
