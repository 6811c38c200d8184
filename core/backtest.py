"""Backtests: the Player-Coach loop replayed over daily bars (SPEC §7).

For each trading day t: the world state comes from bars up to t-1 (core.market.indicators, a
trailing window shifted by one bar), the portfolio is as of the close of t-1, and the exchange
decides. Approved entries fill at the open of t, after the rules are checked again at the fill
price; open trades exit at their stop or target on t's high/low (the stop first when both are
touched, since a daily bar does not say which came first), or at the close once the holding limit
is reached. An open beyond a level fills at the open: worse than the stop after a gap through it,
better than the target after a gap past it (the resting order fills at the first price there is).
Fees and slippage (basis points, on both legs, always against the trader: a buyer pays more, a
seller gets less) come off the cash; equity is marked to market at every close.

The decision for t is taken on t-1's close, so the Portfolio it sees is as of that close: "today"
is t-1 (today_pnl = equity(t-1) - equity(t-2), start_of_day_equity = equity(t-2)). A loss on t-1
therefore trips the daily-loss breaker for day t, before any agent is asked. The simulated clock
(as_of) reads 09:30 ET on t, when the orders go in.

Each finished day is written to the store (`backtest_days`) before it is simulated, so a run
that crashes or is cancelled resumes where it stopped: a stored day's decision is replayed
without calling an agent, and the simulation, which is deterministic, rebuilds the same state.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from core.loop import run_exchange_sync
from core.market import MIN_HISTORY, OFFLINE_ENV, Bars, MarketDataError, _world, indicators, load_bars, validate_bars
from core.market import as_of as decision_clock
from core.prices import usage as priced_usage
from core.rules import check_proposal
from core.schema import ENTRY_TYPES, Action, Constraints, Portfolio, Proposal

TRADING_DAYS = 252
DEPTHS = ("fast", "standard")
RETRY_OUTCOMES = ("ERROR", "INTERRUPTED")  # a stored day with these outcomes is decided again on resume
WARMUP_CALENDAR_DAYS = 400  # bars loaded before `start`, so sma/ATR/regime are ready on day one

Progress = Callable[[int, int, date], None]

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

HIGHER_IS_BETTER = {"total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "win_rate", "approval_rate",
                    "final_equity"}
LOWER_IS_BETTER = {"max_drawdown_pct", "longest_drawdown_days", "recovery_days", "days_aborted", "avg_rounds",
                   "tokens", "cost_usd"}


# -- metrics: small pure functions, each checked against a hand computation in the tests ------

def daily_returns(equity: pd.Series) -> pd.Series:
    """Simple returns from one equity point to the next."""
    return equity.pct_change().iloc[1:]


def sharpe_ratio(returns: pd.Series | np.ndarray) -> float:
    """Mean over sample standard deviation of daily returns, times sqrt(252); 0 when flat."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return 0.0
    sd = r.std(ddof=1)
    return 0.0 if sd < 1e-15 else float(r.mean() / sd * math.sqrt(TRADING_DAYS))


def sortino_ratio(returns: pd.Series | np.ndarray) -> float:
    """Mean daily return over the downside deviation sqrt(mean(min(r, 0)^2)), times sqrt(252)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return 0.0
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside < 1e-15:
        return math.inf if r.mean() > 0 else 0.0
    return float(r.mean() / downside * math.sqrt(TRADING_DAYS))


def drawdown(equity: pd.Series) -> pd.Series:
    """Fraction below the running peak at each point (0 at a new high)."""
    return 1 - equity / equity.cummax()


def max_drawdown(equity: pd.Series) -> float:
    """The deepest fall from a peak anywhere in the curve, as a fraction (not the final one)."""
    return float(drawdown(equity).max()) if len(equity) else 0.0


def drawdown_spells(equity: pd.Series) -> tuple[int, int | None]:
    """(longest drawdown in bars from its peak to recovery or the end, bars from its trough to
    the recovery, None when it never recovered)."""
    values = equity.to_numpy(dtype=float)
    best, recovery, peak_at, peak = 0, None, 0, -math.inf
    for i, v in enumerate(values):
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
    if years <= 0 or equity.iloc[0] <= 0:
        return 0.0
    if equity.iloc[-1] <= 0:
        return -1.0  # everything lost (a negative base has no real root)
    return float((equity.iloc[-1] / equity.iloc[0]) ** (1 / years) - 1)


def buy_and_hold(prices: pd.DataFrame, capital: float) -> pd.Series:
    """Equity of `capital` put into the symbol at the first open and held, at every close (no fees)."""
    return capital * prices["Close"] / prices["Open"].iloc[0]


def win_rate(pnl: pd.Series | np.ndarray) -> float:
    """Share of closed trades with a positive P&L after fees, in percent (0 with no trades)."""
    pnl = np.asarray(pnl, dtype=float)
    return 0.0 if len(pnl) == 0 else float((pnl > 0).mean() * 100)


# -- the result ---------------------------------------------------------------------------

@dataclass
class BacktestResult:
    """A finished (or cancelled) backtest. Metrics are in `.metrics` and readable as attributes."""

    symbol: str
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
    prices: pd.DataFrame = field(repr=False)
    fallback: bool = False  # the bars came from the snapshot because yfinance failed (see `note`)

    def __getattr__(self, name: str):
        metrics = self.__dict__.get("metrics")
        if metrics is not None and name in metrics.index:
            return metrics[name]
        raise AttributeError(name)

    @property
    def drawdown(self) -> pd.Series:
        """Percent below the running peak, per day."""
        return drawdown(self.equity) * 100

    @property
    def buy_hold(self) -> pd.Series:
        """The benchmark curve: the same capital bought at the first open and held."""
        return buy_and_hold(self.prices, self.settings["capital"])

    @property
    def exceptions(self) -> pd.DataFrame:
        """Days that were aborted, skipped or failed, with their reasons."""
        d = self.days
        return d[d["outcome"].isin(["ABORT", "SKIPPED", "ERROR", "INTERRUPTED"])
                 | d["note"].astype(bool)][["day", "outcome", "reason", "note"]]

    def to_dict(self) -> dict:
        """A JSON-ready summary: metrics, walk-forward, regimes, trades and the equity curve."""
        return {
            "run_key": self.run_key, "symbol": self.symbol, "start": str(self.start), "end": str(self.end),
            "preset": self.preset, "status": self.status, "source": self.source, "note": self.note,
            "fallback": self.fallback,
            "settings": self.settings,
            "metrics": {k: _plain(v) for k, v in self.metrics.items()},
            "walk_forward": self.walk_forward,
            "by_regime": json.loads(self.by_regime.to_json(orient="index")),
            "trades": json.loads(self.trades.astype({"entry_day": str, "exit_day": str}).to_json(orient="records")),
            "equity": {str(k.date()): round(float(v), 2) for k, v in self.equity.items()},
        }


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not math.isfinite(value) else round(value, 6)
    return value


# -- the store ----------------------------------------------------------------------------

def _write(store, sql: str, params: list) -> None:
    db = store.db
    db.execute("begin immediate")
    try:
        db.execute(sql, params)
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _upsert(store, table: str, row: dict, key: str) -> None:
    columns = ", ".join(f'"{c}"' for c in row)
    sql = (f"insert into {table} ({columns}) values ({', '.join('?' * len(row))}) on conflict({key}) do update set "
           + ", ".join(f'"{c}" = excluded."{c}"' for c in row if c not in key.split(", ")))
    _write(store, sql, list(row.values()))


def _stored_days(store, run_key: str) -> dict[str, dict]:
    return {r["day"]: r for r in store.db["backtest_days"].rows_where("run_key = ?", [run_key])}


def list_backtests(store, limit: int = 50) -> list[dict]:
    """Stored backtests, newest first, with their headline metrics."""
    rows = []
    for r in store.db["backtests"].rows_where(order_by="updated desc", limit=limit):
        metrics = json.loads(r["metrics"] or "{}")
        rows.append({**r, "metrics": metrics, "settings": json.loads(r["settings"] or "{}")})
    return rows


def mark_cancelled(store, run_key: str) -> None:
    """Record that the user cancelled a stored run (its finished days stay; rerunning it resumes)."""
    _write(store, "update backtests set status = 'cancelled', updated = ? where run_key = ?",
           [datetime.now(timezone.utc).isoformat(timespec="seconds"), run_key])


def reopen_backtest(store, run_key: str, bars: Bars | pd.DataFrame | None = None) -> BacktestResult:
    """Rebuild a stored backtest from its stored days, calling no agent (a run cancelled part-way
    comes back as far as it got)."""
    rows = list(store.db["backtests"].rows_where("run_key = ?", [run_key]))
    if not rows:
        raise KeyError(f"no backtest {run_key!r}")
    row = rows[0]
    settings = json.loads(row["settings"])
    player = _Replayed(row["player"], settings.get("player_model"), settings.get("player_seed"))
    coach = _Replayed(row["coach"], None, None)
    result = run_backtest(
        row["symbol"], row["start"], row["end"], Constraints.model_validate_json(row["constraints"]), player, coach,
        capital=settings["capital"], fee_bps=settings["fee_bps"], slippage_bps=settings["slippage_bps"],
        max_hold_days=settings["max_hold_days"], bars=bars, store=store, depth=row["depth"], preset=row["preset"],
        stop_after=0, run_key=run_key,
    )
    if result.status == "paused":  # stopped at the first undecided day: keep the stored status
        result.status = row["status"]
        _write(store, "update backtests set status = ? where run_key = ?", [row["status"], run_key])
    return result


class _Replayed:
    """Stands in for the agents of a stored run; never asked (stop_after=0 stops at the first undecided day)."""

    def __init__(self, name, model, seed):
        self.name, self.model, self.seed = name, model, seed

    def propose(self, *args):
        raise RuntimeError("a reopened backtest never calls an agent")

    critique = propose


# -- the run ------------------------------------------------------------------------------

@dataclass(slots=True)
class _Trade:
    side: int  # +1 long, -1 short
    qty: float
    entry_day: date
    entry_price: float
    stop: float
    target: float
    size_pct: float
    entry_fee: float
    regime: str
    held: int = 0


def backtest_bars(symbol: str, start: date, end: date, bars: Bars | pd.DataFrame | None = None) -> Bars:
    """The validated bars of a backtest of [start, end]: `bars` when given, else loaded with about a
    year of warm-up before `start` so sma, ATR and the volatility regime are ready on day one."""
    if bars is None:
        try:
            return load_bars(symbol, start - timedelta(days=WARMUP_CALENDAR_DAYS), end)
        except MarketDataError:
            return load_bars(symbol, start, end)  # raises again, naming the dates the caller asked for
    if isinstance(bars, Bars):
        return Bars(bars.symbol, validate_bars(bars.frame, symbol), bars.source, bars.note, bars.fallback)
    return Bars(symbol, validate_bars(bars, symbol), "given", "bars passed in by the caller")


def _key(*parts) -> str:
    return "bt-" + hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _date(value) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        return value.date()
    return value


def run_backtest(
    symbol: str,
    start: date | str,
    end: date | str,
    constraints: Constraints,
    player,
    coach,
    capital: float = 100_000.0,
    fee_bps: float = 1.0,
    slippage_bps: float = 2.0,
    max_hold_days: int = 10,
    bars: Bars | pd.DataFrame | None = None,
    store=None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    depth: str = "standard",
    preset: str = "custom",
    record_exchanges: bool = False,
    walk_forward_split: float = 0.7,
    run_key: str | None = None,
    stop_after: int | None = None,
) -> BacktestResult:
    """Replay the Player-Coach loop over the trading days in [start, end] (SPEC §7).

    `bars` replaces loading (a DataFrame or core.market.Bars). `store` keeps the run and every
    finished day, so the same call resumes a crashed or cancelled run; with
    `record_exchanges=True` every day's exchange also goes to the exchanges table (History,
    the deriver), at about a millisecond a day. `depth` "fast" is one round with no revision;
    "standard" allows up to `max_rounds`. `cancel()` is asked before each day. `stop_after` N
    pauses the run (status "paused") once it has decided N new days: the page runs a stored
    backtest a slice at a time that way, and the same call carries on from the store.
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth: {depth!r} is not one of {', '.join(DEPTHS)}")
    if capital <= 0 or fee_bps < 0 or slippage_bps < 0 or max_hold_days < 1:
        raise ValueError("capital must be > 0, fees and slippage >= 0, max_hold_days >= 1")
    start, end = _date(start), _date(end)
    if start > end:
        raise MarketDataError(f"{symbol}: start {start} is after end {end}")
    loaded = backtest_bars(symbol, start, end, bars)
    symbol = loaded.symbol if bars is None else symbol
    frame = loaded.frame
    days_all = frame.index.date
    in_range = np.flatnonzero((days_all >= start) & (days_all <= end))
    if not len(in_range):
        raise MarketDataError(f"{symbol}: no bars between {start} and {end} "
                              f"(the data has {days_all[0]} to {days_all[-1]})")
    first, last = int(in_range[0]), int(in_range[-1])

    known = indicators(frame)  # row t: what is known before t's open (bars up to t-1 only)
    price, sma5, sma10 = known["price"].to_numpy(), known["sma5"].to_numpy(), known["sma10"].to_numpy()
    volume, atr, regimes = known["volume"].to_numpy(), known["atr"].to_numpy(), known["regime"].to_numpy()
    history = known["history"].to_numpy()
    opens, highs, lows, closes = (frame[c].to_numpy() for c in ("Open", "High", "Low", "Close"))

    decide_with = constraints if depth == "standard" else constraints.model_copy(update={"max_rounds": 1})
    fee, slip = fee_bps / 10_000, slippage_bps / 10_000
    settings = {
        "capital": capital, "fee_bps": fee_bps, "slippage_bps": slippage_bps, "max_hold_days": max_hold_days,
        "depth": depth, "player_model": getattr(player, "model", None), "player_seed": getattr(player, "seed", None),
    }
    fingerprint = (str(days_all[0]), str(days_all[-1]), len(frame), round(float(closes.sum()), 4))
    run_key = run_key or _key(symbol, str(start), str(end), constraints.model_dump(mode="json"),
                              getattr(player, "name", type(player).__name__), settings["player_model"],
                              settings["player_seed"], getattr(coach, "name", type(coach).__name__), settings,
                              fingerprint)
    stored: dict[str, dict] = {}
    if store is not None:
        stored = _stored_days(store, run_key)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        existing = list(store.db["backtests"].rows_where("run_key = ?", [run_key], select="created"))
        _upsert(store, "backtests", {
            "run_key": run_key, "created": existing[0]["created"] if existing else now, "updated": now,
            "status": "running", "symbol": symbol, "start": str(start), "end": str(end), "preset": preset,
            "constraints": constraints.model_dump_json(), "player": getattr(player, "name", type(player).__name__),
            "coach": getattr(coach, "name", type(coach).__name__), "model": settings["player_model"], "depth": depth,
            "settings": json.dumps(settings), "days_total": last - first + 1, "days_done": len(stored), "metrics": None,
        }, "run_key")

    cash = float(capital)
    open_trades: list[_Trade] = []
    closed: list[dict] = []
    day_rows: list[dict] = []
    equity_points: list[float] = [cash]
    eq_close = eq_before = peak = cash  # equity at the last close, at the close before it, and its peak
    status = "finished"
    total = last - first + 1
    decided = 0

    def close_trade(trade: _Trade, day: date, raw_price: float, reason: str) -> dict:
        nonlocal cash
        px = raw_price * (1 - trade.side * slip)
        exit_fee = trade.qty * px * fee
        cash += trade.side * trade.qty * px - exit_fee
        pnl = trade.side * trade.qty * (px - trade.entry_price) - trade.entry_fee - exit_fee
        record = {
            "symbol": symbol, "side": "long" if trade.side > 0 else "short", "size_pct": trade.size_pct,
            "qty": trade.qty, "entry_day": trade.entry_day, "entry_price": trade.entry_price, "stop": trade.stop,
            "target": trade.target, "exit_day": day, "exit_price": px, "exit_reason": reason,
            "bars_held": trade.held, "fees": trade.entry_fee + exit_fee, "pnl": pnl,
            "return_pct": pnl / (trade.qty * trade.entry_price) * 100, "regime": trade.regime,
        }
        closed.append(record)
        return record

    for n, i in enumerate(range(first, last + 1)):
        day = days_all[i]
        if cancel is not None and cancel():
            status = "cancelled"
            break
        previous = stored.get(str(day))
        replay = previous is not None and previous["outcome"] not in RETRY_OUTCOMES
        warm_up = history[i] < MIN_HISTORY or not math.isfinite(sma10[i])
        if stop_after is not None and decided >= stop_after and not replay and not warm_up:
            status = "paused"
            break
        if progress is not None:
            progress(n, total, day)
        o, h, lo, c = opens[i], highs[i], lows[i], closes[i]
        regime = str(regimes[i])
        held_value = sum(t.side * t.qty for t in open_trades) * closes[i - 1] if i > 0 and open_trades else 0.0
        position = "flat" if not open_trades else ("long" if held_value > 0 else "short")
        note = ""

        # -- decide (or replay a stored decision) --------------------------------------------
        if replay:
            outcome, reason = previous["outcome"], previous["reason"]
            rounds, tokens, cost = previous["rounds"], previous["tokens"], previous["cost_usd"]
            actions = json.loads(previous["actions"])
            run_id = previous["exchange_run_id"]
        elif warm_up:
            outcome, reason, rounds, tokens, cost, actions, run_id = (
                "SKIPPED", f"warm-up: {int(history[i])} earlier bars, the world state needs {MIN_HISTORY}",
                0, 0, 0.0, [], None)
        else:
            world = _world(symbol, day, price[i], sma5[i], sma10[i], volume[i], atr[i], regime, position)
            portfolio = portfolio_at_decision(eq_close, peak, eq_before, capital, symbol, held_value)
            artifact = run_exchange_sync(
                world, decide_with, portfolio, player, coach, store=store if record_exchanges else None,
                strategy_id=f"backtest:{run_key}" if record_exchanges else None,
                run_id=f"{run_key}:{day}", now=lambda: world.as_of,
            )
            decided += 1
            outcome, reason = artifact["outcome"], artifact["termination_reason"]
            rounds, tokens, cost = artifact["rounds_taken"], artifact["total_tokens"], artifact["usage"]["cost_usd"]
            actions = artifact["rounds"][-1]["proposal"]["actions"] if outcome == "APPROVE" else []
            run_id = artifact["run_id"] if record_exchanges else None
            if store is not None:
                _upsert(store, "backtest_days", {
                    "run_key": run_key, "day": str(day), "outcome": outcome, "reason": reason, "rounds": rounds,
                    "tokens": tokens, "cost_usd": cost, "actions": json.dumps(actions), "exchange_run_id": run_id,
                }, "run_key, day")

        # -- simulate day t: decisions fill at the open, then stops/targets on the high/low ----
        fills: list[str] = []
        exits = {a["symbol"] for a in actions if a["action_type"] == "exit"}
        entries = [a for a in actions if a["action_type"] in ENTRY_TYPES]
        still: list[_Trade] = []
        for trade in open_trades:
            stop_gap = o <= trade.stop if trade.side > 0 else o >= trade.stop
            target_gap = o >= trade.target if trade.side > 0 else o <= trade.target
            if stop_gap:
                close_trade(trade, day, o, "stop (gap)")
            elif target_gap:
                close_trade(trade, day, o, "target (gap)")
            elif symbol in exits:
                close_trade(trade, day, o, "exit")
            else:
                still.append(trade)
                continue
            fills.append(closed[-1]["exit_reason"])
        open_trades = still

        if entries:
            foreign = [a["symbol"] for a in entries if a["symbol"] != symbol]
            if foreign:
                note = f"no bars for {', '.join(sorted(set(foreign)))} in a {symbol} backtest: not filled"
            mine = [a for a in entries if a["symbol"] == symbol]
            if mine:
                filled_actions = [
                    {**a, "entry_price": o * (1 + (slip if a["action_type"] == "enter_long" else -slip))}
                    if a["action_type"] in ENTRY_TYPES else a for a in actions if a["symbol"] == symbol
                ]
                recheck = check_proposal(
                    Proposal(reasoning="fill re-check", actions=[Action.model_validate(a) for a in filled_actions]),
                    decide_with, portfolio_at_decision(eq_close, peak, eq_before, capital, symbol, held_value),
                    None,
                )
                if recheck.decision != "APPROVE":
                    fill_price = next(a["entry_price"] for a in filled_actions if a["action_type"] in ENTRY_TYPES)
                    note = (f"entry not filled: at the fill price {fill_price:.2f} the rules say "
                            f"{recheck.decision} ({', '.join(recheck.violations)})")
                else:
                    for a in filled_actions:
                        if a["action_type"] not in ENTRY_TYPES:
                            continue
                        side = 1 if a["action_type"] == "enter_long" else -1
                        px = a["entry_price"]
                        qty = a["size_pct"] * eq_close / px
                        entry_fee = qty * px * fee
                        cash -= side * qty * px + entry_fee
                        open_trades.append(_Trade(side, qty, day, px, a["stop_loss"], a["take_profit"], a["size_pct"],
                                                  entry_fee, regime))
                        fills.append("enter " + ("long" if side > 0 else "short"))

        still = []
        for trade in open_trades:
            trade.held += 1
            stop_hit = lo <= trade.stop if trade.side > 0 else h >= trade.stop
            target_hit = h >= trade.target if trade.side > 0 else lo <= trade.target
            if stop_hit:  # stop first when both are touched: the bar's path is unknown
                close_trade(trade, day, trade.stop, "stop")
            elif target_hit:
                close_trade(trade, day, trade.target, "target")
            elif trade.held >= max_hold_days:
                close_trade(trade, day, c, "holding limit")
            else:
                still.append(trade)
                continue
            fills.append(closed[-1]["exit_reason"])
        open_trades = still

        equity = cash + sum(t.side * t.qty for t in open_trades) * c
        eq_before, eq_close = eq_close, equity
        peak = max(peak, equity)
        equity_points.append(equity)
        day_rows.append({
            "day": day, "regime": regime, "outcome": outcome, "reason": reason or "", "rounds": rounds,
            "tokens": tokens, "cost_usd": cost, "fills": ", ".join(fills), "note": note, "equity": equity,
        })

    if open_trades and day_rows:  # the test ends: close what is open at the last close reached
        last_day = day_rows[-1]["day"]
        last_close = closes[first + len(day_rows) - 1]
        for trade in open_trades:
            close_trade(trade, last_day, last_close, "end of test")
        day_rows[-1]["equity"] = equity_points[-1] = cash
        open_trades = []

    result = _result(symbol, start, end, run_key, preset, status, loaded, settings, capital, frame, first,
                     equity_points, day_rows, closed, walk_forward_split)
    if store is not None:
        _write(store, "update backtests set status = ?, updated = ?, days_done = ?, metrics = ? where run_key = ?",
               [status, datetime.now(timezone.utc).isoformat(timespec="seconds"), len(day_rows),
                json.dumps({k: _plain(v) for k, v in result.metrics.items()}), run_key])
    return result


def portfolio_at_decision(equity: float, peak: float, before: float, capital: float, symbol: str,
                          held_value: float) -> Portfolio:
    """The portfolio as of the close of t-1 (what the decision for t saw)."""
    return Portfolio(equity=equity, peak_equity=peak, start_of_day_equity=before, cumulative_pnl=equity - capital,
                     today_pnl=equity - before, positions={symbol: held_value / equity} if held_value else {})


def _result(symbol, start, end, run_key, preset, status, loaded, settings, capital, frame, first,
            equity_points, day_rows, closed, split) -> BacktestResult:
    days = pd.DataFrame(day_rows, columns=["day", "regime", "outcome", "reason", "rounds", "tokens", "cost_usd",
                                           "fills", "note", "equity"])
    anchor = frame.index[first - 1] if first > 0 else frame.index[first] - pd.Timedelta(days=1)
    index = pd.DatetimeIndex([anchor, *frame.index[first:first + len(day_rows)]], name="Date")
    equity = pd.Series(equity_points, index=index, name="equity")
    trades = pd.DataFrame(closed, columns=[
        "symbol", "side", "size_pct", "qty", "entry_day", "entry_price", "stop", "target", "exit_day", "exit_price",
        "exit_reason", "bars_held", "fees", "pnl", "return_pct", "regime"])
    prices = frame.iloc[first:first + len(day_rows)]
    returns = daily_returns(equity)
    ran = days[~days["outcome"].isin(["SKIPPED"])]
    longest, recovery = drawdown_spells(equity)
    growth = cagr(equity)
    deepest = max_drawdown(equity)
    bench = float(buy_and_hold(prices, capital).iloc[-1] / capital - 1) * 100 if len(prices) else 0.0
    metrics = pd.Series({
        "total_return_pct": (equity.iloc[-1] / capital - 1) * 100,
        "buy_hold_return_pct": bench,
        "cagr_pct": growth * 100,
        "sharpe": sharpe_ratio(returns),
        "sortino": sortino_ratio(returns),
        "calmar": growth / deepest if deepest > 0 else math.nan,
        "max_drawdown_pct": deepest * 100,
        "longest_drawdown_days": longest,
        "recovery_days": math.nan if recovery is None else recovery,
        "win_rate": win_rate(trades["pnl"]),
        "trades": len(trades),
        "days_traded": int(days["fills"].astype(bool).sum()),
        "days_aborted": int((days["outcome"] == "ABORT").sum()),
        "days_skipped": int(days["outcome"].isin(["SKIPPED", "ERROR", "INTERRUPTED"]).sum()),
        "approval_rate": float((ran["outcome"] == "APPROVE").mean() * 100) if len(ran) else 0.0,
        "avg_rounds": float(ran["rounds"].mean()) if len(ran) else 0.0,
        "tokens": int(days["tokens"].sum()),
        "cost_usd": float(days["cost_usd"].sum()),
        "final_equity": float(equity.iloc[-1]),
        "days": len(days),
    }, dtype=object, name=preset)
    return BacktestResult(
        symbol=symbol, start=start, end=end, run_key=run_key, preset=preset, status=status, source=loaded.source,
        note=loaded.note, settings=settings, metrics=metrics, equity=equity, trades=trades, days=days,
        walk_forward=_walk_forward(equity, split), by_regime=_by_regime(days, returns, trades), prices=prices,
        fallback=loaded.fallback,
    )


def _walk_forward(equity: pd.Series, split: float) -> dict:
    """Sharpe and return on the first `split` of the days (in-sample) and on the rest (out-of-sample)."""
    returns = daily_returns(equity)
    cut = int(round(len(returns) * split))
    parts = {}
    for name, part, curve in (("in_sample", returns.iloc[:cut], equity.iloc[:cut + 1]),
                              ("out_of_sample", returns.iloc[cut:], equity.iloc[cut:])):
        parts[name] = {
            "start": str(part.index[0].date()) if len(part) else None,
            "end": str(part.index[-1].date()) if len(part) else None,
            "days": len(part),
            "sharpe": round(sharpe_ratio(part), 4),
            "return_pct": round(float(curve.iloc[-1] / curve.iloc[0] - 1) * 100, 4) if len(curve) > 1 else 0.0,
        }
    parts["split"] = split
    return parts


def _by_regime(days: pd.DataFrame, returns: pd.Series, trades: pd.DataFrame) -> pd.DataFrame:
    """Days, Sharpe, compounded return, trades and win rate per volatility regime (known at decision time)."""
    rows = {}
    r = returns.to_numpy()
    for regime in ("low", "medium", "high"):
        mask = (days["regime"] == regime).to_numpy()
        picked = r[mask] if len(r) == len(mask) else np.array([])
        mine = trades[trades["regime"] == regime]
        rows[regime] = {
            "days": int(mask.sum()),
            "return_pct": float((np.prod(1 + picked) - 1) * 100) if len(picked) else 0.0,
            "sharpe": sharpe_ratio(picked),
            "approval_rate": float((days.loc[mask, "outcome"] == "APPROVE").mean() * 100) if mask.any() else 0.0,
            "trades": len(mine),
            "win_rate": win_rate(mine["pnl"]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# -- comparing two schemas ------------------------------------------------------------------

@dataclass
class Comparison:
    """Two backtests on the same days: `table` has one column per preset and `better` per metric."""

    table: pd.DataFrame
    results: dict[str, BacktestResult]


def compare_table(results: dict[str, BacktestResult]) -> pd.DataFrame:
    """Metrics side by side, with the name of the better preset per metric ('=' for a tie, '' where
    neither direction is better)."""
    names = list(results)
    table = pd.DataFrame({name: results[name].metrics for name in names})
    better = []
    for metric, row in table.iterrows():
        a, b = row[names[0]], row[names[-1]]
        if len(names) < 2 or metric not in HIGHER_IS_BETTER | LOWER_IS_BETTER:
            better.append("")
            continue
        fa, fb = (float(x) if x is not None else math.nan for x in (a, b))
        if math.isnan(fa) or math.isnan(fb):
            better.append("")
        elif fa == fb or abs(fa - fb) <= 1e-9 * max(1.0, abs(fa), abs(fb)):  # fa == fb: inf ties inf
            better.append("=")
        else:
            higher = fa > fb
            better.append(names[0] if higher == (metric in HIGHER_IS_BETTER) else names[-1])
    table["better"] = better
    return table


def compare_presets(symbol: str, start, end, first, second, player, coach, *, bars=None, store=None,
                    progress: Progress | None = None, cancel=None, **settings) -> Comparison:
    """Backtest two schemas on the same bars and days; each is a preset name, a Constraints, or
    (name, Constraints). Returns the side-by-side table with the better value per metric marked."""
    from core.presets import load_preset

    named = []
    for schema in (first, second):
        if isinstance(schema, str):
            named.append((schema, load_preset(schema)))
        elif isinstance(schema, Constraints):
            named.append((f"schema {len(named) + 1}", schema))
        else:
            named.append(tuple(schema))
    if named[0][0] == named[1][0]:
        named[1] = (named[1][0] + " (2)", named[1][1])
    start, end = _date(start), _date(end)
    loaded = backtest_bars(symbol, start, end, bars)  # loaded once: both schemas see the same days
    results = {}
    for k, (name, constraints) in enumerate(named):
        step = None if progress is None else (lambda n, total, day, k=k: progress(k * total + n, 2 * total, day))
        results[name] = run_backtest(symbol, start, end, constraints, player, coach, bars=loaded, store=store,
                                     progress=step, cancel=cancel, preset=name, **settings)
    return Comparison(compare_table(results), results)


# -- the cost of a paid run ------------------------------------------------------------------

# Typical tokens of a Claude backtest, as bench/claude_bench measures them against the fake server:
# every call sends a short new part and reads the cached rulebook and schema; each exchange writes
# that cached prefix once (counted per day, so the estimate errs on the dear side).
TOKENS_PER_CALL = {"input": 400, "cache_read": 5_800, "output": 350}
TOKENS_PER_EXCHANGE = {"cache_write": 5_800}


def estimate_cost(days: int, constraints: Constraints, depth: str, model: str) -> dict:
    """Calls and dollars of a Claude backtest before it runs, priced from core.prices: the typical
    case (1.5 rounds a day in standard depth) and the worst case (every day uses max_rounds)."""
    rounds_worst = 1 if depth == "fast" else constraints.max_rounds
    rounds_typical = 1 if depth == "fast" else min(1.5, rounds_worst)
    per_call = priced_usage(model, **TOKENS_PER_CALL).cost_usd
    per_day = priced_usage(model, **TOKENS_PER_EXCHANGE).cost_usd
    calls_typical, calls_worst = days * 2 * rounds_typical, days * 2 * rounds_worst
    return {"days": days, "calls_typical": int(math.ceil(calls_typical)), "calls_worst": int(calls_worst),
            "dollars_typical": round(calls_typical * per_call + days * per_day, 4),
            "dollars_worst": round(calls_worst * per_call + days * per_day, 4),
            # "estimated" for a model priced by its family, "unknown" when nothing prices it (dollars then 0)
            "cost_basis": priced_usage(model, **TOKENS_PER_CALL).cost_basis}


# -- the command line ------------------------------------------------------------------------

def add_backtest_parser(sub) -> None:
    """Add `backtest` to core.__main__'s subcommands."""
    p = sub.add_parser("backtest", help="backtest a preset with the house agents over daily bars")
    p.add_argument("--symbol", required=True)
    p.add_argument("--start", required=True, help="YYYY-MM-DD")
    p.add_argument("--end", required=True, help="YYYY-MM-DD")
    p.add_argument("--preset", default="moderate")
    p.add_argument("--compare", help="a second preset to run on the same days")
    p.add_argument("--capital", type=float, default=100_000.0)
    p.add_argument("--fee-bps", type=float, default=1.0)
    p.add_argument("--slippage-bps", type=float, default=2.0)
    p.add_argument("--max-hold-days", type=int, default=10)
    p.add_argument("--depth", choices=DEPTHS, default="standard")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--db", help="store (and resume) the run in this SQLite file")
    p.add_argument("--offline", action="store_true", help="never ask yfinance: cache, then the shipped snapshot")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(run=backtest_command)


def backtest_command(args) -> int:
    """Run `python -m core backtest ...`; prints a metrics table or, with --json, the result."""
    import sys

    from core.house import HouseCoach, HousePlayer
    from core.presets import InvalidInput, load_preset
    from core.store import Store

    store = Store(args.db) if args.db else None
    settings = dict(capital=args.capital, fee_bps=args.fee_bps, slippage_bps=args.slippage_bps,
                    max_hold_days=args.max_hold_days, depth=args.depth)
    player, coach = HousePlayer(seed=args.seed), HouseCoach()
    try:
        if args.offline:
            os.environ[OFFLINE_ENV] = "1"
        bars = backtest_bars(args.symbol, _date(args.start), _date(args.end))
        if args.compare:
            comparison = compare_presets(args.symbol, args.start, args.end, args.preset, args.compare, player, coach,
                                         bars=bars, store=store, **settings)
            results, table = comparison.results, comparison.table
        else:
            result = run_backtest(args.symbol, args.start, args.end, load_preset(args.preset), player, coach,
                                  bars=bars, store=store, preset=args.preset, **settings)
            results, table = {args.preset: result}, compare_table({args.preset: result})
    except (MarketDataError, ValueError) as error:
        raise InvalidInput(str(error)) from None
    if args.json:
        out = {name: r.to_dict() for name, r in results.items()}
        if args.compare:
            out["comparison"] = json.loads(table.to_json(orient="index"))
        json.dump(out, sys.stdout, indent=2, default=str)
        print()
    else:
        first = next(iter(results.values()))
        print(f"{first.symbol} {first.start} .. {first.end}: bars from {first.source} ({first.note})")
        shown = table.rename(index=METRIC_LABELS).map(lambda v: f"{v:,.3f}" if isinstance(v, float) else v)
        print(shown.to_string())
    return 0
