"""The world state the Player sees for day t (SPEC §3), built from bars up to t-1 only: every
indicator here is a trailing window shifted by one bar, so no value of day t or later can reach
the decision for day t.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time
from functools import lru_cache
from typing import get_args

import numpy as np
import pandas as pd
from pandas._libs.window import aggregations as windows

from core.bars import Bars, as_day
from core.exchange.errors import MarketDataError
from core.exchange.schema import ET, MAX_PRICE, PositionSide, VolatilityRegime, WorldState, built, normalise_symbol

DECISION_TIME = time(9, 30)  # the simulated clock of a daily decision: the open of day t
MIN_HISTORY = 10  # bars needed before day t (sma10)
ATR_DAYS = 14
VOL_DAYS = 20
REGIME_DAYS = 252  # the volatility regime compares against this many days of its own history
REGIME_MIN = 60  # fewer 20-day volatilities than this: the regime is "medium" (not enough evidence)


@lru_cache(maxsize=4096)  # one clock a day for every symbol's world and the day's breakers: shared, never changed
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
    known = known_before_open(frame)
    return pd.DataFrame({**known, "regime": pd.array(known["regime"], dtype="str")}, index=frame.index)


def known_before_open(frame: pd.DataFrame | Mapping[str, np.ndarray], rows: int | None = None) -> dict[str, np.ndarray]:
    """`indicators` as arrays, a row per bar (what a backtest reads a day at a time), of a bars frame or of its
    columns; the first `rows` bars' alone when given (trailing windows: the same values as the whole frame's in
    those rows)."""
    # The windows are pandas' own rolling kernels (_trailing), the glue around them numpy: the same numbers,
    # without a frame built and shifted for every backtest.
    close, high, low, volume = (np.asarray(frame[c], dtype=float)[:rows] for c in ("Close", "High", "Low", "Volume"))
    prev_close = _shifted(close)
    true_range = np.stack([high - low, np.abs(high - prev_close), np.abs(low - prev_close)], axis=1).max(axis=1)
    vol20 = _std(_trailing(np.log(close / prev_close), VOL_DAYS, windows.roll_var, ddof=1)) * math.sqrt(252)
    low_cut = _trailing(vol20, REGIME_DAYS, windows.roll_quantile, REGIME_MIN, quantile=1 / 3, interpolation="linear")
    high_cut = _trailing(vol20, REGIME_DAYS, windows.roll_quantile, REGIME_MIN, quantile=2 / 3, interpolation="linear")
    regime = np.where(np.isnan(low_cut) | np.isnan(vol20), "medium",
                      np.where(vol20 <= low_cut, "low", np.where(vol20 >= high_cut, "high", "medium"))).astype(object)
    return {
        "price": prev_close,
        "sma5": _shifted(_trailing(close, 5, windows.roll_mean)),
        "sma10": _shifted(_trailing(close, 10, windows.roll_mean)),
        "volume": _shifted(volume),
        "atr": _shifted(_trailing(true_range, ATR_DAYS, windows.roll_mean)),
        "vol20": _shifted(vol20),
        "regime": _shifted(regime, "medium"),
        "history": np.arange(len(close)),
    }


def _trailing(values: np.ndarray, days: int, kernel, min_periods: int | None = None, **options) -> np.ndarray:
    """`pd.Series(values).rolling(days, min_periods)`'s aggregate by `kernel`: pandas' own kernel over the windows
    pandas gives it (FixedWindowIndexer's, infinities read as NaN as Rolling does), without the Series and the
    Rolling around it, which took nine tenths of the time over a backtest's bars (pandas is pinned; a test
    holds every window to the bit against the public call)."""
    end = np.arange(1, len(values) + 1, dtype=np.int64)
    start = np.maximum(end - days, 0)  # the clip to [0, len] of FixedWindowIndexer: end - days never exceeds len
    if np.isinf(values).any():
        values = np.where(np.isinf(values), np.nan, values)
    return kernel(values, start, end, days if min_periods is None else min_periods, **options)


def _std(variance: np.ndarray) -> np.ndarray:
    """Rolling.std of its variances: their square roots, 0 for a variance below 0 (rounding)."""
    with np.errstate(invalid="ignore"):
        out = np.sqrt(variance)
    out[variance < 0] = 0
    return out


def _shifted(values: np.ndarray, first=np.nan) -> np.ndarray:
    """The values one bar later: row t holds t-1's, the first row `first`."""
    out = np.empty_like(values)
    out[1:], out[:1] = values[:-1], first
    return out


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


def _world(symbol, day, price, sma5, sma10, volume, atr, regime, position, fits: bool = False) -> WorldState:
    """The world of these values; `fits`: they are Python floats and text that passed `fitting_rows` already."""
    if fits:
        atr = atr if 0 < atr < math.inf else None  # NaN fails both comparisons
    else:
        price, sma5, sma10, volume = float(price), float(sma5), float(sma10), float(volume)
        atr = None if atr is None or not math.isfinite(atr) or atr <= 0 else float(atr)
        # The model's own field rules (NaN fails each comparison), the position's aside.
        fits = (type(symbol) is str and _ticker(symbol) and 0 < price <= MAX_PRICE and 0 < sma5 <= MAX_PRICE
                and 0 < sma10 <= MAX_PRICE and 0 <= volume < math.inf and (atr is None or atr <= MAX_PRICE)
                and type(regime) is str and regime in _REGIMES)
    values = {"symbol": symbol, "as_of": as_of(day), "price": price, "sma5": sma5, "sma10": sma10, "volume": volume,
              "volatility_regime": regime, "session": "NY_open", "position": position, "atr": atr, "vwap": None}
    # A backtest builds a world a symbol a day from validated bars, and validating would return these very values:
    # built, not validated again.
    if fits and type(position) is str and position in _SIDES:
        return built(WorldState, values, _GIVEN)
    del values["vwap"]  # not given: the model's default, unset
    return WorldState(**values)  # the model says what is wrong, naming the field


def fitting_rows(known: Mapping[str, np.ndarray], symbol: str) -> list[bool]:
    """Per row of `known_before_open`'s arrays, whether its values pass the model's field rules as `_world` checks
    them, the position's aside: checked a column at a time, once per backtest feed, rather than a value at a time
    for every world of every day."""
    price, sma5, sma10, volume, atr = (known[c] for c in ("price", "sma5", "sma10", "volume", "atr"))
    with np.errstate(invalid="ignore"):  # NaN fails each comparison, as it does in _world
        numbers = ((0 < price) & (price <= MAX_PRICE) & (0 < sma5) & (sma5 <= MAX_PRICE) & (0 < sma10)
                   & (sma10 <= MAX_PRICE) & (0 <= volume) & (volume < math.inf)
                   & ~((MAX_PRICE < atr) & (atr < math.inf)))  # an ATR not finite or not positive is none: it fits
    regime = known["regime"]
    if not (type(symbol) is str and _ticker(symbol)) or set(map(type, regime)) != _TEXT:
        return [False] * len(numbers)
    return (numbers & np.logical_or.reduce([regime == name for name in _REGIMES])).tolist()


_GIVEN = frozenset(("symbol", "as_of", "price", "sma5", "sma10", "volume", "volatility_regime", "session", "position",
                    "atr"))
_REGIMES = frozenset(get_args(VolatilityRegime))
_SIDES = frozenset(get_args(PositionSide))
_TEXT = {str}


@lru_cache(maxsize=1024)
def _ticker(symbol: str) -> bool:
    """Whether a symbol is a ticker as the model writes it (every day of a backtest asks for the same few)."""
    try:
        return normalise_symbol(symbol) == symbol
    except ValueError:
        return False
