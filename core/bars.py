"""Daily bars: what a valid frame of OHLCV is (`validate_bars`) and where a frame came from (`Bars`).

The shipped snapshot (core.snapshot), the cache and yfinance (core.market) and the world state
(core.world) all read bars through these, so a frame is checked the same way whatever served it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from core.exchange.errors import MarketDataError
from core.exchange.schema import ET, MAX_PRICE

COLUMNS = ("Open", "High", "Low", "Close", "Volume")
PRICES = ("Open", "High", "Low", "Close")


@dataclass(frozen=True)
class Bars:
    """Daily OHLCV with where it came from: source is 'cache', 'yfinance', 'snapshot' or 'given'."""

    symbol: str
    frame: pd.DataFrame
    source: str
    note: str = ""
    fallback: bool = False  # yfinance was asked and failed: the UI shows the note as a warning
    # True only through `validated_rows`: a frame built by hand is checked again wherever it is used.
    validated: bool = field(default=False, init=False, repr=False, compare=False)

    @classmethod
    def validated_rows(cls, symbol: str, frame: pd.DataFrame, source: str, note: str = "",
                       fallback: bool = False) -> Bars:
        """Bars of a frame that validate_bars returned, or of rows of one (any rows of a valid frame are
        valid): marked `validated`, so a backtest does not check them again. Only for the code that has just
        validated them (the loader, core.backtest.feed.backtest_bars); Bars(...) are never marked."""
        bars = cls(symbol, frame, source, note, fallback)
        object.__setattr__(bars, "validated", True)  # frozen: set once, here
        return bars

    @property
    def start(self) -> date:
        return self.frame.index[0].date()

    @property
    def end(self) -> date:
        return self.frame.index[-1].date()


def as_day(value: date | datetime | str | pd.Timestamp | None) -> date | None:
    """A day given as a date, a datetime, a Timestamp or YYYY-MM-DD text (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise MarketDataError(f"{value!r} is not a date as YYYY-MM-DD") from None
    if isinstance(value, datetime):  # pd.Timestamp is a datetime
        return value.date()
    return value


def validate_bars(frame: pd.DataFrame, symbol: str = "bars", *, ohlc: bool = False) -> pd.DataFrame:
    """Check and normalise a bars frame: the five columns, a tz-aware (ET) daily index, sorted,
    unique, no NaN, positive prices up to MAX_PRICE, non-negative volume, High >= Low; with `ohlc`
    also Open and Close within [Low, High]. Raises MarketDataError.

    `ohlc` is for bars a caller builds (an Open above the High is a mixed-up column there); vendor
    bars are taken as they come: the shipped sp500-2009 set has 44 symbols with an open or close up
    to 4 % outside the day's range."""
    if not isinstance(frame, pd.DataFrame):
        raise MarketDataError(f"{symbol}: expected a DataFrame of bars, got {type(frame).__name__}")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise MarketDataError(f"{symbol}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                              f"(need {', '.join(COLUMNS)})")
    if frame.empty:
        raise MarketDataError(f"{symbol}: no bars")
    index = _days(frame, symbol)
    # Checked as numpy arrays, column by column in the order of the messages: every backtest
    # validates its bars, and pandas' per-column operations cost more than the checks themselves.
    columns = {column: _numbers(frame[column], symbol, column, index) for column in COLUMNS}
    for column in PRICES:
        values = columns[column]
        if (values <= 0).any():
            i = int(np.argmax(values <= 0))
            raise MarketDataError(f"{symbol}: non-positive {column} {values[i]:g} on {index[i].date()}")
        if (values > MAX_PRICE).any():
            i = int(np.argmax(values > MAX_PRICE))
            raise MarketDataError(f"{symbol}: {column} {values[i]:g} on {index[i].date()} is above "
                                  f"the largest price taken ({MAX_PRICE:g})")
    if (columns["Volume"] < 0).any():
        raise MarketDataError(f"{symbol}: negative Volume on {index[int(np.argmax(columns['Volume'] < 0))].date()}")
    high, low = columns["High"], columns["Low"]
    if (high < low).any():
        i = int(np.argmax(high < low))
        raise MarketDataError(f"{symbol}: High {high[i]:g} below Low {low[i]:g} on {index[i].date()}")
    for column in ("Open", "Close") if ohlc else ():
        outside = (columns[column] > high) | (columns[column] < low)
        if outside.any():
            i = int(np.argmax(outside))
            raise MarketDataError(f"{symbol}: {column} {columns[column][i]:g} on {index[i].date()} is outside "
                                  f"that day's Low {low[i]:g} .. High {high[i]:g}")
    return pd.DataFrame(columns, index=index)


def _days(frame: pd.DataFrame, symbol: str) -> pd.DatetimeIndex:
    """The frame's index as ET dates, unique and in order."""
    try:
        index = pd.DatetimeIndex(frame.index)
    except (TypeError, ValueError):
        raise MarketDataError(f"{symbol}: the index is not dates (first value {frame.index[0]!r})") from None
    # A daily bar's label is a date in its own exchange's zone (yfinance: UTC midnight for BTC-USD):
    # keep that date. Converting to ET first would move a UTC-midnight bar to the day before.
    if index.tz is not None:
        index = index.tz_localize(None)
    index = index.normalize().tz_localize(ET).rename("Date")
    duplicated = index[index.duplicated()]
    if len(duplicated):
        raise MarketDataError(f"{symbol}: duplicate date {duplicated[0].date()}")
    if not index.is_monotonic_increasing:
        where = int(np.argmax(np.diff(index.asi8) < 0)) + 1
        raise MarketDataError(f"{symbol}: dates not in order: {index[where].date()} comes after {index[where - 1].date()}")
    return index


def _numbers(column: pd.Series, symbol: str, name: str, index: pd.DatetimeIndex) -> np.ndarray:
    """One column as finite floats (a copy: the caller's frame is never changed)."""
    try:
        values = np.array(column.to_numpy(dtype=float) if column.dtype == np.float64
                          else pd.to_numeric(column).astype(float).to_numpy())
    except (TypeError, ValueError, AttributeError):  # AttributeError: a name given twice is a frame, not a column
        raise MarketDataError(f"{symbol}: column {name} is not numeric") from None
    if np.isnan(values).any():
        raise MarketDataError(f"{symbol}: NaN in {name} on {index[int(np.argmax(np.isnan(values)))].date()}")
    if not np.isfinite(values).all():
        raise MarketDataError(f"{symbol}: infinite {name} on {index[int(np.argmax(~np.isfinite(values)))].date()}")
    return values


def read_bars_csv(path: Path, symbol: str) -> pd.DataFrame:
    """A CSV file of bars with a Date column, validated (MarketDataError names the file when it cannot be read)."""
    try:
        raw = pd.read_csv(path, index_col="Date")
    except (ValueError, pd.errors.ParserError) as error:
        raise MarketDataError(f"{symbol}: cannot read {path.name}: {error}") from None
    return validate_bars(raw, symbol)
