"""Tiers (SPEC §4): limits that change with the drawdown, the day's loss, the profit or the volatility regime."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

import core
from core.exchange.presets import PRESETS_DIR
from core.exchange.schema import MAX_SYMBOLS, RULE_NAMES
from core.exchange.tiers import in_force, tiers_in_force
from tests.support.builders import entry, proposal

LOOSE = dict(max_position_pct=1.0, max_single_trade_pct=0.05, max_leverage=10, max_drawdown_pct=1.0,
             max_daily_loss_pct=1.0, min_risk_reward=0.1, max_open_positions=10, abort_on_violations=[])
AT_5 = {"when": {"drawdown_pct_at_least": 0.05}, "set": {"max_single_trade_pct": 0.01, "max_open_positions": 1}}
AT_3 = {"when": {"drawdown_pct_at_least": 0.03}, "set": {"max_single_trade_pct": 0.02, "min_risk_reward": 2.0}}
HIGH = {"when": {"volatility_regime": "high"}, "set": {"min_risk_reward": 3.0, "max_single_trade_pct": 0.04}}


def schema(*tiers: dict, **overrides) -> core.Constraints:
    return core.Constraints(**{**LOOSE, **overrides, "tiers": list(tiers)})


def down(fraction: float) -> core.Portfolio:
    """A book `fraction` below its peak of 100,000, flat today."""
    equity = 100_000 * (1 - fraction)
    return core.Portfolio(equity=equity, peak_equity=100_000, start_of_day_equity=equity,
                          cumulative_pnl=equity - 100_000)


def check(verdict: core.Verdict, name: str) -> core.Check:
    return next(c for c in verdict.checks if c.constraint == name)


def test_the_arithmetic_names_the_tier_that_set_the_limit():
    verdict = core.check_proposal(proposal(entry(size=0.02)), schema(AT_5), down(0.05))
    assert check(verdict, "max_single_trade_pct").arithmetic == \
        "max_single_trade_pct (tier drawdown >= 5.00 %): 0.0200 > 0.0100 FAIL"
    assert verdict.violations == ["max_single_trade_pct"]
    # A limit no tier set keeps its own name and value.
    assert check(verdict, "min_risk_reward").arithmetic.startswith("min_risk_reward: ")


def test_a_tier_is_in_force_from_its_threshold_only():
    below = core.check_proposal(proposal(entry(size=0.02)), schema(AT_5), down(0.0499))
    assert below.decision == "APPROVE"
    assert check(below, "max_single_trade_pct").arithmetic == "max_single_trade_pct: 0.0200 <= 0.0500 PASS"


def test_every_matching_tier_applies_and_the_strictest_value_wins():
    c, named = in_force(schema(AT_3, AT_5, HIGH), down(0.06),
                        core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180,
                                        volatility_regime="high"))
    assert c.max_single_trade_pct == 0.01 and named["max_single_trade_pct"] == "tier drawdown >= 5.00 %"
    assert c.min_risk_reward == 3.0 and named["min_risk_reward"] == "tier volatility high"  # a min_ limit: highest
    assert c.max_open_positions == 1
    assert c.max_leverage == 10 and "max_leverage" not in named


def test_a_regime_tier_needs_the_world_and_a_schema_without_tiers_is_itself():
    plain = schema()
    assert in_force(plain, down(0.2)) == (plain, {})
    tiered = schema(HIGH)
    assert in_force(tiered, down(0.0))[0] is tiered  # no world: no regime
    calm = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    assert tiers_in_force(tiered, down(0.0), calm) == []


def test_tiers_that_do_not_hold_change_nothing(world):
    p = down(0.01)
    for actions in ([entry(size=0.02)], [entry(size=0.08)], [entry(size=0.03, t=264.5)]):
        assert core.check_proposal(proposal(*actions), schema(AT_3, AT_5), p, world) == \
            core.check_proposal(proposal(*actions), schema(), p, world)


def test_daily_loss_and_profit_tiers_read_the_portfolio():
    daily = {"when": {"daily_loss_pct_at_least": 0.02}, "set": {"max_single_trade_pct": 0.01}}
    profit = {"when": {"profit_pct_at_least": 0.08}, "set": {"max_single_trade_pct": 0.02}}
    lost = core.Portfolio(equity=98_000, peak_equity=100_000, start_of_day_equity=100_000, today_pnl=-2_000)
    ahead = core.Portfolio(equity=108_000, peak_equity=108_000, start_of_day_equity=108_000, cumulative_pnl=8_000)
    assert in_force(schema(daily, profit), lost)[0].max_single_trade_pct == 0.01
    assert in_force(schema(daily, profit), ahead)[0].max_single_trade_pct == 0.02
    assert in_force(schema(daily, profit), core.Portfolio())[0].max_single_trade_pct == 0.05


def test_the_breakers_follow_the_portfolio_tiers_and_say_which():
    tighter = {"when": {"drawdown_pct_at_least": 0.03}, "set": {"max_drawdown_pct": 0.04}}
    c = schema(tighter, max_drawdown_pct=0.10)
    when = datetime(2025, 3, 4, 10, 0)
    assert core.circuit_breaker(c, down(0.039), when) is None
    assert core.circuit_breaker(c, down(0.04), when) == "mll_breached"
    assert core.circuit_breaker(schema(max_drawdown_pct=0.10), down(0.04), when) is None
    from core.exchange.rules import breaker_detail
    assert breaker_detail("mll_breached", c, down(0.04), when).endswith("(tier drawdown >= 3.00 %)")


def test_the_house_player_plans_to_the_limits_in_force(world):
    tiered = schema(AT_5, max_single_trade_pct=0.05, min_risk_reward=1.5)
    player = core.HousePlayer(seed=0, flaw_rate=0.0)
    artifact = core.run_exchange_sync(world, tiered, down(0.06), player, core.HouseCoach())
    assert artifact.outcome == "APPROVE"
    sizes = [a.size_pct for a in artifact.rounds[-1].proposal.actions if a.is_entry]
    assert sizes and max(sizes) <= 0.01
    untiered = core.run_exchange_sync(world, schema(max_single_trade_pct=0.05, min_risk_reward=1.5), down(0.06),
                                      player, core.HouseCoach())
    assert max(a.size_pct for a in untiered.rounds[-1].proposal.actions if a.is_entry) > 0.01


def test_a_schema_without_tiers_dumps_as_before_and_one_with_tiers_round_trips():
    assert "tiers" not in core.Constraints().model_dump(mode="json")
    assert "tiers" not in json.loads(core.Constraints().model_dump_json())
    tiered = schema(AT_3, HIGH)
    dumped = tiered.model_dump(mode="json")
    assert dumped["tiers"][1] == HIGH  # only what a tier names, no nulls
    assert core.parse_constraints(json.dumps(dumped)) == tiered


@pytest.mark.parametrize("tier,named", [
    ({"when": {}, "set": {"max_leverage": 1}}, "tiers.0.when"),
    ({"when": {"drawdown_pct_at_least": 0.05, "volatility_regime": "high"}, "set": {"max_leverage": 1}}, "exactly one"),
    ({"when": {"drawdown_pct_at_least": 1.5}, "set": {"max_leverage": 1}}, "tiers.0.when.drawdown_pct_at_least"),
    ({"when": {"volatility_regime": "wild"}, "set": {"max_leverage": 1}}, "tiers.0.when.volatility_regime"),
    ({"when": {"volatility_regime": "high"}, "set": {}}, "set at least one limit"),
    ({"when": {"volatility_regime": "high"}, "set": {"max_leverage": -1}}, "tiers.0.set.max_leverage"),
    ({"when": {"volatility_regime": "high"}, "set": {"max_rounds": 1}}, "tiers.0.set.max_rounds"),
    ({"when": {"recent_loss": 0.1}, "set": {"max_leverage": 1}}, "tiers.0.when.recent_loss"),
])
def test_a_bad_tier_is_refused_naming_the_field(tier, named):
    with pytest.raises(core.InvalidInput, match=named.replace(".", r"\.")):
        core.parse_constraints({**core.Constraints().model_dump(mode="json"), "tiers": [tier]})


def test_funded_challenge_is_shipped_with_tiers_that_tighten_as_the_drawdown_deepens():
    c = core.load_preset("funded_challenge")
    raw = json.loads((PRESETS_DIR / "funded_challenge.json").read_text())
    assert core.parse_constraints(raw) == c and raw["tiers"] == c.model_dump(mode="json")["tiers"]
    sizes = [in_force(c, down(d))[0].max_single_trade_pct for d in (0.0, 0.03, 0.05)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3


def test_the_schema_caps_the_lists_a_page_or_a_prompt_would_choke_on():
    many = [f"S{i}" for i in range(MAX_SYMBOLS + 1)]
    with pytest.raises(core.InvalidInput, match=f"allowed_symbols: {MAX_SYMBOLS + 1} symbols is more than the "
                                                f"{MAX_SYMBOLS}"):
        core.parse_constraints({**core.Constraints().model_dump(mode="json"), "allowed_symbols": many})
    assert len(core.Constraints(allowed_symbols=many[:MAX_SYMBOLS]).allowed_symbols) == MAX_SYMBOLS
    names = list(RULE_NAMES) + ["max_leverage"]
    with pytest.raises(core.InvalidInput, match="abort_on_violations: List should have at most 10 items"):
        core.parse_constraints({**core.Constraints().model_dump(mode="json"), "abort_on_violations": names})


# -- in a backtest: the tier in force per day -------------------------------------------------

class _Script:
    """Enters TEST on the days of its script at the world price, holds otherwise."""

    name = "script"

    def __init__(self, script: dict):
        self.script = script

    def propose(self, world, constraints, portfolio, history):
        from core.exchange.agent import Turn

        plan = self.script.get(world.as_of.date())
        actions = [{"action_type": "hold", "symbol": world.symbol}] if not plan else [
            {"action_type": "enter_long", "symbol": world.symbol, "size_pct": plan["size"],
             "entry_price": world.price, "stop_loss": 80.0, "take_profit": 150.0}]
        yield "plan"
        return Turn(core.Proposal.model_validate({"reasoning": "script", "actions": actions}))


def _dip_bars(dip_days: range):
    """Flat at 100, with closes at 90 on `dip_days` (a long of half the book is then 5 % down)."""
    import numpy as np

    from tests.support.bars import frame

    closes = np.full(40, 100.0)
    closes[list(dip_days)] = 90.0
    return frame(closes, Open=closes.copy())


def _tiered_backtest(bars, script):
    from core.backtest.job import run_backtest

    rules = core.Constraints(**{**LOOSE, "max_single_trade_pct": 1.0, "max_drawdown_pct": 0.5,
                                "max_daily_loss_pct": 0.5, "consistency_rule_pct": 1.0, "trading_cutoff_time": None,
                                "allowed_symbols": ["TEST"], "max_rounds": 1, "tiers": [AT_5]})
    days = [d.date() for d in bars.index]
    return days, run_backtest("TEST", days[12], days[30], rules, _Script(script), core.HouseCoach(), bars=bars,
                              fee_bps=0, slippage_bps=0)


def test_a_tier_switches_on_the_first_day_the_drawdown_reaches_it_and_off_after_recovery(monkeypatch, tmp_path):
    from core import market

    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    bars = _dip_bars(range(17, 20))  # closes 90 on days 17-19, 100 again from day 20
    d = [x.date() for x in bars.index]
    # Half the book long from day 15's open at 100; days 19 and 23 ask for 30 % more.
    days, r = _tiered_backtest(bars, {d[15]: {"size": 0.5}, d[19]: {"size": 0.3}, d[23]: {"size": 0.3}})
    tier = r.days.set_index("day")["tier"]
    on = "tier drawdown >= 5.00 %"
    # Day t is decided on t-1's close: day 17's close is 5 % down, so the tier holds on days 18-20 and no other.
    assert [day for day in tier.index if tier[day] == on] == [d[18], d[19], d[20]]
    assert set(tier[tier.index < d[18]]) | set(tier[tier.index > d[20]]) == {""}
    outcome = r.days.set_index("day")["outcome"]
    assert outcome[d[19]] == "REJECT-MAX" and outcome[d[23]] == "APPROVE"  # 0.30 > the tier's 0.01, then no tier

    # Only data up to each day: a different future (the dip lasting to day 25) leaves days up to 20 as they were.
    _, longer = _tiered_backtest(_dip_bars(range(17, 26)), {d[15]: {"size": 0.5}, d[19]: {"size": 0.3},
                                                            d[23]: {"size": 0.3}})
    upto = r.days["day"] <= d[20]
    assert list(longer.days[upto]["tier"]) == list(r.days[upto]["tier"])
    assert longer.days.set_index("day")["tier"][d[23]] == on  # the change did reach the later days


def test_a_tier_that_never_holds_leaves_a_golden_backtest_as_it_was(monkeypatch, tmp_path):
    """Tiers that never hold cost nothing: the golden case under moderate, with and without them, day for day."""
    from core import market
    from tests.support.backtest_golden import CASES, QuietCoach, TrendPlayer, load, summary

    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")
    symbol, start, end, preset, _ = CASES["amzn-moderate"]
    never = {"when": {"drawdown_pct_at_least": 0.99}, "set": {"max_single_trade_pct": 0.001}}
    tiered = core.load_preset(preset).model_copy(update={"tiers": [core.Constraints(tiers=[never]).tiers[0]]})
    result = core.run_backtest(symbol, start, end, tiered, TrendPlayer(), QuietCoach(),
                               bars=market.load_bars(symbol, online=False), preset=preset)
    assert set(result.days["tier"]) == {""}
    golden = load()["amzn-moderate"]
    now = summary(result)
    assert (now["days"], now["trades"], now["equity"], now["metrics"]) == \
        (golden["days"], golden["trades"], golden["equity"], golden["metrics"])


def test_funded_challenge_backtests_and_records_its_tiers(monkeypatch, tmp_path):
    from core import market

    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")
    result = core.run_backtest("TSLA", "2018-01-02", "2018-12-31", core.load_preset("funded_challenge"),
                               core.HousePlayer(), core.HouseCoach(), bars=market.load_bars("TSLA", online=False),
                               preset="funded_challenge")
    recorded = set(result.days["tier"]) - {""}
    assert recorded and all(name.startswith("tier ") for part in recorded for name in part.split("; "))
    # Each day's tiers follow from what was known before it: the world's regime (bars up to t-1) and the drawdown
    # at t-1's close (with the house agents the book stays within 3 % here, so only the regime tier holds).
    drawn = 1 - result.equity / result.equity.cummax()
    for day, regime, outcome, tier in result.days[["day", "regime", "outcome", "tier"]].itertuples(index=False):
        if outcome != "SKIPPED":
            assert ("tier volatility high" in tier) == (regime == "high")
        before = drawn[drawn.index.date < day].iloc[-1]
        assert ("tier drawdown >= 3.00 %" in tier) == (before >= 0.03 - 1e-9)
