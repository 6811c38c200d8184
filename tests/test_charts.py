"""The Backtest's charts are kept per their inputs: the same inputs get the chart built before, inputs that differ in
anything the chart shows get one of their own."""

from datetime import date

import pandas as pd

from ui import charts


def bars(close=11.0, column="Close"):
    days = pd.date_range("2021-01-04", periods=3, tz="America/New_York", name="Date")
    return pd.DataFrame({"Open": [10.0, 10.5, 11.0], "High": [12.0, 12.0, 12.0], "Low": [9.0, 9.0, 9.0],
                         column: [10.5, 11.0, close]}, index=days)


def trades(reason="target"):
    return pd.DataFrame({"symbol": ["MSFT"], "side": ["long"], "size_pct": [0.1], "entry_day": [date(2021, 1, 5)],
                         "entry_price": [10.5], "stop": [9.5], "target": [11.5], "exit_day": [date(2021, 1, 6)],
                         "exit_price": [11.5], "exit_reason": [reason], "pnl": [100.0]})


def test_a_chart_is_built_once_for_the_same_inputs_and_again_for_any_difference_it_shows():
    kept = charts.price_with_trades(bars(), trades(), "MSFT with the trades of moderate")
    assert charts.price_with_trades(bars(), trades(), "MSFT with the trades of moderate") is kept  # equal, not the same
    others = {"a close": charts.price_with_trades(bars(close=11.01), trades(), "MSFT with the trades of moderate"),
              "the days' zone alone": charts.price_with_trades(bars().tz_convert("UTC"), trades(),
                                                               "MSFT with the trades of moderate"),
              "why a trade closed": charts.price_with_trades(bars(), trades("stop"), "MSFT with the trades of moderate"),
              "the title": charts.price_with_trades(bars(), trades(), "MSFT with the trades of strict")}
    assert [what for what, other in others.items() if other.to_json() == kept.to_json()] == []
    assert charts.positions(bars(column="Volume")).to_json() != charts.positions(bars()).to_json()  # a column's name
