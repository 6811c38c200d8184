"""core.backtest.engine: no lookahead, fills, stops and gaps, fees, metrics by hand, breakers, resume."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

import core
from core.backtest import job
from core import market, prices
from core.backtest import result as metrics
from core.__main__ import main as cli
from core.exchange.agent import Turn
from core.market import MarketDataError, load_bars
from core.exchange.schema import Constraints, Proposal

from tests.support.bars import frame

@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """No test here may reach yfinance: loading is offline, and a download would fail loudly."""
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")  # a developer's real cache never leaks in
    monkeypatch.setattr(market, "yfinance_download", _no_download)


def _no_download(symbol, start, end):
    raise AssertionError(f"a test asked yfinance for {symbol}")


OPEN_RULES = Constraints(
    max_position_pct=1.0, max_single_trade_pct=1.0, max_leverage=2.0, max_drawdown_pct=0.5,
    max_daily_loss_pct=0.5, consistency_rule_pct=1.0, trading_cutoff_time=None, allowed_symbols=["TEST"],
    max_open_positions=3, min_risk_reward=0.1, max_rounds=1, abort_on_violations=[],
)


class ScriptPlayer:
    """Enters on the days of its script (entry at the world price), holds otherwise; records what it saw."""

    name = "script"

    def __init__(self, script: dict[date, dict] | None = None, crash_on: date | None = None):
        self.script = script or {}
        self.crash_on = crash_on
        self.seen: dict[date, core.WorldState] = {}

    def propose(self, world, constraints, portfolio, history):
        day = world.as_of.date()
        self.seen[day] = world
        if day == self.crash_on:
            raise KeyboardInterrupt  # a crash mid-run: the process dies here
        plan = self.script.get(day)
        if plan:
            actions = [{"action_type": plan.get("side", "enter_long"), "symbol": world.symbol,
                        "size_pct": plan.get("size", 0.5), "entry_price": world.price, "stop_loss": plan["stop"],
                        "take_profit": plan["target"]}]
            if plan.get("exit_first"):
                actions.insert(0, {"action_type": "exit", "symbol": world.symbol})
        else:
            actions = [{"action_type": "hold", "symbol": world.symbol}]
        yield "plan"
        return Turn(Proposal.model_validate({"reasoning": "script", "actions": actions}))


def flat_bars(n=30, price=100.0) -> pd.DataFrame:
    return frame(np.full(n, price))


def days_of(f):
    return [d.date() for d in f.index]


# -- fills, stops, gaps, fees --------------------------------------------------------------

def test_stop_first_when_one_bar_touches_both_stop_and_target():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[15], ["High", "Low"]] = [106.0, 97.0]  # day 15 touches target 104 and stop 98
    player = ScriptPlayer({d[15]: {"stop": 98.0, "target": 104.0}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    assert len(r.trades) == 1
    trade = r.trades.iloc[0]
    assert trade["exit_reason"] == "stop" and trade["exit_price"] == 98.0 and trade["exit_day"] == d[15]
    assert trade["pnl"] == pytest.approx(-2.0 * 0.5 * 100_000 / 100)


def test_a_gap_through_the_stop_fills_at_the_open():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[16], ["Open", "High", "Low", "Close"]] = [90.0, 91.0, 89.0, 90.0]
    player = ScriptPlayer({d[15]: {"stop": 98.0, "target": 104.0}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    trade = r.trades.iloc[0]
    assert trade["exit_reason"] == "stop (gap)" and trade["exit_price"] == 90.0 and trade["exit_day"] == d[16]


def test_target_hit_and_holding_limit():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[17], "High"] = 105.0
    player = ScriptPlayer({d[15]: {"stop": 98.0, "target": 104.0}, d[20]: {"stop": 98.0, "target": 104.0}})
    r = job.run_backtest("TEST", d[12], d[27], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0,
                        slippage_bps=0, max_hold_days=3)
    first, second = r.trades.iloc[0], r.trades.iloc[1]
    assert (first["exit_reason"], first["exit_day"], first["exit_price"]) == ("target", d[17], 104.0)
    assert (second["exit_reason"], second["exit_day"], second["bars_held"]) == ("holding limit", d[22], 3)


def test_fee_and_slippage_arithmetic_by_hand():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[17], "High"] = 105.0
    player = ScriptPlayer({d[15]: {"stop": 98.0, "target": 104.0, "size": 0.5}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=10,
                        slippage_bps=20)
    trade = r.trades.iloc[0]
    fill = 100.0 * 1.002  # open of t, 20 bp against a buyer
    qty = 0.5 * 100_000 / fill
    out = 104.0 * (1 - 0.002)  # the target, 20 bp against a seller
    fees = qty * fill * 0.001 + qty * out * 0.001
    assert trade["entry_price"] == pytest.approx(fill)
    assert trade["qty"] == pytest.approx(qty)
    assert trade["exit_price"] == pytest.approx(out)
    assert trade["fees"] == pytest.approx(fees)
    assert trade["pnl"] == pytest.approx(qty * (out - fill) - fees)
    assert r.equity.iloc[-1] == pytest.approx(100_000 + trade["pnl"])


def test_short_fills_fees_slippage_and_pnl_by_hand():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[17], "Low"] = 95.0  # touches the short's target 96
    player = ScriptPlayer({d[15]: {"side": "enter_short", "stop": 102.0, "target": 96.0, "size": 0.5}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=10,
                        slippage_bps=20)
    trade = r.trades.iloc[0]
    fill = 100.0 * (1 - 0.002)  # a seller gets 20 bp less
    qty = 0.5 * 100_000 / fill
    out = 96.0 * (1 + 0.002)  # buying back costs 20 bp more
    fees = qty * fill * 0.001 + qty * out * 0.001  # both legs
    assert (trade["side"], trade["exit_reason"], trade["exit_day"]) == ("short", "target", d[17])
    assert trade["entry_price"] == pytest.approx(fill) and trade["exit_price"] == pytest.approx(out)
    assert trade["fees"] == pytest.approx(fees)
    assert trade["pnl"] == pytest.approx(qty * (fill - out) - fees) and trade["pnl"] > 0  # a short gains on a fall
    assert r.equity.iloc[-1] == pytest.approx(100_000 + trade["pnl"])
    # marked to market while open: at the close of d15 (100) the short is down its entry costs only
    assert r.equity[r.equity.index.date == d[15]].iloc[0] == pytest.approx(100_000 + qty * (fill - 100.0)
                                                                           - qty * fill * 0.001)


def test_a_short_gapped_through_its_stop_fills_at_the_open_and_loses():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[16], ["Open", "High", "Low", "Close"]] = [105.0, 106.0, 104.0, 105.0]
    player = ScriptPlayer({d[15]: {"side": "enter_short", "stop": 102.0, "target": 96.0}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    trade = r.trades.iloc[0]
    assert (trade["exit_reason"], trade["exit_price"], trade["exit_day"]) == ("stop (gap)", 105.0, d[16])
    assert trade["pnl"] == pytest.approx(-5.0 * 0.5 * 100_000 / 100)


@pytest.mark.parametrize("side, stop, target, gap_open", [("enter_long", 98.0, 104.0, 110.0),
                                                          ("enter_short", 102.0, 96.0, 90.0)])
def test_a_gap_past_the_target_fills_at_the_open_better_than_the_target(side, stop, target, gap_open):
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[16], ["Open", "High", "Low", "Close"]] = [gap_open, gap_open + 1, gap_open - 1, gap_open]
    player = ScriptPlayer({d[15]: {"side": side, "stop": stop, "target": target}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    trade = r.trades.iloc[0]
    assert (trade["exit_reason"], trade["exit_price"], trade["exit_day"]) == ("target (gap)", gap_open, d[16])
    assert trade["pnl"] == pytest.approx(10.0 * 0.5 * 100_000 / 100)  # 10 points, more than the target's 4


def test_equity_is_marked_to_market_at_every_close_while_a_trade_is_open():
    closes = np.array([100.0] * 16 + [101.0, 103.0, 102.0] + [102.0] * 11)
    f = frame(closes)
    d = days_of(f)
    player = ScriptPlayer({d[15]: {"stop": 90.0, "target": 120.0, "size": 0.5}})
    r = job.run_backtest("TEST", d[12], d[25], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0,
                        max_hold_days=4)
    qty = 0.5 * 100_000 / 100.0
    by_day = pd.Series(r.equity.to_numpy(), index=[t.date() for t in r.equity.index])
    for i in (15, 16, 17, 18):
        assert by_day[d[i]] == pytest.approx(100_000 + qty * (closes[i] - 100.0))
    assert r.trades.iloc[0]["exit_day"] == d[18] and r.trades.iloc[0]["exit_reason"] == "holding limit"


def test_an_unfilled_entry_after_an_exit_names_the_entry_fill_price():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[15], ["Open", "High", "Low", "Close"]] = [97.0, 97.5, 96.5, 97.0]  # opens below the stop
    player = ScriptPlayer({d[15]: {"stop": 98.0, "target": 104.0, "exit_first": True}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    assert r.trades.empty
    assert "at the fill price 97.00" in r.days.set_index("day").loc[d[15], "note"]


def test_a_run_without_trades_has_defined_metrics():
    f = flat_bars()
    d = days_of(f)
    r = job.run_backtest("TEST", d[12], d[25], OPEN_RULES, ScriptPlayer(), core.HouseCoach(), bars=f)
    m = r.metrics
    assert m["trades"] == 0 and m["days_traded"] == 0 and r.trades.empty
    for name in ("total_return_pct", "cagr_pct", "sharpe", "sortino", "max_drawdown_pct", "win_rate"):
        assert m[name] == 0.0, name
    assert m["approval_rate"] == 100.0 and m["avg_rounds"] == 1.0
    # Undefined, not zero: no drawdown has no Calmar ratio and no recovery (the page shows a dash).
    assert math.isnan(m["calmar"]) and math.isnan(m["recovery_days"])
    json.dumps(r.to_dict(), allow_nan=False)  # undefined values become null, never NaN in JSON


def test_entries_are_rechecked_at_the_fill_price():
    f = flat_bars()
    d = days_of(f)
    f.loc[f.index[15], ["Open", "High", "Low", "Close"]] = [97.0, 97.5, 96.5, 97.0]  # opens below the stop
    player = ScriptPlayer({d[15]: {"stop": 98.0, "target": 104.0}})
    r = job.run_backtest("TEST", d[12], d[20], OPEN_RULES, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    assert r.trades.empty
    note = r.days.set_index("day").loc[d[15], "note"]
    assert "entry not filled" in note and "bracket" in note


# -- no lookahead ---------------------------------------------------------------------------

def test_changing_any_bar_after_day_t_leaves_every_decision_up_to_t_unchanged():
    bars = load_bars("MSFT", "2019-03-11", "2020-06-30", online=False).frame
    start, t = date(2019, 9, 3), date(2020, 2, 14)
    moderate = core.load_preset("moderate")
    a = job.run_backtest("MSFT", start, date(2020, 6, 30), moderate, core.HousePlayer(), core.HouseCoach(), bars=bars)
    changed = bars.copy()
    after = changed.index.date > t
    changed.loc[after, ["Open", "High", "Low", "Close"]] *= np.linspace(0.5, 2.0, after.sum())[:, None]
    changed.loc[after, "Volume"] = 1.0
    b = job.run_backtest("MSFT", start, date(2020, 6, 30), moderate, core.HousePlayer(), core.HouseCoach(), bars=changed)
    upto = a.days["day"] <= t
    pd.testing.assert_frame_equal(a.days[upto], b.days[upto])
    assert a.equity[a.equity.index.date <= t].equals(b.equity[b.equity.index.date <= t])
    assert not a.days.equals(b.days)  # the change did reach the later days


def test_the_player_sees_only_bars_before_each_day():
    f = frame(np.linspace(100, 130, 30))
    d = days_of(f)
    player = ScriptPlayer()
    job.run_backtest("TEST", d[12], d[29], OPEN_RULES, player, core.HouseCoach(), bars=f)
    for i in range(12, 30):
        assert player.seen[d[i]].price == f["Close"].iloc[i - 1]


def test_warm_up_days_are_skipped_with_a_reason():
    f = flat_bars()
    d = days_of(f)
    r = job.run_backtest("TEST", d[5], d[15], OPEN_RULES, ScriptPlayer(), core.HouseCoach(), bars=f)
    skipped = r.days[r.days["outcome"] == "SKIPPED"]
    assert list(skipped["day"]) == d[5:10]
    assert skipped["reason"].iloc[0] == "warm-up: 5 earlier bars, the world state needs 10"
    assert r.metrics["days_skipped"] == 5


# -- circuit breakers -----------------------------------------------------------------------

def test_breakers_fire_on_the_right_days_and_no_agent_is_asked():
    f = flat_bars(40)
    d = days_of(f)
    # Long from day 15 with the stop at 96; day 17 gaps to 80 (a 20 % loss on the position).
    f.loc[f.index[17], ["Open", "High", "Low", "Close"]] = [80.0, 81.0, 79.0, 80.0]
    f.iloc[18:, :4] = f.iloc[18:, :4] - 20.0
    rules = OPEN_RULES.model_copy(update={"max_daily_loss_pct": 0.08, "max_drawdown_pct": 0.5})
    player = ScriptPlayer({d[15]: {"stop": 96.0, "target": 110.0, "size": 0.5}})
    r = job.run_backtest("TEST", d[12], d[25], rules, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    by_day = r.days.set_index("day")
    # day 17 lost 0.5 x 20 % = 10 % >= 8 %: the decision for day 18 (on day 17's close) trips the breaker
    assert by_day.loc[d[18], "outcome"] == "ABORT" and by_day.loc[d[18], "reason"] == "daily_loss_limit"
    assert by_day.loc[d[18], "rounds"] == 0 and d[18] not in player.seen
    assert by_day.loc[d[19], "outcome"] == "APPROVE" and d[19] in player.seen
    assert r.metrics["days_aborted"] == 1

    tight = rules.model_copy(update={"max_drawdown_pct": 0.09})
    player = ScriptPlayer({d[15]: {"stop": 96.0, "target": 110.0, "size": 0.5}})
    r = job.run_backtest("TEST", d[12], d[25], tight, player, core.HouseCoach(), bars=f, fee_bps=0, slippage_bps=0)
    after = r.days[r.days["day"] >= d[18]]
    assert set(after["reason"]) == {"mll_breached"} and not any(day in player.seen for day in after["day"])


# -- metrics by hand ------------------------------------------------------------------------

def test_sharpe_by_hand():
    r = [0.01, -0.02, 0.03]
    mean = 0.02 / 3
    sd = math.sqrt(((0.01 - mean) ** 2 + (-0.02 - mean) ** 2 + (0.03 - mean) ** 2) / 2)
    assert metrics.sharpe_ratio(r) == pytest.approx(mean / sd * math.sqrt(252))
    assert metrics.sharpe_ratio([0.0, 0.0, 0.0]) == 0.0


def test_sortino_by_hand():
    r = [0.01, -0.02, 0.03]
    downside = math.sqrt((0.02 ** 2) / 3)
    assert metrics.sortino_ratio(r) == pytest.approx((0.02 / 3) / downside * math.sqrt(252))


def test_max_drawdown_is_the_deepest_not_the_final():
    equity = pd.Series([100.0, 120.0, 90.0, 130.0, 104.0], index=pd.bdate_range("2024-01-01", periods=5))
    assert metrics.max_drawdown(equity) == pytest.approx(0.25)  # 120 -> 90; the final one is 0.20
    assert metrics.drawdown_spells(equity) == (2, 1)  # peak 120 at 1, recovered at 3; trough at 2
    under = pd.Series([100.0, 90.0, 95.0, 80.0, 85.0], index=pd.bdate_range("2024-01-01", periods=5))
    assert metrics.drawdown_spells(under) == (4, None)


def test_cagr_by_hand():
    equity = pd.Series([100.0, 121.0], index=pd.to_datetime(["2020-01-01", "2022-01-01"]))
    years = 731 / 365.25
    assert metrics.cagr(equity) == pytest.approx(1.21 ** (1 / years) - 1)


def test_win_rate_by_hand():
    assert metrics.win_rate([10.0, -5.0, 0.0, 3.0]) == 50.0
    assert metrics.win_rate([]) == 0.0


def test_result_metrics_match_the_hand_functions_on_its_own_curve():
    r = job.run_backtest("MSFT", "2020-01-02", "2020-12-31", core.load_preset("moderate"), core.HousePlayer(),
                        core.HouseCoach(), bars=load_bars("MSFT", online=False))
    returns = r.equity.pct_change().dropna()
    assert r.sharpe == pytest.approx(metrics.sharpe_ratio(returns))
    assert r.max_drawdown_pct == pytest.approx(metrics.max_drawdown(r.equity) * 100)
    assert r.total_return_pct == pytest.approx((r.equity.iloc[-1] / 100_000 - 1) * 100)
    assert r.metrics["trades"] == len(r.trades)
    assert r.win_rate == pytest.approx((r.trades["pnl"] > 0).mean() * 100)
    assert r.calmar == pytest.approx(r.cagr_pct / r.max_drawdown_pct)
    first_open = r.prices["Open"].iloc[0]
    assert r.buy_hold_return_pct == pytest.approx((r.prices["Close"].iloc[-1] / first_open - 1) * 100)
    assert r.buy_hold.iloc[-1] == pytest.approx(100_000 * (1 + r.buy_hold_return_pct / 100))  # the page's curve
    assert r.equity.index[0].date() == date(2019, 12, 31)  # the curve starts at the close before day one
    assert r.metrics["days"] == len(r.days) == len(r.equity) - 1
    assert set(r.by_regime.index) == {"low", "medium", "high"} and r.by_regime["days"].sum() == len(r.days)
    wf = r.walk_forward
    assert wf["in_sample"]["days"] + wf["out_of_sample"]["days"] == len(r.days)
    assert wf["in_sample"]["end"] < wf["out_of_sample"]["start"]


# -- resume, cancel, reopen -----------------------------------------------------------------

def test_resume_after_a_crash_gives_the_same_result_as_an_uninterrupted_run(store):
    bars = load_bars("TSLA", online=False)
    moderate = core.load_preset("moderate")
    whole = job.run_backtest("TSLA", "2017-06-01", "2017-12-29", moderate, core.HousePlayer(), core.HouseCoach(), bars=bars)

    class Crashing(core.HousePlayer):
        def propose(self, world, *args):
            if world.as_of.date() == date(2017, 9, 18):
                raise KeyboardInterrupt
            return (yield from super().propose(world, *args))

    with pytest.raises(KeyboardInterrupt):
        job.run_backtest("TSLA", "2017-06-01", "2017-12-29", moderate, Crashing(), core.HouseCoach(), bars=bars,
                        store=store, run_key="crash-test")
    stored = store.backtest_days("crash-test")
    done = len(stored)
    assert 0 < done < len(whole.days)
    assert max(day for day, _ in stored) < "2017-09-18"

    counting = ScriptCounter()
    resumed = job.run_backtest("TSLA", "2017-06-01", "2017-12-29", moderate, counting, core.HouseCoach(), bars=bars,
                              store=store, run_key="crash-test")
    assert counting.days[0] == date(2017, 9, 18)  # only the days not yet stored are decided again
    pd.testing.assert_series_equal(resumed.equity, whole.equity)
    pd.testing.assert_frame_equal(resumed.trades, whole.trades)
    assert resumed.metrics.equals(whole.metrics.rename(resumed.metrics.name))


class ScriptCounter(core.HousePlayer):
    def __init__(self):
        super().__init__()
        self.days = []

    def propose(self, world, *args):
        self.days.append(world.as_of.date())
        return (yield from super().propose(world, *args))


def test_cancel_stops_the_run_and_a_rerun_finishes_it(store):
    bars = load_bars("MSFT", online=False)
    moderate = core.load_preset("moderate")
    seen = []
    cancelled = job.run_backtest("MSFT", "2021-01-04", "2021-03-31", moderate, core.HousePlayer(), core.HouseCoach(),
                                bars=bars, store=store, progress=lambda n, total, day: seen.append(n),
                                cancel=lambda: len(seen) >= 10)
    assert cancelled.status == "cancelled" and len(cancelled.days) == 10
    assert store.list_backtests()[0]["status"] == "cancelled"
    finished = job.run_backtest("MSFT", "2021-01-04", "2021-03-31", moderate, core.HousePlayer(), core.HouseCoach(),
                               bars=bars, store=store)
    assert finished.status == "finished" and finished.run_key == cancelled.run_key
    whole = job.run_backtest("MSFT", "2021-01-04", "2021-03-31", moderate, core.HousePlayer(), core.HouseCoach(), bars=bars)
    pd.testing.assert_series_equal(finished.equity, whole.equity)


def test_a_stored_run_reopens_without_any_agent_call(store):
    bars = load_bars("BTC-USD", online=False)
    r = job.run_backtest("BTC-USD", "2020-03-01", "2020-05-31", core.load_preset("aggressive"), core.HousePlayer(seed=3),
                        core.HouseCoach(), bars=bars, store=store, preset="aggressive")
    rows = store.list_backtests()
    assert rows[0]["run_key"] == r.run_key and rows[0]["status"] == "finished"
    assert rows[0]["metrics"]["trades"] == r.metrics["trades"]
    again = job.reopen_backtest(store, r.run_key, bars=bars)
    pd.testing.assert_series_equal(again.equity, r.equity)
    assert again.preset == "aggressive"


def test_record_exchanges_puts_every_decision_in_history(store):
    bars = load_bars("MSFT", online=False)
    r = job.run_backtest("MSFT", "2021-02-01", "2021-02-26", core.load_preset("moderate"), core.HousePlayer(),
                        core.HouseCoach(), bars=bars, store=store, record_exchanges=True)
    assert store.count_exchanges(strategy=f"backtest:{r.run_key}") == len(r.days)


# -- depth, comparison, cost, CLI ---------------------------------------------------------

def test_fast_depth_is_one_round_and_standard_revises():
    bars = load_bars("MSFT", online=False)
    strict = core.load_preset("strict")
    fast = job.run_backtest("MSFT", "2021-01-04", "2021-02-26", strict, core.HousePlayer(), core.HouseCoach(),
                           bars=bars, depth="fast")
    standard = job.run_backtest("MSFT", "2021-01-04", "2021-02-26", strict, core.HousePlayer(), core.HouseCoach(),
                               bars=bars, depth="standard")
    ran = fast.days[fast.days["outcome"] != "SKIPPED"]
    assert set(ran["rounds"]) <= {0, 1} and standard.avg_rounds > 1


def test_compare_presets_runs_both_on_the_same_days_and_marks_the_better():
    comparison = job.compare_presets("TSLA", "2018-01-02", "2018-06-29", "moderate", "strict", core.HousePlayer(),
                                    core.HouseCoach(), bars=load_bars("TSLA", online=False))
    table = comparison.table
    assert list(table.columns) == ["moderate", "strict", "better"]
    a, b = comparison.results["moderate"], comparison.results["strict"]
    assert list(a.days["day"]) == list(b.days["day"])
    x, y = table.loc["approval_rate", "moderate"], table.loc["approval_rate", "strict"]
    assert x > y and table.loc["approval_rate", "better"] == ""  # strict does not allow TSLA: activity, not merit
    assert len(b.trades) == 0 < len(a.trades)
    # strict never traded: its flat curve's risk-adjusted figures beat nobody, its drawdown is not a merit
    assert table.loc["sharpe", "better"] == metrics.NOT_COMPARABLE
    assert table.loc["max_drawdown_pct", "better"] == ""


def test_risk_metrics_of_a_run_without_trades_credit_nobody_but_its_return_still_compares():
    def result(**values):
        return type("R", (), {"metrics": pd.Series(values, dtype=object)})()

    table = metrics.compare_table({
        "busy": result(total_return_pct=-1.0, max_drawdown_pct=4.0, sharpe=-0.3, win_rate=40.0, trades=12),
        "idle": result(total_return_pct=0.0, max_drawdown_pct=0.0, sharpe=math.nan, win_rate=0.0, trades=0),
    })
    better = table["better"]
    assert better["sharpe"] == metrics.NOT_COMPARABLE
    assert better["max_drawdown_pct"] == better["win_rate"] == ""  # never marked, traded or not
    assert better["total_return_pct"] == "idle"  # doing nothing beat losing 1 %: that is a fair comparison


def test_the_better_value_per_metric_follows_its_direction():
    def result(**metrics):
        return type("R", (), {"metrics": pd.Series(metrics, dtype=object)})()

    table = metrics.compare_table({
        "a": result(sharpe=1.2, max_drawdown_pct=8.0, sortino=math.inf, calmar=math.nan, trades=10, cost_usd=0.0),
        "b": result(sharpe=0.9, max_drawdown_pct=5.0, sortino=math.inf, calmar=2.0, trades=30, cost_usd=0.0),
    })
    better = table["better"]
    assert better["sharpe"] == "a"  # higher is better
    assert better["max_drawdown_pct"] == ""  # shallower but with what return: a trade-off, unmarked
    assert better["sortino"] == "="  # no downside on either side: a tie, not a winner
    assert better["calmar"] == ""  # undefined on one side: no winner
    assert better["trades"] == ""  # more trades is neither better nor worse
    assert better["cost_usd"] == ""  # activity, not merit


def test_cost_estimate_arithmetic():
    # haiku 4.5: $1 in, $5 out, $0.10 cache read, $1.25 cache write per million tokens
    per_call = (400 * 1.0 + 350 * 5.0 + 5_800 * 0.1) / 1e6
    per_day = 5_800 * 1.25 / 1e6
    moderate = core.load_preset("moderate")
    est = prices.estimate_cost(100, moderate, "standard", "claude-haiku-4-5-20251001")
    assert est["calls_worst"] == 100 * 2 * 3 and est["calls_typical"] == 300
    assert est["dollars_worst"] == pytest.approx(round(600 * per_call + 100 * per_day, 4))
    assert est["dollars_typical"] == pytest.approx(round(300 * per_call + 100 * per_day, 4))
    assert prices.estimate_cost(100, moderate, "fast", "claude-haiku-4-5-20251001")["calls_worst"] == 200
    sonnet = prices.estimate_cost(100, moderate, "fast", "claude-sonnet-4-5-20250929")
    assert sonnet["dollars_worst"] == pytest.approx(round(3 * (200 * per_call + 100 * per_day), 4))


def test_malformed_bars_give_the_named_error():
    f = flat_bars()
    f.iloc[4, f.columns.get_loc("High")] = -1.0
    with pytest.raises(MarketDataError, match="non-positive High -1 on"):
        job.run_backtest("TEST", "2024-01-02", "2024-02-09", OPEN_RULES, ScriptPlayer(), core.HouseCoach(), bars=f)


def test_cli_backtest_prints_json(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYER_COACH_OFFLINE", "1")
    assert cli(["backtest", "--symbol", "MSFT", "--start", "2020-01-02", "--end", "2020-03-31", "--preset", "moderate",
                "--compare", "strict", "--db", str(tmp_path / "b.db"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"moderate", "strict", "comparison"}
    assert out["moderate"]["source"] == "snapshot" and out["moderate"]["metrics"]["days"] == 62
    assert out["comparison"]["approval_rate"]["better"] == ""  # a higher approval rate is not better in itself
    assert out["strict"]["metrics"]["trades"] < out["moderate"]["metrics"]["trades"]  # strict lets fewer through


def test_stop_after_pauses_and_a_partial_run_reopens_as_far_as_it_got(store):
    bars = load_bars("MSFT", online=False)
    moderate = core.load_preset("moderate")
    part = job.run_backtest("MSFT", "2021-01-04", "2021-03-31", moderate, core.HousePlayer(), core.HouseCoach(),
                           bars=bars, store=store, stop_after=15)
    assert part.status == "paused" and len(part.days) == 15
    reopened = job.reopen_backtest(store, part.run_key, bars=bars)
    assert reopened.status == "paused" and len(reopened.days) == 15
    pd.testing.assert_series_equal(reopened.equity, part.equity)
    more = job.run_backtest("MSFT", "2021-01-04", "2021-03-31", moderate, core.HousePlayer(), core.HouseCoach(),
                           bars=bars, store=store, stop_after=15)
    assert len(more.days) == 30 and more.run_key == part.run_key
