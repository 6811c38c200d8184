"""The end of a backtest run: what is still open closes at the last close reached, and the result is built from
what the run recorded day by day (core.backtest.engine's _Run): its summary and every table behind it.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from core.backtest import breakdown
from core.backtest import result as metrics
from core.backtest.book import TRADE_COLUMNS
from core.backtest.limits import limit_table
from core.backtest.result import BacktestResult
from core.backtest.summary import BacktestSummary

DAY_COLUMNS = ["day", "symbol", "regime", "outcome", "reason", "rounds", "tokens", "cost_usd", "fills", "note",
               "equity", "tier"]
"""The columns of a result's days: a row per exchange, as the run records it (a tuple in this order)."""
_EQUITY = DAY_COLUMNS.index("equity")
_TRADES, _DAYS = pd.Index(TRADE_COLUMNS), pd.Index(DAY_COLUMNS)
"""The trades' and days' column labels, built once: each result's are a view of them (a text index costs ~60 us)."""


class Ending:
    """The end of a run, for core.backtest.engine's _Run: its test, calendar, book, marks, equity points, rows (in
    DAY_COLUMNS' order), positions and limits' blocks as the run recorded them."""

    def result(self, status: str) -> BacktestResult:
        """The whole result: the summary and every table behind it."""
        t = self.test
        ran, equity, days, trades, bars = self._end()
        summary = self._summary(status, ran, equity, days, trades, bars)
        periods = summary.periods_per_year
        positions = pd.DataFrame({s: [row.get(s, 0.0) for row in self.position_rows] for s in t.symbols},
                                 index=equity.index[1:], dtype=float)  # a day's row names only what it held
        return BacktestResult(
            # the trades from the records, as ever: a frame of columns would type an empty one's columns otherwise;
            # the days from the columns read already, the same frame in less time, unless there are none
            **vars(summary), trades=pd.DataFrame(self.book.closed, columns=_TRADES.view()),
            days=pd.DataFrame(days if self.rows else self.rows, columns=_DAYS.view()),
            walk_forward=breakdown.walk_forward(equity, t.walk_forward_split, periods),
            by_regime=breakdown.by_regime(days, metrics.returns_of(equity.to_numpy()), trades, periods),
            by_symbol=breakdown.by_symbol(t.symbols, trades, positions), positions=positions,
            limits=limit_table(self.blocks, {f.symbol: f for f in t.feeds}, t.costs, ran, self.equity_points),
            bars=bars,
        )

    def summary(self, status: str) -> BacktestSummary:
        """The metrics and the equity curve alone."""
        return self._summary(status, *self._end())

    def _end(self) -> tuple[list[date], pd.Series, dict[str, list], dict[str, list], dict[str, pd.DataFrame]]:
        """The test ends: what is open closes at the last close reached. The days run, the equity curve, the
        days and the trades as {column: list} (the figures read them; the whole result makes them frames),
        and each symbol's bars over the days run."""
        t = self.test
        ran = self.calendar[:len(self.equity_points) - 1]
        if self.book.open and ran:
            self.book.close_all(ran[-1], self.marks)
            self.equity_points[-1] = self.book.cash
            for n in range(len(self.rows) - 1, -1, -1):  # the last day's rows: the last ones recorded
                row = self.rows[n]
                if row[0] != ran[-1]:  # its day
                    break
                self.rows[n] = (*row[:_EQUITY], self.book.cash, *row[_EQUITY + 1:])
        equity = pd.Series(self.equity_points, index=self._dates(ran), name="equity")
        columns = zip(*self.rows) if self.rows else [()] * len(DAY_COLUMNS)  # the rows turned into columns
        days = {column: list(values) for column, values in zip(DAY_COLUMNS, columns)}
        trades = {column: [trade[column] for trade in self.book.closed] for column in TRADE_COLUMNS}
        bars = {f.symbol: f.loaded.frame.iloc[f.between(ran[0], ran[-1]) if ran else slice(0)] for f in t.feeds}
        return ran, equity, days, trades, bars

    def _dates(self, ran: list[date]) -> pd.DatetimeIndex:
        """The equity curve's dates: the close before the first day, then each day run."""
        feeds = self.test.feeds
        before = feeds[0].before(self.calendar[0])
        if len(feeds) == 1 and ran and before is not None:
            # One symbol: those very dates are its bars', in a row; a copy of them costs a fortieth of building them.
            return pd.DatetimeIndex(feeds[0].loaded.frame.index.array[before:before + len(ran) + 1].copy(), name="Date")
        return pd.DatetimeIndex([self._anchor()]).append(pd.DatetimeIndex(ran).tz_localize(self.test.feed.tz)).rename(
            "Date")

    def _summary(self, status: str, ran: list[date], equity: pd.Series, days: dict[str, list],
                 trades: dict[str, list], bars: dict[str, pd.DataFrame]) -> BacktestSummary:
        t = self.test
        periods = metrics.periods_per_year(self.calendar)
        bench_pct = metrics.buy_and_hold_return(bars, t.capital) if ran else 0.0
        sources = dict.fromkeys(f.loaded.source for f in t.feeds)
        note = t.feeds[0].loaded.note if len(t.feeds) == 1 else "; ".join(f"{f.symbol}: {f.loaded.note}" for f in t.feeds)
        return BacktestSummary(
            symbols=t.symbols, start=t.start, end=t.end, run_key=t.run_key, preset=t.preset, status=status,
            source=", ".join(sources), note=note, settings=t.settings,
            metrics=metrics.summary(equity, days, trades, t.capital, bench_pct, periods, t.preset), equity=equity,
            periods_per_year=periods, fallback=any(f.loaded.fallback for f in t.feeds), spec=t.spec,
        )

    def _anchor(self) -> pd.Timestamp:
        """The close before the first day: the latest earlier bar of any symbol, else the day before."""
        first = self.calendar[0]
        earlier = [(f.dates[i], f, i) for f in self.test.feeds if (i := f.before(first)) is not None]
        if not earlier:
            return pd.Timestamp(first - timedelta(days=1)).tz_localize(self.test.feed.tz)
        # the first feed's of the latest day (as max() of the bars' timestamps picks): one timestamp boxed, not one a
        # symbol (~30 us each)
        _, feed, i = max(earlier, key=lambda bar: bar[0])
        return feed.loaded.frame.index[i]

