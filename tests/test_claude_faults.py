"""The faults of the real API, against the fault-injecting fake: thinking models that refuse a forced
tool choice, refusals, stalls, long waits, cut-off streams, unpriced models."""

from __future__ import annotations

import pytest

import core
from core import prices
from core.claude import models
from core.claude.agents import ClaudeCoach, ClaudePlayer
from tests.support.fake_anthropic import GOOD_PROPOSAL, INVALID_PROPOSAL, refusal, stall, tool


def run(fake, key, world, constraints, store=None, model=prices.DEFAULT_MODEL, guard=None, **options) -> dict:
    """One exchange with both Claude agents against the fake; the artifact's JSON form, with what the agents slept."""
    slept: list[float] = []
    agents = [cls(key, model=model, base_url=fake.base_url, guard=guard, sleep=slept.append, **options)
              for cls in (ClaudePlayer, ClaudeCoach)]
    artifact = core.run_exchange_sync(world, constraints, core.Portfolio(), *agents, store=store).model_dump(mode="json")
    artifact["slept"] = slept
    return artifact


def test_a_model_that_refuses_a_forced_tool_choice_completes_through_the_fallback(fake, key, world, moderate, store):
    model = "claude-sonnet-9-test-thinker"  # not in the table, not known to refuse: learnt from the 400
    fake.refuse_forced = {model}
    artifact = run(fake, key, world, moderate, store, model=model)
    assert artifact["outcome"] == "APPROVE"
    forced, player, coach = (r["body"] for r in fake.messages_requests)
    assert forced["tool_choice"] == {"type": "tool", "name": "submit_proposal"}  # answered 400
    for body, name in ((player, "submit_proposal"), (coach, "submit_critique")):
        assert body["tool_choice"] == {"type": "auto"}
        assert all(t["strict"] is True and t["eager_input_streaming"] is True for t in body["tools"])
        assert all(t["input_schema"]["additionalProperties"] is False for t in body["tools"])
        assert f"calling the tool {name}, exactly once" in body["messages"][-1]["content"][-1]["text"]
    # remembered: the Coach went straight to the fallback, and so does the next exchange
    assert models.refuses_forced_tool(model, fake.base_url) and not models.refuses_forced_tool(model, "elsewhere")
    path = "auto tool + strict schema"
    assert artifact["rounds"][0]["agent_path"] == {"player": path, "coach": path}
    assert store.get_exchange(artifact["run_id"]).rounds[0].agent_path == {"player": path, "coach": path}
    run(fake, key, world, moderate, model=model)
    assert [r["body"]["tool_choice"]["type"] for r in fake.messages_requests[3:]] == ["auto", "auto"]
    # an unpriced model of a known family is priced by estimate, never as $0
    assert artifact["usage"]["cost_basis"] == "estimated" and artifact["usage"]["cost_usd"] > 0


def test_the_current_thinking_models_start_on_the_fallback_without_a_wasted_call(fake, key, world, moderate):
    artifact = run(fake, key, world, moderate, model="claude-opus-5-5")
    assert artifact["outcome"] == "APPROVE" and len(fake.messages_requests) == 2
    assert {r["body"]["tool_choice"]["type"] for r in fake.messages_requests} == {"auto"}
    assert artifact["usage"]["cost_basis"] == "price list"


def test_the_default_model_takes_the_forced_tool_and_records_that_path(fake, key, world, moderate):
    artifact = run(fake, key, world, moderate)
    assert artifact["rounds"][0]["agent_path"] == {"player": "forced tool", "coach": "forced tool"}
    assert fake.messages_requests[0]["body"]["tool_choice"]["type"] == "tool"


def test_a_refusal_ends_error_with_the_stated_reason_and_no_repair(fake, key, world, moderate, store):
    fake.scenario("refusal")
    artifact = run(fake, key, world, moderate, store)
    assert (artifact["outcome"], artifact["rounds_taken"]) == ("ERROR", 0)
    reason = artifact["termination_reason"]
    assert "refused the Player's request (stop reason refusal: category cyber; This request was declined" in reason
    assert "max_tokens" not in reason and "invalid twice" not in reason
    assert len(fake.messages_requests) == 1  # no repair on the same context
    assert artifact["usage"]["output"] > 1  # the refused answer's output was billed as reported
    assert store.get_exchange(artifact["run_id"]).termination_reason == reason


def test_a_refusal_without_a_category_still_says_refusal(fake, key, world, moderate):
    fake.enqueue(refusal(category=None, explanation=None))
    reason = run(fake, key, world, moderate)["termination_reason"]
    assert "stop reason refusal: no reason given" in reason


def test_raise_max_tokens_is_advised_only_after_a_real_max_tokens_stop(fake, key, world, moderate):
    fake.scenario("max_tokens_twice")
    assert "raise max_tokens" in run(fake, key, world, moderate)["termination_reason"]
    fake.enqueue(tool(INVALID_PROPOSAL), tool(INVALID_PROPOSAL))
    reason = run(fake, key, world, moderate)["termination_reason"]
    assert "invalid twice" in reason and "max_tokens" not in reason


def test_a_stalled_exchange_ends_error_after_one_retry(fake, key, world, moderate, store):
    fake.enqueue(stall(seconds=30), stall(seconds=30))
    artifact = run(fake, key, world, moderate, store, stall_timeout_s=0.3)
    assert artifact["outcome"] == "ERROR" and "stopped answering" in artifact["termination_reason"]
    assert len(fake.messages_requests) == 2 and artifact["slept"] == [0.5]


def test_a_stall_then_a_good_stream_still_approves(fake, key, world, moderate):
    fake.enqueue(stall(seconds=30))
    artifact = run(fake, key, world, moderate, stall_timeout_s=0.3)
    assert artifact["outcome"] == "APPROVE" and len(fake.messages_requests) == 3


def test_a_long_retry_after_says_how_long_and_is_not_waited_for(fake, key, world, moderate):
    fake.scenario("retry_later")
    artifact = run(fake, key, world, moderate)
    assert artifact["outcome"] == "ERROR" and artifact["slept"] == []
    assert artifact["termination_reason"].endswith("run the exchange again in 10 min.")


def test_a_failed_attempt_keeps_the_output_tokens_the_stream_reported(fake, key, world, moderate):
    fake.enqueue(tool(GOOD_PROPOSAL, output_tokens=77, drop_before_stop=True))
    artifact = run(fake, key, world, moderate)
    assert artifact["outcome"] == "APPROVE" and len(fake.messages_requests) == 3
    later = sum(r["usage"]["output"] for r in fake.messages_requests[1:])
    assert artifact["usage"]["output"] == 77 + later  # not 1 for the broken attempt


def test_an_unpriced_model_is_held_by_the_call_limit_and_the_guard_says_what_it_cannot_count(fake, key, world,
                                                                                               moderate, store):
    guard = core.SpendGuard(calls_per_hour=3, dollars_per_session=0.000001)
    first = run(fake, key, world, moderate, store, model="gateway-model-x", guard=guard)
    (listed,) = store.list_exchanges(limit=1)
    assert listed["cost_usd"] is None  # History shows no price rather than $0
    assert first["outcome"] == "APPROVE" and first["usage"]["cost_basis"] == "unknown"
    assert prices.cost_text(core.Usage(**first["usage"])) == "unknown (not priced)"
    summary = guard.summary()
    assert "2 call(s) of an unpriced model are not in the dollar figure" in summary
    assert "the calls-per-hour limit still does" in summary
    second = run(fake, key, world, moderate, model="gateway-model-x", guard=guard)
    assert (second["outcome"], second["termination_reason"]) == ("ABORT", "spend_guard")  # the 4th call refused
    assert len(fake.messages_requests) == 3


@pytest.mark.parametrize("model", ["claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1",
                                   "claude-sonnet-4-6", "claude-haiku-4-5-20251001"])
def test_every_current_model_runs_an_exchange(fake, key, world, moderate, model):
    fake.refuse_forced = set(models.REFUSES_FORCED_TOOL)
    artifact = run(fake, key, world, moderate, model=model)
    assert artifact["outcome"] == "APPROVE" and artifact["agents"]["model"] == model
    assert artifact["usage"]["cost_basis"] == "price list" and artifact["usage"]["cost_usd"] > 0


def test_a_backtest_estimate_for_an_unpriced_model_says_so(moderate):
    assert prices.estimate_cost(100, moderate, "standard", "gateway-model-x")["cost_basis"] == "unknown"
    assert prices.estimate_cost(100, moderate, "standard", "claude-opus-9")["cost_basis"] == "estimated"
    priced = prices.estimate_cost(100, moderate, "standard", prices.DEFAULT_MODEL)
    assert priced["cost_basis"] == "price list" and priced["dollars_worst"] > 0
