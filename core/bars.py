"""Daily bars: what a valid frame of OHLCV is (`validate_bars`) and where a frame came from (`Bars`).

The shipped snapshot (core.snapshot), the cache and yfinance (core.market) and the world state
(core.world) all read bars through these, so a frame is checked the same way whatever served it.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    out = frame.loc[:, list(COLUMNS)].copy()
    out.index = index
    for column in COLUMNS:
        try:
            out[column] = pd.to_numeric(out[column]).astype(float)
        except (TypeError, ValueError):
            raise MarketDataError(f"{symbol}: column {column} is not numeric") from None
        bad = out[column].isna()
        if bad.any():
            raise MarketDataError(f"{symbol}: NaN in {column} on {out.index[bad.argmax()].date()}")
        values = out[column].to_numpy()
        if not np.isfinite(values).all():
            raise MarketDataError(f"{symbol}: infinite {column} on {out.index[(~np.isfinite(values)).argmax()].date()}")
    for column in PRICES:
        bad = out[column] <= 0
        if bad.any():
            i = bad.argmax()
            raise MarketDataError(f"{symbol}: non-positive {column} {out[column].iloc[i]:g} on {out.index[i].date()}")
        bad = out[column] > MAX_PRICE
        if bad.any():
            i = bad.argmax()
            raise MarketDataError(f"{symbol}: {column} {out[column].iloc[i]:g} on {out.index[i].date()} is above "
                                  f"the largest price taken ({MAX_PRICE:g})")
    bad = out["Volume"] < 0
    if bad.any():
        raise MarketDataError(f"{symbol}: negative Volume on {out.index[bad.argmax()].date()}")
    bad = out["High"] < out["Low"]
    if bad.any():
        i = bad.argmax()
        raise MarketDataError(f"{symbol}: High {out['High'].iloc[i]:g} below Low {out['Low'].iloc[i]:g} on {out.index[i].date()}")
    if ohlc:
        for column in ("Open", "Close"):
            bad = (out[column] > out["High"]) | (out[column] < out["Low"])
            if bad.any():
                i = bad.argmax()
                raise MarketDataError(f"{symbol}: {column} {out[column].iloc[i]:g} on {out.index[i].date()} is outside "
                                      f"that day's Low {out['Low'].iloc[i]:g} .. High {out['High'].iloc[i]:g}")
    return out


def read_bars_csv(path: Path, symbol: str) -> pd.DataFrame:
    """A CSV file of bars with a Date column, validated (MarketDataError names the file when it cannot be read)."""
    try:
        raw = pd.read_csv(path, index_col="Date")
    except (ValueError, pd.errors.ParserError) as error:
        raise MarketDataError(f"{symbol}: cannot read {path.name}: {error}") from None
    return validate_bars(raw, symbol)
