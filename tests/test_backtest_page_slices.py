"""The Backtest page's slices (core.backtest.job.StoredRun): one run kept in memory between slices carries
on where the last slice paused, writes every decision as it goes, and ends as the same run unsliced."""

from __future__ import annotations

import pandas as pd
import pytest

import core
from core import market
from core.backtest.engine import Backtest
from core.backtest.feed import Feed
from core.backtest.job import SLICE_EXCHANGES, StoredRun, ends_in_first_slice, run_stored, slice_days


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")


class Asked(core.HousePlayer):
    """The house Player, noting each (day, symbol) it is asked about."""

    days: set[tuple[str, str]] = set()

    def propose(self, world, *args):
        Asked.days.add((str(world.as_of.date()), world.symbol))
        return super().propose(world, *args)


def spec():
    symbols = ["MSFT", "AAPL"]
    rules = core.load_preset("moderate").model_copy(update={"allowed_symbols": symbols})
    return core.BacktestSpec(symbols=symbols, start="2012-02-01", end="2012-04-30", presets=[("moderate", rules)])


def same(result, whole) -> None:
    assert result.status == "finished" and result.run_key == whole.run_key
    pd.testing.assert_series_equal(result.equity, whole.equity)
    pd.testing.assert_frame_equal(result.trades, whole.trades)
    pd.testing.assert_frame_equal(result.days, whole.days)
    pd.testing.assert_series_equal(result.metrics, whole.metrics)


def test_each_slice_carries_on_where_the_last_paused_and_the_run_ends_as_one_unsliced(store):
    feed = Feed.load(spec().symbols, spec().start, spec().end)
    whole = Backtest(spec(), core.HousePlayer(), core.HouseCoach(), feed=feed).run()
    run = StoredRun(Backtest(spec(), core.HousePlayer(), core.HouseCoach(), feed=feed), store)
    firsts, done, result = [], [], None
    while result is None:
        days: list[int] = []
        result = run.advance(lambda n, total, day: days.append(n), stop_after=10)
        firsts.append(days[0])
        row = store.get_backtest(whole.run_key)
        done.append(row["days_done"])
        if result is None:
            assert row["status"] == "paused" and days[-1] + 1 == row["days_done"] < row["days_total"]
    assert len(firsts) > 2 and firsts[0] == 0
    assert firsts[1:] == done[:-1]  # no slice simulates a day an earlier one did: it starts at the next
    same(result, whole)
    assert store.get_backtest(whole.run_key)["status"] == "finished"


def test_a_run_whose_tab_closed_resumes_from_its_stored_days_asking_only_for_the_rest(store):
    feed = Feed.load(spec().symbols, spec().start, spec().end)
    whole = Backtest(spec(), core.HousePlayer(), core.HouseCoach(), feed=feed).run()
    first = StoredRun(Backtest(spec(), core.HousePlayer(), core.HouseCoach(), feed=feed), store)
    assert first.advance(stop_after=10) is None and first.advance(stop_after=10) is None  # then the tab closes
    stored = set(store.backtest_days(whole.run_key))
    Asked.days = set()
    again = StoredRun(Backtest(spec(), Asked(), core.HouseCoach(), feed=feed), store)
    result = None
    while result is None:
        result = again.advance(stop_after=10)
    same(result, whole)
    assert Asked.days and not Asked.days & stored  # the stored exchanges are not asked again
    Asked.days = set()
    replayed = run_stored(Backtest(spec(), Asked(), core.HouseCoach(), feed=feed), store)
    pd.testing.assert_series_equal(replayed.equity, whole.equity)
    assert not Asked.days  # the store holds every day: replayed whole


class Rerun(BaseException):
    """As Streamlit's StopException: what its next st call raises in a script a rerun stops (fast reruns)."""


def test_a_slice_stopped_by_a_rerun_carries_on_from_the_day_it_was_stopped_at(store):
    """The page's only st call inside a slice is its progress bar, asked before each day."""
    feed = Feed.load(spec().symbols, spec().start, spec().end)
    whole = Backtest(spec(), core.HousePlayer(), core.HouseCoach(), feed=feed).run()
    run = StoredRun(Backtest(spec(), core.HousePlayer(), core.HouseCoach(), feed=feed), store)

    def stopped(n, total, day):
        if n == 7:
            raise Rerun()

    with pytest.raises(Rerun):
        run.advance(stopped, stop_after=10)
    days: list[int] = []
    result = run.advance(lambda n, total, day: days.append(n))
    assert days[0] == 7
    same(result, whole)


def test_a_house_slice_is_about_the_same_exchanges_whatever_the_books_size():
    one, four = slice_days("house", 1), slice_days("house", 4)
    assert one == SLICE_EXCHANGES["house"] and four == SLICE_EXCHANGES["house"] // 4  # a day: one per symbol
    assert slice_days("claude", 4) == 1  # never less than a day, however large the book
    assert slice_days("my-agent", 1) > slice_days("my-agent", 5) == 1  # an installed agent: by its exchanges too


@pytest.mark.parametrize("spare", [0, -1])
def test_the_page_knows_before_a_run_whether_its_first_slice_ends_it(store, monkeypatch, spare):
    """So that a run that ends in the page's own run gets no timer (spare -1: a slice one day short of the days)."""
    feed = Feed.load(spec().symbols, spec().start, spec().end)
    monkeypatch.setitem(SLICE_EXCHANGES, "house", (len(feed.calendar()) + spare) * len(spec().symbols))
    run = StoredRun(Backtest(spec(), core.HousePlayer(), core.HouseCoach(), feed=feed), store)
    ended = run.advance(stop_after=slice_days("house", len(spec().symbols))) is not None
    assert ends_in_first_slice(spec(), feed) is ended is (spare == 0)
    two = spec().model_copy(update={"presets": spec().presets * 2})
    assert not ends_in_first_slice(two, feed)  # the second preset's run is another slice
