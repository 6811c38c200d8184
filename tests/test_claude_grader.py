"""The optional Claude grader: one more call per round grading the reasoning 1-5; against the fake server."""

from __future__ import annotations

import pytest

import core
from core import prompts
from core.claude import ClaudeGrader, ClaudePlayer
from tests.fake_anthropic import GOOD_PROPOSAL, GRADE, FakeAnthropic, tool
from tests.conftest import make_key

WORLD = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
PROPOSAL = core.Proposal.model_validate(GOOD_PROPOSAL)


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


def test_the_grader_returns_a_grade_and_its_cost_reading_the_players_cached_prefix(fake):
    key, constraints = make_key(), core.load_preset("moderate")
    player = ClaudePlayer(key, base_url=fake.base_url)
    for _ in player.propose(WORLD, constraints, core.Portfolio(), []):
        pass
    grader = ClaudeGrader(key, base_url=fake.base_url)
    turn = grader.grade(PROPOSAL, WORLD, constraints, core.Portfolio(), "4 of 4 statements hold.")
    assert turn.value == core.ReasoningGrade(**GRADE)
    body = fake.messages_requests[-1]["body"]
    assert body["tool_choice"] == {"type": "tool", "name": prompts.GRADE_TOOL}
    assert body["tools"] == fake.messages_requests[0]["body"]["tools"]  # one shared prefix
    assert "4 of 4 statements hold." in body["messages"][-1]["content"][0]["text"]
    assert turn.usage.cache_read > 0 and turn.usage.output > 0 and turn.usage.cost_usd > 0
    estimate = prompts.grade_estimate(grader.model, constraints)
    assert estimate.cache_read == pytest.approx(turn.usage.cache_read, rel=0.2)  # the estimate reads the same prefix


def test_a_grade_out_of_range_gets_the_one_repair(fake):
    fake.enqueue(tool({"score": 7, "reason": "Superb."}), tool(GRADE))
    turn = ClaudeGrader(make_key(), base_url=fake.base_url).grade(PROPOSAL, WORLD, core.Constraints(),
                                                                  core.Portfolio(), "")
    assert turn.value.score == 4 and turn.path.endswith("+ repair")
    assert len(fake.messages_requests) == 2


def test_a_grader_that_fails_twice_raises_agent_error_with_its_cost(fake):
    fake.enqueue(tool({"score": 0, "reason": ""}), tool({"score": 9, "reason": ""}))
    with pytest.raises(core.AgentError) as failed:
        ClaudeGrader(make_key(), base_url=fake.base_url).grade(PROPOSAL, WORLD, core.Constraints(), core.Portfolio(), "")
    assert "Grader" in str(failed.value) and failed.value.usage.output > 0
