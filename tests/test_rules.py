"""Every rule of SPEC §4 on both sides of its threshold, long and short, with its arithmetic."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

import core
from core.exchange.rules import TOLERANCE, check_actions, ruling
from tests.support.builders import entry, proposal, same_as_validated

LOOSE = dict(max_position_pct=1.0, max_single_trade_pct=1.0, max_leverage=10, max_drawdown_pct=1.0,
             max_daily_loss_pct=1.0, min_risk_reward=0.1, max_open_positions=10, abort_on_violations=[])


def loose(**overrides) -> core.Constraints:
    """A schema in which only the overridden limits can bite."""
    return core.Constraints(**{**LOOSE, **overrides})


def check_of(verdict: core.Verdict, name: str, action: int | None = 0) -> core.Check:
    found = [c for c in verdict.checks if c.constraint == name and (action is None or c.action == action)]
    assert found, f"no {name} check in {[c.constraint for c in verdict.checks]}"
    return found[0]


def test_essay_worked_example_fails_with_its_arithmetic():
    verdict = core.check_proposal(proposal(entry()), loose(min_risk_reward=2.0))
    rr = check_of(verdict, "min_risk_reward")
    assert not rr.passed
    assert rr.arithmetic == "min_risk_reward: (267.14-264.14)/(264.14-262.14) = 3.00/2.00 = 1.50 < 2.00 FAIL"
    assert rr.value == pytest.approx(1.5)
    assert verdict.decision == "REJECT" and verdict.violations == ["min_risk_reward"]


@pytest.mark.parametrize("side,e,s,t", [("enter_long", 100, 98, 104), ("enter_short", 100, 102, 96)])
def test_risk_reward_equal_to_minimum_passes_and_just_below_fails(side, e, s, t):
    assert check_of(core.check_proposal(proposal(entry(side, e=e, s=s, t=t)), loose(min_risk_reward=2.0)),
                    "min_risk_reward").passed
    nudged = t - 0.01 if side == "enter_long" else t + 0.01
    rr = check_of(core.check_proposal(proposal(entry(side, e=e, s=s, t=nudged)), loose(min_risk_reward=2.0)),
                  "min_risk_reward")
    assert not rr.passed and "FAIL" in rr.arithmetic


def test_short_risk_reward_arithmetic_reads_entry_minus_target():
    rr = check_of(core.check_proposal(proposal(entry("enter_short", e=100, s=102, t=97)), loose(min_risk_reward=1.0)),
                  "min_risk_reward")
    assert rr.arithmetic == "min_risk_reward: (100.00-97.00)/(102.00-100.00) = 3.00/2.00 = 1.50 >= 1.00 PASS"


def test_float_noise_at_the_threshold_passes_within_tolerance():
    # 0.1 + 0.2 != 0.3 in floating point; the rule must not punish that.
    verdict = core.check_proposal(proposal(entry(size=0.1 + 0.2)), loose(max_single_trade_pct=0.3))
    assert check_of(verdict, "max_single_trade_pct").passed
    verdict = core.check_proposal(proposal(entry(size=0.3 + 10 * TOLERANCE)), loose(max_single_trade_pct=0.3))
    assert not check_of(verdict, "max_single_trade_pct").passed


@pytest.mark.parametrize("side,e,s,t,ok", [
    ("enter_long", 100, 98, 104, True), ("enter_long", 100, 101, 104, False), ("enter_long", 100, 98, 99, False),
    ("enter_short", 100, 102, 96, True), ("enter_short", 100, 99, 96, False), ("enter_short", 100, 102, 101, False),
    ("enter_long", 100, -1, 104, False),
])
def test_bracket_order_long_and_short(side, e, s, t, ok):
    verdict = core.check_proposal(proposal(entry(side, e=e, s=s, t=t)), loose())
    assert check_of(verdict, "bracket").passed is ok
    # R/R is not computed, so not reported, when the bracket is invalid.
    assert any(c.constraint == "min_risk_reward" for c in verdict.checks) is ok


def test_bracket_rejects_zero_size():
    verdict = core.check_proposal(proposal(entry(size=0.0)), loose())
    assert not check_of(verdict, "bracket").passed


def test_allowed_symbols_both_sides():
    c = loose(allowed_symbols=["AMZN"])
    assert check_of(core.check_proposal(proposal(entry(symbol="AMZN")), c), "allowed_symbols").passed
    verdict = core.check_proposal(proposal(entry(symbol="AAPL")), c)
    check = check_of(verdict, "allowed_symbols")
    assert not check.passed and check.arithmetic == "allowed_symbols: AAPL not in [AMZN] FAIL"


def test_hold_checks_only_the_symbol():
    verdict = core.check_proposal(proposal({"action_type": "hold", "symbol": "AAPL"}), loose(allowed_symbols=["AMZN"]))
    assert [c.constraint for c in verdict.checks] == ["allowed_symbols"]
    assert verdict.decision == "REJECT"


@pytest.mark.parametrize("size,ok", [(0.05, True), (0.0501, False)])
def test_max_single_trade(size, ok):
    assert check_of(core.check_proposal(proposal(entry(size=size)), loose(max_single_trade_pct=0.05)),
                    "max_single_trade_pct").passed is ok


def test_a_failure_rounding_would_hide_is_written_with_eight_digits():
    """0.05000001 fails a 0.05 limit (beyond the tolerance), and at four digits both read 0.0500."""
    over = check_of(core.check_proposal(proposal(entry(size=0.05000001)), loose(max_single_trade_pct=0.05)),
                    "max_single_trade_pct")
    assert over.arithmetic == "max_single_trade_pct: 0.05000001 > 0.05000000 FAIL"
    at = check_of(core.check_proposal(proposal(entry(size=0.05)), loose(max_single_trade_pct=0.05)),
                  "max_single_trade_pct")
    assert at.arithmetic == "max_single_trade_pct: 0.0500 <= 0.0500 PASS"


@pytest.mark.parametrize("side,existing,ok", [
    ("enter_long", 0.10, True), ("enter_long", 0.11, False),  # 0.10 + 0.05 = 0.15 at the limit
    ("enter_short", -0.10, True), ("enter_short", -0.11, False),
    ("enter_short", 0.11, True),  # a short against a long nets down
])
def test_max_position_counts_the_existing_position(side, existing, ok):
    portfolio = core.Portfolio(positions={"AMZN": existing})
    e, s, t = (100, 98, 104) if side == "enter_long" else (100, 102, 96)
    verdict = core.check_proposal(proposal(entry(side, size=0.05, e=e, s=s, t=t)), loose(max_position_pct=0.15), portfolio)
    assert check_of(verdict, "max_position_pct").passed is ok


def test_max_position_sums_two_actions_in_one_symbol():
    verdict = core.check_proposal(proposal(entry(size=0.1), entry(size=0.1)), loose(max_position_pct=0.15))
    assert not check_of(verdict, "max_position_pct").passed


def test_exit_frees_its_position_before_count_and_leverage():
    portfolio = core.Portfolio(positions={"MSFT": 0.5, "TSLA": 0.5})
    c = loose(max_open_positions=2, max_leverage=1.0)
    opening = core.check_proposal(proposal(entry(size=0.05)), c, portfolio)
    assert not check_of(opening, "max_open_positions", None).passed
    assert not check_of(opening, "max_leverage", None).passed
    with_exit = core.check_proposal(proposal({"action_type": "exit", "symbol": "MSFT"}, entry(size=0.05)), c, portfolio)
    assert check_of(with_exit, "max_open_positions", None).passed
    assert check_of(with_exit, "max_leverage", None).passed
    assert check_of(with_exit, "max_leverage", None).value == pytest.approx(0.55)


@pytest.mark.parametrize("limit,ok", [(1.0, True), (0.99, False)])
def test_max_leverage_sums_absolute_positions(limit, ok):
    portfolio = core.Portfolio(positions={"MSFT": 0.5, "TSLA": -0.45})
    verdict = core.check_proposal(proposal(entry(size=0.05)), loose(max_leverage=limit), portfolio)
    assert check_of(verdict, "max_leverage", None).passed is ok


@pytest.mark.parametrize("open_limit,ok", [(2, True), (1, False)])
def test_max_open_positions(open_limit, ok):
    verdict = core.check_proposal(proposal(entry(symbol="AMZN"), entry(symbol="MSFT")), loose(max_open_positions=open_limit))
    assert check_of(verdict, "max_open_positions", None).passed is ok


def test_daily_loss_adds_todays_loss_to_the_risk_of_the_stops():
    # today -1000 on 100000 = 0.01; risk 0.05 * 2/100 = 0.001; total 0.011
    portfolio = core.Portfolio(today_pnl=-1000)
    long_, short = entry(size=0.05, e=100, s=98, t=104), entry("enter_short", size=0.05, e=100, s=102, t=96)
    for action in (long_, short):
        at = core.check_proposal(proposal(action), loose(max_daily_loss_pct=0.011), portfolio)
        check = check_of(at, "max_daily_loss_pct", None)
        assert check.passed and check.value == pytest.approx(0.011)
        assert "0.010000 + 0.001000 = 0.011000 <= 0.011000 PASS" in check.arithmetic
        assert not check_of(core.check_proposal(proposal(action), loose(max_daily_loss_pct=0.0109), portfolio),
                            "max_daily_loss_pct", None).passed


def test_daily_loss_arithmetic_of_a_flat_day_has_no_negative_zero():
    verdict = core.check_proposal(proposal(entry(size=0.05, e=100, s=98, t=104)), loose(), core.Portfolio())
    assert check_of(verdict, "max_daily_loss_pct", None).arithmetic.startswith(
        "max_daily_loss_pct: max(0, 0.00)/100000.00 + 0.0500x2.00/100.00 = 0.000000 + 0.001000")


def test_daily_loss_ignores_a_gain_today():
    verdict = core.check_proposal(proposal(entry(size=0.05, e=100, s=98, t=104)), loose(max_daily_loss_pct=0.001),
                                  core.Portfolio(today_pnl=5000))
    assert check_of(verdict, "max_daily_loss_pct", None).passed


def test_drawdown_adds_the_current_drawdown():
    # 1 - 95000/100000 = 0.05, plus 0.05 * 2/100 = 0.001
    portfolio = core.Portfolio(equity=95_000, peak_equity=100_000)
    action = entry(size=0.05, e=100, s=98, t=104)
    assert check_of(core.check_proposal(proposal(action), loose(max_drawdown_pct=0.051), portfolio), "max_drawdown_pct", None).passed
    failed = core.check_proposal(proposal(action), loose(max_drawdown_pct=0.0509, abort_on_violations=["max_drawdown_pct"]), portfolio)
    assert not check_of(failed, "max_drawdown_pct", None).passed
    assert failed.decision == "ABORT"


def test_stop_atr_multiple_is_checked_when_set_against_the_symbols_atr():
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=100, sma5=1, sma10=1, atr=1.0)
    action = entry(e=100, s=98.5, t=104)  # stop 1.5 away
    assert check_of(core.check_proposal(proposal(action), loose(min_stop_atr_multiple=1.5), world=world), "min_stop_atr_multiple").passed
    assert not check_of(core.check_proposal(proposal(action), loose(min_stop_atr_multiple=1.6), world=world), "min_stop_atr_multiple").passed
    names = [c.constraint for c in core.check_proposal(proposal(action), loose(), world=world).checks]
    assert "min_stop_atr_multiple" not in names  # off: not checked at all


def test_stop_atr_multiple_fails_closed_when_the_symbols_atr_is_unknown():
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=100, sma5=1, sma10=1, atr=1.0)
    msft = entry(symbol="MSFT", e=400, s=399.9, t=401)  # a stop 0.10 from entry, and no ATR row for MSFT
    for seen in (dict(world=world), dict(world=world.model_copy(update={"atr": None})), dict()):
        verdict = core.check_proposal(proposal(msft), loose(min_stop_atr_multiple=1.0), **seen)
        check = check_of(verdict, "min_stop_atr_multiple")
        assert check.arithmetic == "min_stop_atr_multiple: no ATR known for MSFT, cannot verify FAIL"
        assert not check.passed and verdict.decision == "REJECT"
    # told the ATR of MSFT, the check is made (and passes with a stop wide enough)
    wide = entry(symbol="MSFT", e=400, s=396, t=410)
    verdict = core.check_proposal(proposal(wide), loose(min_stop_atr_multiple=1.0), world=world, atr={"MSFT": 3.5})
    assert check_of(verdict, "min_stop_atr_multiple").arithmetic == (
        "min_stop_atr_multiple: |400.00-396.00| = 4.00 vs 1.00x3.50 = 4.00 >= 3.50 PASS")


def test_an_entry_then_an_exit_of_the_same_symbol_leaves_no_position_but_its_risk_counts():
    both = proposal(entry(symbol="AMZN", size=0.03, e=185, s=182, t=191), {"action_type": "exit", "symbol": "AMZN"})
    verdict = core.check_proposal(both, core.load_preset("moderate"), core.Portfolio(positions={"AMZN": 0.14}))
    position = check_of(verdict, "max_position_pct")
    assert position.passed and position.value == 0 and position.arithmetic.startswith("max_position_pct: AMZN |+0.1400 -0.1400| = 0.0000")
    assert check_of(verdict, "max_daily_loss_pct", None).value == pytest.approx(0.03 * 3 / 185)
    assert check_of(verdict, "max_drawdown_pct", None).value == pytest.approx(0.03 * 3 / 185)
    # No position is left: the leverage is a sum of nothing, and a count of held symbols, written as floats.
    for counted in ("max_leverage", "max_open_positions"):
        assert repr(check_of(verdict, counted, None).value) == "0.0"
    assert same_as_validated(verdict)


def _random_action(rng: random.Random, symbols: list[str]) -> dict:
    kind = rng.choice(["enter_long", "enter_short", "exit", "hold"])
    symbol = rng.choice(symbols)
    if kind in ("exit", "hold"):
        return {"action_type": kind, "symbol": symbol}
    e = rng.choice([rng.uniform(1, 500), 100.0])
    s, t = sorted([rng.uniform(0.5 * e, 1.5 * e), rng.uniform(0.5 * e, 1.5 * e)])
    if rng.random() < 0.5:
        s, t = t, s
    return entry(kind, symbol, rng.choice([rng.uniform(0, 0.2), 0.03]), e, s, t)


def test_fuzz_proposals_that_repeat_a_symbol_never_raise():
    """Enter then exit, two entries, opposite sides, exits of symbols not held: always a verdict."""
    rng = random.Random(20251126)
    schemas = [core.load_preset(name) for name in core.list_presets()]
    for n in range(3000):
        symbols = rng.sample(["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL"], rng.randint(1, 2))
        actions = [_random_action(rng, symbols) for _ in range(rng.randint(2, 3))]
        held = {s: rng.choice([-0.1, 0.0, 0.05, 0.14]) for s in rng.sample(symbols, rng.randint(0, len(symbols)))}
        world = core.WorldState(symbol=symbols[0], as_of="2025-03-04 10:00", price=100, sma5=1, sma10=1,
                                atr=rng.choice([None, 1.5]))
        verdict = core.check_proposal(proposal(*actions), schemas[n % len(schemas)], core.Portfolio(positions=held),
                                      world)
        assert verdict.decision in ("APPROVE", "REJECT", "ABORT")
        assert set(verdict.violations) == {c.constraint for c in verdict.checks if not c.passed}
        assert same_as_validated(verdict)  # the rules build their verdicts without validating them


def test_a_ruling_is_the_verdicts_decision_and_violations_without_its_checks():
    """What a backtest's fill re-check reads: the same decision and violations, in the same order, as the whole
    verdict's, over every preset (tiers included), books down on the day or from the peak, with and without ATRs."""
    rng = random.Random(20261206)
    schemas = [core.load_preset(name) for name in core.list_presets()]
    assert any(schema.tiers for schema in schemas)
    outcomes = set()
    for n in range(3000):
        symbols = rng.sample(["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL"], rng.randint(1, 3))
        actions = [core.Action.model_validate(_random_action(rng, symbols)) for _ in range(rng.randint(1, 3))]
        held = {s: rng.choice([-0.1, 0.0, 0.05, 0.14]) for s in rng.sample(symbols, rng.randint(0, len(symbols)))}
        equity = rng.choice([100_000.0, 93_000.0])
        portfolio = core.Portfolio(equity=equity, peak_equity=100_000.0, start_of_day_equity=rng.choice([equity, 99_000.0]),
                                   today_pnl=rng.choice([0.0, -1_500.0, 800.0]), cumulative_pnl=equity - 100_000.0,
                                   positions=held)
        world = core.WorldState(symbol=symbols[0], as_of="2025-03-04 10:00", price=100, sma5=1, sma10=1,
                                atr=rng.choice([None, 1.5]), volatility_regime=rng.choice(["low", "high"]))
        schema, atr = schemas[n % len(schemas)], rng.choice([None, {symbols[-1]: 2.5}])
        verdict = check_actions(actions, schema, portfolio, world, atr=atr)
        assert ruling(actions, schema, portfolio, world, atr=atr) == (verdict.decision, verdict.violations)
        outcomes.add(verdict.decision)
    assert outcomes == {"APPROVE", "REJECT", "ABORT"}
    assert ruling([core.Action(action_type="hold", symbol="AMZN")], core.Constraints()) == ("APPROVE", [])


def test_a_verdict_without_passing_words_is_the_verdict_with_the_passing_checks_arithmetic_left_empty():
    rng = random.Random(20261207)
    schemas = [core.load_preset(name) for name in core.list_presets()]
    for n in range(1000):
        symbols = rng.sample(["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL"], rng.randint(1, 3))
        made = proposal(*[_random_action(rng, symbols) for _ in range(rng.randint(1, 3))])
        held = {s: rng.choice([-0.1, 0.0, 0.05, 0.14]) for s in rng.sample(symbols, rng.randint(0, len(symbols)))}
        portfolio = core.Portfolio(equity=95_000.0, peak_equity=100_000.0, today_pnl=rng.choice([0.0, -900.0]),
                                   positions=held)
        world = core.WorldState(symbol=symbols[0], as_of="2025-03-04 10:00", price=100, sma5=1, sma10=1,
                                atr=rng.choice([None, 1.5]), volatility_regime=rng.choice(["low", "high"]))
        schema = schemas[n % len(schemas)]
        full = core.check_proposal(made, schema, portfolio, world)
        lean = core.check_proposal(made, schema, portfolio, world, passing_words=False)
        assert lean.model_dump(exclude={"checks"}) == full.model_dump(exclude={"checks"})
        assert [c.model_dump(exclude={"arithmetic"}) for c in lean.checks] == \
            [c.model_dump(exclude={"arithmetic"}) for c in full.checks]
        assert [c.arithmetic for c in lean.checks] == [("" if c.passed else c.arithmetic) for c in full.checks]
        assert same_as_validated(lean)


def test_decision_abort_beats_reject_and_names_every_violation():
    c = loose(max_single_trade_pct=0.01, max_leverage=0.02, abort_on_violations=["max_leverage"])
    verdict = core.check_proposal(proposal(entry(size=0.05)), c)
    assert verdict.decision == "ABORT"
    assert verdict.violations == ["max_single_trade_pct", "max_leverage"]


def test_approve_when_everything_passes(moderate):
    verdict = core.check_proposal(proposal(entry(size=0.03, e=100, s=98, t=104)), moderate)
    assert verdict.decision == "APPROVE" and verdict.violations == []
    assert all(c.passed and c.arithmetic.endswith("PASS") for c in verdict.checks)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_invalid_input_never_a_pass(value):
    with pytest.raises(ValueError, match="entry_price"):
        proposal(entry(e=value))


# -- circuit breakers --------------------------------------------------------------------

AT_TEN = datetime.fromisoformat("2025-03-04T10:00:00-05:00")


@pytest.mark.parametrize("portfolio,expected", [
    (dict(equity=90_000, peak_equity=100_000), "mll_breached"),
    (dict(equity=90_001, peak_equity=100_000), None),
    (dict(today_pnl=-2_000), "daily_loss_limit"),
    (dict(today_pnl=-1_999), None),
    (dict(cumulative_pnl=1_000, today_pnl=501), "consistency_rule"),
    (dict(cumulative_pnl=1_000, today_pnl=500), None),
    (dict(cumulative_pnl=-100, today_pnl=400), None),
])
def test_breaker_thresholds(moderate, portfolio, expected):
    assert core.circuit_breaker(moderate, core.Portfolio(**portfolio), AT_TEN) == expected


def test_breaker_priority_order(moderate):
    everything = core.Portfolio(equity=89_000, peak_equity=100_000, start_of_day_equity=100_000,
                                today_pnl=3_000, cumulative_pnl=1_000)
    late = datetime.fromisoformat("2025-03-04T17:00:00-05:00")
    assert core.circuit_breaker(moderate, everything, late) == "mll_breached"
    daily_and_rest = everything.model_copy(update={"equity": 99_000, "today_pnl": -2_500})
    assert core.circuit_breaker(moderate, daily_and_rest, late) == "daily_loss_limit"
    consistency_and_cutoff = core.Portfolio(cumulative_pnl=1_000, today_pnl=900)
    assert core.circuit_breaker(moderate, consistency_and_cutoff, late) == "consistency_rule"
    assert core.circuit_breaker(moderate, core.Portfolio(), late) == "trading_cutoff"


def test_cutoff_compares_times_not_strings():
    c = loose(trading_cutoff_time="16:20")
    morning = datetime.fromisoformat("2025-03-04T09:30:00-05:00")  # "9:30" > "16:20" as strings
    assert core.circuit_breaker(c, core.Portfolio(), morning) is None
    assert core.circuit_breaker(c, core.Portfolio(), datetime.fromisoformat("2025-03-04T16:20:00-05:00")) == "trading_cutoff"
    assert core.circuit_breaker(c.model_copy(update={"trading_cutoff_time": None}), core.Portfolio(),
                                datetime.fromisoformat("2025-03-04T23:59:00-05:00")) is None


def test_cutoff_is_read_in_eastern_time():
    c = loose(trading_cutoff_time="16:20")
    utc = datetime.fromisoformat("2025-03-04T20:00:00+00:00")  # 15:00 ET
    assert core.circuit_breaker(c, core.Portfolio(), utc) is None
    assert core.circuit_breaker(c, core.Portfolio(), datetime.fromisoformat("2025-03-04T21:30:00+00:00")) == "trading_cutoff"


def test_a_backtests_numpy_figures_give_the_verdict_validation_would():
    """A backtest's book holds numpy figures (built without validation): the checks hold Python bools and floats."""
    import numpy as np

    book = core.Portfolio.model_construct(equity=np.float64(99_000.0), peak_equity=np.float64(100_000.0),
                                          start_of_day_equity=np.float64(99_500.0), cumulative_pnl=np.float64(-1_000.0),
                                          today_pnl=np.float64(-500.0), positions={"MSFT": np.float64(0.02)})
    verdict = core.check_proposal(proposal(entry(size=0.03, e=100, s=98, t=104)), core.load_preset("moderate"), book)
    assert {type(c.passed) for c in verdict.checks} == {bool}
    assert {type(c.value) for c in verdict.checks if c.value is not None} == {float}
    assert same_as_validated(verdict)
