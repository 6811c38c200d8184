"""The tables a whole backtest result adds to its metrics: walk-forward (in-sample against out-of-sample),
a row per volatility regime and a row per symbol. A sweep's summary (core.backtest.summary) builds none of them.
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import pandas as pd

from core.backtest.result import TRADING_DAYS, column, returns_of, sharpe_ratio, win_rate
from core.exchange.schema import VolatilityRegime


def walk_forward(equity: pd.Series, split: float, periods: int = TRADING_DAYS) -> dict:
    """Sharpe and return on the first `split` of the days (in-sample) and on the rest (out-of-sample)."""
    curve, index = equity.to_numpy(dtype=float), equity.index
    r = returns_of(curve)  # return k's day: the point it ends on, index[k + 1]
    cut = int(round(len(r) * split))
    parts = {}
    for name, first, last in (("in_sample", 0, cut), ("out_of_sample", cut, len(r))):  # returns first..last-1
        part, points = r[first:last], curve[first:last + 1]
        parts[name] = {
            "start": str(index[first + 1].date()) if len(part) else None,
            "end": str(index[last].date()) if len(part) else None,
            "days": len(part),
            "sharpe": round(sharpe_ratio(part, periods), 4),
            "return_pct": round(float(points[-1] / points[0] - 1) * 100, 4) if len(points) > 1 else 0.0,
        }
    parts["split"] = split
    return parts


def rows_table(rows: dict[str, dict], columns: list[str], index: pd.Index | None = None) -> pd.DataFrame:
    """A row per key of `rows`, one at least (`index`: the same keys built once), a column per name of Python ints or
    floats: DataFrame.from_dict(rows, orient="index", columns=columns)'s frame, built column by column, each as
    the int64 or float64 array pandas would infer from its list (a third of its time; every result builds three)."""
    return pd.DataFrame({column: np.array([row[column] for row in rows.values()]) for column in columns},
                        index=list(rows) if index is None else index.view())


def by_regime(days: pd.DataFrame | dict, returns: pd.Series | np.ndarray, trades: pd.DataFrame | dict,
              periods: int = TRADING_DAYS) -> pd.DataFrame:
    """Days, Sharpe, compounded return, trades and win rate per volatility regime (known at decision
    time). A day of a portfolio counts under the regime of its first symbol that traded that day. `days`
    and `trades` are frames or {column: list}."""
    regime, outcome = column(days, "regime"), column(days, "outcome")
    seen: set = set()
    first = np.array([g for d, g in zip(column(days, "day"), regime) if not (d in seen or seen.add(d))],
                     dtype=object)  # each day's first exchange's regime
    r = np.asarray(returns, dtype=float)
    traded_in, pnl = column(trades, "regime"), column(trades, "pnl", float)
    rows = {}
    for name in get_args(VolatilityRegime):
        mask = first == name
        picked = r[mask] if len(r) == len(mask) else np.array([])
        exchanges = regime == name
        mine = traded_in == name
        rows[name] = {
            "days": int(mask.sum()),
            "return_pct": float((np.prod(1 + picked) - 1) * 100) if len(picked) else 0.0,
            "sharpe": sharpe_ratio(picked, periods),
            "approval_rate": float((outcome[exchanges] == "APPROVE").mean() * 100) if exchanges.any() else 0.0,
            "trades": int(mine.sum()),
            "win_rate": win_rate(pnl[mine]),
        }
    return rows_table(rows, ["days", "return_pct", "sharpe", "approval_rate", "trades", "win_rate"], _REGIMES)


_REGIMES = pd.Index(get_args(VolatilityRegime))
"""by_regime's rows, built once: each result's are a view of them."""


def by_symbol(symbols: list[str], trades: pd.DataFrame | dict, positions: pd.DataFrame) -> pd.DataFrame:
    """A row per symbol: closed trades, their P&L after fees, win rate, and exposure (the share of
    days the book held the symbol at the close, in percent). `trades` is a frame or {column: list}."""
    traded, pnl = column(trades, "symbol"), column(trades, "pnl", float)
    columns = dict(zip(positions.columns, positions.to_numpy().T))  # the frame's columns read at once
    rows = {}
    for symbol in symbols:
        mine = pnl[traded == symbol]
        held = columns[symbol] != 0 if symbol in columns else np.array([], dtype=bool)
        rows[symbol] = {"trades": len(mine), "pnl": float(mine.sum()), "win_rate": win_rate(mine),
                        "exposure_pct": float(held.mean() * 100) if len(held) else 0.0}
    return rows_table(rows, ["trades", "pnl", "win_rate", "exposure_pct"])
