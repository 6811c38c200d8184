"""What a sweep or a what-if variant reads of a backtest: `BacktestSummary`, its metrics and equity curve.

Built from the same run and by the same functions as core.backtest.result.BacktestResult's figures, so
every number it keeps is the one the whole result has; without the tables behind the rest (walk-forward,
regimes, symbols, positions, limits, bars), which hundreds of cases would compute for nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from core.backtest.result import TRADING_DAYS, ReadsMetrics


@dataclass
class BacktestSummary(ReadsMetrics):
    """A finished (or cancelled) backtest's metrics (`.metrics`, readable as attributes) and equity curve."""

    symbols: list[str]
    start: date
    end: date
    run_key: str
    preset: str
    status: str  # finished | cancelled
    source: str  # where the bars came from (core.market.Bars.source)
    note: str
    settings: dict
    metrics: pd.Series
    equity: pd.Series
    periods_per_year: int = TRADING_DAYS
    fallback: bool = False  # the bars came from the snapshot because yfinance failed (see `note`)
    spec: object = None  # the core.backtest.spec.BacktestSpec it ran
