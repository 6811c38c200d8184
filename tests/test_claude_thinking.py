"""Models that think, against the thinking fake: each model asked as its capabilities allow, thinking
that never eats the tool call, never shown or stored, and counted in usage, estimates and the guard."""

from __future__ import annotations

import pytest

import core
from core import prices
from core.claude import models
from core.claude.agents import ClaudeCoach, ClaudePlayer
from core.claude.spend_guard import SpendGuard
from core.exchange.loop import TextFragment
from tests.support.fake_anthropic import (
    ALWAYS_THINKS, GOOD_PROPOSAL, THOUGHT, FakeAnthropic, capabilities, error, thinking_for, tool,
)

LONG_PROPOSAL = {**GOOD_PROPOSAL, "reasoning": GOOD_PROPOSAL["reasoning"] + " " + " ".join(
    ["The five-day average sits above the ten-day one and the price above both, so the trend is up."] * 4)}
"""A proposal of about 200 output tokens: after 900 tokens of thinking it no longer fits in max_tokens=1024."""


@pytest.fixture(autouse=True)
def fresh_plans():
    """Every test asks its fake's Models API afresh (plans are kept per address and model for a process)."""
    models.forget_plans()
    yield
    models.forget_plans()


def drive(stream):
    shown = []
    while True:
        try:
            shown.append(next(stream))
        except StopIteration as done:
            return shown, done.value


def set_capabilities(fake: FakeAnthropic, model: str, caps: dict) -> None:
    fake.models = [{**m, "capabilities": caps} if m["id"] == model else m for m in fake.models]


def test_the_default_model_gets_a_forced_tool_choice_with_thinking_disabled(fake, key, world, moderate):
    fake.thinking_tokens = 900  # it would think, were thinking left on
    shown, turn = drive(ClaudePlayer(key, base_url=fake.base_url).propose(world, moderate, core.Portfolio(), []))
    (request,) = fake.messages_requests
    body = request["body"]
    assert body["model"] == prices.DEFAULT_MODEL
    assert body["thinking"] == {"type": "disabled"}
    assert body["tool_choice"] == {"type": "tool", "name": "submit_proposal"} and body["max_tokens"] == 1024
    assert turn.path == "forced tool" and turn.usage.thinking == 0 and request["usage"]["thinking"] == 0
    assert "".join(shown) == GOOD_PROPOSAL["reasoning"]


def test_a_player_that_thinks_900_tokens_completes_its_tool_call_with_no_repair(fake, key, world, moderate):
    # The default model where thinking cannot be turned off (as on a key whose model always thinks)
    set_capabilities(fake, prices.DEFAULT_MODEL, ALWAYS_THINKS)
    fake.thinking_tokens = 900
    fake.enqueue(tool(LONG_PROPOSAL))
    shown, turn = drive(ClaudePlayer(key, base_url=fake.base_url).propose(world, moderate, core.Portfolio(), []))
    (request,) = fake.messages_requests  # one call: no repair, no refused forced tool choice
    body, used = request["body"], request["usage"]
    assert body["tool_choice"] == {"type": "auto"} and body["thinking"]["type"] == "adaptive"
    assert body["output_config"] == {"effort": "low"}  # the least thinking the model takes
    assert used["thinking"] == 900 and used["output"] > 1024  # would not have fitted the old max_tokens=1024
    assert body["max_tokens"] >= used["output"]
    assert turn.path == "auto tool + strict schema"
    assert turn.value.reasoning == LONG_PROPOSAL["reasoning"] and "".join(shown) == LONG_PROPOSAL["reasoning"]
    assert (turn.usage.thinking, turn.usage.output) == (900, used["output"])


def test_thinking_that_runs_out_of_max_tokens_stops_there_and_the_repair_has_room(fake, key, world, moderate):
    set_capabilities(fake, prices.DEFAULT_MODEL, ALWAYS_THINKS)
    fake.thinking_tokens = 5500  # more than the first request's max_tokens (1024 + 4096)
    _, turn = drive(ClaudePlayer(key, base_url=fake.base_url).propose(world, moderate, core.Portfolio(), []))
    first, repair = fake.messages_requests
    assert first["usage"]["output"] == first["body"]["max_tokens"] == 1024 + models.THINKING_ROOM
    assert repair["body"]["max_tokens"] == 2048 + models.THINKING_ROOM
    assert turn.path.endswith("+ repair") and turn.value.reasoning == GOOD_PROPOSAL["reasoning"]
    assert turn.usage.thinking == first["body"]["max_tokens"] + 5500  # both attempts' thinking was paid


def test_a_model_that_only_stops_thinking_between_tools_is_asked_so(fake, key, world, moderate):
    _, turn = drive(ClaudePlayer(key, model="claude-sonnet-5-5", base_url=fake.base_url)
                    .propose(world, moderate, core.Portfolio(), []))
    (request,) = fake.messages_requests
    assert request["body"]["thinking"] == {"type": "between_tools"}
    assert request["body"]["tool_choice"] == {"type": "auto"} and turn.usage.thinking == 0


def test_without_capabilities_the_documented_table_decides(fake, key, world, moderate):
    fake.models = None  # a gateway without the Models API
    _, haiku = drive(ClaudePlayer(key, base_url=fake.base_url).propose(world, moderate, core.Portfolio(), []))
    _, fable = drive(ClaudePlayer(key, model="claude-fable-5-2", base_url=fake.base_url)
                     .propose(world, moderate, core.Portfolio(), []))
    first, second = (r["body"] for r in fake.messages_requests)  # no wasted call on either model
    assert first["thinking"] == {"type": "disabled"} and first["tool_choice"]["type"] == "tool"
    assert second["thinking"]["type"] == "adaptive" and second["tool_choice"] == {"type": "auto"}
    assert second["output_config"] == {"effort": "low"}
    assert (haiku.path, fable.path) == ("forced tool", "auto tool + strict schema")
    assert fable.usage.cost_basis == "estimated"  # Fable 5.2 has no price list yet


def test_plans_follow_the_capabilities():
    assert models.plan_from(capabilities(adaptive=True)).request() == {"thinking": {"type": "disabled"}}
    budget = models.plan_from(capabilities(disabled=False, enabled=True, effort=False))
    assert budget.request() == {"thinking": {"type": "enabled", "budget_tokens": 1024, "display": "omitted"}}
    assert not budget.forced_tool and budget.max_tokens_for(256) == 256 + models.THINKING_ROOM
    no_thinking = models.plan_from(capabilities(disabled=True))  # a model that never thinks
    assert no_thinking.request() == {} and no_thinking.forced_tool
    capped = models.plan_from(ALWAYS_THINKS, max_tokens=2000)
    assert capped.max_tokens_for(1024) == 2000  # never above the model's own ceiling


def test_an_adaptive_model_thinks_more_on_harder_prompts_and_at_higher_effort():
    first = {"messages": [{"role": "user", "content": "AMZN at 185, propose a trade."}]}
    revision = {"messages": first["messages"] + [{"role": "user", "content": "Rejected: " + "the stop is too far. " * 80}]}
    assert thinking_for(revision, "medium") > thinking_for(first, "medium")
    assert thinking_for(first, "low") < thinking_for(first, "medium") < thinking_for(first, "max")


def test_a_forced_tool_choice_with_thinking_on_is_a_400_from_the_fake(fake, key, world, moderate):
    fake.enqueue(tool(GOOD_PROPOSAL))
    player = ClaudePlayer(key, base_url=fake.base_url)
    player._plan = models.ThinkingPlan({"type": "adaptive"}, None, forced_tool=True, thinks=True)  # a wrong plan
    _, turn = drive(player.propose(world, moderate, core.Portfolio(), []))
    refused, answered = fake.messages_requests
    assert refused["usage"] is None and answered["body"]["tool_choice"] == {"type": "auto"}
    assert turn.path == "auto tool + strict schema"


def test_usage_and_the_spend_guard_count_thinking(fake, key, world, moderate):
    model = "claude-opus-5-5"
    fake.thinking_tokens = 1500
    guard = SpendGuard()
    _, turn = drive(ClaudePlayer(key, model=model, base_url=fake.base_url, guard=guard)
                    .propose(world, moderate, core.Portfolio(), []))
    used = fake.messages_requests[0]["usage"]
    assert turn.usage.thinking == 1500 and turn.usage.output == used["output"] == 1500 + (used["output"] - 1500)
    paid = prices.usage(model, input=used["input"], output=used["output"], cache_write=used["cache_write"],
                        cache_read=used["cache_read"])
    unthinking = prices.usage(model, input=used["input"], output=used["output"] - 1500,
                              cache_write=used["cache_write"], cache_read=used["cache_read"])
    assert guard.spent_usd == pytest.approx(paid.cost_usd) == pytest.approx(turn.usage.cost_usd)
    assert guard.spent_usd - unthinking.cost_usd == pytest.approx(1500 * prices.PRICES[model]["output"] / 1e6)


def test_thinking_is_never_shown_or_stored_and_the_rounds_count_it(fake, key, world, moderate, store):
    fake.thinking_tokens = 700
    player = ClaudePlayer(key, model="claude-opus-5-5", base_url=fake.base_url)
    coach = ClaudeCoach(key, model="claude-opus-5-5", base_url=fake.base_url)
    events = list(core.run_exchange(world, moderate, core.Portfolio(), player, coach, store))
    artifact = events[-1].artifact
    assert artifact.outcome == "APPROVE"
    assert not any(THOUGHT in e.text for e in events if isinstance(e, TextFragment))
    stored = store.get_exchange(artifact.run_id)
    assert THOUGHT not in stored.model_dump_json() and "PRIVATE THOUGHT" not in stored.model_dump_json()
    assert stored.rounds[0].usage.thinking == 1400  # the Player's and the Coach's
    assert stored.usage.thinking == 1400


def test_a_stored_usage_without_thinking_reads_back():
    assert core.Usage.model_validate({"input": 5, "output": 7, "cost_usd": 0.1}).thinking == 0


def test_the_estimate_before_a_backtest_counts_thinking(moderate):
    plain = prices.estimate_cost(100, moderate, "standard", "claude-haiku-5-5")
    thinking = prices.estimate_cost(100, moderate, "standard", "claude-opus-5-5")
    assert (plain["thinking_per_call"], thinking["thinking_per_call"]) == (0, prices.TYPICAL_THINKING)
    per_call = prices.usage("claude-opus-5-5", input=400, cache_read=5_800, output=350 + prices.TYPICAL_THINKING)
    exchange = prices.usage("claude-opus-5-5", cache_write=5_800)
    assert thinking["dollars_typical"] == pytest.approx(300 * per_call.cost_usd + 100 * exchange.cost_usd, abs=1e-4)


def test_an_unknown_model_is_priced_from_the_models_api_line_not_its_id(fake, key):
    fake.models = [*fake.models, {"id": "acme-large", "display_name": "Acme Large", "created_at": "2026-12-01T00:00:00Z",
                                  "lifecycle": "active", "line": "opus"}]
    listed = core.list_models(key, base_url=fake.base_url)
    acme = next(m for m in listed if m.id == "acme-large")
    assert acme.line == "opus" and "estimated from Claude Opus 5.5" in acme.label()
    assert prices.usage("acme-large", output=1000, line="opus").cost_basis == "estimated"
    assert prices.usage("acme-large", output=1000).cost_basis == "unknown"


@pytest.mark.parametrize("status, kind", [(408, "request_timeout"), (409, "conflict"), (500, "api_error")])
def test_408_409_and_5xx_are_retried(fake, key, world, moderate, status, kind):
    fake.enqueue(error(status, kind, "try again"), tool(GOOD_PROPOSAL))
    slept = []
    _, turn = drive(ClaudePlayer(key, base_url=fake.base_url, sleep=slept.append)
                    .propose(world, moderate, core.Portfolio(), []))
    assert len(fake.messages_requests) == 2 and len(slept) == 1 and turn.value.reasoning == GOOD_PROPOSAL["reasoning"]


def test_x_should_retry_is_obeyed_either_way(fake, key, world, moderate):
    fake.enqueue(error(500, "api_error", "do not", should_retry=False))
    with pytest.raises(core.AgentError, match=r"\(500\)"):
        drive(ClaudePlayer(key, base_url=fake.base_url, sleep=lambda s: None).propose(world, moderate, core.Portfolio(), []))
    assert len(fake.messages_requests) == 1
    fake.enqueue(error(400, "invalid_request_error", "a passing fault", should_retry=True), tool(GOOD_PROPOSAL))
    _, turn = drive(ClaudePlayer(key, base_url=fake.base_url, sleep=lambda s: None)
                    .propose(world, moderate, core.Portfolio(), []))
    assert len(fake.messages_requests) == 3 and turn.value.reasoning == GOOD_PROPOSAL["reasoning"]


def test_the_model_list_tells_the_agents_how_to_ask_each_model(fake, key, world, moderate):
    core.list_models(key, base_url=fake.base_url)
    drive(ClaudePlayer(key, model="claude-opus-5-5", base_url=fake.base_url).propose(world, moderate, core.Portfolio(), []))
    assert [r["path"] for r in fake.requests if r["method"] == "GET"] == ["/v1/models?limit=1000"]
    assert fake.messages_requests[0]["body"]["thinking"]["type"] == "adaptive"


def test_an_agent_asks_the_models_api_once_for_its_model(fake, key, world, moderate):
    player = ClaudePlayer(key, base_url=fake.base_url)
    drive(player.propose(world, moderate, core.Portfolio(), []))
    drive(ClaudeCoach(key, base_url=fake.base_url).critique(
        core.Proposal.model_validate(GOOD_PROPOSAL), None, moderate, world, core.Portfolio()))
    assert [r["path"] for r in fake.requests if r["method"] == "GET"] == [f"/v1/models/{prices.DEFAULT_MODEL}"]


def test_a_thinking_setting_the_model_refuses_costs_one_unbilled_400_then_is_dropped(fake, key, world, moderate):
    # The Models API says nothing of Sonnet 5.5 here, and the model does not take what the table says
    fake.models = [{**m, "capabilities": None, "_capabilities": ALWAYS_THINKS} if m["id"] == "claude-sonnet-5-5" else m
                   for m in fake.models]
    player = ClaudePlayer(key, model="claude-sonnet-5-5", base_url=fake.base_url)
    _, turn = drive(player.propose(world, moderate, core.Portfolio(), []))
    refused, answered = fake.messages_requests
    assert refused["body"]["thinking"] == {"type": "between_tools"} and refused["usage"] is None
    assert "thinking" not in answered["body"] and answered["body"]["tool_choice"] == {"type": "auto"}
    assert turn.value.reasoning == GOOD_PROPOSAL["reasoning"] and turn.usage.thinking > 0
    drive(ClaudePlayer(key, model="claude-sonnet-5-5", base_url=fake.base_url).propose(world, moderate,
                                                                                      core.Portfolio(), []))
    assert len(fake.messages_requests) == 3  # learnt: the next agent asks without the setting at once
