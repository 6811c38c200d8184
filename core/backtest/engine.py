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
from core.backtest.book import TRADE_COLUMNS, Book, apply_actions, side_of
from core.backtest.feed import WARMUP_CALENDAR_DAYS, Feed, SymbolFeed, backtest_bars  # noqa: F401 (re-exported)
from core.backtest.spec import DEPTHS, BacktestSpec, Costs  # noqa: F401 (DEPTHS re-exported for the page)
from core.journal.record import run_exchange_sync
from core.market import Bars, as_of
from core.exchange.errors import InvalidInput
from core.exchange.rules import check_proposal, circuit_breaker
from core.exchange.tiers import tier_names
from core.exchange.schema import (
    BREAKER_NAMES, CAPITAL, ENTRY_TYPES, Action, Artifact, Constraints, Portfolio, Proposal, WorldState,
)

RETRY_OUTCOMES = ("ERROR", "INTERRUPTED")  # a stored exchange with these outcomes is decided again on resume
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

        Backtest(spec, player, coach).run()

    `spec` is a BacktestSpec with one schema (`spec.one(i)` picks one of a comparison's); `feed`
    the bars it reads (core.backtest.feed.Feed; loaded from the spec's symbols and dates when not
    given, or built from `bars`, an optional {symbol: DataFrame or core.market.Bars}). With
    `record_exchanges=True` every exchange also goes to the exchanges table (History, the deriver).

    The call of earlier versions, `Backtest(symbols, start, end, constraints, player, coach, *,
    capital, costs, depth, bars, preset, record_exchanges, walk_forward_split, run_key)`, still works."""

    def __init__(self, spec, *args, feed: Feed | None = None, bars: dict | None = None,
                 record_exchanges: bool = False, run_key: str | None = None, **old):
        if not isinstance(spec, BacktestSpec):
            spec, args = _spec_of(spec, *args, **old)
        elif old:
            raise TypeError(f"Backtest(spec, player, coach) takes no {', '.join(old)}: they are the spec's")
        if len(spec.presets) != 1:
            raise InvalidInput(f"presets: a Backtest runs one schema, got {len(spec.presets)} "
                               "(spec.one(i) picks one; compare_presets runs two)")
        self.spec = spec
        self.player, self.coach = args
        self.feed = feed or Feed.load(spec.symbols, spec.start, spec.end, bars)
        self.feeds = self.feed.symbols
        self.record_exchanges = record_exchanges
        self.settings = spec.settings(self.player)
        self.run_key = run_key or self._run_key()

    # the spec's parts under the names the engine and older callers use
    symbols = property(lambda self: self.spec.symbols)
    start = property(lambda self: self.spec.start)
    end = property(lambda self: self.spec.end)
    constraints = property(lambda self: self.spec.preset.constraints)
    preset = property(lambda self: self.spec.preset.name)
    capital = property(lambda self: self.spec.capital)
    costs = property(lambda self: self.spec.costs)
    depth = property(lambda self: self.spec.depth)
    walk_forward_split = property(lambda self: self.spec.walk_forward_split)

    @property
    def symbol(self) -> str:
        """The symbol, or the portfolio's symbols joined by commas."""
        return ",".join(self.symbols)

    def _run_key(self) -> str:
        one = len(self.feeds) == 1  # a single symbol keeps the key it had before portfolios, so stored runs resume
        return _key(self.symbols[0] if one else self.symbols, str(self.start), str(self.end),
                    self.constraints.model_dump(mode="json"), _name(self.player), self.settings["player_model"],
                    self.settings["player_seed"], _name(self.coach), self.settings, self.feed.fingerprint())

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
        self.calendar = test.feed.calendar()
        self.book = Book(test.capital, test.costs)
        self.marks = {f.symbol: f.closes[f.before(self.calendar[0])] for f in test.feeds
                      if f.before(self.calendar[0]) is not None}
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

    def _undecided(self, feed: SymbolFeed, day: date) -> bool:
        previous = self.stored.get((str(day), feed.symbol))
        replay = previous is not None and previous["outcome"] not in RETRY_OUTCOMES
        return not replay and feed.warm_up(feed.row[day]) is None

    # -- deciding: breakers once on the whole book, then one exchange per symbol in order ----------

    def _portfolio(self, positions: dict[str, float]) -> Portfolio:
        eq, before = self.eq_close, self.eq_before
        return Portfolio(equity=eq, peak_equity=self.peak, start_of_day_equity=before,
                         cumulative_pnl=eq - self.test.capital, today_pnl=eq - before, positions=positions)

    def _decide(self, day: date, todays: list[SymbolFeed]) -> dict[str, _Decision]:
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

    def _exchange(self, day: date, feed: SymbolFeed, world: WorldState, pending: dict, breaker: str | None) -> _Decision:
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

    def _simulate(self, day: date, todays: list[SymbolFeed], decisions: dict[str, _Decision]) -> None:
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

    def _fill(self, day: date, feed: SymbolFeed, d: _Decision, fills: list[str], notes: list[str]) -> None:
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
        index = pd.DatetimeIndex([self._anchor(), *(pd.Timestamp(d).tz_localize(t.feed.tz) for d in ran)], name="Date")
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

    def _what_if(self, feed: SymbolFeed, day: date, entry: dict, equity: float, last: date) -> float:
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
        earlier = [f.loaded.frame.index[i] for f in self.test.feeds if (i := f.before(first)) is not None]
        return max(earlier) if earlier else pd.Timestamp(first - timedelta(days=1)).tz_localize(self.test.feed.tz)


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

def _spec_of(symbols, start, end, constraints, player, coach, *, capital: float = CAPITAL, costs: Costs = Costs(),
             depth: str = "standard", preset: str = "custom", walk_forward_split: float = 0.7):
    """The spec of the call of earlier versions: Backtest(symbols, start, end, constraints, player, coach, ...)."""
    if not isinstance(constraints, Constraints):
        raise InvalidInput(f"constraints: need a Constraints, got {type(constraints).__name__}")
    spec = BacktestSpec(symbols=symbols, start=start, end=end, presets=[(preset, constraints)], depth=depth,
                        costs=costs, capital=capital, walk_forward_split=walk_forward_split,
                        seed=_seed(player))
    return spec, (player, coach)


def _seed(player) -> int:
    """The Player's seed as a spec records it (0 for an agent without a whole-number seed)."""
    seed = getattr(player, "seed", None)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32 else 0


def run_backtest(
    symbol: str,
    start: date | str,
    end: date | str,
    constraints: Constraints,
    player,
    coach,
    capital: float = CAPITAL,
    fee_bps: float = Costs().fee_bps,
    slippage_bps: float = Costs().slippage_bps,
    max_hold_days: int = Costs().max_hold_days,
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
    """`Backtest(BacktestSpec(...), player, coach).run(...)` with the spec's fields spelled out: one
    symbol (or a list) over the trading days in [start, end]. `bars` replaces loading (a DataFrame or
    core.market.Bars, or a dict by symbol)."""
    if bars is not None and not isinstance(bars, dict):
        bars = {symbol if isinstance(symbol, str) else symbol[0]: bars}
    spec, agents = _spec_of(symbol, start, end, constraints, player, coach, capital=capital,
                            costs=Costs(fee_bps, slippage_bps, max_hold_days), depth=depth, preset=preset,
                            walk_forward_split=walk_forward_split)
    test = Backtest(spec, *agents, bars=bars, record_exchanges=record_exchanges, run_key=run_key)
    return test.run(store, progress, cancel, stop_after)


def stored_spec(row: dict) -> BacktestSpec:
    """The spec of a stored run, from its row (core.journal's backtests table)."""
    settings = row["settings"]
    return BacktestSpec(
        symbols=row["symbol"].split(","), start=row["start"], end=row["end"],
        presets=[(row["preset"], Constraints.model_validate_json(row["constraints"]))], depth=row["depth"],
        costs=Costs(settings["fee_bps"], settings["slippage_bps"], settings["max_hold_days"]),
        capital=settings["capital"], seed=settings.get("player_seed") or 0)


def reopen_backtest(store, run_key: str, bars: Bars | pd.DataFrame | dict | None = None) -> BacktestResult:
    """Rebuild a stored backtest from its stored exchanges, calling no agent (a run cancelled
    part-way comes back as far as it got)."""
    row = store.get_backtest(run_key)
    if row is None:
        raise InvalidInput(f"run_key: no backtest {run_key!r}")
    settings = row["settings"]
    spec = stored_spec(row)
    player = _Replayed(row["player"], settings.get("player_model"), settings.get("player_seed"))
    coach = _Replayed(row["coach"], None, None)
    if bars is not None and not isinstance(bars, dict):
        bars = {spec.symbols[0]: bars}
    result = Backtest(spec, player, coach, bars=bars, run_key=run_key).run(store, stop_after=0)
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


def compare(spec: BacktestSpec, player, coach, *, feed: Feed | None = None, bars: dict | None = None, store=None,
            progress: Progress | None = None, cancel=None) -> Comparison:
    """Run each schema of `spec` on the same bars and days, one after the other."""
    feed = feed or Feed.load(spec.symbols, spec.start, spec.end, bars)  # loaded once: every run sees the same days
    results, runs = {}, spec.runs()
    for k, one in enumerate(runs):
        step = None if progress is None else (
            lambda n, total, day, k=k: progress(k * total + n, len(runs) * total, day))
        results[one.preset.name] = Backtest(one, player, coach, feed=feed).run(store, step, cancel)
    return Comparison(metrics.compare_table(results), results)


def compare_presets(symbols: str | list[str], start, end, first, second, player, coach, *, bars=None, store=None,
                    progress: Progress | None = None, cancel=None, capital: float = CAPITAL,
                    fee_bps: float = Costs().fee_bps, slippage_bps: float = Costs().slippage_bps,
                    max_hold_days: int = Costs().max_hold_days, depth: str = "standard",
                    walk_forward_split: float = 0.7) -> Comparison:
    """Backtest two schemas on the same bars and days; each is a preset name, a Constraints, or
    (name, Constraints). Returns the side-by-side table with the better value per metric marked."""
    if bars is not None and not isinstance(bars, dict):
        bars = {symbols if isinstance(symbols, str) else symbols[0]: bars}
    spec = BacktestSpec(symbols=symbols, start=start, end=end, presets=[first, second], depth=depth,
                        costs=Costs(fee_bps, slippage_bps, max_hold_days), capital=capital,
                        walk_forward_split=walk_forward_split, seed=_seed(player))
    return compare(spec, player, coach, bars=bars, store=store, progress=progress, cancel=cancel)
