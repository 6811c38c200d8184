"""What each rule costs, timed: attribution of a four-symbol year across every limit, a 10-value
sensitivity and a 3x3x3 frontier, house agents on every core (issue 18's figures)."""

from __future__ import annotations

import os
import time

import core
from core import market
from core.backtest.spec import BacktestSpec

SPEC = dict(symbols=["MSFT", "AAPL", "IBM", "GOOG"], start="2012-01-03", end="2012-12-31", presets=["aggressive"])


def _seconds(work) -> tuple[float, object]:
    start = time.perf_counter()
    out = work()
    return time.perf_counter() - start, out


def run() -> dict:
    os.environ[market.OFFLINE_ENV] = "1"  # a benchmark never waits on the network
    spec = BacktestSpec(**SPEC)
    core.run_backtest("MSFT", "2012-01-03", "2012-01-31", core.load_preset("aggressive"), core.HousePlayer(),
                      core.HouseCoach())  # imports and the shipped set read before the clock
    attribution_s, table = _seconds(lambda: core.attribution(spec))
    values = [round(0.01 * k, 2) for k in range(1, 11)]
    sensitivity_s, _ = _seconds(lambda: core.sensitivity(spec, "max_single_trade_pct", values))
    grid = {"max_single_trade_pct": [0.02, 0.05, 0.1], "max_leverage": [1.0, 2.0, 3.0], "min_risk_reward": [1.0, 1.5, 2.0]}
    frontier_s, front = _seconds(lambda: core.frontier(spec, grid, "one_step"))
    return {
        "attribution": f"{','.join(SPEC['symbols'])} 2012 under aggressive: {len(table) + 1} backtests, every core",
        "attribution_s": round(attribution_s, 2),
        "attribution_goal_s": 10.0,
        "attribution_costliest_limit": table.iloc[0]["limit"] if len(table) else None,
        "sensitivity_10_values_s": round(sensitivity_s, 2),
        "frontier_3x3x3_s": round(frontier_s, 2),
        "frontier_rule_sets_on_the_front": int(len(front)),
    }
