"""Validation at the edges: presets, constraint files, world states, portfolios, proposals."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from pydantic import ValidationError

import core
import core.exchange.presets
from core.exchange.presets import PRESETS_DIR


def test_every_preset_loads_and_has_every_field():
    assert core.list_presets() == ["aggressive", "conservative", "funded_challenge", "futures_compatible", "moderate",
                                   "strict"]
    for name in core.list_presets():
        raw = json.loads((PRESETS_DIR / f"{name}.json").read_text())
        assert set(raw) | {"tiers"} == set(core.Constraints.model_fields)  # tiers only where a preset has some
        assert core.load_preset(name).model_dump() == raw


def test_moderate_is_the_default_schema():
    assert core.load_preset("moderate") == core.Constraints()


def test_presets_are_distinct_as_described():
    p = {name: core.load_preset(name) for name in core.list_presets()}
    assert p["conservative"].max_open_positions == 2 and p["moderate"].max_open_positions == 3
    assert p["aggressive"].max_open_positions == 5
    assert p["aggressive"].max_position_pct > p["moderate"].max_position_pct > p["conservative"].max_position_pct
    assert p["strict"].max_single_trade_pct < p["conservative"].max_single_trade_pct
    assert p["strict"].min_risk_reward > p["conservative"].min_risk_reward
    fut = p["futures_compatible"]
    assert fut.max_daily_loss_pct < p["moderate"].max_daily_loss_pct
    assert fut.cutoff() < p["moderate"].cutoff()
    assert len({m.model_dump_json() for m in p.values()}) == len(p)


def test_unknown_preset_names_the_choices():
    with pytest.raises(core.InvalidInput, match="unknown preset 'nope'.*moderate"):
        core.load_preset("nope")


@pytest.mark.parametrize("change,message", [
    ({"max_position_pct": -0.1}, "max_position_pct"),
    ({"max_single_trade_pct": 1.5}, "max_single_trade_pct"),
    ({"max_daily_loss_pct": "a lot"}, "max_daily_loss_pct"),
    ({"allowed_symbols": ["AMZN", "not a symbol!"]}, "allowed_symbols"),
    ({"abort_on_violations": ["max_fun"]}, "unknown constraint name 'max_fun'"),
    ({"trading_cutoff_time": "25:00"}, "trading_cutoff_time"),
    ({"max_rounds": 0}, "max_rounds"),
    ({"surprise": 1}, "surprise"),
    ({"max_leverage": float("nan")}, "max_leverage"),
])
def test_bad_constraint_values_name_the_field(change, message):
    data = {**core.Constraints().model_dump(), **change}
    with pytest.raises(core.InvalidInput, match=message):
        core.parse_constraints(json.dumps(data) if "nan" not in str(change) else data)


@pytest.mark.parametrize("change,message", [
    ({"max_position_pct": True}, "max_position_pct"),
    ({"max_rounds": "3"}, "max_rounds"),
    ({"max_open_positions": 2.0}, "max_open_positions"),
    ({"abort_on_violations": "max_leverage"}, "abort_on_violations"),
])
def test_wrong_types_are_named_not_coerced(change, message):
    with pytest.raises(core.InvalidInput, match=message):
        core.parse_constraints(json.dumps({**core.Constraints().model_dump(), **change}))


def test_wrong_types_in_a_proposal_or_portfolio_are_named():
    action = {"action_type": "enter_long", "symbol": "AMZN", "size_pct": "0.03", "entry_price": 100,
              "stop_loss": 98, "take_profit": 104}
    with pytest.raises(ValidationError, match="size_pct"):
        core.Proposal.model_validate({"reasoning": "r", "actions": [action]})
    with pytest.raises(ValidationError, match="today_pnl"):
        core.Portfolio.model_validate({"today_pnl": False})


def test_nothing_is_silently_clamped():
    with pytest.raises(core.InvalidInput):
        core.parse_constraints({**core.Constraints().model_dump(), "max_position_pct": 1.01})


def test_missing_fields_and_bad_json_are_named():
    with pytest.raises(core.InvalidInput, match="missing fields?: .*max_rounds"):
        core.parse_constraints({k: v for k, v in core.Constraints().model_dump().items() if k != "max_rounds"})
    with pytest.raises(core.InvalidInput, match="not valid JSON"):
        core.parse_constraints("{not json")
    with pytest.raises(core.InvalidInput, match="JSON object"):
        core.parse_constraints("[1, 2]")


def test_cutoff_accepts_single_digit_hours_and_null():
    assert core.Constraints(trading_cutoff_time="9:30").trading_cutoff_time == "09:30"
    assert core.Constraints(trading_cutoff_time=None).cutoff() is None


def test_symbols_are_normalised_not_guessed():
    assert core.Constraints(allowed_symbols=[" amzn", "btc-usd"]).allowed_symbols == ["AMZN", "BTC-USD"]


def test_world_state_time_is_eastern():
    naive = core.WorldState(symbol="AMZN", as_of="2025-07-01 10:00", price=1, sma5=1, sma10=1)
    assert naive.as_of.isoformat() == "2025-07-01T10:00:00-04:00"
    utc = core.WorldState(symbol="AMZN", as_of="2025-01-02T15:00:00Z", price=1, sma5=1, sma10=1)
    assert utc.as_of.isoformat() == "2025-01-02T10:00:00-05:00"


@pytest.mark.parametrize("field,value", [("price", 0), ("price", float("inf")), ("session", "lunch"),
                                         ("volatility_regime", "wild"), ("position", "sideways")])
def test_bad_world_state_names_the_field(field, value):
    data = {"symbol": "AMZN", "as_of": "2025-03-04 10:00", "price": 185, "sma5": 183, "sma10": 180, field: value}
    with pytest.raises(ValidationError, match=field):
        core.WorldState.model_validate(data)


def test_portfolio_defaults_and_checks():
    p = core.Portfolio(equity=50_000)
    assert p.peak_equity == 50_000 and p.start_of_day_equity == 50_000
    with pytest.raises(ValidationError, match="peak_equity"):
        core.Portfolio(equity=100, peak_equity=90)


def test_proposal_shape_is_enforced():
    with pytest.raises(ValidationError, match="stop_loss"):
        core.Proposal.model_validate({"reasoning": "r", "actions": [
            {"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.01, "entry_price": 1, "take_profit": 2}]})
    with pytest.raises(ValidationError, match="actions"):
        core.Proposal.model_validate({"reasoning": "r", "actions": []})
    with pytest.raises(ValidationError, match="actions"):
        core.Proposal.model_validate({"reasoning": "r", "actions": [{"action_type": "hold", "symbol": "AMZN"}] * 4})
    with pytest.raises(ValidationError, match="leverage"):
        core.Proposal.model_validate({"reasoning": "r", "leverage": 3, "actions": [{"action_type": "hold", "symbol": "AMZN"}]})


def test_reasoning_comes_first_in_the_proposal_schema():
    assert list(core.Proposal.model_json_schema()["properties"]) == ["reasoning", "actions"]


def test_a_malformed_preset_file_is_named_with_its_field(tmp_path, monkeypatch):
    monkeypatch.setattr(core.exchange.presets, "PRESETS_DIR", tmp_path)
    (tmp_path / "broken.json").write_text("{oops")
    bad = {**core.Constraints().model_dump(), "max_leverage": -2}
    (tmp_path / "negative.json").write_text(json.dumps(bad))
    with pytest.raises(core.InvalidInput, match="preset broken: not valid JSON"):
        core.load_preset("broken")
    with pytest.raises(core.InvalidInput, match="preset negative: max_leverage: .*greater than 0.*-2"):
        core.load_preset("negative")


def test_models_validate_on_assignment_and_a_refused_assignment_changes_nothing():
    portfolio = core.Portfolio()
    with pytest.raises(ValueError, match="today_pnl"):
        portfolio.today_pnl = float("nan")
    with pytest.raises(ValueError, match="peak_equity 100000.0 is below equity 200000.0"):
        portfolio.equity = 200_000.0
    assert (portfolio.today_pnl, portfolio.equity) == (0.0, 100_000.0)
    assert core.circuit_breaker(core.load_preset("moderate"), portfolio, datetime(2025, 3, 4, 10, 0)) is None
    constraints = core.load_preset("moderate")
    with pytest.raises(ValueError, match="max_rounds"):
        constraints.max_rounds = 10**9
    assert constraints.max_rounds == 3
    portfolio.positions = {"msft": 0.1}
    assert portfolio.positions == {"MSFT": 0.1}  # normalised like at construction


def test_portfolio_symbols_that_collide_after_normalisation_are_refused():
    with pytest.raises(ValueError, match="'AMZN' and 'amzn' are the same symbol AMZN"):
        core.Portfolio(positions={"AMZN": 0.14, "amzn": 0.0})
    with pytest.raises(ValueError, match="same symbol BTC-USD"):
        core.Portfolio(positions={"btc-usd": 0.1, " BTC-USD ": 0.1})
