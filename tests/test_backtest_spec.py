"""BacktestSpec: the one definition of a backtest's form, its defaults and its bounds."""

from __future__ import annotations

import math
from datetime import date

import pytest

import core
from core.backtest.spec import BacktestSpec, Costs, named_schemas


def spec(**fields) -> BacktestSpec:
    return BacktestSpec(**{"symbols": ["msft"], "start": "2021-03-01", "end": "2021-06-30",
                           "presets": ["moderate"], **fields})


def test_a_spec_normalises_its_symbols_and_reads_its_dates():
    s = spec(symbols=["msft", " aapl "])
    assert s.symbols == ["MSFT", "AAPL"] and s.start == date(2021, 3, 1) and s.symbol == "MSFT,AAPL"


def test_the_defaults_are_written_once_and_shared_with_the_portfolio():
    s = spec()
    assert s.capital == core.Portfolio().equity == 100_000.0
    assert (s.costs.fee_bps, s.costs.slippage_bps, s.costs.max_hold_days) == (1.0, 2.0, 10)
    assert s.depth == "standard"


def test_a_spec_survives_json_as_a_saved_job_does():
    s = spec(presets=["moderate", "strict"], costs=Costs(fee_bps=0.5))
    assert BacktestSpec.model_validate_json(s.model_dump_json()) == s


def test_schemas_are_named_by_one_rule():
    moderate = core.load_preset("moderate")
    names = [n.name for n in named_schemas([moderate, ("mine", moderate), "strict", "strict"])]
    assert names == ["schema 1", "mine", "strict", "strict (2)"]


def test_the_same_spec_with_one_limit_changed_changes_nothing_else():
    s = spec(presets=["moderate", "strict"], seed=3, costs=Costs(fee_bps=0))
    what_if = s.with_limit("max_leverage", 2.0)
    assert what_if.preset.constraints.max_leverage == 2.0
    assert what_if.preset.name == "moderate, max_leverage=2.0"
    assert what_if.preset.constraints.model_dump(exclude={"max_leverage"}) == \
        s.preset.constraints.model_dump(exclude={"max_leverage"})
    assert what_if.model_dump(exclude={"presets"}) == s.model_dump(exclude={"presets"})
    with pytest.raises(core.InvalidInput, match="max_leverage"):
        s.with_limit("max_leverage", -1)
    with pytest.raises(core.InvalidInput, match="constraint: 'nope'"):
        s.with_limit("nope", 1)


@pytest.mark.parametrize("fields,message", [
    ({"symbols": []}, "symbols"),
    ({"symbols": ["MSFT", "msft"]}, "symbols: .*different symbols"),
    ({"symbols": ["X Y"]}, "symbols: .*not a ticker"),
    ({"start": "2021-03-01garbage"}, "start: .*not a date"),
    ({"start": "0001-06-01"}, "start: 0001-06-01 is outside"),
    ({"start": "2021-07-01"}, "start 2021-07-01 is after end"),
    ({"presets": []}, "presets"),
    ({"presets": ["moderate", "strict", "aggressive"]}, "presets"),
    ({"depth": "deep"}, "depth: .*got 'deep'"),
    ({"capital": math.nan}, "capital"),
    ({"capital": 0}, "capital"),
    ({"walk_forward_split": math.nan}, "walk_forward_split"),
    ({"walk_forward_split": 5}, "walk_forward_split"),
    ({"walk_forward_split": -1}, "walk_forward_split"),
    ({"seed": -1}, "seed"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_spec_is_invalid_input_naming_the_field(fields, message):
    with pytest.raises(core.InvalidInput, match=message):
        spec(**fields)


@pytest.mark.parametrize("fields,message", [
    ({"max_hold_days": math.nan}, "max_hold_days"),
    ({"max_hold_days": True}, "max_hold_days"),
    ({"max_hold_days": 0}, "max_hold_days"),
    ({"fee_bps": None}, "fee_bps"),
    ({"fee_bps": 1e308}, "fee_bps"),
    ({"slippage_bps": -1}, "slippage_bps"),
    ({"slippage_bps": math.inf}, "slippage_bps"),
])
def test_bad_costs_are_invalid_input_naming_the_field(fields, message):
    with pytest.raises(core.InvalidInput, match=message):
        Costs(**fields)
    assert Costs(0.5, 1, 5) == Costs(fee_bps=0.5, slippage_bps=1, max_hold_days=5)  # positional, as before


def test_a_backtest_runs_one_schema_of_a_spec():
    two = spec(presets=["moderate", "strict"])
    with pytest.raises(core.InvalidInput, match="presets: a Backtest runs one schema"):
        core.Backtest(two, core.HousePlayer(), core.HouseCoach())
    assert [s.preset.name for s in two.runs()] == ["moderate", "strict"]
