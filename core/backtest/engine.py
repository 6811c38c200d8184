"""Backtests: the Player-Coach loop replayed over daily bars, one symbol or a portfolio (SPEC §7).

    spec = core.BacktestSpec(symbols=["MSFT", "AAPL"], start="2021-01-04", end="2021-12-31", presets=["moderate"])
    result = core.Backtest(spec, core.HousePlayer(), core.HouseCoach()).run()

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

The engine decides and simulates and nothing else: it reads a Feed (core.backtest.feed) and stores
nothing. Days already decided come in (`decided`) and are replayed without asking an agent; each new
decision goes out as a `Decided` event before its day is simulated, which core.backtest.job writes to
the journal. A run that crashes or is cancelled therefore resumes where it stopped, and the
simulation, which is deterministic, rebuilds the same state. What each limit did is core.backtest.limits';
the end of a run and its result are core.backtest.ending's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import date

from core.backtest.book import Book, apply_actions, side_of
from core.backtest.decision import Decided, Decision
from core.backtest.ending import DAY_COLUMNS, Ending  # noqa: F401 (DAY_COLUMNS re-exported)
from core.backtest.feed import WARMUP_CALENDAR_DAYS, Feed, SymbolFeed, backtest_bars  # noqa: F401 (re-exported)
from core.backtest.limits import block, blocks_of
from core.backtest.result import BacktestResult, plain  # noqa: F401 (re-exported: core.BacktestResult)
from core.backtest.spec import DEPTHS, BacktestSpec, spec_of_call  # noqa: F401 (DEPTHS re-exported for the page)
from core.backtest.summary import BacktestSummary
from core.exchange.errors import InvalidInput
from core.exchange.loop import decide_exchange, run_exchange_sync
from core.exchange.rules import circuit_breaker, ruling
from core.exchange.schema import Portfolio, WorldState, built
from core.exchange.artifact import Artifact
from core.exchange.tiers import tier_names
from core.market import as_of

Progress = Callable[[int, int, date], None]
Exchange = Callable[..., Artifact]
"""Runs one exchange to its artifact: core.exchange.loop.run_exchange_sync's signature (the job passes
one that also records it)."""


def _key(*parts) -> str:
    return "bt-" + hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def agent_name(agent) -> str:
    """What an agent is called in a stored run: its `name`, else its class's."""
    return getattr(agent, "name", type(agent).__name__)


class Backtest:
    """A backtest of one symbol or a portfolio, in backtesting.py's shape: build it, then `.run()`.

        Backtest(spec, player, coach).run()

    `spec` is a BacktestSpec with one schema (`spec.one(i)` picks one of a comparison's); `feed`
    the bars it reads (core.backtest.feed.Feed; loaded from the spec's symbols and dates when not
    given, or built from `bars`, an optional {symbol: DataFrame or core.market.Bars}). With
    `record_exchanges=True` and a store every exchange also goes to the exchanges table (History).

    The call of earlier versions, `Backtest(symbols, start, end, constraints, player, coach, *,
    capital, costs, depth, bars, preset, record_exchanges, walk_forward_split, run_key)`, still works."""

    def __init__(self, spec, *args, feed: Feed | None = None, bars: dict | None = None,
                 record_exchanges: bool = False, run_key: str | None = None, **old):
        if not isinstance(spec, BacktestSpec):
            spec, args = spec_of_call(spec, *args, **old)
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

    @property
    def calendar(self) -> list[date]:
        """The days it runs: the union of its symbols' trading days in [start, end]."""
        return self.feed.calendar()

    def _run_key(self) -> str:
        one = len(self.feeds) == 1  # a single symbol keeps the key it had before portfolios, so stored runs resume
        return _key(self.symbols[0] if one else self.symbols, str(self.start), str(self.end),
                    self.constraints.model_dump(mode="json"), agent_name(self.player), self.settings["player_model"],
                    self.settings["player_seed"], agent_name(self.coach), self.settings, self.feed.fingerprint())

    def run(self, *stored, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
            stop_after: int | None = None, decided: Mapping[tuple[date, str], Decision] | None = None,
            events: Callable[[Decided], None] | None = None, exchange: Exchange | None = None) -> BacktestResult:
        """Replay the loop over the calendar. `decided` holds the exchanges already decided, by (day,
        symbol): replayed, no agent asked; each new one goes to `events` before its day is simulated.
        `cancel()` is asked before each day; `stop_after` N pauses the run (status "paused") once it has
        decided N new days and meets an undecided one. `exchange` runs one exchange (default: the pure loop, deciding
        only when nothing is recorded: core.exchange.loop.decide_exchange).

        The engine stores nothing: core.backtest.job.run_stored(test, store, ...) runs it with the journal
        at its edge (resumable, cancellable, a slice at a time)."""
        if stored:  # the call of earlier versions, run(store, progress, ...): say where it went, not run unstored
            raise TypeError("Backtest.run() takes no store: core.backtest.job.run_stored(test, store, progress, "
                            "cancel, stop_after) keeps a run in the journal")
        run = self.runner(decided=decided, events=events, exchange=exchange)
        return run.result(run.play(progress, cancel, stop_after))

    def summary(self, progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> BacktestSummary:
        """Run it and keep what a sweep reads: the metrics and the equity curve, the same numbers as `run()`'s,
        without recording the positions and limits behind the whole result's other tables."""
        run = _Run(self, {}, None, None, whole=False)
        return run.summary(run.play(progress, cancel, None))

    def runner(self, *, decided: Mapping | None = None, events=None, exchange: Exchange | None = None) -> _Run:
        """The run as state, played a slice at a time (core.backtest.job.StoredRun): each `play(progress,
        cancel, stop_after)` carries on from the first day not simulated yet; `result(status)` ends it."""
        return _Run(self, decided or {}, events, exchange)


class _Run(Ending):
    """The state of one run: the book, the marks, the curve and the rows, day by day (its end: Ending)."""

    def __init__(self, test: Backtest, decided: Mapping, events, exchange: Exchange | None, *, whole: bool = True):
        # exchange None: the loop itself (decide_exchange, when only the Decision is read)
        self.test, self.decided, self.events, self.exchange = test, decided, events, exchange
        self.whole = whole  # False: only the summary is wanted, so positions and limits are not recorded
        self.rules = test.constraints if test.depth == "standard" else test.constraints.model_copy(
            update={"max_rounds": 1})
        self.calendar = test.calendar
        self.book = Book(test.capital, test.costs)
        self.marks = {f.symbol: f.closes[f.before(self.calendar[0])] for f in test.feeds
                      if f.before(self.calendar[0]) is not None}
        self.eq_close = self.eq_before = self.peak = test.capital  # equity at the last close, the one before, its peak
        self.equity_points = [test.capital]
        self.rows: list[tuple] = []  # a row per exchange, its values in DAY_COLUMNS' order
        self.held: dict[str, float] = {}  # the book at the last close: each symbol's position / equity (exposure)
        self.position_rows: list[dict] = []
        self.blocks: list[dict] = []
        self.new = 0  # days with a decision taken now, not replayed
        self.shown: tuple[dict, Portfolio] | None = None  # the last book handed to the rules, with its positions

    def play(self, progress, cancel, stop_after) -> str:
        """Simulate from the first day not simulated yet: "finished", or "cancelled" or "paused" where it stopped."""
        self.new = 0  # stop_after counts the days this call decides
        for n in range(len(self.equity_points) - 1, len(self.calendar)):  # an equity point per day simulated
            day = self.calendar[n]
            if cancel is not None and cancel():
                return "cancelled"
            # each symbol with a bar on the day, with that bar's row: looked up once a day, not at every step
            todays = [(f, i) for f in self.test.feeds if (i := f.row.get(day)) is not None]
            if stop_after is not None and self.new >= stop_after and any(self._undecided(f, i, day) for f, i in todays):
                return "paused"
            if progress is not None:
                progress(n, len(self.calendar), day)
            decisions = self._decide(day, todays)
            self._simulate(day, todays, decisions)
        return "finished"

    def _undecided(self, feed: SymbolFeed, i: int, day: date) -> bool:
        return (day, feed.symbol) not in self.decided and feed.warm_up(i) is None

    # -- deciding: breakers once on the whole book, then one exchange per symbol in order ----------

    def _portfolio(self, positions: dict[str, float]) -> Portfolio:
        if self.shown is not None and self.shown[0] is positions:  # the breakers, the exchange and the tiers of
            return self.shown[1]  # one symbol's day see the same book: built once (nothing changes a Portfolio)
        eq, before = self.eq_close, self.eq_before
        # Built from the book's own numbers, which are valid by construction: not validated again each day.
        book = built(Portfolio, {"equity": eq, "peak_equity": self.peak, "start_of_day_equity": before,
                                 "cumulative_pnl": eq - self.test.capital, "today_pnl": eq - before,
                                 "positions": positions})
        self.shown = positions, book
        return book

    def _decide(self, day: date, todays: list[tuple[SymbolFeed, int]]) -> list[Decision]:
        """The day's decisions, one per symbol in `todays` and in its order."""
        pending = self.held  # nothing moves the book, its marks or its equity between t-1's close and t's open
        # each symbol's key in `decided` and why it cannot be decided yet, asked once (as _undecided asks them)
        plans = [(feed, i, (day, feed.symbol), feed.warm_up(i)) for feed, i in todays]
        breaker = None
        if any(key not in self.decided and skipped is None for _, _, key, skipped in plans):
            breaker = circuit_breaker(self.rules, self._portfolio(pending), as_of(day))
        decisions, new = [], False
        held = self.book.symbols() if self.book.open else ()  # nothing moves the book before t's open
        for feed, i, key, skipped in plans:
            symbol = feed.symbol
            previous = self.decided.get(key)
            world = None if skipped else feed.world(i, day, self._position(symbol) if symbol in held else "flat")
            if previous is not None:
                d = previous
            elif skipped:
                d = Decision("SKIPPED", skipped)
            else:
                d = self._exchange(day, feed, world, pending, breaker)
                if self.events is not None:
                    self.events(Decided(day, symbol, d))
                new = True
            d.world = world
            if self.rules.tiers:  # from the book at t-1's close and the world of bars up to t-1, as the rules see them
                d.tier = tier_names(self.rules, self._portfolio(pending), world)
            decisions.append(d)
            if self.whole:
                self.blocks += blocks_of(day, symbol, d, self.eq_close)
            if d.outcome == "APPROVE":
                orders = [a for a in d.actions if a.symbol == symbol and a.action_type != "hold"]
                if orders:  # a hold moves no position: the next exchange sees the same book, the same Portfolio
                    pending = apply_actions(pending, orders)
        self.new += new
        return decisions

    def _position(self, symbol: str) -> str:
        """A held symbol's side: long or short."""
        return "long" if self.book.held(symbol) * self.marks[symbol] > 0 else "short"

    def _exchange(self, day: date, feed: SymbolFeed, world: WorldState, pending: dict, breaker: str | None) -> Decision:
        t = self.test
        if breaker and not t.record_exchanges:  # the whole book is stopped: no agent is asked
            return Decision("ABORT", breaker)
        portfolio = self._portfolio(pending)
        run_id = f"{t.run_key}:{day}" + ("" if len(t.feeds) == 1 else f":{feed.symbol}")
        if self.exchange is None and not t.record_exchanges:
            # Unrecorded, only the Decision is read: no events, no artifact, no reasoning check (History shows it),
            # no copies of inputs the engine never changes. The breakers ran on the day's book (same equity, as_of).
            return Decision.ended(decide_exchange(world, self.rules, portfolio, t.player, t.coach, run_id=run_id,
                                                  breakers_checked=breaker is None))
        artifact = (self.exchange or run_exchange_sync)(
            world, self.rules, portfolio, t.player, t.coach,
            strategy_id=f"backtest:{t.run_key}" if t.record_exchanges else None,
            run_id=run_id, now=lambda: world.as_of, stream=False,  # no speech bubbles to show: no text events
            decision_only=not t.record_exchanges, breakers_checked=breaker is None,
        )
        return Decision.of(artifact, t.record_exchanges)

    # -- simulating day t: the open, the fills, the bar, the close ------------------------------

    def _simulate(self, day: date, todays: list[tuple[SymbolFeed, int]], decisions: list[Decision]) -> None:
        book, marks = self.book, self.marks
        fills: list[list[str]] = [[] for _ in todays]
        notes: list[list[str]] = [[] for _ in todays]
        if book.open:  # a flat book has nothing to exit, and exits open nothing; nor does a symbol not held
            held = book.symbols()
            for (feed, i), d, filled in zip(todays, decisions, fills):
                if feed.symbol in held:
                    asked = any(a.action_type == "exit" and a.symbol == feed.symbol for a in d.actions)
                    filled += book.exit_at_open(feed.symbol, day, feed.opens[i], asked)
        for (feed, i), d, filled, noted in zip(todays, decisions, fills, notes):
            # none approved, or holds (most days): nothing to fill
            if d.actions and any(a.action_type != "hold" for a in d.actions):
                self._fill(day, feed, i, d, filled, noted)
        held = book.symbols() if book.open else ()
        for (feed, i), filled in zip(todays, fills):
            close = feed.closes[i]
            if feed.symbol in held:
                filled += book.exit_on_bar(feed.symbol, day, feed.highs[i], feed.lows[i], close)
            marks[feed.symbol] = close
        equity = book.value(marks)
        self.eq_before, self.eq_close = self.eq_close, equity
        self.peak = max(self.peak, equity)
        self.equity_points.append(equity)
        self.held = book.exposure(marks, equity)
        if self.whole:
            self.position_rows.append(self.held)
        rows = self.rows
        for (feed, i), d, filled, noted in zip(todays, decisions, fills, notes):
            rows.append((day, feed.symbol, feed.regime[i], d.outcome, d.reason or "", d.rounds, d.tokens, d.cost,
                         ", ".join(filled), "; ".join(noted), equity, d.tier))

    def _fill(self, day: date, feed: SymbolFeed, i: int, d: Decision, fills: list[str], notes: list[str]) -> None:
        """Fill the exchange's approved entries at the open (bar i), after the rules re-check them there."""
        foreign = sorted({a.symbol for a in d.actions if a.symbol != feed.symbol and a.action_type != "hold"})
        if foreign:
            notes.append(f"{', '.join(foreign)} not filled: this exchange is {feed.symbol}'s")
        mine = [a for a in d.actions if a.symbol == feed.symbol]
        if not any(a.is_entry for a in mine):
            return
        o = feed.opens[i]
        # the entry at its fill price: model_copy's copy without its machinery (validated values, the book's float)
        filled = [built(type(a), {**a.__dict__, "entry_price": self.book.fill_price(a, o)},
                        a.model_fields_set | {"entry_price"}) if a.is_entry else a for a in mine]
        book = self._portfolio(self.book.exposure(self.marks, self.eq_close, today=day))
        recheck = ruling(filled, self.rules, book, d.world)  # the decision and violations: nothing reads the checks
        entries = [a for a in filled if a.is_entry]
        if recheck.decision != "APPROVE":
            notes.append(f"entry not filled: at the fill price {entries[0].entry_price:.2f} the rules say "
                         f"{recheck.decision} ({', '.join(recheck.violations)})")
            if self.whole:
                entry = next(a for a in mine if a.is_entry)
                self.blocks += [block(day, feed.symbol, name, "unfilled", entry, self.eq_close)
                                for name in recheck.violations]
            return
        for a in entries:
            if (o <= a.stop_loss) if side_of(a) > 0 else (o >= a.stop_loss):
                notes.append(f"entry not filled: the open {o:.2f} is already through the stop {a.stop_loss:.2f}")
                continue
            self.book.enter(a, a.entry_price, self.eq_close, day, feed.regime[i])
            fills.append("enter " + ("long" if side_of(a) > 0 else "short"))
