"""Backtests: the Player-Coach loop replayed over daily bars, one symbol or a portfolio (SPEC §7).

    result = core.Backtest(["MSFT", "AAPL"], "2021-01-04", "2021-12-31", core.load_preset("moderate"),
                           core.HousePlayer(), core.HouseCoach()).run()

One book and one equity for every symbol; the calendar is the union of the symbols' trading days.
For each day t: the circuit breakers run once on the whole book as of t-1's close; then one
exchange per symbol that has a bar on t, in the order given, each seeing the world state of its
symbol (bars up to t-1 only: core.market.indicators is a trailing window shifted by one bar) and a
portfolio holding every open position plus the orders approved earlier that day. An action on
another symbol than the exchange's is not filled (the day notes it). At t's open the book exits what
gapped through a level or was asked to exit, then fills the approved entries in order, each re-checked
by the rules at its fill price with its world (ATR) and the book as it stands then; an entry whose
open is already through its stop is not filled. Stops, targets and the holding limit then trigger on
t's bar (core.book), and the book is marked at every symbol's last close.

The decision for t is taken on t-1's close, so the Portfolio it sees is as of that close: "today"
is t-1 (today_pnl = equity(t-1) - equity(t-2), start_of_day_equity = equity(t-2)). A loss on t-1
therefore trips the daily-loss breaker for day t, before any agent is asked. The simulated clock
(as_of) reads 09:30 ET on t, when the orders go in.

Each decided exchange is written to the store before its day is simulated, so a run that crashes or
is cancelled resumes where it stopped: a stored decision is replayed without calling an agent, and
the simulation, which is deterministic, rebuilds the same state.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from core.backtest import result as metrics
from core.backtest.book import TRADE_COLUMNS, Book, Costs, apply_actions, side_of
from core.journal.record import run_exchange_sync
from core.market import MIN_HISTORY, Bars, MarketDataError, _world, as_of, indicators, load_bars, validate_bars
from core.exchange.errors import InvalidInput
from core.exchange.rules import check_proposal, circuit_breaker
from core.exchange.tiers import tier_names
from core.exchange.schema import BREAKER_NAMES, ENTRY_TYPES, Action, Artifact, Constraints, Portfolio, Proposal, WorldState

DEPTHS = ("fast", "standard")
RETRY_OUTCOMES = ("ERROR", "INTERRUPTED")  # a stored exchange with these outcomes is decided again on resume
WARMUP_CALENDAR_DAYS = 400  # bars loaded before `start`, so sma/ATR/regime are ready on day one
DAY_COLUMNS = ["day", "symbol", "regime", "outcome", "reason", "rounds", "tokens", "cost_usd", "fills", "note",
               "equity", "tier"]

Progress = Callable[[int, int, date], None]


# -- the result ---------------------------------------------------------------------------

@dataclass
class BacktestResult:
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
    periods_per_year: int = metrics.TRADING_DAYS
    fallback: bool = False  # the bars came from the snapshot because yfinance failed (see `note`)

    def __getattr__(self, name: str):
        values = self.__dict__.get("metrics")
        if values is not None and name in values.index:
            return values[name]
        raise AttributeError(name)

    @property
    def symbol(self) -> str:
        """The symbol, or the portfolio's symbols joined by commas."""
        return ",".join(self.symbols)

    @property
    def prices(self) -> pd.DataFrame:
        """The first symbol's bars over the days run (every symbol's are in `bars`)."""
        return self.bars[self.symbols[0]]

    @property
    def drawdown(self) -> pd.Series:
        """Percent below the running peak, per day."""
        return metrics.drawdown(self.equity) * 100

    @property
    def buy_hold(self) -> pd.Series:
        """The benchmark curve: the capital split equally over the symbols, bought at the first open and held."""
        return metrics.buy_and_hold(self.bars, self.settings["capital"], self.equity.index[1:])

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
            "metrics": {k: _plain(v) for k, v in self.metrics.items()},
            "walk_forward": self.walk_forward,
            "by_regime": records(self.by_regime), "by_symbol": records(self.by_symbol), "limits": records(self.limits),
            "trades": json.loads(self.trades.astype({"entry_day": str, "exit_day": str}).to_json(orient="records")),
            "equity": {str(k.date()): round(float(v), 2) for k, v in self.equity.items()},
            "positions": {str(k.date()): {s: round(float(v), 6) for s, v in row.items() if v}
                          for k, row in self.positions.iterrows()},
        }


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not math.isfinite(value) else round(value, 6)
    return value


# -- the bars -----------------------------------------------------------------------------

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


@dataclass
class _Feed:
    """One symbol's bars and what is known before each day's open, as arrays; `row` maps a date to its bar."""

    symbol: str
    loaded: Bars
    dates: np.ndarray
    row: dict[date, int]
    price: np.ndarray
    sma5: np.ndarray
    sma10: np.ndarray
    volume: np.ndarray
    atr: np.ndarray
    regime: np.ndarray
    history: np.ndarray
    opens: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    closes: np.ndarray

    @classmethod
    def of(cls, symbol: str, loaded: Bars, start: date, end: date) -> _Feed:
        frame = loaded.frame
        days = frame.index.date
        known = indicators(frame)  # row t: what is known before t's open (bars up to t-1 only)
        if not ((days >= start) & (days <= end)).any():
            raise MarketDataError(f"{symbol}: no bars between {start} and {end} "
                                  f"(the data has {days[0]} to {days[-1]})")
        return cls(symbol, loaded, days, {d: i for i, d in enumerate(days)},
                   *(known[c].to_numpy() for c in ("price", "sma5", "sma10", "volume", "atr", "regime", "history")),
                   *(frame[c].to_numpy() for c in ("Open", "High", "Low", "Close")))

    def warm_up(self, i: int) -> str | None:
        """Why day i cannot be decided yet, or None."""
        if self.history[i] < MIN_HISTORY or not math.isfinite(self.sma10[i]):
            return f"warm-up: {int(self.history[i])} earlier bars, the world state needs {MIN_HISTORY}"
        return None

    def world(self, i: int, day: date, position: str) -> WorldState:
        return _world(self.symbol, day, self.price[i], self.sma5[i], self.sma10[i], self.volume[i], self.atr[i],
                      str(self.regime[i]), position)

    def fingerprint(self) -> tuple:
        frame = self.loaded.frame
        return (str(frame.index[0].date()), str(frame.index[-1].date()), len(frame),
                round(float(self.closes.sum()), 4))


def _date(value) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise InvalidInput(f"date: {value[:40]!r} is not a date as YYYY-MM-DD") from None
    if isinstance(value, datetime):
        return value.date()
    return value


def _key(*parts) -> str:
    return "bt-" + hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# -- the engine ---------------------------------------------------------------------------

@dataclass(slots=True)
class _Decision:
    """One exchange of a day, decided now, replayed from the store, or skipped."""

    outcome: str
    reason: str
    rounds: int = 0
    tokens: int = 0
    cost: float = 0.0
    actions: list = field(default_factory=list)
    run_id: str | None = None
    verdicts: list = field(default_factory=list)  # per round: {decision, violations, entries}
    world: WorldState | None = None
    tier: str = ""  # the tiers in force when it was decided (core.exchange.tiers)


class Backtest:
    """A backtest of one symbol or a portfolio, in backtesting.py's shape: build it, then `.run()`.

    `symbols` is one symbol or a list (the order is the order of the day's exchanges); `bars` an
    optional {symbol: DataFrame or core.market.Bars} replacing loading. `depth` "fast" is one round
    with no revision, "standard" up to `max_rounds`. `preset` names the schema in the result; with
    `record_exchanges=True` every exchange also goes to the exchanges table (History, the deriver)."""

    def __init__(self, symbols: str | list[str], start: date | str, end: date | str, constraints: Constraints,
                 player, coach, *, capital: float = 100_000.0, costs: Costs = Costs(), depth: str = "standard",
                 bars: dict | None = None, preset: str = "custom", record_exchanges: bool = False,
                 walk_forward_split: float = 0.7, run_key: str | None = None):
        self.symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        if not self.symbols or len(set(self.symbols)) < len(self.symbols):
            raise InvalidInput(f"symbols: need one or more different symbols, got {self.symbols!r}")
        if depth not in DEPTHS:
            raise InvalidInput(f"depth: {depth!r} is not one of {', '.join(DEPTHS)}")
        if not capital > 0 or not math.isfinite(capital):
            raise InvalidInput(f"capital: must be a finite amount > 0, got {capital!r}")
        self.start, self.end = _date(start), _date(end)
        if self.start > self.end:
            raise MarketDataError(f"{self.symbol}: start {self.start} is after end {self.end}")
        self.constraints, self.player, self.coach = constraints, player, coach
        self.capital, self.costs, self.depth, self.preset = float(capital), costs, depth, preset
        self.record_exchanges, self.walk_forward_split = record_exchanges, walk_forward_split
        given = bars or {}
        self.feeds = []
        for symbol in self.symbols:
            loaded = backtest_bars(symbol, self.start, self.end, given.get(symbol))
            self.feeds.append(_Feed.of(loaded.symbol if symbol not in given else symbol, loaded, self.start, self.end))
        self.symbols = [f.symbol for f in self.feeds]
        if len(set(self.symbols)) < len(self.symbols):  # "msft" and "MSFT" are one symbol
            raise InvalidInput(f"symbols: need different symbols, got {self.symbols!r}")
        self.settings = {
            "capital": self.capital, "fee_bps": costs.fee_bps, "slippage_bps": costs.slippage_bps,
            "max_hold_days": costs.max_hold_days, "depth": depth, "player_model": getattr(player, "model", None),
            "player_seed": getattr(player, "seed", None),
        }
        self.run_key = run_key or self._run_key()

    @property
    def symbol(self) -> str:
        """The symbol, or the portfolio's symbols joined by commas."""
        return ",".join(self.symbols)

    def _run_key(self) -> str:
        one = len(self.feeds) == 1  # a single symbol keeps the key it had before portfolios, so stored runs resume
        return _key(self.symbols[0] if one else self.symbols, str(self.start), str(self.end),
                    self.constraints.model_dump(mode="json"), _name(self.player), self.settings["player_model"],
                    self.settings["player_seed"], _name(self.coach), self.settings,
                    self.feeds[0].fingerprint() if one else [f.fingerprint() for f in self.feeds])

    def run(self, store=None, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
            stop_after: int | None = None) -> BacktestResult:
        """Replay the loop over the calendar. `store` keeps the run and every decided exchange, so the
        same call resumes a crashed or cancelled run. `cancel()` is asked before each day; `stop_after`
        N pauses the run (status "paused") once it has decided N new days: the page runs a stored
        backtest a slice at a time that way, and the same call carries on from the store."""
        run = _Run(self, store)
        status = run.play(progress, cancel, stop_after)
        result = run.result(status)
        if store is not None:
            store.finish_backtest(self.run_key, status, len(result.equity) - 1,
                                  {k: _plain(v) for k, v in result.metrics.items()})
        return result


def _name(agent) -> str:
    return getattr(agent, "name", type(agent).__name__)


class _Run:
    """The state of one run: the book, the marks, the curve and the rows, day by day."""

    def __init__(self, test: Backtest, store):
        self.test, self.store = test, store
        self.rules = test.constraints if test.depth == "standard" else test.constraints.model_copy(
            update={"max_rounds": 1})
        starts = [d for f in test.feeds for d in f.row if test.start <= d <= test.end]
        self.calendar = sorted(set(starts))
        self.book = Book(test.capital, test.costs)
        self.marks = {f.symbol: f.closes[_before(f, self.calendar[0])] for f in test.feeds
                      if _before(f, self.calendar[0]) is not None}
        self.eq_close = self.eq_before = self.peak = test.capital  # equity at the last close, the one before, its peak
        self.equity_points = [test.capital]
        self.rows: list[dict] = []
        self.position_rows: list[dict] = []
        self.blocks: list[dict] = []
        self.decided = 0
        self.stored = store.backtest_days(test.run_key) if store is not None else {}
        if store is not None:
            self._start_record()

    def _start_record(self) -> None:
        t = self.test
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.store.start_backtest({
            "run_key": t.run_key, "created": now, "updated": now, "status": "running", "symbol": t.symbol,
            "start": str(t.start), "end": str(t.end), "preset": t.preset, "constraints": t.constraints.model_dump_json(),
            "player": _name(t.player), "coach": _name(t.coach), "model": t.settings["player_model"], "depth": t.depth,
            "settings": json.dumps(t.settings), "days_total": len(self.calendar),
            "days_done": len({day for day, _ in self.stored}), "metrics": None,
        })

    def play(self, progress, cancel, stop_after) -> str:
        for n, day in enumerate(self.calendar):
            if cancel is not None and cancel():
                return "cancelled"
            todays = [f for f in self.test.feeds if day in f.row]
            if stop_after is not None and self.decided >= stop_after and any(self._undecided(f, day) for f in todays):
                return "paused"
            if progress is not None:
                progress(n, len(self.calendar), day)
            decisions = self._decide(day, todays)
            self._simulate(day, todays, decisions)
        return "finished"

    def _undecided(self, feed: _Feed, day: date) -> bool:
        previous = self.stored.get((str(day), feed.symbol))
        replay = previous is not None and previous["outcome"] not in RETRY_OUTCOMES
        return not replay and feed.warm_up(feed.row[day]) is None

    # -- deciding: breakers once on the whole book, then one exchange per symbol in order ----------

    def _portfolio(self, positions: dict[str, float]) -> Portfolio:
        eq, before = self.eq_close, self.eq_before
        return Portfolio(equity=eq, peak_equity=self.peak, start_of_day_equity=before,
                         cumulative_pnl=eq - self.test.capital, today_pnl=eq - before, positions=positions)

    def _decide(self, day: date, todays: list[_Feed]) -> dict[str, _Decision]:
        pending = self.book.exposure(self.marks, self.eq_close)
        breaker = None
        if any(self._undecided(f, day) for f in todays):
            breaker = circuit_breaker(self.rules, self._portfolio(pending), as_of(day))
        decisions, new = {}, False
        for feed in todays:
            i = feed.row[day]
            held = self.book.held(feed.symbol)
            position = "flat" if not any(t.symbol == feed.symbol for t in self.book.open) else (
                "long" if held * self.marks[feed.symbol] > 0 else "short")
            previous = self.stored.get((str(day), feed.symbol))
            skipped = feed.warm_up(i)
            world = None if skipped else feed.world(i, day, position)
            if previous is not None and previous["outcome"] not in RETRY_OUTCOMES:
                d = _replayed(previous)
            elif skipped:
                d = _Decision("SKIPPED", skipped)
            else:
                d = self._exchange(day, feed, world, pending, breaker)
                new = True
            d.world = world
            if self.rules.tiers:  # from the book at t-1's close and the world of bars up to t-1, as the rules see them
                d.tier = tier_names(self.rules, self._portfolio(pending), world)
            decisions[feed.symbol] = d
            self._note_blocks(day, feed.symbol, d)
            if d.outcome == "APPROVE":
                pending = apply_actions(pending, [a for a in d.actions if a["symbol"] == feed.symbol])
        self.decided += new
        return decisions

    def _exchange(self, day: date, feed: _Feed, world: WorldState, pending: dict, breaker: str | None) -> _Decision:
        t = self.test
        if breaker and not t.record_exchanges:  # the whole book is stopped: no agent is asked
            d = _Decision("ABORT", breaker)
        else:
            artifact = run_exchange_sync(
                world, self.rules, self._portfolio(pending), t.player, t.coach,
                store=self.store if t.record_exchanges else None,
                strategy_id=f"backtest:{t.run_key}" if t.record_exchanges else None,
                run_id=f"{t.run_key}:{day}" + ("" if len(t.feeds) == 1 else f":{feed.symbol}"),
                now=lambda: world.as_of,
            )
            d = _decision_of(artifact, t.record_exchanges)
        if self.store is not None:
            self.store.save_backtest_day({
                "run_key": t.run_key, "day": str(day), "symbol": feed.symbol, "outcome": d.outcome,
                "reason": d.reason, "rounds": d.rounds, "tokens": d.tokens, "cost_usd": d.cost,
                "actions": json.dumps(d.actions), "exchange_run_id": d.run_id, "verdicts": json.dumps(d.verdicts),
            })
        return d

    def _note_blocks(self, day: date, symbol: str, d: _Decision) -> None:
        """What each limit did in this exchange (for `limits`). A limit that rejected an entry in an
        exchange that ended with no entry approved kept that entry out: the agent's last entry."""
        if d.outcome == "ABORT" and d.reason in BREAKER_NAMES and not d.verdicts:
            self._block(day, symbol, d.reason, "aborted", None)
        entered = d.outcome == "APPROVE" and any(a["action_type"] in ENTRY_TYPES and a["symbol"] == symbol
                                                 for a in d.actions)
        wanted = next((v["entries"][0] for v in reversed(d.verdicts) if v.get("entries")), None)
        for verdict in d.verdicts:
            if verdict["decision"] == "APPROVE":
                continue
            kind = "aborted" if verdict["decision"] == "ABORT" else "rejected"
            kept_out = None if entered or not verdict.get("entries") else wanted
            for name in verdict["violations"]:
                self._block(day, symbol, name, kind, kept_out, blocked=kept_out is not None)

    def _block(self, day: date, symbol: str, constraint: str, kind: str, entry: dict | None,
               blocked: bool = True) -> None:
        self.blocks.append({"day": day, "symbol": symbol, "constraint": constraint, "kind": kind,
                            "blocked": blocked, "entry": entry, "equity": self.eq_close})

    # -- simulating day t: the open, the fills, the bar, the close ------------------------------

    def _simulate(self, day: date, todays: list[_Feed], decisions: dict[str, _Decision]) -> None:
        fills = {f.symbol: [] for f in todays}
        notes = {f.symbol: [] for f in todays}
        for feed in todays:
            asked = any(a["action_type"] == "exit" and a["symbol"] == feed.symbol
                        for a in decisions[feed.symbol].actions)
            fills[feed.symbol] += self.book.exit_at_open(feed.symbol, day, feed.opens[feed.row[day]], asked)
        for feed in todays:
            self._fill(day, feed, decisions[feed.symbol], fills[feed.symbol], notes[feed.symbol])
        for feed in todays:
            i = feed.row[day]
            fills[feed.symbol] += self.book.exit_on_bar(feed.symbol, day, feed.highs[i], feed.lows[i], feed.closes[i])
            self.marks[feed.symbol] = feed.closes[i]
        equity = self.book.value(self.marks)
        self.eq_before, self.eq_close = self.eq_close, equity
        self.peak = max(self.peak, equity)
        self.equity_points.append(equity)
        self.position_rows.append(self.book.exposure(self.marks, equity))
        for feed in todays:
            d = decisions[feed.symbol]
            self.rows.append({
                "day": day, "symbol": feed.symbol, "regime": str(feed.regime[feed.row[day]]), "outcome": d.outcome,
                "reason": d.reason or "", "rounds": d.rounds, "tokens": d.tokens, "cost_usd": d.cost,
                "fills": ", ".join(fills[feed.symbol]), "note": "; ".join(notes[feed.symbol]), "equity": equity,
                "tier": d.tier,
            })

    def _fill(self, day: date, feed: _Feed, d: _Decision, fills: list[str], notes: list[str]) -> None:
        """Fill the exchange's approved entries at the open, after the rules re-check them there."""
        foreign = sorted({a["symbol"] for a in d.actions if a["symbol"] != feed.symbol and a["action_type"] != "hold"})
        if foreign:
            notes.append(f"{', '.join(foreign)} not filled: this exchange is {feed.symbol}'s")
        mine = [a for a in d.actions if a["symbol"] == feed.symbol]
        if not any(a["action_type"] in ENTRY_TYPES for a in mine):
            return
        i = feed.row[day]
        o = feed.opens[i]
        filled = [{**a, "entry_price": self.book.fill_price(a, o)} if a["action_type"] in ENTRY_TYPES else a
                  for a in mine]
        recheck = check_proposal(
            Proposal(reasoning="fill re-check", actions=[Action.model_validate(a) for a in filled]), self.rules,
            self._portfolio(self.book.exposure(self.marks, self.eq_close, today=day)), d.world,
        )
        entries = [a for a in filled if a["action_type"] in ENTRY_TYPES]
        if recheck.decision != "APPROVE":
            notes.append(f"entry not filled: at the fill price {entries[0]['entry_price']:.2f} the rules say "
                         f"{recheck.decision} ({', '.join(recheck.violations)})")
            for name in recheck.violations:
                self._block(day, feed.symbol, name, "unfilled", next(a for a in mine if a["action_type"] in ENTRY_TYPES))
            return
        for a in entries:
            if (o <= a["stop_loss"]) if side_of(a) > 0 else (o >= a["stop_loss"]):
                notes.append(f"entry not filled: the open {o:.2f} is already through the stop {a['stop_loss']:.2f}")
                continue
            self.book.enter(a, a["entry_price"], self.eq_close, day, str(feed.regime[i]))
            fills.append("enter " + ("long" if side_of(a) > 0 else "short"))

    # -- the result ---------------------------------------------------------------------------

    def result(self, status: str) -> BacktestResult:
        t = self.test
        ran = self.calendar[:len(self.equity_points) - 1]
        if self.book.open and ran:  # the test ends: close what is open at the last close reached
            self.book.close_all(ran[-1], self.marks)
            self.equity_points[-1] = self.book.cash
            for row in self.rows:
                if row["day"] == ran[-1]:
                    row["equity"] = self.book.cash
        index = pd.DatetimeIndex([self._anchor(), *(pd.Timestamp(d).tz_localize(_tz(t)) for d in ran)], name="Date")
        equity = pd.Series(self.equity_points, index=index, name="equity")
        days = pd.DataFrame(self.rows, columns=DAY_COLUMNS)
        trades = pd.DataFrame(self.book.closed, columns=TRADE_COLUMNS)
        positions = pd.DataFrame(self.position_rows, index=index[1:], columns=t.symbols, dtype=float).fillna(0.0)
        bars = {f.symbol: f.loaded.frame[(f.loaded.frame.index >= index[1]) & (f.loaded.frame.index <= index[-1])]
                if ran else f.loaded.frame.iloc[:0] for f in t.feeds}
        periods = metrics.periods_per_year(self.calendar)
        bench = metrics.buy_and_hold(bars, t.capital, index[1:]) if ran else None
        bench_pct = float(bench.iloc[-1] / t.capital - 1) * 100 if ran else 0.0
        returns = metrics.daily_returns(equity)
        sources = dict.fromkeys(f.loaded.source for f in t.feeds)
        note = t.feeds[0].loaded.note if len(t.feeds) == 1 else "; ".join(f"{f.symbol}: {f.loaded.note}" for f in t.feeds)
        return BacktestResult(
            symbols=t.symbols, start=t.start, end=t.end, run_key=t.run_key, preset=t.preset, status=status,
            source=", ".join(sources), note=note, settings=t.settings,
            metrics=metrics.summary(equity, days, trades, t.capital, bench_pct, periods, t.preset),
            equity=equity, trades=trades, days=days,
            walk_forward=metrics.walk_forward(equity, t.walk_forward_split, periods),
            by_regime=metrics.by_regime(days, returns, trades, periods),
            by_symbol=metrics.by_symbol(t.symbols, trades, positions), positions=positions,
            limits=metrics.limits(self._blocks(ran), equity),
            bars=bars, periods_per_year=periods, fallback=any(f.loaded.fallback for f in t.feeds),
        )

    def _blocks(self, ran: list[date]) -> pd.DataFrame:
        """The limits' rows, each blocked entry with what it would have made (`missed_pnl`)."""
        feeds = {f.symbol: f for f in self.test.feeds}
        missed = {}
        for b in self.blocks:
            key = (b["day"], b["symbol"])
            if b["blocked"] and b["entry"] is not None and key not in missed and b["entry"]["symbol"] == b["symbol"]:
                missed[key] = self._what_if(feeds[b["symbol"]], b["day"], b["entry"], b["equity"], ran[-1])
        rows = [{**b, "missed_pnl": missed.get((b["day"], b["symbol"]), 0.0) if b["blocked"] else 0.0}
                for b in self.blocks]
        return pd.DataFrame(rows, columns=["day", "symbol", "constraint", "kind", "blocked", "missed_pnl"])

    def _what_if(self, feed: _Feed, day: date, entry: dict, equity: float, last: date) -> float:
        """The P&L an entry kept out would have made: filled at `day`'s open, exited by the same stops,
        targets, holding limit and costs, by `last` at the latest (a what-if, told after the run)."""
        book = Book(0.0, self.test.costs)
        i = feed.row[day]
        if (feed.opens[i] <= entry["stop_loss"]) if side_of(entry) > 0 else (feed.opens[i] >= entry["stop_loss"]):
            return 0.0  # through its stop at the open: it would not have filled
        book.enter(entry, book.fill_price(entry, feed.opens[i]), equity, day, "")
        j = i
        while book.open and j < len(feed.dates) and feed.dates[j] <= last:
            if j > i:
                book.exit_at_open(feed.symbol, feed.dates[j], feed.opens[j], False)
            book.exit_on_bar(feed.symbol, feed.dates[j], feed.highs[j], feed.lows[j], feed.closes[j])
            j += 1
        book.close_all(feed.dates[j - 1], {feed.symbol: feed.closes[j - 1]})
        return book.closed[0]["pnl"]

    def _anchor(self) -> pd.Timestamp:
        """The close before the first day: the latest earlier bar of any symbol, else the day before."""
        first = self.calendar[0]
        earlier = [f.loaded.frame.index[i] for f in self.test.feeds if (i := _before(f, first)) is not None]
        return max(earlier) if earlier else pd.Timestamp(first - timedelta(days=1)).tz_localize(_tz(self.test))


def _tz(test: Backtest):
    return test.feeds[0].loaded.frame.index.tz


def _before(feed: _Feed, day: date) -> int | None:
    """The row of the feed's last bar before `day`, or None."""
    i = int(np.searchsorted(feed.loaded.frame.index.date, day)) - 1
    return i if i >= 0 else None


def _decision_of(artifact: Artifact, recorded: bool) -> _Decision:
    rounds = artifact.rounds
    approved = artifact.outcome == "APPROVE"
    return _Decision(
        artifact.outcome, artifact.termination_reason, artifact.rounds_taken, artifact.total_tokens,
        artifact.usage.cost_usd, [a.model_dump(mode="json") for a in rounds[-1].proposal.actions] if approved else [],
        artifact.run_id if recorded else None,
        [{"decision": r.evaluation.decision, "violations": r.evaluation.violations,
          "entries": [a.model_dump(mode="json") for a in r.proposal.actions if a.is_entry]} for r in rounds],
    )


def _replayed(row: dict) -> _Decision:
    return _Decision(row["outcome"], row["reason"], row["rounds"], row["tokens"], row["cost_usd"],
                     json.loads(row["actions"]), row["exchange_run_id"], json.loads(row.get("verdicts") or "[]"))


# -- the single-symbol call, reopening, comparing -----------------------------------------------

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
    bars: Bars | pd.DataFrame | dict | None = None,
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
    """`Backtest(symbol, ...).run(...)` with the costs spelled out: one symbol (or a list) over the
    trading days in [start, end]. `bars` replaces loading (a DataFrame or core.market.Bars, or a dict
    by symbol)."""
    if bars is not None and not isinstance(bars, dict):
        bars = {symbol: bars}
    test = Backtest(symbol, start, end, constraints, player, coach, capital=capital,
                    costs=Costs(fee_bps, slippage_bps, max_hold_days), depth=depth, bars=bars, preset=preset,
                    record_exchanges=record_exchanges, walk_forward_split=walk_forward_split, run_key=run_key)
    return test.run(store, progress, cancel, stop_after)


def reopen_backtest(store, run_key: str, bars: Bars | pd.DataFrame | dict | None = None) -> BacktestResult:
    """Rebuild a stored backtest from its stored exchanges, calling no agent (a run cancelled
    part-way comes back as far as it got)."""
    row = store.get_backtest(run_key)
    if row is None:
        raise InvalidInput(f"run_key: no backtest {run_key!r}")
    settings = row["settings"]
    symbols = row["symbol"].split(",")
    player = _Replayed(row["player"], settings.get("player_model"), settings.get("player_seed"))
    coach = _Replayed(row["coach"], None, None)
    if bars is not None and not isinstance(bars, dict):
        bars = {symbols[0]: bars}
    test = Backtest(symbols, row["start"], row["end"], Constraints.model_validate_json(row["constraints"]), player,
                    coach, capital=settings["capital"],
                    costs=Costs(settings["fee_bps"], settings["slippage_bps"], settings["max_hold_days"]),
                    depth=row["depth"], bars=bars, preset=row["preset"], run_key=run_key)
    result = test.run(store, stop_after=0)
    if result.status == "paused":  # stopped at the first undecided day: keep the stored status
        result.status = row["status"]
        store.set_backtest_status(run_key, row["status"])
    return result


class _Replayed:
    """Stands in for the agents of a stored run; never asked (stop_after=0 stops at the first undecided day)."""

    def __init__(self, name, model, seed):
        self.name, self.model, self.seed = name, model, seed

    def propose(self, *args):
        raise RuntimeError("a reopened backtest never calls an agent")

    critique = propose


@dataclass
class Comparison:
    """Two backtests on the same days: `table` has one column per preset and `better` per metric."""

    table: pd.DataFrame
    results: dict[str, BacktestResult]


def compare_presets(symbols: str | list[str], start, end, first, second, player, coach, *, bars=None, store=None,
                    progress: Progress | None = None, cancel=None, **settings) -> Comparison:
    """Backtest two schemas on the same bars and days; each is a preset name, a Constraints, or
    (name, Constraints). Returns the side-by-side table with the better value per metric marked."""
    from core.exchange.presets import load_preset

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
    symbols = [symbols] if isinstance(symbols, str) else list(symbols)
    start, end = _date(start), _date(end)
    if bars is not None and not isinstance(bars, dict):
        bars = {symbols[0]: bars}
    bars = bars or {}
    loaded = {s: backtest_bars(s, start, end, bars.get(s)) for s in symbols}  # loaded once: both see the same days
    results = {}
    for k, (name, constraints) in enumerate(named):
        step = None if progress is None else (lambda n, total, day, k=k: progress(k * total + n, 2 * total, day))
        results[name] = run_backtest(symbols if len(symbols) > 1 else symbols[0], start, end, constraints, player,
                                     coach, bars=loaded, store=store, progress=step, cancel=cancel, preset=name,
                                     **settings)
    return Comparison(metrics.compare_table(results), results)
