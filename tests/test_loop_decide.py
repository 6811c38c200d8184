"""decide_exchange, the loop for a caller that reads only how an exchange ended (a backtest recording nothing):
it ends as run_exchange(..., decision_only=True) does, with the same rounds and usage, whatever the agents do."""

from __future__ import annotations

import pytest

import core
from core.backtest.decision import Decision
from core.exchange.agent import AgentError, SpendLimitReached, Turn
from core.exchange.loop import decide_exchange
from tests.support.builders import entry, proposal

GOOD = proposal(entry(size=0.03, e=100, s=98, t=104), reasoning="good")
TOO_BIG = proposal(entry(size=0.5, e=100, s=98, t=104), reasoning="too big")
LEVERED = proposal(entry(size=0.05, e=100, s=98, t=104), reasoning="levered")
BILLED = core.Usage(input=100, output=20, cost_usd=0.0002)


class Scripted:
    """Proposes the given proposals in turn, billing each; `fail` (an exception) is raised at call `fail_on`."""

    name = "scripted-player"

    def __init__(self, *proposals, fail_on: int | None = None, fail: Exception | None = None):
        self.proposals, self.calls, self.fail_on, self.fail = proposals, 0, fail_on, fail

    def propose(self, world, constraints, portfolio, history):
        self.calls += 1
        if self.fail_on == self.calls:
            raise self.fail
        yield "thinking "
        return Turn(self.proposals[min(self.calls, len(self.proposals)) - 1], BILLED)


class FailingCoach(core.HouseCoach):
    """Says a word, then fails as told (after the proposal was checked: the round is kept as it stood)."""

    def __init__(self, fail: Exception):
        self.fail = fail

    def critique(self, *args):
        yield "checking"
        raise self.fail


def _both(world, constraints, portfolio, make_player, make_coach, **options):
    """The artifact of run_exchange deciding only, and decide_exchange's ending, each with fresh agents."""
    artifact = core.run_exchange_sync(world, constraints, portfolio, make_player(), make_coach(), run_id="r",
                                      now=lambda: world.as_of, decision_only=True, **options)
    ended = decide_exchange(world, constraints, portfolio, make_player(), make_coach(), run_id="r", **options)
    return artifact, ended


def _same(artifact, ended) -> None:
    assert (ended.outcome, ended.reason, ended.usage) == (artifact.outcome, artifact.termination_reason, artifact.usage)
    assert [r.model_dump(exclude={"latency_ms"}) for r in ended.rounds] == \
        [r.model_dump(exclude={"latency_ms"}) for r in artifact.rounds]
    assert [r.model_fields_set for r in ended.rounds] == [r.model_fields_set for r in artifact.rounds]
    mine, theirs = Decision.ended(ended), Decision.of(artifact)
    assert (mine.outcome, mine.reason, mine.rounds, mine.tokens, mine.cost, mine.actions, mine.verdicts) == \
        (theirs.outcome, theirs.reason, theirs.rounds, theirs.tokens, theirs.cost, theirs.actions, theirs.verdicts)


def test_the_house_agents_end_every_exchange_as_the_loop_does(moderate):
    outcomes = set()
    for preset in ("moderate", "strict", "futures_compatible"):
        rules = core.load_preset(preset).model_copy(update={"allowed_symbols": ["AMZN", "MSFT"]})
        for seed in range(4):
            for world in (core.WorldState(symbol=s, as_of=f"2025-03-0{day} 10:00", price=185, sma5=183 + d, sma10=180,
                                          atr=3.1) for s in ("AMZN", "MSFT") for d in (6, -6, 0) for day in (3, 4, 5)):
                for book in (core.Portfolio(), core.Portfolio(positions={"MSFT": 0.04})):
                    artifact, ended = _both(world, rules, book, lambda: core.HousePlayer(seed, 0.9), core.HouseCoach,
                                            breakers_checked=True)
                    _same(artifact, ended)
                    outcomes.add((ended.outcome, len(ended.rounds)))
    assert {("APPROVE", 1), ("APPROVE", 2)} <= outcomes


@pytest.mark.parametrize("script, update, book", [
    ((TOO_BIG, GOOD), {}, {}),
    ((TOO_BIG,), {"max_rounds": 2}, {}),
    ((LEVERED, GOOD), {}, {"positions": {"MSFT": 0.75, "TSLA": 0.74}}),
    ((GOOD,), {"allowed_symbols": ["MSFT"]}, {}),
    ((GOOD,), {}, {"equity": 80_000, "peak_equity": 100_000, "start_of_day_equity": 80_000}),
    ((GOOD,), {}, {"today_pnl": -5_000}),
])
def test_outcomes_rounds_and_usage_are_the_loops(world, moderate, script, update, book):
    rules, portfolio = moderate.model_copy(update=update), core.Portfolio(**book)
    for checked in (False, True):
        _same(*_both(world, rules, portfolio, lambda: Scripted(*script), core.HouseCoach, breakers_checked=checked))


@pytest.mark.parametrize("player_fails, coach_fails", [
    (AgentError("the model returned nonsense twice", BILLED), None),
    (ZeroDivisionError("oops"), None),
    (SpendLimitReached("over the hourly limit", BILLED), None),
    (None, AgentError("rate limited", core.Usage(input=7, output=3, cost_usd=0.0001))),
    (None, KeyError("bug")),
    (None, SpendLimitReached("over the daily limit")),
])
def test_an_agent_that_fails_ends_it_as_the_loop_does_keeping_the_round_as_it_stood(world, moderate, player_fails,
                                                                                      coach_fails):
    coach = (lambda: FailingCoach(coach_fails)) if coach_fails else core.HouseCoach
    artifact, ended = _both(world, moderate, core.Portfolio(), lambda: Scripted(TOO_BIG, GOOD, fail_on=2,
                                                                                 fail=player_fails), coach)
    _same(artifact, ended)
    assert ended.outcome in ("ERROR", "ABORT") and ended.rounds


def test_an_agent_named_otherwise_than_by_text_is_refused_as_the_loop_refuses_it(world, moderate):
    class Numbered(Scripted):
        name = 7

    with pytest.raises(Exception) as by_loop:
        core.run_exchange_sync(world, moderate, core.Portfolio(), Numbered(GOOD), core.HouseCoach(), decision_only=True)
    with pytest.raises(type(by_loop.value)):
        decide_exchange(world, moderate, core.Portfolio(), Numbered(GOOD), core.HouseCoach(), run_id="r")
