"""Defaults for Trade Review's sidebar from the shipped market snapshot (core.market).

Until core.market can answer (or for a symbol it has no bars for), a fixed AMZN-like world.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

FALLBACK = {"price": 185.0, "sma5": 183.0, "sma10": 180.0, "volume": 40_000_000.0, "volatility_regime": "medium",
            "session": "NY_open", "atr": None}
FALLBACK_SYMBOLS = ["AMZN", "MSFT", "TSLA", "BTC-USD"]


def _market():
    try:
        from core import market
    except ImportError:
        return None
    return market


def symbols() -> list[str]:
    """The symbols to offer: those of the shipped snapshot, else the moderate preset's."""
    return FALLBACK_SYMBOLS


def dates(symbol: str) -> list[date]:
    """The trading days the data has for a symbol, oldest first (empty: any date)."""
    return []


def world(symbol: str, day: date) -> tuple[dict, str]:
    """World-state fields for a symbol on a day, and a line saying where they came from."""
    return dict(FALLBACK), "Defaults (no market data for this symbol and day): edit the world state below."
