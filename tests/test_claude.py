"""Unit tests of the Claude agents' parts: prices, tool schemas, spend guard, streaming text, key check."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from datetime import date

import pytest

import core
import core.exchange.tiers
from core import prices
from core.claude import keys, models, transport
from core.claude import prompts
from core.claude.agents import ClaudeCoach, ClaudePlayer
from core.claude.spend_guard import SpendGuard
from tests.support.fake_anthropic import (
    GOOD_PROPOSAL, approx_tokens, error, minimum_cacheable, overloaded, rate_limited, stall, tool,
)


# --- prices ----------------------------------------------------------------------------------

def test_haiku_prices_a_million_tokens_of_each_kind():
    model = "claude-haiku-4-5-20251001"
    assert prices.cost_usd(model, input=1_000_000) == pytest.approx(1.0)
    assert prices.cost_usd(model, output=1_000_000) == pytest.approx(5.0)
    assert prices.cost_usd(model, cache_write=1_000_000) == pytest.approx(1.25)
    assert prices.cost_usd(model, cache_read=1_000_000) == pytest.approx(0.10)


def test_usage_of_a_call_carries_its_cost():
    u = prices.usage("claude-sonnet-4-5-20250929", input=1000, output=200, cache_write=4000, cache_read=8000)
    assert (u.input, u.output, u.cache_write, u.cache_read) == (1000, 200, 4000, 8000)
    assert u.cost_usd == pytest.approx((1000 * 3 + 200 * 15 + 4000 * 3.75 + 8000 * 0.3) / 1e6)


def test_the_built_in_list_is_priced_current_and_newest_first():
    offered = prices.builtin_models(date(2026, 11, 26))
    ids = [m.id for m in offered]
    assert ids[0] == prices.DEFAULT_MODEL == "claude-haiku-5-5"
    assert {"claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1"} <= set(ids)
    assert not set(ids) & prices.RETIRED and "claude-opus-4-1-20250805" not in ids  # retired in August 2026
    assert all(prices.model_prices(m)["input"] > 0 for m in ids)
    sonnet_4_5 = next(m for m in offered if m.id == "claude-sonnet-4-5-20250929")
    assert sonnet_4_5.retires == "2026-11-30" and "retires 2026-11-30" in sonnet_4_5.label()
    assert "claude-sonnet-4-5-20250929" not in [m.id for m in prices.builtin_models(date(2026, 12, 1))]
    assert prices.model_prices("claude-opus-4-5")["output"] == 25.0


def test_the_current_lineup_is_priced_as_its_pages_say():
    assert prices.cost_usd("claude-haiku-5-5", input=100_000, output=100_000) == pytest.approx(0.06)  # at the limit
    assert prices.model_prices("claude-sonnet-5-5") == {"input": 2.0, "output": 10.0, "cache_write": 2.5,
                                                         "cache_read": 0.1}
    assert prices.model_prices("claude-opus-5-5")["cache_read"] == pytest.approx(0.20)
    assert prices.model_prices("claude-fable-5-1")["cache_read"] == pytest.approx(0.25)
    # Haiku 5.5 bills a prompt over 100,000 tokens (cache included) at its long-prompt rates, output too
    assert prices.cost_usd("claude-haiku-5-5", input=60_000, cache_read=50_000, output=1_000) == pytest.approx(
        (60_000 * 0.5 + 50_000 * 0.05 + 1_000 * 2.5) / 1e6)


def test_a_model_missing_from_the_table_runs_with_an_estimated_or_unknown_cost_never_zero(key):
    with pytest.raises(core.InvalidInput, match="model: no price for model .gpt-4."):
        prices.model_prices("gpt-4")
    estimated = prices.usage("claude-sonnet-6", input=1000, output=100)
    assert estimated.cost_basis == "estimated" and estimated.cost_usd == prices.cost_usd("claude-sonnet-5-5", 1000, 100)
    assert prices.cost_text(estimated).startswith("≈$") and "estimated" in prices.price_text("claude-sonnet-6")
    unknown = prices.usage("gateway-model-x", input=1000, output=100)
    assert unknown.cost_basis == "unknown" and prices.cost_text(unknown) == "unknown (not priced)"
    assert (prices.usage(prices.DEFAULT_MODEL, input=5) + unknown).cost_basis == "unknown"
    assert ClaudePlayer(key, model="claude-sonnet-6").model == "claude-sonnet-6"  # no longer refused


# --- tool schemas ----------------------------------------------------------------------------

def test_tool_schemas_are_self_contained_and_generated_from_the_models():
    for spec in prompts.tools():
        text = json.dumps(spec["input_schema"])
        assert "$ref" not in text and "$defs" not in text
    proposal = prompts.tools()[0]["input_schema"]
    assert list(proposal["properties"]) == ["reasoning", "actions"]  # reasoning streams first
    action = proposal["properties"]["actions"]["items"]
    assert action["properties"]["action_type"]["enum"] == ["enter_long", "enter_short", "exit", "hold"]
    assert proposal["properties"]["actions"]["maxItems"] == 3
    judgement = prompts.tools()[2]["input_schema"]
    assert list(judgement["properties"])[0] == "feedback"
    assert judgement["properties"]["violations"]["items"]["enum"] == list(core.RULE_NAMES)


def test_the_cached_prefix_is_long_enough_for_haiku_to_cache_it():
    # Haiku 4.5 caches nothing under 4096 tokens; keep a margin over the fake's chars/4 estimate.
    prefix = approx_tokens(list(prompts.tools())) + sum(
        approx_tokens(b["text"]) for b in prompts.system_blocks(core.Constraints()))
    assert prefix >= minimum_cacheable("claude-haiku-4-5-20251001") * 1.2
    blocks = prompts.system_blocks(core.Constraints())
    assert all(b["cache_control"] == {"type": "ephemeral"} for b in blocks)


def test_the_rulebook_examples_are_the_rules_own_arithmetic():
    book = prompts.rulebook()
    assert "min_risk_reward: (267.14-264.14)/(264.14-262.14) = 3.00/2.00 = 1.50 < 2.00 FAIL" in book
    assert "Decision: ABORT (violations: max_leverage)" in book
    assert "Decision: ABORT (violations: max_drawdown_pct)" in book
    for name in core.Constraints.model_fields:
        assert f"- {name} (default" in book


# --- spend guard -----------------------------------------------------------------------------

def test_spend_guard_counts_calls_in_a_sliding_hour():
    now = [0.0]
    guard = SpendGuard(calls_per_hour=2, clock=lambda: now[0])
    guard.admit()
    guard.admit()
    with pytest.raises(core.SpendLimitReached, match="2 API calls in the last hour"):
        guard.admit()
    now[0] = 3601.0
    guard.admit()  # the first two fell out of the window
    assert guard.calls_last_hour() == 1


def test_spend_guard_stops_at_the_dollar_limit():
    guard = SpendGuard(dollars_per_session=0.01)
    guard.admit()
    guard.record(0.006)
    guard.admit()
    guard.record(0.006)
    with pytest.raises(core.SpendLimitReached, match=r"\$0.0120 spent"):
        guard.admit()
    assert guard.spent_usd == pytest.approx(0.012)


def test_spend_guard_limits_can_change_and_the_spending_is_kept():
    guard = SpendGuard(calls_per_hour=5, dollars_per_session=1.5)
    guard.admit()
    guard.record(1.0)
    guard.dollars_per_session = 1.0  # what the Settings page does when the limit is lowered
    with pytest.raises(core.SpendLimitReached, match=r"\$1.0000 spent this session, the limit is \$1.00"):
        guard.admit()
    guard.dollars_per_session = None
    guard.calls_per_hour = 1
    with pytest.raises(core.SpendLimitReached, match="1 API calls in the last hour, the limit is 1"):
        guard.admit()
    assert guard.spent_usd == 1.0 and "dollars_per_session=None" in repr(guard)
    assert SpendGuard().calls_last_hour() == 0  # no limits: everything passes
    SpendGuard().admit()


# --- streamed text ---------------------------------------------------------------------------

def test_partial_tool_json_gives_the_growing_text():
    assert transport.partial_text('{"reasoning": "AMZN is abo', "reasoning") == "AMZN is abo"
    assert transport.partial_text('{"reas', "reasoning") is None
    assert transport.partial_text('{"feedback": "ok", "decision": "APP', "feedback") == "ok"


def test_the_bubble_never_repeats_words_after_a_retry():
    bubble = transport.Bubble()
    shown = [bubble.update(t) for t in ("AMZN", "AMZN is", "AMZN is up")]
    # a retried stream replays the same words, then goes on
    shown += [bubble.update(t) for t in ("AM", "AMZN is", "AMZN is up; buy")]
    assert "".join(shown) == "AMZN is up; buy"
    # a different answer starts a new paragraph
    assert bubble.update("Sell") == "\n\nSell"


def test_redact_removes_the_key_and_key_shaped_strings(key):
    assert key not in keys.redact(f"bad key {key} here", key)
    assert "[key]" in keys.redact("x sk-ant-api03-abcdefghijkl y", None)


def test_agents_keep_the_key_out_of_their_repr(key, fake):
    player = ClaudePlayer(key, base_url=fake.base_url)
    coach = ClaudeCoach(key, base_url=fake.base_url, independent=True)
    assert key not in repr(player) and key not in repr(coach) and key not in repr(vars(player))
    assert (player.name, coach.name, player.model) == ("claude-player", "claude-coach-independent",
                                                       prices.DEFAULT_MODEL)
    with pytest.raises(ValueError, match="api_key"):
        ClaudePlayer("  ")


# --- validate_key ----------------------------------------------------------------------------

@pytest.mark.parametrize("typed, says", [
    ("", "Enter a key first"),
    ("sk-ant-api03-abc def" + "x" * 40, "contains a space or a line break (character 17 of 60)"),
    ("ANTHROPIC_API_KEY=sk-ant-api03-" + "x" * 60, "without a variable name, an = sign or quotes"),
    ('"sk-ant-api03-' + "x" * 60 + '"', "without a variable name"),
    ("api03-" + "x" * 80, "starts with sk-ant-; this one does not"),
    ("sk-ant-api03-" + "x" * 40 + "!" + "x" * 10, "a character an Anthropic key never has (character 54 of 64"),
    ("sk-ant-api03-" + "x" * 20, "only 33 characters"),
    ("sk-ant-api03-" + "x" * 40 + "\u2019", "not plain text"),
])
def test_a_malformed_key_is_told_what_is_actually_wrong_without_quoting_it(typed, says):
    problem = keys.key_problem(typed)
    assert says in problem and ("x" * 20 not in problem)
    assert keys.key_problem("sk-ant-api03-" + "Ab3_-" * 19) is None


def test_a_malformed_key_is_refused_without_a_call(fake):
    check = models.validate_key("sk ant", base_url=fake.base_url)
    assert (check.status, check.keep) == ("invalid", False) and "space" in check.message
    assert fake.requests == []


def test_a_base_url_accepts_any_key_shape_a_header_can_carry(fake):
    assert models.validate_key("gateway-token-1", base_url=fake.base_url).ok
    assert ClaudePlayer("gw", base_url=fake.base_url).model == prices.DEFAULT_MODEL
    assert keys.key_problem("gw") is not None  # without a base URL the Anthropic shape is required


def test_a_good_key_is_accepted_and_the_chosen_model_checked_for_free(fake, key):
    check = models.validate_key(key, base_url=fake.base_url, model="claude-sonnet-5-5")
    assert check.ok and check.keep and "claude-sonnet-5-5" in check.message
    assert [r["path"].split("?")[0] for r in fake.requests] == ["/v1/models", "/v1/messages/count_tokens"]
    assert fake.requests[1]["body"]["model"] == "claude-sonnet-5-5"
    sent = fake.requests[0]["headers"]
    assert key in (sent.get("x-api-key", ""), sent.get("authorization", "").removeprefix("Bearer "))
    assert check.models[0].id == "claude-fable-5-2"


def test_a_rejected_key_says_so_and_hides_the_key(fake, key):
    fake.scenario("auth_401")
    check = models.validate_key(key, base_url=fake.base_url)
    assert check.status == "invalid" and not check.keep and "rejected (401)" in check.message
    assert key not in check.message


@pytest.mark.parametrize("step, why", [(rate_limited(30), "429"), (overloaded(), "529"),
                                       (error(503, "api_error", "down"), "503")])
def test_a_busy_api_means_could_not_check_now_and_the_key_stays(fake, key, step, why):
    fake.always = step
    check = models.validate_key(key, base_url=fake.base_url)
    assert (check.status, check.keep) == ("unchecked", True)
    assert check.message.startswith("Could not check the key now (") and why in check.message
    assert key not in check.message


def test_no_connection_means_could_not_check_now_not_refused(key):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = models.validate_key(key, base_url=f"http://127.0.0.1:{port}", timeout=2)
    assert (check.status, check.keep) == ("unchecked", True) and "Could not reach" in check.message


def test_a_model_the_key_may_not_use_is_named(fake, key):
    fake.model_errors["claude-fable-5-1"] = error(403, "permission_error", "not allowed")
    check = models.validate_key(key, base_url=fake.base_url, model="claude-fable-5-1")
    assert (check.status, check.keep) == ("model refused", True)
    assert "may not use claude-fable-5-1 (403)" in check.message


def test_list_models_is_newest_first_without_retired_models_and_marks_deprecated_ones(fake, key):
    fake.models = list(reversed(fake.models))  # whatever order the API sends
    listed = core.list_models(key, base_url=fake.base_url, today=date(2026, 11, 1))
    ids = [m.id for m in listed]
    assert ids[:5] == ["claude-fable-5-2", "claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1"]
    assert "claude-opus-4-1-20250805" not in ids
    sonnet_4_5 = next(m for m in listed if m.id == "claude-sonnet-4-5-20250929")
    assert sonnet_4_5.retires == "2026-11-30" and sonnet_4_5.display_name == "Claude Sonnet 4.5"
    assert all(m.priced for m in listed)
    fake.models.append({"id": "claude-sonnet-6", "display_name": "Claude Sonnet 6",
                        "created_at": "2026-11-20T00:00:00Z", "lifecycle": "active"})
    newest = core.list_models(key, base_url=fake.base_url, today=date(2026, 11, 1))[0]
    assert (newest.id, newest.priced) == ("claude-sonnet-6", False) and "estimated" in newest.label()
    # a deprecated model whose day has come is not offered even if a list still names it
    assert "claude-sonnet-4-5-20250929" not in [m.id for m in core.list_models(
        key, base_url=fake.base_url, today=date(2026, 11, 30))]


def test_list_models_failing_raises_a_redacted_agent_error(fake, key):
    fake.scenario("auth_401")
    with pytest.raises(core.AgentError, match="401") as failed:
        core.list_models(key, base_url=fake.base_url)
    assert key not in str(failed.value)


def test_the_fake_accepts_the_key_as_x_api_key_or_bearer_and_refuses_none(fake, key):
    for headers in ({"x-api-key": key}, {"Authorization": f"Bearer {key}"}, {}):
        request = urllib.request.Request(fake.base_url + "/v1/models", headers=headers)
        try:
            status = urllib.request.urlopen(request, timeout=5).status
        except urllib.error.HTTPError as refused:
            status = refused.code
        assert status == (200 if headers else 401)


def test_the_fake_starts_from_a_plain_script_with_a_scenario(key):
    process = subprocess.Popen([sys.executable, "tests/support/fake_anthropic.py", "--port", "0", "--scenario", "slow",
                                "--delay", "0.001"], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "scenario slow" in line
        base_url = line.split(" on ")[1].split()[0]
        assert models.validate_key(key, base_url=base_url).ok
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- timeouts --------------------------------------------------------------------------------

def test_a_stream_that_stalls_is_retried_once_then_says_what_to_do(fake, key):
    slept = []
    fake.enqueue(stall(seconds=30), stall(seconds=30), tool(GOOD_PROPOSAL))
    player = ClaudePlayer(key, base_url=fake.base_url, stall_timeout_s=0.3, sleep=slept.append)  # retries=3
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    with pytest.raises(core.AgentError, match=r"stopped answering \(no data for 0.3 s\)") as failed:
        list(player.propose(world, core.Constraints(), core.Portfolio(), []))
    # one retry only, whatever `retries` allows for other faults: 2 x 20 s + 0.5 s at the default timeout
    assert slept == [0.5] and len(fake.messages_requests) == 2
    assert failed.value.usage.input > 0  # both attempts' input was billed


# --- make live-check -------------------------------------------------------------------------

def _live_check(env: dict) -> subprocess.CompletedProcess:
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")}
    return subprocess.run([sys.executable, "scripts/live_check.py"], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)


def test_live_check_is_skipped_without_a_key():
    done = _live_check({})
    assert done.returncode == 0 and done.stdout.strip() == "skipped: ANTHROPIC_API_KEY not set"


def test_live_check_runs_one_exchange_and_prints_no_key(fake, key):
    fake.scenario("reject_then_approve")
    done = _live_check({"ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": fake.base_url})
    assert done.returncode == 0, done.stderr
    assert "round 1: REJECT ['min_risk_reward']" in done.stdout and "outcome APPROVE after 2 round(s)" in done.stdout
    assert key not in done.stdout + done.stderr


@pytest.mark.parametrize("mangle", [lambda k: k[:20] + "\n" + k[20:], lambda k: k[:20] + "\x00" + k[20:],
                                    lambda k: k + "\u2019", lambda k: k[:20] + " " + k[20:]])
def test_a_key_no_header_could_carry_is_refused_before_any_call_and_never_quoted(fake, key, mangle):
    bad = mangle(key)
    check = models.validate_key(bad, base_url=fake.base_url)  # even a gateway cannot take these
    assert check.status == "invalid" and key[12:30] not in check.message
    with pytest.raises(ValueError, match="api_key: The key contains") as refused:
        ClaudePlayer(bad, base_url=fake.base_url)
    assert key[12:30] not in str(refused.value)
    assert fake.requests == []


def test_a_gateway_without_the_models_api_leaves_the_key_unchecked_and_the_list_unavailable(fake, key):
    fake.models = None
    check = models.validate_key(key, base_url=fake.base_url)
    assert (check.status, check.keep) == ("unchecked", True)
    assert "this server has no Models API (404)" in check.message
    with pytest.raises(core.AgentError, match="no Models API"):
        core.list_models(key, base_url=fake.base_url)


def test_the_claude_player_is_told_which_tiers_hold_now(key, fake):
    funded = core.load_preset("funded_challenge")
    world = core.WorldState(symbol="MSFT", as_of="2025-03-04 10:00", price=400, sma5=402, sma10=398)
    hurt = core.Portfolio(equity=94_000, peak_equity=100_000)  # 6 % below the peak
    player = ClaudePlayer(key, base_url=fake.base_url)
    core.run_exchange_sync(world, funded.model_copy(update={"allowed_symbols": ["MSFT"]}), hurt, player,
                           core.HouseCoach())
    opening = fake.messages_requests[0]["body"]["messages"][0]["content"][0]["text"]
    effective, named = core.exchange.tiers.in_force(funded, hurt, world)
    assert "Tiers in force now" in opening and named
    for limit, tier in named.items():
        assert f"{limit} = {getattr(effective, limit):g} ({tier})" in opening
    calm = prompts.player_messages(world, core.Portfolio(), [], constraints=funded)[0]["content"][0]["text"]
    assert "No tier of the schema holds now" in calm
    plain = prompts.player_messages(world, hurt, [], constraints=core.load_preset("moderate"))
    assert "tier" not in plain[0]["content"][0]["text"].lower()
