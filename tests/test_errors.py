"""One error family: every error the engine raises on purpose is a core.PlayerCoachError."""

from __future__ import annotations

import pytest

import core
from core import prices
from core.backtest import job
from core.exchange.agent import Turn
from tests.support.builders import entry, proposal

FAMILY = (core.InvalidInput, core.StoreError, core.MarketDataError, core.AgentError, core.SpendLimitReached)


def test_every_error_is_a_player_coach_error_and_importable_from_where_it_was():
    from core.exchange.agent import AgentError, SpendLimitReached
    from core.market import MarketDataError
    from core.exchange.presets import InvalidInput
    from core.journal.store import StoreError

    assert (InvalidInput, StoreError, MarketDataError, AgentError, SpendLimitReached) == FAMILY
    assert all(issubclass(error, core.PlayerCoachError) for error in FAMILY)
    assert {"PlayerCoachError", *(e.__name__ for e in FAMILY)} <= set(core.__all__)


def test_the_spend_guard_is_not_an_agent_error_so_no_except_order_can_swallow_it():
    assert not issubclass(core.SpendLimitReached, core.AgentError)
    assert not issubclass(core.AgentError, core.SpendLimitReached)
    refused = core.SpendLimitReached("over", core.Usage(input=3))
    assert refused.usage == core.Usage(input=3) and core.AgentError("x").usage == core.Usage()


class Refused:
    name = "refused"

    def __init__(self, error):
        self.error = error

    def propose(self, world, constraints, portfolio, history):
        yield "thinking"
        raise self.error
        return Turn(proposal(entry()))  # pragma: no cover - unreachable


@pytest.mark.parametrize("error,outcome,reason", [
    (core.SpendLimitReached("spend guard: 2 API calls", core.Usage(input=5, cost_usd=0.1)), "ABORT", "spend_guard"),
    (core.AgentError("rate limited", core.Usage(input=5, cost_usd=0.1)), "ERROR", "rate limited"),
])
def test_the_loop_tells_the_spend_guard_from_an_agent_failure_and_keeps_the_bill(world, moderate, error, outcome, reason):
    artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), Refused(error), core.HouseCoach())
    assert (artifact.outcome, artifact.termination_reason) == (outcome, reason)
    assert artifact.usage == core.Usage(input=5, cost_usd=0.1)


@pytest.mark.parametrize("call,message", [
    (lambda store: store.save_preset("  ", core.load_preset("moderate")), "preset name: must not be empty"),
    (lambda store: prices.model_prices("gpt-4"), "model: no price for model 'gpt-4'"),
    (lambda store: job.reopen_backtest(store, "nope"), "run_key: no backtest 'nope'"),
    (lambda store: core.run_backtest("MSFT", "2021-03-01", "2021-06-30", core.load_preset("moderate"),
                                     core.HousePlayer(), core.HouseCoach(), depth="deep"), "depth: .*got 'deep'"),
    (lambda store: core.run_backtest("MSFT", "2021-03-01", "2021-06-30", core.load_preset("moderate"),
                                     core.HousePlayer(), core.HouseCoach(), capital=-1), "capital: .*got -1"),
    (lambda store: store.record({"run_id": "x"}), "artifact: "),
])
def test_bad_arguments_to_the_public_api_are_invalid_input_naming_the_field(store, call, message):
    with pytest.raises(core.InvalidInput, match=message):
        call(store)
