"""The world state the Player sees for day t (SPEC §3), built from bars up to t-1 only: every
indicator here is a trailing window shifted by one bar, so no value of day t or later can reach
the decision for day t.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time

import numpy as np
import pandas as pd

from core.bars import Bars, as_day
from core.exchange.errors import MarketDataError
from core.exchange.schema import ET, WorldState

DECISION_TIME = time(9, 30)  # the simulated clock of a daily decision: the open of day t
MIN_HISTORY = 10  # bars needed before day t (sma10)
ATR_DAYS = 14
VOL_DAYS = 20
REGIME_DAYS = 252  # the volatility regime compares against this many days of its own history
REGIME_MIN = 60  # fewer 20-day volatilities than this: the regime is "medium" (not enough evidence)


def as_of(day: date) -> datetime:
    """The simulated clock of the decision for day t: 09:30 ET on t.

    The decision uses the close of t-1 and fills at the open of t, so the clock sits at the
    open: after every bar it saw, before any bar of t, and inside every shipped trading cutoff.
    """
    return datetime.combine(day, DECISION_TIME, tzinfo=ET)


def indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """Per day t, what the Player may know before t's open: values from bars up to t-1.

    Columns: price (close of t-1), sma5, sma10, volume (t-1), atr (14-day mean true range),
    vol20 (20-day realised volatility, annualised), regime (low|medium|high against the 20-day
    volatility's own trailing one-year terciles), history (bars before t). Trailing windows,
    then one shift: nothing from day t or later can reach row t.
    """
    close = frame["Close"]
    prev_close = close.shift(1)
    true_range = pd.concat([frame["High"] - frame["Low"], (frame["High"] - prev_close).abs(),
                            (frame["Low"] - prev_close).abs()], axis=1).max(axis=1, skipna=False)
    returns = np.log(close / prev_close)
    vol20 = returns.rolling(VOL_DAYS).std() * math.sqrt(252)
    low_cut = vol20.rolling(REGIME_DAYS, min_periods=REGIME_MIN).quantile(1 / 3)
    high_cut = vol20.rolling(REGIME_DAYS, min_periods=REGIME_MIN).quantile(2 / 3)
    regime = np.where(low_cut.isna() | vol20.isna(), "medium",
                      np.where(vol20 <= low_cut, "low", np.where(vol20 >= high_cut, "high", "medium")))
    known = pd.DataFrame({
        "price": close,
        "sma5": close.rolling(5).mean(),
        "sma10": close.rolling(10).mean(),
        "volume": frame["Volume"],
        "atr": true_range.rolling(ATR_DAYS).mean(),
        "vol20": vol20,
        "regime": regime,
    }, index=frame.index)
    shifted = known.shift(1)
    shifted["regime"] = shifted["regime"].fillna("medium")
    shifted["history"] = np.arange(len(frame))
    return shifted


def world_state(symbol: str, day: date | str | pd.Timestamp, bars: pd.DataFrame | Bars, *,
                position: str = "flat") -> WorldState:
    """SPEC §3's world state for day t, built from the bars strictly before t."""
    frame = bars.frame if isinstance(bars, Bars) else bars
    day = as_day(day)
    before = frame[frame.index.date < day]
    if len(before) < MIN_HISTORY:
        raise MarketDataError(f"{symbol}: {len(before)} bars before {day}; the world state needs {MIN_HISTORY}")
    # Indicators of the bars before t, plus a placeholder row for t itself: its last row is day t's view.
    row = indicators(pd.concat([before, before.iloc[-1:]])).iloc[-1]
    return _world(symbol, day, row["price"], row["sma5"], row["sma10"], row["volume"], row["atr"], row["regime"],
                  position)


def _world(symbol, day, price, sma5, sma10, volume, atr, regime, position) -> WorldState:
    return WorldState(
        symbol=symbol, as_of=as_of(day), price=float(price), sma5=float(sma5), sma10=float(sma10),
        volume=float(volume), volatility_regime=regime, session="NY_open", position=position,
        atr=None if atr is None or not math.isfinite(atr) or atr <= 0 else float(atr),
    )
