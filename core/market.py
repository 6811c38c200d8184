"""Daily bars for a symbol and dates, and which source served them (SPEC §7).

`load_bars` serves daily OHLCV from, in order, the local cache (data/cache/), yfinance and the
real snapshot shipped in data/snapshot/ (core.snapshot), and says which one served it; when
several shipped files have a symbol, the one that covers the dates asked for serves it. What a
valid frame is lives in core.bars, the Player's view of day t in core.world; their names are
also core.market's, as callers have always used them.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from core.bars import COLUMNS, PRICES, Bars, as_day, read_bars_csv, validate_bars
from core.exchange.errors import MarketDataError
from core.exchange.schema import normalise_symbol
from core.snapshot import (MEMBER_SHARE, ROOT, SETS, SNAPSHOT_DIR, shipped_set, snapshot_frames, snapshot_symbols,
                           universe_range, universe_symbols, universes)
from core.world import (ATR_DAYS, DECISION_TIME, MIN_HISTORY, REGIME_DAYS, REGIME_MIN, VOL_DAYS, as_of, indicators,
                        world_state)

__all__ = [  # core.market's names: its own and those of the modules it was split into
    "ATR_DAYS", "CACHE_DIR", "CACHE_ENV", "COLUMNS", "DECISION_TIME", "EDGE_DAYS", "MEMBER_SHARE", "MIN_HISTORY",
    "OFFLINE_ENV", "PRICES", "REGIME_DAYS", "REGIME_MIN", "ROOT", "SETS", "SNAPSHOT_DIR", "VOL_DAYS", "Bars",
    "Downloader", "MarketDataError", "as_of", "available_dates", "indicators", "load_bars", "snapshot_symbols",
    "universe_range", "universe_symbols", "universes", "validate_bars", "world_state", "yfinance_download",
]

CACHE_ENV = "PLAYER_COACH_CACHE"  # another folder for downloaded bars (tests, read-only installs)
CACHE_DIR = Path(os.environ.get(CACHE_ENV) or ROOT / "data" / "cache")  # read once, at import: set the variable
# before core is imported, or pass cache_dir (the tests do) to point one call elsewhere
OFFLINE_ENV = "PLAYER_COACH_OFFLINE"  # "1": never ask yfinance (tests, air-gapped machines)
EDGE_DAYS = 5  # a cache that starts/ends within this many calendar days of the request covers it

Downloader = Callable[[str, date, date], pd.DataFrame]


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
    start, end = as_day(start), as_day(end)
    if start and end and start > end:
        raise MarketDataError(f"{symbol}: start {start} is after end {end}")
    cached = _cache_path(Path(CACHE_DIR if cache_dir is None else cache_dir), symbol)
    notes: list[str] = []  # why each source passed over did not serve: the note of the one that does
    found = _from_cache(cached, symbol, start, end, notes)
    if found is not None:
        return found
    if online is None:
        online = os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes")
    failed = False
    if online or downloader is not None:
        found, failed = _download(cached, symbol, start, end, downloader, notes)
        if found is not None:
            return found
    else:
        notes.append("offline")
    return _from_snapshot(Path(snapshot_dir), symbol, start, end, notes, failed)


def _from_cache(cached: Path, symbol: str, start: date | None, end: date | None, notes: list[str]) -> Bars | None:
    if cached.exists():
        try:
            frame = read_bars_csv(cached, symbol)
            if _covers(frame, start, end) and len(_slice(frame, start, end)):
                return Bars.validated_rows(symbol, _slice(frame, start, end), "cache",
                                           f"from the local cache {cached.name}")
        except MarketDataError as error:
            notes.append(f"the cached file was unusable ({error})")
    return None


def _download(cached: Path, symbol: str, start: date | None, end: date | None, downloader: Downloader | None,
              notes: list[str]) -> tuple[Bars | None, bool]:
    """yfinance's bars (or the given downloader's), merged into the cache; and whether the download failed."""
    today = date.today()
    want_start = start or today - timedelta(days=3 * 365)
    want_end = end or today
    try:
        frame = validate_bars((downloader or yfinance_download)(symbol, want_start, want_end), symbol)
    except MarketDataError as error:
        notes.append(f"yfinance returned unusable bars ({error})")
        return None, True
    except Exception as error:  # network, HTTP, parsing: any failure falls back to the snapshot
        notes.append(f"yfinance failed ({error})" if isinstance(error, ConnectionError) and str(error)
                     else f"yfinance failed ({type(error).__name__}: {error})")
        return None, True
    _write_cache(cached, frame)
    sliced = _slice(frame, start, end)
    if len(sliced):
        return Bars.validated_rows(symbol, sliced, "yfinance", "downloaded from yfinance"), False
    notes.append(f"yfinance has no bars between {start} and {end}")
    return None, False


def _shipped(symbol: str, snapshot_dir: Path) -> list[tuple[str, pd.DataFrame]]:
    """`snapshot_frames`, read and validated once per version of the files they come from: a page or a what-if
    loads the same symbols at every run, and each shipped copy took milliseconds to check again (MSFT has three).
    Frames are copy-on-write (pandas 3): what a caller does to its slice never reaches the one kept here."""
    paths = [snapshot_dir / f"{symbol}.csv", *(snapshot_dir / file for file in SETS.values())]
    return _validated_frames(symbol, str(snapshot_dir), tuple(_version(p) for p in paths))


def _version(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=64)
def _validated_frames(symbol: str, snapshot_dir: str, versions: tuple) -> list[tuple[str, pd.DataFrame]]:
    return snapshot_frames(symbol, Path(snapshot_dir))  # an error is not kept: the next load reads the files again


def _from_snapshot(snapshot_dir: Path, symbol: str, start: date | None, end: date | None, notes: list[str],
                   failed: bool) -> Bars:
    frames = _shipped(symbol, snapshot_dir)
    if not frames:
        known = ", ".join(snapshot_symbols(snapshot_dir))
        sets = ", ".join(f"{name} ({len(shipped_set(name, snapshot_dir))} symbols)" for name in universes(snapshot_dir))
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
    return Bars.validated_rows(symbol, sliced, "snapshot", note, fallback=failed)


def _write_cache(path: Path, frame: pd.DataFrame) -> None:
    """Merge downloaded bars into the symbol's cache file (new values win)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            try:
                old = read_bars_csv(path, path.stem)
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
            days.update(read_bars_csv(cached, symbol).index.date)
        except MarketDataError:
            pass
    try:
        for _, frame in snapshot_frames(symbol, Path(snapshot_dir)):
            days.update(frame.index.date)
    except MarketDataError:
        pass
    return sorted(days)
