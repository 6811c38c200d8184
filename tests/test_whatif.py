"""What each rule costs: counterfactual backtests on hand-made bars, computed by hand."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

import core
from core import market
from core.backtest.challenge import ChallengeRules
from core.backtest.spec import BacktestSpec, Costs
from core.backtest.whatif import LIMITS, attribution, frontier, frontier_preset, sensitivity
from core.exchange.schema import Constraints
from tests.support.agents import PoliteScript
from tests.support.bars import frame

SYMBOLS = ["AAA", "BBB"]
OPEN = Constraints(max_position_pct=1.0, max_single_trade_pct=1.0, max_leverage=3.0, max_drawdown_pct=0.5,
                   max_daily_loss_pct=0.5, consistency_rule_pct=1.0, trading_cutoff_time=None,
                   allowed_symbols=SYMBOLS, max_open_positions=1, min_risk_reward=0.1, max_rounds=1,
                   abort_on_violations=[])
DAYS = pd.bdate_range("2024-01-02", periods=30)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")


def bars() -> dict:
    """Both flat at 100 (high 101, low 99); BBB's high reaches 105 on day 17."""
    flat = frame(np.full(30, 100.0))
    bbb = flat.copy()
    bbb.iloc[17, bbb.columns.get_loc("High")] = 105.0
    return {"AAA": flat, "BBB": bbb}


def spec(rules: Constraints = OPEN) -> BacktestSpec:
    return BacktestSpec(symbols=SYMBOLS, start=DAYS[12].date(), end=DAYS[25].date(), presets=[("open", rules)],
                        costs=Costs(fee_bps=0, slippage_bps=0, max_hold_days=10), agents="polite-script")


def agents() -> tuple:
    plan = {"size": 0.3, "stop": 98.0, "target": 104.0}
    day = DAYS[15].date().isoformat()
    return PoliteScript({(day, "AAA"): plan, (day, "BBB"): plan}), core.HouseCoach()


def test_a_limit_the_player_respects_on_its_own_is_costed_by_hand():
    table = attribution(spec(), relax={"max_open_positions": 2, "max_leverage": 100.0}, agents=agents(),
                        bars=bars(), executor=ThreadPoolExecutor(1))
    costs = table.set_index("limit")
    # with room for two symbols the Player also enters BBB: long 0.3 x 100,000 at 100 = 300 shares, out at
    # its 104 target on day 17: +1,200, 1.2 % of the capital; AAA stays flat either way (held 10 bars at 100)
    assert costs.loc["max_open_positions", "delta_return_pct"] == pytest.approx(1.2)
    assert costs.loc["max_open_positions", "delta_trades"] == 1
    assert (costs.loc["max_open_positions", "value"], costs.loc["max_open_positions", "relaxed"]) == ("1", "2")
    assert costs.loc["max_leverage", "delta_return_pct"] == 0
    assert list(table["limit"]) == ["max_open_positions", "max_leverage"]  # ranked by what each cost
    assert table.attrs["base"]["trades"] == 1
    # a user's agent may not decide the same way twice: noise is not claimed either way
    assert not table.attrs["deterministic"] and table.attrs["noise"].startswith("not measured")
    assert table["within_noise"].isna().all()


def test_every_limit_is_relaxed_off_and_a_limit_already_off_is_not_rerun():
    table = attribution(spec(), agents=agents(), bars=bars(), executor=ThreadPoolExecutor(2))
    assert set(table["limit"]) <= set(LIMITS)
    assert "trading_cutoff_time" not in set(table["limit"])  # already off: nothing to relax
    assert "tiers" not in set(table["limit"])
    row = table.set_index("limit").loc["max_open_positions"]
    assert (row["relaxed"], row["delta_return_pct"]) == ("100", pytest.approx(1.2))


def test_the_house_agents_are_deterministic_and_a_real_year_ranks_allowed_symbols_first():
    year = BacktestSpec(symbols=["MSFT", "AAPL"], start="2012-01-03", end="2012-06-29", presets=["moderate"])
    rules = ChallengeRules(profit_target_pct=0.02, max_drawdown_pct=0.05, max_daily_loss_pct=0.02)
    table = attribution(year, challenge=rules, executor=ThreadPoolExecutor(2))
    assert table.attrs["deterministic"] and table.attrs["noise"].startswith("none")
    assert table.iloc[0]["limit"] == "allowed_symbols"  # moderate forbids AAPL: trading it pays most
    assert (table["delta_return_pct"].diff().dropna() <= 1e-12).all()
    assert {"p_pass", "ci_low", "p_pass_relaxed", "delta_p_pass"} <= set(table.columns)
    same = table[table["delta_return_pct"].abs() < 1e-12]
    assert same["within_noise"].all()


def test_sensitivity_moves_with_the_limit():
    rules = OPEN.model_copy(update={"max_open_positions": 2})
    table = sensitivity(spec(rules), "max_single_trade_pct", [0.1, 0.3, 0.5], agents=agents(), bars=bars(),
                        executor=ThreadPoolExecutor(1))
    # at 0.1 the 0.3 entries are rejected (no trade); from 0.3 both fill and BBB earns 1.2 %
    assert list(table["max_single_trade_pct"]) == [0.1, 0.3, 0.5]
    assert list(table["trades"]) == [0, 2, 2]
    assert table["total_return_pct"].tolist() == pytest.approx([0.0, 1.2, 1.2])


def test_the_frontier_keeps_the_pareto_set_and_flags_what_passes():
    rules = ChallengeRules(profit_target_pct=0.01, max_drawdown_pct=0.05, max_daily_loss_pct=0.05)
    grid = {"max_open_positions": [1, 2], "max_single_trade_pct": [0.1, 0.3]}
    front = frontier(spec(), grid, rules, p_min=0.5, agents=agents(), bars=bars(), executor=ThreadPoolExecutor(2))
    best = front.iloc[0]
    assert (best["max_open_positions"], best["max_single_trade_pct"]) == (2, 0.3)
    assert best["total_return_pct"] == pytest.approx(1.2) and bool(best["passes"]) == (best["ci_low"] >= 0.5)
    dominated = (front["total_return_pct"] < best["total_return_pct"]) & (front["p_pass"] <= best["p_pass"])
    assert not dominated.any()
    constraints, evidence = frontier_preset(spec(), best.to_dict(), rules)
    assert (constraints.max_open_positions, constraints.max_single_trade_pct) == (2, 0.3)
    assert evidence["figures"]["total_return_pct"] == pytest.approx(1.2) and evidence["challenge"]["profit_target_pct"] == 0.01


def test_attribution_on_dask_equals_the_local_run():
    distributed = pytest.importorskip("dask.distributed")
    local = attribution(spec(), relax={"max_open_positions": 2}, agents=agents(), bars=bars(),
                        executor=ThreadPoolExecutor(1))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        on_dask = attribution(spec(), relax={"max_open_positions": 2}, agents=agents(), bars=bars(),
                              executor=client.get_executor())
    pd.testing.assert_frame_equal(on_dask, local)


@pytest.mark.parametrize("kwargs,message", [
    ({"relax": "everything"}, "relax: 'off', 'loosest' or a dict of values"),
    ({"relax": {"max_fun": 1}}, "relax: max_fun not among the limits"),
    ({"relax": {"max_leverage": -1}}, "limits: max_leverage"),
])
def test_bad_relaxations_are_named(kwargs, message):
    with pytest.raises(core.InvalidInput, match=message):
        attribution(spec(), agents=agents(), bars=bars(), executor=ThreadPoolExecutor(1), **kwargs)


def test_a_spec_naming_agents_it_was_not_given_is_refused():
    with pytest.raises(core.InvalidInput, match="agents: the spec names 'polite-script'"):
        attribution(spec(), bars=bars())


def cli(*args: str):
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PLAYER_COACH_OFFLINE": "1"})


def test_the_command_line_ranks_the_limits_of_a_shipped_portfolio_as_json():
    result = cli("attribution", "--symbols", "MSFT,AAPL", "--start", "2012-01-03", "--end", "2012-02-29",
                 "--preset", "moderate", "--offline", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["deterministic"] is True and out["base"]["trades"] > 0
    gains = [row["delta_return_pct"] for row in out["rows"]]
    assert gains == sorted(gains, reverse=True)  # ranked by what each limit costs
    allowed = next(row for row in out["rows"] if row["limit"] == "allowed_symbols")
    assert allowed["delta_trades"] > 0 and "AAPL" in allowed["relaxed"]  # moderate forbids AAPL
    assert {"delta_return_pct", "delta_drawdown_pct", "delta_trades", "within_noise"} <= set(out["rows"][0])


@pytest.mark.parametrize("args,message", [
    (["attribution", "--preset", "nope"], "nope"),
    (["sensitivity", "--limit", "max_fun", "--values", "1,2"], "constraint: 'max_fun' is not a limit"),
    (["frontier", "--grid", "max_leverage=1,2"], "--template: the frontier needs a challenge"),
    (["frontier", "--grid", "max_leverage", "--template", "one_step"], "give LIMIT=V1,V2,..."),
    (["attribution", "--seed", "-1"], "seed"),
    (["attribution", "--dask", "garbage", "--dask-timeout", "2"], "--dask: need a scheduler address as tcp://HOST:PORT"),
    (["attribution", "--dask", "tcp://127.0.0.1:9", "--dask-timeout", "nan"], "--dask-timeout"),
])
def test_bad_options_are_exit_3_and_one_line(args, message):
    result = cli(*args, "--symbols", "MSFT", "--start", "2012-01-03", "--end", "2012-01-31", "--offline")
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_relaxing_a_limit_relaxes_it_in_the_tiers_too():
    from core.backtest.whatif import _with

    tiered = core.load_preset("funded_challenge")
    setting = {k for t in tiered.tiers for k in t.values()}
    assert "max_single_trade_pct" in setting  # the shipped preset tightens it when the book is hurt
    spec = BacktestSpec(symbols=["MSFT"], start="2012-01-03", end="2012-01-31", presets=[("funded", tiered)])
    relaxed = _with(spec, {"max_single_trade_pct": 1.0}, in_tiers=True).preset.constraints
    assert relaxed.max_single_trade_pct == 1.0
    assert all("max_single_trade_pct" not in t.values() for t in relaxed.tiers)
    assert {k for t in relaxed.tiers for k in t.values()} == setting - {"max_single_trade_pct"}
    swept = _with(spec, {"max_single_trade_pct": 0.2}).preset.constraints  # a sensitivity keeps the tiers
    assert swept.tiers == tiered.tiers
