"""Daily bars and the world state built from them (SPEC §7).

`load_bars` serves daily OHLCV from, in order, the local cache (data/cache/), yfinance and the
real snapshot shipped in data/snapshot/, and says which one served it. The snapshot has one file
per symbol plus named multi-symbol sets (SETS, e.g. the universe "sp500-2009"); when several
shipped files have a symbol, the one that covers the dates asked for serves it. `world_state` builds the
Player's snapshot for day t from bars up to t-1 only: every indicator here is a trailing window
shifted by one bar, so no value of day t or later can reach the decision for day t.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.exchange.errors import MarketDataError
from core.exchange.schema import ET, MAX_PRICE, WorldState, normalise_symbol

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_DIR = ROOT / "data" / "snapshot"
CACHE_ENV = "PLAYER_COACH_CACHE"  # another folder for downloaded bars (tests, read-only installs)
CACHE_DIR = Path(os.environ.get(CACHE_ENV) or ROOT / "data" / "cache")  # read once, at import: set the variable
# before core is imported, or pass cache_dir (the tests do) to point one call elsewhere
COLUMNS = ("Open", "High", "Low", "Close", "Volume")
PRICES = ("Open", "High", "Low", "Close")
OFFLINE_ENV = "PLAYER_COACH_OFFLINE"  # "1": never ask yfinance (tests, air-gapped machines)
DECISION_TIME = time(9, 30)  # the simulated clock of a daily decision: the open of day t
MIN_HISTORY = 10  # bars needed before day t (sma10)
ATR_DAYS = 14
VOL_DAYS = 20
REGIME_DAYS = 252  # the volatility regime compares against this many days of its own history
REGIME_MIN = 60  # fewer 20-day volatilities than this: the regime is "medium" (not enough evidence)
EDGE_DAYS = 5  # a cache that starts/ends within this many calendar days of the request covers it
SETS = {
    "sp500-2009": "sp500-2009.csv.gz",
    "stocks-2000-2013": "stocks-2000-2013.csv.gz",
}
"""The shipped multi-symbol sets, by name (data/README.md says where each comes from)."""
MEMBER_SHARE = 0.5  # a universe's members: the symbols with bars on at least this share of its days

Downloader = Callable[[str, date, date], pd.DataFrame]


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


def _day(value: date | datetime | str | pd.Timestamp | None) -> date | None:
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


def _read_csv(path: Path, symbol: str) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, index_col="Date")
    except (ValueError, pd.errors.ParserError) as error:
        raise MarketDataError(f"{symbol}: cannot read {path.name}: {error}") from None
    return validate_bars(raw, symbol)


def snapshot_symbols(snapshot_dir: Path = SNAPSHOT_DIR) -> list[str]:
    """Symbols the shipped snapshot has a file of their own for (the sets: `universe_symbols`)."""
    return sorted(p.stem for p in Path(snapshot_dir).glob("*.csv"))


@lru_cache(maxsize=8)
def _set_groups(path: str, stamp: int) -> dict[str, pd.DataFrame]:
    """A shipped set's rows per symbol, as in the file (read once per process and file version)."""
    raw = pd.read_csv(path, dtype={"Date": str}).rename(columns={"Ticker": "Symbol"})
    raw["Date"] = pd.to_datetime(raw["Date"].str.replace("-", "", regex=False), format="%Y%m%d")
    return {str(symbol): rows.set_index("Date").drop(columns="Symbol")
            for symbol, rows in raw.groupby("Symbol", sort=True)}


def _set(name: str, snapshot_dir: Path | str = SNAPSHOT_DIR) -> dict[str, pd.DataFrame]:
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
    groups = _set(name, snapshot_dir)
    days = len(set().union(*(rows.index for rows in groups.values()))) if groups else 0
    return [symbol for symbol, rows in groups.items() if len(rows) >= MEMBER_SHARE * days]


def universe_range(name: str, snapshot_dir: Path | str = SNAPSHOT_DIR) -> tuple[date, date]:
    """The first and last day of a shipped universe."""
    groups = _set(name, snapshot_dir)
    if not groups:
        raise MarketDataError(f"universe {name!r}: {SETS[name]} is missing from {snapshot_dir}")
    return (min(rows.index[0] for rows in groups.values()).date(),
            max(rows.index[-1] for rows in groups.values()).date())


def _snapshot_frames(symbol: str, snapshot_dir: Path) -> list[tuple[str, pd.DataFrame]]:
    """Every shipped frame of a symbol, (label, bars): its own file first, then the sets."""
    found = []
    own = snapshot_dir / f"{symbol}.csv"
    if own.exists():
        found.append((own.name, _read_csv(own, symbol)))
    for name in SETS:
        rows = _set(name, snapshot_dir).get(symbol)
        if rows is not None:
            found.append((f"set {name}", _set_bars(rows, symbol)))
    return found


def _pick(frames: list[tuple[str, pd.DataFrame]], start: date | None, end: date | None) -> tuple[str, pd.DataFrame]:
    """The first frame that covers [start, end]; else the one with the most bars inside it."""
    for label, frame in frames:
        if _covers(frame, start, end):
            return label, frame
    return max(frames, key=lambda item: len(_slice(item[1], start, end)))


def _cache_path(cache_dir: Path, symbol: str) -> Path:
    return Path(cache_dir) / f"{symbol}.csv"


def yfinance_download(symbol: str, start: date, end: date) -> pd.DataFrame:
    """Daily bars from yfinance, split- and dividend-adjusted (end inclusive). Network errors propagate."""
    import yfinance as yf  # imported on demand: offline use never loads it

    # yfinance logs and warns about every failure on stderr; keep its words for our one message instead.
    said = _Collect()
    chatter = logging.getLogger("yfinance")
    chatter.addHandler(said)
    propagate, chatter.propagate = chatter.propagate, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = yf.download(symbol, start=start.isoformat(), end=(end + timedelta(days=1)).isoformat(),
                                interval="1d", auto_adjust=True, progress=False, multi_level_index=False,
                                threads=False, timeout=10)
    finally:
        chatter.removeHandler(said)
        chatter.propagate = propagate
    if frame is None or frame.empty:
        # yfinance reports most failures (no network, unknown ticker) as an empty frame plus a log line.
        raise ConnectionError(said.last or "no data returned")
    return frame


class _Collect(logging.Handler):
    """Keeps the last error yfinance logged, on one line."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        lines = [line.strip() for line in record.getMessage().splitlines() if line.strip()]
        if lines:
            self.last = _plain(lines[-1])


def _plain(line: str) -> str:
    """yfinance's error line in a trader's words: no ticker prefix, no curl manual, 'no network' said so."""
    line = re.sub(r"^\[[^\]]*\]:\s*", "", line)  # "['MSFT']: "
    line = re.sub(r"\s*See https?://\S+ first for more details\.", "", line)
    host = re.search(r"Could not resolve host: ([\w.-]*\w)", line)
    return f"no network: could not resolve {host[1]}" if host else line[:200]


def _covers(frame: pd.DataFrame, start: date | None, end: date | None) -> bool:
    first, last = frame.index[0].date(), frame.index[-1].date()
    return (start is None or first <= start + timedelta(days=EDGE_DAYS)) and \
           (end is None or last >= end - timedelta(days=EDGE_DAYS))


def _slice(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    days = frame.index.date
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= days >= start
    if end is not None:
        keep &= days <= end
    return frame[keep]


def load_bars(
    symbol: str,
    start: date | str | None = None,
    end: date | str | None = None,
    *,
    cache_dir: Path | str | None = None,
    snapshot_dir: Path | str = SNAPSHOT_DIR,
    downloader: Downloader | None = None,
    online: bool | None = None,
) -> Bars:
    """Daily bars for [start, end] from the cache, else yfinance, else the shipped snapshot.

    `downloader(symbol, start, end)` replaces yfinance (tests pass a fake); `online=False`, or
    the environment variable PLAYER_COACH_OFFLINE=1, skips it. A failed download falls back to
    the snapshot and says so in `note`. Raises MarketDataError when no source has the bars.
    """
    try:
        symbol = normalise_symbol(symbol)
    except ValueError as error:
        raise MarketDataError(str(error)) from None
    start, end = _day(start), _day(end)
    if start and end and start > end:
        raise MarketDataError(f"{symbol}: start {start} is after end {end}")
    cache_dir, snapshot_dir = Path(CACHE_DIR if cache_dir is None else cache_dir), Path(snapshot_dir)
    notes = []
    failed = False

    cached = _cache_path(cache_dir, symbol)
    if cached.exists():
        try:
            frame = _read_csv(cached, symbol)
            if _covers(frame, start, end) and len(_slice(frame, start, end)):
                return Bars(symbol, _slice(frame, start, end), "cache", f"from the local cache {cached.name}")
        except MarketDataError as error:
            notes.append(f"the cached file was unusable ({error})")

    if online is None:
        online = os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes")
    if online or downloader is not None:
        today = date.today()
        want_start = start or today - timedelta(days=3 * 365)
        want_end = end or today
        try:
            frame = validate_bars((downloader or yfinance_download)(symbol, want_start, want_end), symbol)
        except MarketDataError as error:
            notes.append(f"yfinance returned unusable bars ({error})")
            failed = True
        except Exception as error:  # network, HTTP, parsing: any failure falls back to the snapshot
            notes.append(f"yfinance failed ({error})" if isinstance(error, ConnectionError) and str(error)
                         else f"yfinance failed ({type(error).__name__}: {error})")
            failed = True
        else:
            _write_cache(cached, frame)
            sliced = _slice(frame, start, end)
            if len(sliced):
                return Bars(symbol, sliced, "yfinance", "downloaded from yfinance")
            notes.append(f"yfinance has no bars between {start} and {end}")
    else:
        notes.append("offline")

    frames = _snapshot_frames(symbol, Path(snapshot_dir))
    if not frames:
        known = ", ".join(snapshot_symbols(snapshot_dir))
        sets = ", ".join(f"{name} ({len(_set(name, snapshot_dir))} symbols)" for name in universes(snapshot_dir))
        raise MarketDataError(f"unknown symbol {symbol!r}: no cached or downloaded bars ({'; '.join(notes)}) "
                              f"and the shipped snapshot has only {known}" + (f" and the sets {sets}" if sets else ""))
    label, frame = _pick(frames, start, end)
    sliced = _slice(frame, start, end)
    if not len(sliced):
        ranges = sorted({f"{f.index[0].date()} to {f.index[-1].date()}" for _, f in frames})
        raise MarketDataError(f"{symbol}: no bars between {start} and {end}; the shipped snapshot has "
                              f"{' and '.join(ranges)} ({'; '.join(notes)})")
    where = "snapshot" if label.endswith(".csv") else label
    note = f"served from the shipped {where} ({frame.index[0].date()} to {frame.index[-1].date()}): " + "; ".join(notes)
    return Bars(symbol, sliced, "snapshot", note, fallback=failed)


def _write_cache(path: Path, frame: pd.DataFrame) -> None:
    """Merge downloaded bars into the symbol's cache file (new values win)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            try:
                old = _read_csv(path, path.stem)
                frame = pd.concat([old[~old.index.isin(frame.index)], frame]).sort_index()
            except MarketDataError:
                pass  # an unusable cache is replaced
        out = frame.copy()
        out.index = out.index.strftime("%Y-%m-%d")
        out.index.name = "Date"
        tmp = path.with_suffix(".tmp")
        out.to_csv(tmp)
        tmp.replace(path)
    except OSError:
        pass  # a read-only disk only costs the cache


def available_dates(symbol: str, *, cache_dir: Path | str | None = None,
                    snapshot_dir: Path | str = SNAPSHOT_DIR) -> list[date]:
    """Every date the local data (cache and snapshot) has for a symbol, oldest first."""
    symbol = normalise_symbol(symbol)
    cache_dir = CACHE_DIR if cache_dir is None else cache_dir
    days: set[date] = set()
    cached = _cache_path(Path(cache_dir), symbol)
    if cached.exists():
        try:
            days.update(_read_csv(cached, symbol).index.date)
        except MarketDataError:
            pass
    try:
        for _, frame in _snapshot_frames(symbol, Path(snapshot_dir)):
            days.update(frame.index.date)
    except MarketDataError:
        pass
    return sorted(days)


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
    day = _day(day)
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
