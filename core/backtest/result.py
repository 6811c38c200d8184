"""The figures of a backtest: ratios, drawdowns, the metrics, the comparison table, and `BacktestResult`,
which holds them with the tables of core.backtest.breakdown (walk-forward, regimes, symbols).

Small pure functions over an equity curve, daily returns or a trade list; each is checked against a
hand computation in the tests. Ratios annualise with `periods` a year: 252 for exchange-traded
symbols, 365 when the calendar runs seven days a week (crypto); see `periods_per_year`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

TRADING_DAYS = 252
CALENDAR_DAYS = 365

METRIC_LABELS = {
    "total_return_pct": "Return [%]",
    "buy_hold_return_pct": "Buy & Hold Return [%]",
    "cagr_pct": "CAGR [%]",
    "sharpe": "Sharpe Ratio",
    "sortino": "Sortino Ratio",
    "calmar": "Calmar Ratio",
    "max_drawdown_pct": "Max. Drawdown [%]",
    "longest_drawdown_days": "Longest Drawdown [bars]",
    "recovery_days": "Longest Drawdown Recovery [bars]",
    "win_rate": "Win Rate [%]",
    "trades": "# Trades",
    "days_traded": "Days Traded",
    "days_aborted": "Days Aborted",
    "days_skipped": "Days Skipped",
    "approval_rate": "Approval Rate [%]",
    "avg_rounds": "Avg. Rounds",
    "tokens": "Tokens",
    "cost_usd": "Cost [$]",
    "final_equity": "Equity Final [$]",
    "days": "Days",
}
"""Every metric of a result, in display order, with its label (percentages are in percent)."""

_METRICS = pd.Index(list(METRIC_LABELS))
"""The labels of every result's metrics, built once: each result's are a view of them (a text index costs about a
tenth of a millisecond to build, a view nothing)."""

HIGHER_IS_BETTER = {"total_return_pct", "cagr_pct", "final_equity", "sharpe", "sortino", "calmar"}
"""The only metrics a comparison marks as better: return and risk-adjusted return, higher wins. A shallower
drawdown bought with a lower return is a trade-off, and a higher approval rate, fewer rounds or more trades
describe how a preset behaves, not how well it did: those rows are left unmarked."""

BETTER_RULE = ("Marked only on return (return, CAGR, final equity) and risk-adjusted return (Sharpe, Sortino, "
               "Calmar): the higher one; '=' for a tie. Drawdown, win rate and activity (approval rate, rounds, "
               "trades) are trade-offs, not better in themselves: unmarked. A risk-adjusted figure of a run "
               "without trades is not comparable.")
"""The rule of the `better` column, in words, for a table's help."""


def periods_per_year(days: Iterable[date]) -> int:
    """365 when the calendar has a Saturday or Sunday in it (it runs seven days a week), else 252."""
    return CALENDAR_DAYS if any(d.weekday() >= 5 for d in days) else TRADING_DAYS


def daily_returns(equity: pd.Series) -> pd.Series:
    """Simple returns from one equity point to the next."""
    return pd.Series(returns_of(equity.to_numpy(dtype=float)), index=equity.index[1:], name=equity.name)


def returns_of(curve: np.ndarray) -> np.ndarray:
    """`daily_returns`' values, of an equity curve's values (what the figures read: no series built for them)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a book at 0 has no return: inf or NaN, as pandas says
        return curve[1:] / curve[:-1] - 1


def sharpe_ratio(returns: pd.Series | np.ndarray, periods: int = TRADING_DAYS) -> float:
    """Mean over sample standard deviation of daily returns, times sqrt(periods); 0 when flat."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return 0.0
    sd = r.std(ddof=1)
    return 0.0 if sd < 1e-15 else float(r.mean() / sd * math.sqrt(periods))


def sortino_ratio(returns: pd.Series | np.ndarray, periods: int = TRADING_DAYS) -> float:
    """Mean daily return over the downside deviation sqrt(mean(min(r, 0)^2)), times sqrt(periods)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside < 1e-15:
        return math.inf if r.mean() > 0 else 0.0
    return float(r.mean() / downside * math.sqrt(periods))


def drawdown(equity: pd.Series) -> pd.Series:
    """Fraction below the running peak at each point (0 at a new high)."""
    return 1 - equity / equity.cummax()


def max_drawdown(equity: pd.Series | np.ndarray) -> float:
    """The deepest fall from a peak anywhere in the curve, as a fraction (not the final one)."""
    values = np.asarray(equity, dtype=float)
    return float(np.max(1 - values / np.maximum.accumulate(values))) if len(values) else 0.0


def drawdown_spells(equity: pd.Series) -> tuple[int, int | None]:
    """(longest drawdown in bars from its peak to recovery or the end, bars from its trough to
    the recovery, None when it never recovered)."""
    values = equity.to_numpy(dtype=float)
    best, recovery, peak_at, peak = 0, None, 0, -math.inf
    for i, v in enumerate(values.tolist()):  # Python's floats: the same comparisons, without a numpy scalar each
        if v >= peak:
            if i - peak_at - 1 > 0 and i - peak_at > best:
                trough = peak_at + int(np.argmin(values[peak_at:i]))
                best, recovery = i - peak_at, i - trough
            peak, peak_at = v, i
    if len(values) - 1 - peak_at > best:  # still under water at the end
        best, recovery = len(values) - 1 - peak_at, None
    return best, recovery


def cagr(equity: pd.Series) -> float:
    """Compound annual growth from the first to the last point, over calendar days / 365.25."""
    if len(equity) < 2:
        return 0.0
    years = (equity.index[-1] - equity.index[0]).days / 365.25
    values = equity.to_numpy()  # iloc's very scalars, read without its machinery
    first, last = values[0], values[-1]
    if years <= 0 or first <= 0:
        return 0.0
    if last <= 0:
        return -1.0  # everything lost (a negative base has no real root)
    return float((last / first) ** (1 / years) - 1)


def buy_and_hold(prices: dict[str, pd.DataFrame] | pd.DataFrame, capital: float,
                 calendar: pd.DatetimeIndex | None = None) -> pd.Series:
    """Equity of `capital` split equally over the symbols, each bought at its first open and held, at
    every close of the calendar (a symbol's last close where it has no bar; cash before its first;
    no fees). One frame: that symbol alone."""
    frames = {"": prices} if isinstance(prices, pd.DataFrame) else prices
    calendar = calendar if calendar is not None else next(iter(frames.values())).index
    curve = pd.Series(0.0, index=calendar)
    share = capital / len(frames)
    for frame in frames.values():
        if not len(frame):
            curve += share
            continue
        value = (share * frame["Close"] / frame["Open"].iloc[0]).reindex(calendar).ffill()
        curve += value.fillna(share)
    return curve


def buy_and_hold_return(prices: dict[str, pd.DataFrame], capital: float) -> float:
    """The last point of `buy_and_hold` as a return in percent, without its curve, for `prices` that end
    on the calendar's last day or before it (each holding is then worth its last close there)."""
    total, share = 0.0, capital / len(prices)
    for frame in prices.values():  # the curve's sum, in the same order
        total += share * frame["Close"].iat[-1] / frame["Open"].iat[0] if len(frame) else share
    return float(total / capital - 1) * 100


def win_rate(pnl: pd.Series | np.ndarray) -> float:
    """Share of closed trades with a positive P&L after fees, in percent (0 with no trades)."""
    pnl = np.asarray(pnl, dtype=float)
    return 0.0 if len(pnl) == 0 else float((pnl > 0).mean() * 100)


def column(table: pd.DataFrame | dict, name: str, dtype=object) -> np.ndarray:
    """A column of a frame, or of the {column: list} a run records before any frame is built (read either way,
    a figure is the same: the frame's column holds those very values)."""
    return np.asarray(table[name], dtype=dtype)


def summary(equity: pd.Series, days: pd.DataFrame | dict, trades: pd.DataFrame | dict, capital: float,
            bench_return_pct: float, periods: int, name: str) -> pd.Series:
    """The metrics of a run, labelled by METRIC_LABELS. `days` has one row per exchange (day x symbol):
    approval rate and rounds count exchanges that ran; days traded, aborted and skipped count days. `days`
    and `trades` are frames or {column: list}."""
    # numpy and sets over the columns, not pandas operations: the same figures, a backtest's result in
    # a fraction of the time (a sweep computes hundreds)
    curve = equity.to_numpy(dtype=float)
    day, outcome = column(days, "day"), column(days, "outcome")
    pnl = column(trades, "pnl", float)
    traded, aborted, decided = set(), set(), set()  # days with a fill, with an ABORT, with any exchange decided
    for d, o, fills in zip(day, outcome, column(days, "fills")):
        if fills:
            traded.add(d)
        if o == "ABORT":
            aborted.add(d)
        if o not in ("SKIPPED", "ERROR", "INTERRUPTED"):
            decided.add(d)
    ran = outcome != "SKIPPED"
    ran_outcome = outcome[ran]
    longest, recovery = drawdown_spells(equity)
    growth = cagr(equity)
    deepest = max_drawdown(curve)
    returns = returns_of(curve)
    every_day = set(day)
    figures = {
        "total_return_pct": (curve[-1] / capital - 1) * 100,
        "buy_hold_return_pct": bench_return_pct,
        "cagr_pct": growth * 100,
        "sharpe": sharpe_ratio(returns, periods),
        "sortino": sortino_ratio(returns, periods),
        "calmar": growth / deepest if deepest > 0 else math.nan,
        "max_drawdown_pct": deepest * 100,
        "longest_drawdown_days": longest,
        "recovery_days": math.nan if recovery is None else recovery,
        "win_rate": win_rate(pnl),
        "trades": len(pnl),
        "days_traded": len(traded),
        "days_aborted": len(aborted),
        "days_skipped": len(every_day - decided),
        "approval_rate": float((ran_outcome == "APPROVE").mean() * 100) if len(ran_outcome) else 0.0,
        "avg_rounds": float(column(days, "rounds", None)[ran].mean()) if len(ran_outcome) else 0.0,
        "tokens": int(column(days, "tokens", None).sum()),
        "cost_usd": float(column(days, "cost_usd", float).sum()),
        "final_equity": float(curve[-1]),
        "days": len(every_day),
    }
    return pd.Series([figures[metric] for metric in METRIC_LABELS], index=_METRICS.view(), dtype=object, name=name)


NEEDS_TRADES = {"sharpe", "sortino", "calmar", "max_drawdown_pct", "longest_drawdown_days", "recovery_days",
                "win_rate"}
"""Risk metrics that say nothing about a run without trades: its flat curve has no drawdown to beat."""

NOT_COMPARABLE = "not comparable (no trades)"


def compare_table(results: dict) -> pd.DataFrame:
    """Metrics side by side (one column per result's `.metrics`), with the name of the better one on
    the return and risk-adjusted rows (HIGHER_IS_BETTER; BETTER_RULE says it in words): '=' for a tie,
    '' on every other row, NOT_COMPARABLE for a risk-adjusted figure of a run that made no trade."""
    names = list(results)
    table = pd.DataFrame({name: results[name].metrics for name in names})
    idle = any(int(results[name].metrics["trades"]) == 0 for name in names)
    better = []
    for metric, row in table.iterrows():
        a, b = row[names[0]], row[names[-1]]
        if len(names) < 2 or metric not in HIGHER_IS_BETTER:
            better.append("")
            continue
        if idle and metric in NEEDS_TRADES:
            better.append(NOT_COMPARABLE)
            continue
        fa, fb = (float(x) if x is not None else math.nan for x in (a, b))
        if math.isnan(fa) or math.isnan(fb):
            better.append("")
        elif fa == fb or abs(fa - fb) <= 1e-9 * max(1.0, abs(fa), abs(fb)):  # fa == fb: inf ties inf
            better.append("=")
        else:
            better.append(names[0] if fa > fb else names[-1])
    table["better"] = better
    return table


def outcome_counts(days: pd.DataFrame) -> pd.Series:
    """How many of a run's exchanges ended each way (APPROVE, REJECT-MAX, ABORT, SKIPPED, ...), most first."""
    return days["outcome"].value_counts() if len(days) else pd.Series(dtype=int)


class ReadsMetrics:
    """A backtest's figures: its metrics read as attributes (`result.sharpe`), its symbols as one `symbol`."""

    def __getattr__(self, name: str):
        values = self.__dict__.get("metrics")
        if values is not None and name in values.index:
            return values[name]
        raise AttributeError(name)

    @property
    def symbol(self) -> str:
        """The symbol, or the portfolio's symbols joined by commas."""
        return ",".join(self.symbols)


@dataclass
class BacktestResult(ReadsMetrics):
    """A finished (or cancelled, or paused) backtest. Metrics are in `.metrics` and readable as
    attributes (`result.sharpe`); `days` has a row per exchange (day x symbol)."""

    symbols: list[str]
    start: date
    end: date
    run_key: str
    preset: str
    status: str  # finished | cancelled | paused
    source: str  # where the bars came from (core.market.Bars.source)
    note: str
    settings: dict
    metrics: pd.Series
    equity: pd.Series
    trades: pd.DataFrame
    days: pd.DataFrame
    walk_forward: dict
    by_regime: pd.DataFrame
    by_symbol: pd.DataFrame  # a row per symbol: trades, pnl, win_rate, exposure_pct
    positions: pd.DataFrame  # a row per day, a column per symbol: signed size / equity at the close
    limits: pd.DataFrame  # a row per limit that acted: what it rejected, aborted, refused, and the P&L then
    bars: dict[str, pd.DataFrame] = field(repr=False)  # each symbol's bars over the days run
    periods_per_year: int = TRADING_DAYS
    fallback: bool = False  # the bars came from the snapshot because yfinance failed (see `note`)
    spec: object = None  # the core.backtest.spec.BacktestSpec it ran (None for results built by hand)

    @property
    def prices(self) -> pd.DataFrame:
        """The first symbol's bars over the days run (every symbol's are in `bars`)."""
        return self.bars[self.symbols[0]]

    @property
    def drawdown(self) -> pd.Series:
        """Percent below the running peak, per day."""
        return drawdown(self.equity) * 100

    @property
    def buy_hold(self) -> pd.Series:
        """The benchmark curve: the capital split equally over the symbols, bought at the first open and held."""
        return buy_and_hold(self.bars, self.settings["capital"], self.equity.index[1:])

    @property
    def exceptions(self) -> pd.DataFrame:
        """Exchanges that were aborted, skipped or failed, or whose orders were not filled, with the reasons."""
        d = self.days
        return d[d["outcome"].isin(["ABORT", "SKIPPED", "ERROR", "INTERRUPTED"])
                 | d["note"].astype(bool)][["day", "symbol", "outcome", "reason", "note"]]

    def to_dict(self) -> dict:
        """A JSON-ready summary: metrics, walk-forward, regimes, symbols, limits, trades, equity and positions."""
        def records(frame: pd.DataFrame) -> dict:
            return json.loads(frame.to_json(orient="index"))

        return {
            "run_key": self.run_key, "symbol": self.symbol, "symbols": self.symbols, "start": str(self.start),
            "end": str(self.end), "preset": self.preset, "status": self.status, "source": self.source,
            "note": self.note, "fallback": self.fallback, "settings": self.settings,
            "periods_per_year": self.periods_per_year,
            "metrics": {k: plain(v) for k, v in self.metrics.items()},
            "walk_forward": self.walk_forward,
            "by_regime": records(self.by_regime), "by_symbol": records(self.by_symbol), "limits": records(self.limits),
            "trades": json.loads(self.trades.astype({"entry_day": str, "exit_day": str}).to_json(orient="records")),
            "equity": {str(k.date()): round(float(v), 2) for k, v in self.equity.items()},
            "positions": {str(k.date()): {s: round(float(v), 6) for s, v in row.items() if v}
                          for k, row in self.positions.iterrows()},
        }


def plain(value):
    """A metric as JSON takes it: a plain int or float, NaN and infinity as None."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not math.isfinite(value) else round(value, 6)
    return value
