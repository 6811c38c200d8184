"""The engine decides and simulates and stores nothing: decided days come in, new decisions go out as events."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

import core
from core import market
from core.backtest.engine import Backtest, Decided
from core.backtest.feed import Feed


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")


class Silent:
    """A Player that must never be asked."""

    name, model, seed = "house", None, 0

    def propose(self, *args):
        raise AssertionError("an agent was asked for a day already decided")


def spec(**fields):
    return core.BacktestSpec(**{"symbols": ["MSFT", "AAPL"], "start": "2012-02-01", "end": "2012-04-30",
                                "presets": [("moderate", core.load_preset("moderate").model_copy(
                                    update={"allowed_symbols": ["MSFT", "AAPL"]}))], **fields})


def test_decisions_go_out_as_events_and_come_back_in_without_asking_an_agent():
    s = spec()
    feed = Feed.load(s.symbols, s.start, s.end)
    events: list[Decided] = []
    first = Backtest(s, core.HousePlayer(), core.HouseCoach(), feed=feed).run(events=events.append)
    assert events and {e.symbol for e in events} == {"MSFT", "AAPL"}
    decided = {(e.day, e.symbol): e.decision for e in events}
    again = Backtest(s, Silent(), core.HouseCoach(), feed=feed).run(decided=decided)
    pd.testing.assert_series_equal(again.equity, first.equity)
    pd.testing.assert_frame_equal(again.trades, first.trades)


def test_a_slice_stops_at_the_first_undecided_day_after_n_new_ones_and_carries_on_from_its_events():
    s = spec()
    feed = Feed.load(s.symbols, s.start, s.end)
    whole = Backtest(s, core.HousePlayer(), core.HouseCoach(), feed=feed).run()
    events: list[Decided] = []
    part = Backtest(s, core.HousePlayer(), core.HouseCoach(), feed=feed).run(stop_after=5, events=events.append)
    assert part.status == "paused" and len({e.day for e in events}) == 5
    rest = Backtest(s, core.HousePlayer(), core.HouseCoach(), feed=feed).run(
        decided={(e.day, e.symbol): e.decision for e in events})
    assert rest.status == "finished"
    pd.testing.assert_series_equal(rest.equity, whole.equity)


def test_the_same_spec_with_one_limit_changed_reruns_on_the_same_feed():
    s = spec()
    feed = Feed.load(s.symbols, s.start, s.end)
    base = Backtest(s, core.HousePlayer(), core.HouseCoach(), feed=feed).run()
    tight = Backtest(s.with_limit("max_single_trade_pct", 0.001), core.HousePlayer(), core.HouseCoach(),
                     feed=feed).run()
    assert list(tight.equity.index) == list(base.equity.index)
    assert tight.trades["size_pct"].max() <= 0.001 < base.trades["size_pct"].max()  # the house Player obeys it
    assert tight.preset == "moderate, max_single_trade_pct=0.001"


def test_the_engine_takes_no_store_and_says_where_a_stored_run_is_kept(tmp_path):
    s = spec(end="2012-02-10")
    test = Backtest(s, Silent(), core.HouseCoach())
    with pytest.raises(TypeError, match=r"core\.backtest\.job\.run_stored"):
        test.run(core.Store(tmp_path / "store.db"))


def test_the_engine_neither_imports_the_job_nor_hands_its_names_out():
    # Storage sits at the edge: the job wraps the engine, never the other way round.
    code = ("import sys, core.backtest.engine as e; "
            "print('core.backtest.job' in sys.modules, hasattr(e, 'run_backtest'), hasattr(e, 'reopen_backtest'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


@pytest.mark.parametrize("preset", ["moderate", "strict", "aggressive"])
def test_a_summary_has_the_whole_results_metrics_and_equity_to_the_bit(preset):
    s = spec(presets=[(preset, core.load_preset(preset).model_copy(update={"allowed_symbols": ["MSFT", "AAPL"]}))])
    feed = Feed.load(s.symbols, s.start, s.end)
    whole = Backtest(s, core.HousePlayer(), core.HouseCoach(), feed=feed).run()
    summary = Backtest(s, core.HousePlayer(), core.HouseCoach(), feed=feed).summary()
    pd.testing.assert_series_equal(summary.metrics, whole.metrics, check_exact=True)
    pd.testing.assert_series_equal(summary.equity, whole.equity, check_exact=True)
    assert (summary.status, summary.run_key, summary.source, summary.note, summary.sharpe) == (
        whole.status, whole.run_key, whole.source, whole.note, whole.sharpe)
    assert not hasattr(summary, "limits")
    assert preset != "strict" or len(whole.limits)  # a run in which limits acted is among those compared


def test_the_limits_table_ranks_by_days_blocked_then_rejected_then_aborted_ties_as_they_first_acted():
    from datetime import date

    from core.backtest.limits import LIMIT_COLUMNS, block, limit_table

    d1, d2, d3 = date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)
    acted = [(d1, "tie_b", "rejected", True), (d1, "tie_a", "rejected", True), (d2, "most_days", "rejected", False),
             (d1, "most_days", "aborted", True), (d3, "most_days", "aborted", True), (d2, "rejects", "rejected", False),
             (d3, "rejects", "rejected", False), (d2, "aborts", "aborted", False)]
    blocks = [block(day, "MSFT", name, kind, None, 100_000.0, blocked) for day, name, kind, blocked in acted]
    table = limit_table(blocks, {}, core.Costs(), [d1, d2, d3], [100_000.0, 100_500.0, 100_200.0, 100_900.0])
    assert list(table.index) == ["most_days", "tie_b", "tie_a", "rejects", "aborts"]
    assert list(table.columns) == LIMIT_COLUMNS
    assert table.loc["most_days"].tolist() == [1, 2, 0, 2, 1200.0, 0.0]  # blocked on d1 (+500) and d3 (+700)
    assert [str(t) for t in table.dtypes] == ["int64"] * 4 + ["float64"] * 2


def test_an_unrecorded_run_skips_what_only_history_reads_and_a_recorded_one_stores_it(tmp_path):
    # A run that records nothing reads only each exchange's Decision: no round's reasoning check, no copies
    # of the inputs, no second run of the breakers the day's book already passed. History shows a recorded one's.
    from core.backtest import job
    from core.exchange.loop import run_exchange_sync

    s = spec(end="2012-02-29")
    asked, rounds = [], []

    def exchange(world, rules, portfolio, *agents, **options):  # gets the options through **options, as every other
        asked.append((options["decision_only"], options["breakers_checked"]))
        artifact = run_exchange_sync(world, rules, portfolio, *agents, **options)
        assert artifact.world_state is world and artifact.portfolio_snapshot is portfolio
        rounds.extend(artifact.rounds)
        return artifact

    plain = Backtest(s, core.HousePlayer(), core.HouseCoach()).run(exchange=exchange)
    assert asked and set(asked) == {(True, True)}
    assert rounds and all(r.reasoning_check is None for r in rounds)
    store = core.Store(tmp_path / "store.db")
    recorded = job.run_stored(Backtest(s, core.HousePlayer(), core.HouseCoach(), record_exchanges=True), store)
    stored = store.list_exchanges(strategy=f"backtest:{recorded.run_key}", limit=None)
    assert len(stored) == (recorded.days["outcome"] != "SKIPPED").sum()
    kept = [r for row in stored for r in store.get_exchange(row["run_id"]).rounds]
    assert len(kept) == len(rounds) and all(r.reasoning_check is not None for r in kept)
    pd.testing.assert_frame_equal(recorded.trades, plain.trades)
