"""Past backtests as the page lists them: one entry per page run (a comparison is one), with its true state."""

import json
from datetime import datetime, timedelta, timezone

import core
from core.backtest.job import STALE_AFTER, past_runs, run_state

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def row(run_key: str, status: str, updated: datetime, **more) -> dict:
    return {"run_key": run_key, "status": status, "updated": updated.isoformat(timespec="seconds"), **more}


def test_a_finished_or_cancelled_run_is_what_the_store_says():
    assert run_state(row("a", "finished", NOW - timedelta(days=9)), NOW) == "finished"
    assert run_state(row("a", "cancelled", NOW), NOW) == "cancelled"


def test_a_run_nothing_writes_to_any_more_is_interrupted_not_running_or_paused():
    fresh, stale = NOW - timedelta(seconds=5), NOW - STALE_AFTER - timedelta(seconds=1)
    assert run_state(row("a", "running", fresh), NOW) == "running"
    assert run_state(row("a", "paused", fresh), NOW) == "running"
    assert run_state(row("a", "running", stale), NOW) == "interrupted"
    assert run_state(row("a", "paused", stale), NOW) == "interrupted"
    assert run_state(row("a", "paused", stale), NOW, live={"a"}) == "running"  # this session is advancing it


def start(store, run_key: str, preset: str, status: str, updated: str = "2026-11-26T11:59:00+00:00") -> None:
    store.start_backtest({
        "run_key": run_key, "created": "2026-11-26T11:00:00+00:00", "updated": updated, "status": "running",
        "symbol": "MSFT", "start": "2021-01-04", "end": "2021-03-31", "preset": preset,
        "constraints": core.load_preset(preset).model_dump_json(), "player": "house-player", "coach": "house-coach",
        "model": None, "depth": "standard", "days_total": 61,
        "settings": json.dumps({"capital": 100000.0, "fee_bps": 1.0, "slippage_bps": 2.0, "max_hold_days": 10}), "days_done": 0,
        "metrics": None,
    })
    if status != "running":
        store.finish_backtest(run_key, status, 61 if status == "finished" else 20, {"total_return_pct": 1.5})


def form(*presets: str) -> dict:
    return {"symbols": ["MSFT"], "start": "2021-01-04", "end": "2021-03-31", "presets": list(presets),
            "agents": "House agents (offline, free)", "depth": "standard", "capital": 100000.0}


def test_a_comparison_is_one_entry_and_a_run_from_elsewhere_its_own(store):
    start(store, "r1", "moderate", "finished")
    start(store, "r2", "strict", "finished")
    start(store, "r3", "aggressive", "finished")  # run from Python or the CLI: no page job
    store.save_backtest_job("job", form("moderate", "strict"), ["r1", "r2"])
    entries = {e.key: e for e in past_runs(store, now=NOW)}
    assert set(entries) == {"job", "r3"}
    assert entries["job"].run_keys == ["r1", "r2"] and entries["job"].state == "finished"
    assert entries["r3"].presets == ["aggressive"] and entries["r3"].spec.agents == "house"


def test_a_comparison_that_died_between_its_two_runs_is_interrupted(store):
    start(store, "r1", "moderate", "finished")
    store.save_backtest_job("job", form("moderate", "strict"), ["r1"])
    (entry,) = past_runs(store, now=NOW)
    assert entry.state == "interrupted"
    assert past_runs(store, now=NOW, live={"job"})[0].state == "running"


def test_a_cancelled_part_wins_over_a_finished_one(store):
    start(store, "r1", "moderate", "finished")
    start(store, "r2", "strict", "cancelled")
    store.save_backtest_job("job", form("moderate", "strict"), ["r1", "r2"])
    assert past_runs(store, now=NOW)[0].state == "cancelled"


def test_a_job_is_stored_as_its_spec_and_a_form_of_earlier_versions_still_reads(store):
    from core.backtest.spec import BacktestSpec

    start(store, "r1", "moderate", "finished")
    start(store, "r2", "strict", "finished")
    spec = BacktestSpec(symbols=["MSFT"], start="2021-01-04", end="2021-03-31", presets=["moderate", "strict"],
                        agents="claude", capital=50_000)
    store.save_backtest_job("new", spec.model_dump(mode="json"), ["r1", "r2"])
    store.save_backtest_job("old", form("moderate", "strict"), ["r1", "r2"])  # the plain form of earlier versions
    entries = {e.key: e for e in past_runs(store, now=NOW)}
    assert entries["new"].spec == spec
    old = entries["old"].spec
    assert old.agents == "house" and old.presets[1].constraints == core.load_preset("strict") and old.capital == 100_000
