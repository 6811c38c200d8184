"""A single-symbol backtest gives today exactly what it gave before the portfolio engine (issue 11)."""

from __future__ import annotations

import pytest

from core import market
from tests.backtest_golden import CASES, load, run_case, summary


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")  # the shipped snapshot, never a local cache


@pytest.fixture(scope="module")
def golden():
    return load()


@pytest.mark.parametrize("name", list(CASES))
def test_single_symbol_results_are_unchanged_on_the_shipped_snapshot(name, golden):
    was, now = golden[name], summary(run_case(name))
    assert now["equity_index"] == was["equity_index"]
    assert now["days"] == was["days"]
    assert now["trade_columns"] == was["trade_columns"]
    assert now["trades"] == was["trades"]
    assert now["equity"] == was["equity"]
    assert now["metrics"] == was["metrics"]  # rounded to 6 digits, NaN as None
    assert now["walk_forward"] == was["walk_forward"]
    assert now["by_regime"] == was["by_regime"]
