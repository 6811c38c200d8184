"""The audit trail: every exchange, round, checked constraint, custom preset and backtest in one SQLite
file (sqlite-utils). `Store` is the one door to it; each part lives in the module named after what it
stores: db (the file, its connections and migrations), exchanges, history, presets, backtests.
"""

from __future__ import annotations

from core.journal.backtests import Backtests
from core.exchange.errors import StoreError
from core.journal.db import DEFAULT_PATH, default_path
from core.journal.exchanges import Exchanges
from core.journal.history import History, HistoryFilter
from core.journal.migrations import MIGRATIONS
from core.journal.presets import Presets

__all__ = ["DEFAULT_PATH", "HistoryFilter", "MIGRATIONS", "Store", "StoreError", "default_path"]


class Store(Exchanges, History, Presets, Backtests):
    """The SQLite store. Safe to share between threads; every process may open its own.

    Store()                        the default file ($PLAYER_COACH_DB, else data/player_coach.db)
    store.list_exchanges(HistoryFilter(symbol="AAPL"))   or   store.list_exchanges(symbol="AAPL")
    store.get_exchange(run_id)     an exchange's artifact
    """

    migrations = MIGRATIONS
