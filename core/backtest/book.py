"""The book of a backtest: cash, open trades and closed trades (like backtesting.py's `_Broker`).

Fees and slippage (basis points, on both legs, always against the trader: a buyer pays more, a
seller gets less) come off the cash. An open beyond a level fills at the open: worse than the stop
after a gap through it, better than the target after a gap past it (the resting order fills at the
first price there is). Within a bar the stop comes first when both levels are touched, since a daily
bar does not say which came first. Every exit goes through `_exit`: the bookkeeping is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from core.backtest.spec import Costs
from core.exchange.schema import ENTRY_TYPES, Action

TRADE_COLUMNS = ["symbol", "side", "size_pct", "qty", "entry_day", "entry_price", "stop", "target", "exit_day",
                 "exit_price", "exit_reason", "bars_held", "fees", "pnl", "return_pct", "regime"]
"""The columns of a result's trade list."""


@dataclass(slots=True)
class Trade:
    """One open position: `side` +1 long, -1 short; `held` counts the bars it has been through."""

    symbol: str
    side: int
    qty: float
    entry_day: date
    entry_price: float
    stop: float
    target: float
    size_pct: float
    entry_fee: float
    regime: str
    held: int = 0


def side_of(action: Action) -> int:
    """+1 for enter_long, -1 for enter_short."""
    return 1 if action.action_type == "enter_long" else -1


class Book:
    """Cash and trades of one backtest; `closed` holds a dict per closed trade (TRADE_COLUMNS)."""

    def __init__(self, capital: float, costs: Costs):
        self.cash = float(capital)
        self.fee = costs.fee_bps / 10_000
        self.slip = costs.slippage_bps / 10_000
        self.max_hold = costs.max_hold_days
        self.open: list[Trade] = []
        self.closed: list[dict] = []

    def fill_price(self, action: Action, open_price: float) -> float:
        """An entry's fill at the open, slippage against the trader."""
        return open_price * (1 + side_of(action) * self.slip)

    def enter(self, action: Action, price: float, equity: float, day: date, regime: str) -> None:
        """Open a trade of `size_pct` of `equity` at `price` (already slipped)."""
        side = side_of(action)
        qty = action.size_pct * equity / price
        entry_fee = qty * price * self.fee
        self.cash -= side * qty * price + entry_fee
        self.open.append(Trade(action.symbol, side, qty, day, price, action.stop_loss, action.take_profit,
                               action.size_pct, entry_fee, regime))

    def exit_at_open(self, symbol: str, day: date, price: float, exit_asked: bool) -> list[str]:
        """Close the symbol's trades that gapped through a level at the open, or all of them when an
        approved exit fills there. Returns the exit reasons."""
        if not self.open:  # a flat book (most days of most runs): nothing to look at
            return []

        def rule(t: Trade):
            if (price <= t.stop) if t.side > 0 else (price >= t.stop):
                return price, "stop (gap)"
            if (price >= t.target) if t.side > 0 else (price <= t.target):
                return price, "target (gap)"
            return (price, "exit") if exit_asked else None
        return self._exit(symbol, day, rule)

    def exit_on_bar(self, symbol: str, day: date, high: float, low: float, close: float) -> list[str]:
        """Count the bar for the symbol's trades, then close those whose stop or target the bar
        touched (stop first), or that reached the holding limit (at the close)."""
        if not self.open:
            return []

        def rule(t: Trade):
            if (low <= t.stop) if t.side > 0 else (high >= t.stop):
                return t.stop, "stop"
            if (high >= t.target) if t.side > 0 else (low <= t.target):
                return t.target, "target"
            return (close, "holding limit") if t.held >= self.max_hold else None
        for trade in self.open:
            if trade.symbol == symbol:
                trade.held += 1
        return self._exit(symbol, day, rule)

    def close_all(self, day: date, marks: dict[str, float], reason: str = "end of test") -> None:
        """Close every open trade at its symbol's mark (the end of a test)."""
        for symbol in dict.fromkeys(t.symbol for t in self.open):  # in the order they were entered, every run alike
            self._exit(symbol, day, lambda t: (marks[t.symbol], reason))

    def _exit(self, symbol: str, day: date, rule: Callable[[Trade], tuple[float, str] | None]) -> list[str]:
        still, reasons = [], []
        for trade in self.open:
            hit = rule(trade) if trade.symbol == symbol else None
            if hit is None:
                still.append(trade)
                continue
            self._close(trade, day, *hit)
            reasons.append(hit[1])
        self.open = still
        return reasons

    def _close(self, trade: Trade, day: date, raw_price: float, reason: str) -> None:
        px = raw_price * (1 - trade.side * self.slip)
        exit_fee = trade.qty * px * self.fee
        self.cash += trade.side * trade.qty * px - exit_fee
        pnl = trade.side * trade.qty * (px - trade.entry_price) - trade.entry_fee - exit_fee
        self.closed.append({
            "symbol": trade.symbol, "side": "long" if trade.side > 0 else "short", "size_pct": trade.size_pct,
            "qty": trade.qty, "entry_day": trade.entry_day, "entry_price": trade.entry_price, "stop": trade.stop,
            "target": trade.target, "exit_day": day, "exit_price": px, "exit_reason": reason,
            "bars_held": trade.held, "fees": trade.entry_fee + exit_fee, "pnl": pnl,
            "return_pct": pnl / (trade.qty * trade.entry_price) * 100, "regime": trade.regime,
        })

    def symbols(self) -> set[str]:
        """The symbols of the open trades: any other symbol's exits and bars move nothing."""
        return {t.symbol for t in self.open}

    def held(self, symbol: str) -> float:
        """Signed quantity of the symbol held."""
        return sum(t.side * t.qty for t in self.open if t.symbol == symbol)

    def value(self, marks: dict[str, float]) -> float:
        """Equity: cash plus every open trade at its symbol's mark."""
        if not self.open:
            return self.cash + 0  # plus what sum() of nothing is, as below: the same float, -0.0 included
        held: dict[str, float] = {}  # per symbol in the order first entered, summed in the order of the trades
        for t in self.open:
            held[t.symbol] = held.get(t.symbol, 0) + t.side * t.qty
        return self.cash + sum(qty * marks[s] for s, qty in held.items())

    def exposure(self, marks: dict[str, float], equity: float, today: date | None = None) -> dict[str, float]:
        """Signed position per held symbol as a fraction of `equity`, at its symbol's mark (a trade
        entered on `today` at its entry price, what it cost)."""
        out: dict[str, float] = {}
        if not self.open:
            return out
        for symbol, (earlier, fresh) in self._held_by_symbol(today).items():
            value = earlier * marks[symbol] + fresh
            if value:
                out[symbol] = value / equity
        return out

    def _held_by_symbol(self, today: date | None) -> dict[str, list]:
        """Per symbol in the order first entered: [signed quantity entered before `today`, signed cost of
        what was entered on `today`], each summed in the order of the trades (one pass over the book)."""
        out: dict[str, list] = {}
        for t in self.open:
            sums = out.get(t.symbol)
            if sums is None:
                sums = out[t.symbol] = [0, 0]  # sum()'s start: the same additions, in the same order
            if t.entry_day == today:
                sums[1] += t.side * t.qty * t.entry_price
            else:
                sums[0] += t.side * t.qty
        return out


def apply_actions(positions: dict[str, float], actions: list[Action]) -> dict[str, float]:
    """Positions (fractions of equity) after approved actions: an exit removes the symbol, an entry
    adds its signed size. What the next exchange of the day sees of orders that fill at the open."""
    out = dict(positions)
    for a in actions:
        if a.action_type == "exit":
            out.pop(a.symbol, None)
        elif a.action_type in ENTRY_TYPES:
            out[a.symbol] = out.get(a.symbol, 0.0) + side_of(a) * a.size_pct
    return {s: v for s, v in out.items() if v}
