"""core.sweep: a grid of backtests on any executor gives the same rows as running each one."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

import core
from core import market
from core.backtest import job
from core.__main__ import main
from core.backtest.challenge import ChallengeRules
from core.backtest import sweeps
from core.backtest.sweeps import Case, run_case, run_symbol, sweep

SYMBOLS = ["AMZN", "XOM"]  # both from the sp500-2009 set's days
START, END = "2010-01-04", "2010-02-26"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")


@pytest.fixture(scope="module")
def local() -> pd.DataFrame:
    """The default: a process pool over every core."""
    return sweep(SYMBOLS, ["moderate", "aggressive"], START, END, online=False, challenge=0.03)


def test_a_row_per_symbol_preset_and_seed_in_grid_order_equal_to_each_backtest(local):
    assert list(zip(local["symbol"], local["preset"])) == [("AMZN", "moderate"), ("AMZN", "aggressive"),
                                                           ("XOM", "moderate"), ("XOM", "aggressive")]
    assert (local["error"] == "").all() and (local["source"] == "snapshot").all()
    constraints = core.load_preset("aggressive")
    constraints = constraints.model_copy(update={"allowed_symbols": [*constraints.allowed_symbols, "XOM"]})
    alone = job.run_backtest("XOM", START, END, constraints, core.HousePlayer(seed=0), core.HouseCoach(),
                                  bars=market.load_bars("XOM", "2008-12-01", END, online=False))
    row = local.iloc[3]
    for metric in ("total_return_pct", "sharpe", "trades", "max_drawdown_pct", "days"):
        assert row[metric] == pytest.approx(alone.metrics[metric], rel=1e-12), metric
    assert row["trades"] > 0  # XOM is allowed in its own case: the preset's limits are what is tried
    assert ((local["ci_low"] <= local["p_pass"]) & (local["p_pass"] <= local["ci_high"])).all()


def test_the_sweep_on_dask_equals_the_local_one(local):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        on_dask = sweep(SYMBOLS, ["moderate", "aggressive"], START, END, executor=client.get_executor(),
                        online=False, challenge=0.03)
    pd.testing.assert_frame_equal(on_dask, local)


def test_any_executor_and_a_case_that_crossed_a_process_boundary_give_the_same_rows(local):
    with ThreadPoolExecutor(2) as pool:
        threaded = sweep(SYMBOLS, ["moderate", "aggressive"], START, END, executor=pool, online=False,
                         challenge=0.03)
    pd.testing.assert_frame_equal(threaded, local)
    spec = core.BacktestSpec(symbols=["AMZN"], start=START, end=END, presets=["moderate"])
    case = Case(spec, core.HousePlayer(), core.HouseCoach(), online=False)
    assert run_case(pickle.loads(pickle.dumps(case))) == run_case(case)


def test_a_symbols_cases_as_one_task_read_its_bars_once_and_give_each_cases_row(local, monkeypatch):
    loads, load = [], sweeps.backtest_bars
    monkeypatch.setattr(sweeps, "backtest_bars", lambda *args, **kw: loads.append(args) or load(*args, **kw))
    cases = sweeps.plan(["AMZN"], ["moderate", "aggressive"], START, END, seeds=(0, 1), online=False)
    assert run_symbol(cases) == [run_case(case) for case in cases] and len(loads) == 1 + len(cases)
    monkeypatch.setattr(sweeps, "SYMBOLS_PER_CORE", 0)  # every sweep runs a symbol's cases as one task
    with ThreadPoolExecutor(2) as pool:
        grouped = sweep(SYMBOLS, ["moderate", "aggressive"], START, END, executor=pool, online=False, challenge=0.03)
    pd.testing.assert_frame_equal(grouped, local)


def test_seeds_and_a_universe_with_its_own_dates():
    frame = sweep("stocks-2000-2013", ["moderate"], "2004-01-02", "2004-02-27", seeds=(0, 1), online=False,
                  executor=ThreadPoolExecutor(2))
    assert list(frame["symbol"].unique()) == market.universe_symbols("stocks-2000-2013")
    assert list(frame["seed"]) == [0, 1] * 4
    assert frame.loc[frame["symbol"] == "GOOG", "error"].str.contains("no bars").all()  # listed in August 2004
    assert (frame.loc[frame["symbol"] != "GOOG", "error"] == "").all()


def test_a_symbol_without_bars_is_a_row_with_its_error_not_a_failed_sweep():
    frame = sweep(["AMZN", "ZZZZ"], ["moderate"], START, END, online=False, executor=ThreadPoolExecutor(1))
    assert frame.loc[1, "error"].startswith("unknown symbol 'ZZZZ'") and frame.loc[0, "error"] == ""
    assert pd.isna(frame.loc[1, "total_return_pct"])


class _Networked(core.HousePlayer):
    """A Player that cannot be pickled (like Claude's, which holds an SDK client) and has a spent guard."""

    def __init__(self, guard):
        super().__init__()
        self.guard = guard
        self.unpicklable = lambda: None


def test_agents_that_cannot_be_pickled_run_on_threads_and_a_spent_guard_stops_them():
    guard = core.SpendGuard(dollars_per_session=0.01)
    guard.record(0.02)
    frame = sweep(["AMZN"], ["moderate"], START, END, agents=lambda seed: (_Networked(guard), core.HouseCoach()),
                  online=False)
    assert frame.loc[0, "error"] == "not run: the spend guard's $0.01 are spent"


def test_rules_given_whole_or_as_a_target_with_each_presets_limits():
    rules = ChallengeRules(0.02, 0.05, 0.01, max_days=20)
    frame = sweep(["AMZN"], ["moderate"], START, END, challenge=rules, online=False, executor=ThreadPoolExecutor(1))
    assert 0 <= frame.loc[0, "p_pass"] <= 1 and frame.loc[0, "ci_low"] <= frame.loc[0, "ci_high"]
    with pytest.raises(core.InvalidInput, match="start and end"):
        sweep(["AMZN"], ["moderate"], None, None)


def test_cli_sweep_json_and_the_progress_bar(capsys):
    assert main(["sweep", "--symbols", "AMZN", "--presets", "moderate,strict", "--start", START, "--end", END,
                 "--offline", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["preset"] for r in rows] == ["moderate", "strict"]
    assert main(["sweep", "--symbols", "AMZN", "--presets", "moderate", "--start", START, "--end", END,
                 "--offline", "--target", "0.02"]) == 0
    out, err = capsys.readouterr()
    assert "mean pass probability" in out and "1/1 backtests" in err


def test_cli_sweep_bad_input_is_one_line(capsys):
    with pytest.raises(SystemExit) as stop:  # refused where the option is read
        main(["sweep", "--universe", "sp600", "--presets", "moderate"])
    assert stop.value.code == 3
    assert "not a shipped universe: 'sp600'" in capsys.readouterr().err
    assert main(["sweep", "--symbols", "AMZN", "--presets", "nope", "--start", START, "--end", END]) == 3
    assert "nope" in capsys.readouterr().err
