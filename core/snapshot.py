"""The real daily bars shipped in data/snapshot/ (data/README.md says where each file comes from):
one file per symbol, and named multi-symbol sets (SETS), whose members are the universes a sweep
runs over (e.g. "sp500-2009"). Read only: downloads go to the cache (core.market).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from core.bars import PRICES, read_bars_csv, validate_bars
from core.exchange.errors import MarketDataError

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_DIR = ROOT / "data" / "snapshot"
SETS = {
    "sp500-2009": "sp500-2009.csv.gz",
    "stocks-2000-2013": "stocks-2000-2013.csv.gz",
}
"""The shipped multi-symbol sets, by name (data/README.md says where each comes from)."""
MEMBER_SHARE = 0.5  # a universe's members: the symbols with bars on at least this share of its days


def snapshot_symbols(snapshot_dir: Path = SNAPSHOT_DIR) -> list[str]:
    """Symbols the shipped snapshot has a file of their own for (the sets: `universe_symbols`)."""
    return sorted(p.stem for p in Path(snapshot_dir).glob("*.csv"))


class SetRows(Mapping):
    """A shipped set's rows per symbol, as in the file, by symbol in sorted order. A symbol's frame is cut from the
    file's rows when first asked for: a page wants one symbol of sp500-2009's 524, and cutting them all took ~0.9 s
    of a fresh tab's first run. How many rows each symbol has, the set's days and its first and last rows are known
    without cutting any."""

    def __init__(self, raw: pd.DataFrame):
        # Stable: each symbol's rows in file order. A row with no symbol belongs to none (as groupby leaves it out).
        raw = raw.dropna(subset=["Symbol"]).sort_values("Symbol", kind="stable", ignore_index=True)
        symbols = raw["Symbol"].to_numpy()
        starts = np.flatnonzero(np.r_[True, symbols[1:] != symbols[:-1]]) if len(raw) else np.array([], dtype=int)
        ends = np.r_[starts[1:], len(raw)]
        self._raw, self._frames = raw, {}
        self._spans = {str(symbols[a]): (int(a), int(b)) for a, b in zip(starts, ends)}
        dates = raw["Date"].to_numpy()
        self.days = raw["Date"].nunique(dropna=False)  # every day any symbol has a row on
        # The earliest of the symbols' first rows and the latest of their last (the file's order within a symbol)
        self.first_and_last = (pd.Timestamp(dates[starts].min()), pd.Timestamp(dates[ends - 1].max())) if len(raw) \
            else None

    def rows(self, symbol: str) -> int:
        """How many rows the symbol has."""
        start, end = self._spans[symbol]
        return end - start

    def __getitem__(self, symbol: str) -> pd.DataFrame:
        frame = self._frames.get(symbol)
        if frame is None:
            start, end = self._spans[symbol]
            frame = self._frames[symbol] = self._raw.iloc[start:end].set_index("Date").drop(columns="Symbol")
        return frame

    def __iter__(self) -> Iterator[str]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)


@lru_cache(maxsize=8)
def _set_groups(path: str, stamp: int) -> SetRows:
    """A shipped set's rows per symbol, as in the file (read once per process and file version)."""
    raw = pd.read_csv(path, dtype={"Date": str}).rename(columns={"Ticker": "Symbol"})
    raw["Date"] = pd.to_datetime(raw["Date"].str.replace("-", "", regex=False), format="%Y%m%d")
    return SetRows(raw)


def shipped_set(name: str, snapshot_dir: Path | str = SNAPSHOT_DIR) -> SetRows | dict:
    """A shipped set's rows per symbol, as in the file ({} when the file is missing)."""
    if name not in SETS:
        raise MarketDataError(f"unknown universe {name!r}: the shipped ones are {', '.join(SETS)}")
    path = Path(snapshot_dir) / SETS[name]
    if not path.exists():
        return {}
    return _set_groups(str(path), path.stat().st_mtime_ns)


def _set_bars(rows: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """A set's rows of one symbol as validated bars. A set with an adjusted close (the bokeh set:
    unadjusted OHLC, the source's split- and dividend-adjusted close) is served adjusted, the way
    yfinance's auto_adjust does it, so a split is not a fake 50 % day; the file itself is as shipped."""
    frame = rows
    if "Adj Close" in rows.columns:
        factor = rows["Adj Close"] / rows["Close"]
        frame = rows.assign(**{column: rows[column] * factor for column in PRICES})
    return validate_bars(frame, symbol)


def universes(snapshot_dir: Path | str = SNAPSHOT_DIR) -> list[str]:
    """Names of the shipped multi-symbol sets (e.g. "sp500-2009")."""
    return [name for name, file in SETS.items() if (Path(snapshot_dir) / file).exists()]


def universe_symbols(name: str, snapshot_dir: Path | str = SNAPSHOT_DIR) -> list[str]:
    """The members of a shipped universe, sorted: its symbols with bars on at least half of its
    days (a stock that left or joined the index part-way through has too few for a backtest)."""
    groups = shipped_set(name, snapshot_dir)
    return [symbol for symbol in groups if groups.rows(symbol) >= MEMBER_SHARE * groups.days] if groups else []


def universe_range(name: str, snapshot_dir: Path | str = SNAPSHOT_DIR) -> tuple[date, date]:
    """The first and last day of a shipped universe."""
    groups = shipped_set(name, snapshot_dir)
    if not groups:
        raise MarketDataError(f"universe {name!r}: {SETS[name]} is missing from {snapshot_dir}")
    first, last = groups.first_and_last
    return first.date(), last.date()


def snapshot_frames(symbol: str, snapshot_dir: Path) -> list[tuple[str, pd.DataFrame]]:
    """Every shipped frame of a symbol, (label, bars): its own file first, then the sets."""
    found = []
    own = snapshot_dir / f"{symbol}.csv"
    if own.exists():
        found.append((own.name, read_bars_csv(own, symbol)))
    for name in SETS:
        rows = shipped_set(name, snapshot_dir).get(symbol)
        if rows is not None:
            found.append((f"set {name}", _set_bars(rows, symbol)))
    return found
