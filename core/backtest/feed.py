"""The bars a backtest reads: loaded once per spec (with a warm-up), validated, and laid out as
arrays of what is known before each day's open. The engine reads a Feed and never loads bars, so
two presets, a sweep's seeds or a what-if re-run share one Feed and see the same days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from core.exchange.errors import InvalidInput, MarketDataError
from core.exchange.schema import WorldState, normalise_symbol
from core.market import COLUMNS, Bars, load_bars, validate_bars
from core.world import MIN_HISTORY, _world, fitting_rows, known_before_open

WARMUP_CALENDAR_DAYS = 400  # bars loaded before `start`, so sma/ATR/regime are ready on day one


def backtest_bars(symbol: str, start: date, end: date, bars: Bars | pd.DataFrame | None = None, *,
                  online: bool | None = None) -> Bars:
    """The validated bars of a backtest of [start, end]: `bars` when given, else loaded with about a
    year of warm-up before `start` so sma, ATR and the volatility regime are ready on day one."""
    if bars is None:
        try:
            return load_bars(symbol, start - timedelta(days=WARMUP_CALENDAR_DAYS), end, online=online)
        except MarketDataError:
            return load_bars(symbol, start, end, online=online)  # raises again, naming the dates asked for
    if isinstance(bars, Bars):
        if bars.validated:  # the loader's, validated as they were loaded (~1.4 ms a symbol a run)
            return bars
        return Bars.validated_rows(bars.symbol, validate_bars(bars.frame, symbol), bars.source, bars.note,
                                   bars.fallback)
    return Bars.validated_rows(symbol, validate_bars(bars, symbol, ohlc=True), "given", "bars passed in by the caller")


@dataclass
class SymbolFeed:
    """One symbol's bars and what is known before each day's open up to `end`, a list per column (an engine reads
    one value at a time: a list's are Python's own numbers, which the book, the rules and the agents compute with
    several times faster than numpy's scalars, and with the same results); `row` maps each day from `start` to
    `end` to its bar."""

    symbol: str
    loaded: Bars
    dates: np.ndarray
    row: dict[date, int]
    price: list[float]
    sma5: list[float]
    sma10: list[float]
    volume: list[float]
    atr: list[float]
    regime: list[str]
    history: list[int]
    opens: list[float]
    highs: list[float]
    lows: list[float]
    closes: list[float]
    fits: list[bool]  # per row from `start`, whether what is known passes the world's field rules (fitting_rows)

    @classmethod
    def of(cls, symbol: str, loaded: Bars, start: date, end: date) -> SymbolFeed:
        """The feed of bars; bars not validated yet (built by hand) are checked first, as backtest_bars does."""
        if not loaded.validated:  # bars built by hand and passed straight to a feed: the engine reads only valid bars
            loaded = backtest_bars(symbol, start, end, loaded)
        frame = loaded.frame
        # each bar's day as a date, as DatetimeIndex.date says, in a tenth of its time: a validated bar sits at midnight
        # ET (validate_bars), 04:00 or 05:00 UTC of that very day, so its UTC instant's day is its day
        days = frame.index.tz_convert(None).to_numpy().astype("datetime64[D]").astype(object)
        first, last = int(np.searchsorted(days, start)), int(np.searchsorted(days, end, side="right"))  # sorted
        if first == last:
            raise MarketDataError(f"{symbol}: no bars between {start} and {end} "
                                  f"(the data has {days[0]} to {days[-1]})")
        # Row t: what is known before t's open (bars up to t-1 only), for the bars up to `end`: no day run reads
        # it for a later bar, and trailing windows give the same values without the bars after them.
        columns = _columns(frame)
        known = known_before_open(columns, last)
        return cls(symbol, loaded, days, {days[i]: i for i in range(first, last)},
                   *(known[c].tolist() for c in ("price", "sma5", "sma10", "volume", "atr", "regime", "history")),
                   *(columns[c].tolist() for c in ("Open", "High", "Low", "Close")),
                   [False] * first + fitting_rows({c: values[first:] for c, values in known.items()}, symbol))

    def warm_up(self, i: int) -> str | None:
        """Why day i cannot be decided yet, or None."""
        if self.history[i] < MIN_HISTORY or not math.isfinite(self.sma10[i]):
            return f"warm-up: {int(self.history[i])} earlier bars, the world state needs {MIN_HISTORY}"
        return None

    def world(self, i: int, day: date, position: str) -> WorldState:
        """Day `day`'s world state, bar i's (what is known before its open), with the book's `position` in it."""
        return _world(self.symbol, day, self.price[i], self.sma5[i], self.sma10[i], self.volume[i], self.atr[i],
                      self.regime[i], position, self.fits[i])

    def before(self, day: date) -> int | None:
        """The row of the last bar before `day`, or None."""
        i = int(np.searchsorted(self.dates, day)) - 1
        return i if i >= 0 else None

    def between(self, first: date, last: date) -> slice:
        """The rows of the bars from `first` to `last`, both included (the dates are sorted: validate_bars)."""
        return slice(int(np.searchsorted(self.dates, first)), int(np.searchsorted(self.dates, last, side="right")))

    def fingerprint(self) -> tuple:
        """What identifies these bars in a run key: their first and last days, how many, and the closes' sum."""
        # the first and last bars' days from the days worked out already (a tz-aware timestamp costs ~30 us to box)
        # numpy's pairwise sum, as the run keys have it, of the closes' array (the same floats the list holds: summing
        # the list would first turn it into that array again)
        return (str(self.dates[0]), str(self.dates[-1]), len(self.dates),
                round(float(np.sum(_columns(self.loaded.frame)["Close"])), 4))


@dataclass
class Feed:
    """Every symbol's bars for one backtest's days, in the order of the day's exchanges."""

    symbols: list[SymbolFeed]
    start: date
    end: date

    @classmethod
    def load(cls, symbols: list[str], start: date, end: date, bars: dict | None = None) -> Feed:
        """Each symbol's bars: from `bars` ({symbol: DataFrame or Bars}, any case) when given, else loaded."""
        given: dict[str, object] = {}
        for key, value in (bars or {}).items():
            symbol = _symbol(key)
            if symbol in given:
                raise InvalidInput(f"bars: {key!r} and another key are the same symbol {symbol}; give it once")
            given[symbol] = value
        feeds = []
        for symbol in symbols:
            loaded = backtest_bars(symbol, start, end, given.get(symbol))
            feeds.append(SymbolFeed.of(symbol, loaded, start, end))
        return cls(feeds, start, end)

    def calendar(self) -> list[date]:
        """The union of the symbols' trading days in [start, end]."""
        return sorted({d for f in self.symbols for d in f.row if self.start <= d <= self.end})

    def fingerprint(self):
        """What identifies the bars in a run key (one symbol's alone keeps the key it had before portfolios)."""
        prints = [f.fingerprint() for f in self.symbols]
        return prints[0] if len(prints) == 1 else prints

    @property
    def tz(self):
        """The bars' time zone (every validated frame's is ET)."""
        return self.symbols[0].loaded.frame.index.tz


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each column of a validated frame as its array: views of the frame's one float64 block, which validate_bars
    makes of the five columns in COLUMNS' order, all read at once (reading a frame's column by name costs ~35 us);
    any other frame's column by column."""
    values = frame.to_numpy()
    if values.dtype == np.float64 and tuple(frame.columns) == COLUMNS:
        return {c: np.ascontiguousarray(column) for c, column in zip(COLUMNS, values.T)}  # a block's rows: contiguous
    return {c: frame[c].to_numpy() for c in COLUMNS}


def _symbol(key: object) -> str:
    try:
        return normalise_symbol(key)
    except ValueError as error:
        raise InvalidInput(f"bars: {error}") from None
