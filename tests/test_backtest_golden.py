"""A single-symbol backtest gives today what it gave before the portfolio engine (issue 11).

Recorded from the engine before the rewrite (main at 3540e42) with a Player and Coach of the test's
own (tests/support/backtest_golden.py), so the house agents may improve without moving these figures; two
deliberate changes since:
* a calendar that runs seven days a week (BTC-USD) annualises its ratios over 365 days, not 252;
* the fill re-check sees the symbol's ATR (issue 10, item 14), so the presets with
  `min_stop_atr_multiple` (conservative, futures_compatible) were recorded again after that change.
"""

from __future__ import annotations

import math

import pytest

from core import market
from tests.support.backtest_golden import CASES, load, run_case, summary

SEVEN_DAYS = {"btc-aggressive"}
RESCALE = math.sqrt(365 / 252)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")  # the shipped snapshot, never a local cache


@pytest.fixture(scope="module")
def golden():
    return load()


def _without_ratios(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k not in ("sharpe", "sortino")}


@pytest.mark.parametrize("name", list(CASES))
def test_single_symbol_results_are_unchanged_on_the_shipped_snapshot(name, golden):
    was, now = golden[name], summary(run_case(name))
    assert now["equity_index"] == was["equity_index"]
    assert now["days"] == was["days"]
    assert now["trade_columns"] == was["trade_columns"]
    assert now["trades"] == was["trades"]
    assert now["equity"] == was["equity"]
    if name not in SEVEN_DAYS:
        assert now["metrics"] == was["metrics"]  # rounded to 6 digits, NaN as None
        assert now["walk_forward"] == was["walk_forward"]
        assert now["by_regime"] == was["by_regime"]
        return
    # Crypto trades every day: the same daily returns, annualised over 365 periods instead of 252.
    assert _without_ratios(now["metrics"]) == _without_ratios(was["metrics"])
    for ratio in ("sharpe", "sortino"):
        assert now["metrics"][ratio] == pytest.approx(was["metrics"][ratio] * RESCALE, abs=2e-6)
    for part in ("in_sample", "out_of_sample"):
        assert _without_ratios(now["walk_forward"][part]) == _without_ratios(was["walk_forward"][part])
        assert now["walk_forward"][part]["sharpe"] == pytest.approx(was["walk_forward"][part]["sharpe"] * RESCALE,
                                                                    abs=2e-4)
    for regime, row in was["by_regime"].items():
        assert _without_ratios(now["by_regime"][regime]) == _without_ratios(row)
        assert now["by_regime"][regime]["sharpe"] == pytest.approx(row["sharpe"] * RESCALE, abs=2e-6)
