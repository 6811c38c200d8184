"""The optional Claude grader: one more call per round grading the reasoning 1-5; against the fake server."""

from __future__ import annotations

import pytest

import core
import core.claude.agents
from core.claude import prompts
from core.claude.agents import ClaudeGrader, ClaudePlayer
from tests.support.fake_anthropic import GOOD_PROPOSAL, GRADE, FakeAnthropic, tool
from tests.support.builders import make_key

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


def test_the_grade_is_recorded_in_the_round_and_never_changes_the_verdict(fake, store):
    key, moderate = make_key(), core.load_preset("moderate")

    def exchange(grader=None):
        player, coach = ClaudePlayer(key, base_url=fake.base_url), core.claude.agents.ClaudeCoach(key, base_url=fake.base_url)
        return core.run_exchange_sync(WORLD, moderate, core.Portfolio(), player, coach, store=store, grader=grader)

    plain = exchange()
    graded = exchange(ClaudeGrader(key, base_url=fake.base_url))
    assert graded.rounds[0].reasoning_grade == core.ReasoningGrade(**GRADE) and plain.rounds[0].reasoning_grade is None
    assert (graded.outcome, graded.rounds[0].evaluation) == (plain.outcome, plain.rounds[0].evaluation)
    grading = fake.messages_requests[-2]  # player, grader, coach
    assert grading["body"]["tool_choice"]["name"] == prompts.GRADE_TOOL
    reported = [r["usage"] for r in fake.messages_requests[-3:]]  # the grader's call is paid for and counted
    assert graded.usage.total == sum(u["input"] + u["output"] + u["cache_read"] + u["cache_write"] for u in reported)
    assert store.get_exchange(graded.run_id).rounds[0].reasoning_grade.score == 4


def test_a_grader_that_fails_leaves_no_grade_and_the_exchange_goes_on(fake):
    key = make_key()
    fake.enqueue(tool(GOOD_PROPOSAL), tool({"score": 0, "reason": ""}), tool({"score": 9, "reason": ""}))
    player, coach = ClaudePlayer(key, base_url=fake.base_url), core.claude.agents.ClaudeCoach(key, base_url=fake.base_url)
    artifact = core.run_exchange_sync(WORLD, core.load_preset("moderate"), core.Portfolio(), player, coach,
                                      grader=ClaudeGrader(key, base_url=fake.base_url))
    assert artifact.outcome == "APPROVE" and artifact.rounds[0].reasoning_grade is None
    assert len(fake.messages_requests) == 4  # the proposal, two grading attempts, the critique
