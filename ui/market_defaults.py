"""Defaults for Trade Review's sidebar and the Backtest's dates from the local market data (core.market, offline).

The sidebar never waits on the network: it reads the cache and the shipped snapshot only. For a
symbol the data does not have, a fixed AMZN-like world the user can edit.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta

import streamlit as st

from core import market

FALLBACK = {"price": 185.0, "sma5": 183.0, "sma10": 180.0, "volume": 40_000_000.0, "volatility_regime": "medium",
            "session": "NY_open", "atr": None}
FALLBACK_SYMBOLS = ["AMZN", "MSFT", "TSLA", "BTC-USD"]
DECISION_TIME = market.DECISION_TIME


LISTED_UNIVERSE_SIZE = 20  # a shipped universe this small is listed whole (sp500-2009's 499 are not)


@st.cache_data(show_spinner=False)
def symbols() -> list[str]:
    """The symbols of the shipped snapshot and of its small universes (GOOG, IBM with AAPL and MSFT
    for 2000-2013 portfolios), else the moderate preset's."""
    listed = set(market.snapshot_symbols())
    for name in market.universes():
        members = market.universe_symbols(name)
        if len(members) <= LISTED_UNIVERSE_SIZE:
            listed.update(members)
    return sorted(listed) or FALLBACK_SYMBOLS


@st.cache_data(show_spinner=False)
def newest_symbol(allowed: tuple[str, ...]) -> str:
    """The symbol whose data reaches the latest day, among those the schema allows (else among all)."""
    known = symbols()
    candidates = [s for s in known if s in allowed] or known
    return max(candidates, key=lambda s: (dates(s) or [date.min])[-1])


@st.cache_data(show_spinner=False)
def dates(symbol: str) -> list[date]:
    """The days a world state can be built for (enough bars before them), oldest first; empty: any date."""
    try:
        return market.available_dates(symbol)[market.MIN_HISTORY:]
    except (ValueError, market.MarketDataError):
        return []


def day_on_or_before(days: list[date], wanted: date) -> date:
    """The last of `days` (oldest first) on or before `wanted`; the first of all when none is (a day before the data:
    the nearest day it has)."""
    found = bisect_right(days, wanted)
    return days[found - 1] if found else days[0]


@st.cache_data(show_spinner=False)
def world(symbol: str, day: date) -> tuple[dict, str]:
    """World-state fields for a symbol on a day, and a line saying where they came from."""
    try:
        # The bars around the day: a symbol may have several shipped files (its own and a set's).
        bars = market.load_bars(symbol, day - timedelta(days=400), day, online=False)
        state = market.world_state(symbol, day, bars)
    except (ValueError, market.MarketDataError):
        return dict(FALLBACK), "No market data for this symbol and day: defaults, edit the world state below."
    fields = state.model_dump(include={"price", "sma5", "sma10", "volume", "volatility_regime", "session", "atr"})
    fields = {k: round(v, 2) if isinstance(v, float) and k != "volume" else v for k, v in fields.items()}
    return fields, f"From the {bars.source} bars before {day:%d %b %Y} (close of the previous day); editable below."


def shared_days(symbols: list[str] | tuple[str, ...]) -> list[date]:
    """The days every one of `symbols` has bars for (each after its warm-up), oldest first; empty when none.
    A symbol whose data has a gap (AAPL's sets end in 2013, its own file starts in 2024) shares no day there."""
    each = [set(dates(s)) for s in symbols]
    return sorted(set.intersection(*each)) if each else []
