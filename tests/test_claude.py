"""Unit tests of the Claude agents' parts: prices, tool schemas, spend guard, streaming text, key check."""

from __future__ import annotations

import json
import secrets
import socket
import string
import subprocess
import sys
import urllib.request

import pytest

import core
from core import claude, prices, prompts
from core.claude import ClaudeCoach, ClaudePlayer, SpendGuard
from tests.fake_anthropic import FakeAnthropic, approx_tokens, minimum_cacheable, tool


def make_key() -> str:
    return "sk-ant-test-" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


@pytest.fixture
def key():
    return make_key()


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


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


def test_every_model_the_settings_page_offers_has_a_price_and_opus_4_5_too():
    from ui import session

    for model in (*session.MODELS, "claude-opus-4-5-20251101", "claude-haiku-4-5"):
        assert prices.model_prices(model)["input"] > 0
    assert prices.model_prices("claude-opus-4-5")["output"] == 25.0


def test_an_unknown_model_is_named_in_the_error():
    with pytest.raises(KeyError, match="gpt-4"):
        prices.model_prices("gpt-4")
    with pytest.raises(ValueError, match="model: .*gpt-4"):
        ClaudePlayer(make_key(), model="gpt-4")


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
    assert claude._partial_text('{"reasoning": "AMZN is abo', "reasoning") == "AMZN is abo"
    assert claude._partial_text('{"reas', "reasoning") is None
    assert claude._partial_text('{"feedback": "ok", "decision": "APP', "feedback") == "ok"


def test_the_bubble_never_repeats_words_after_a_retry():
    bubble = claude._Bubble()
    shown = [bubble.update(t) for t in ("AMZN", "AMZN is", "AMZN is up")]
    # a retried stream replays the same words, then goes on
    shown += [bubble.update(t) for t in ("AM", "AMZN is", "AMZN is up; buy")]
    assert "".join(shown) == "AMZN is up; buy"
    # a different answer starts a new paragraph
    assert bubble.update("Sell") == "\n\nSell"


def test_redact_removes_the_key_and_key_shaped_strings(key):
    assert key not in claude.redact(f"bad key {key} here", key)
    assert "[key]" in claude.redact("x sk-ant-api03-abcdefghijkl y", None)


def test_agents_keep_the_key_out_of_their_repr(key, fake):
    player = ClaudePlayer(key, base_url=fake.base_url)
    coach = ClaudeCoach(key, base_url=fake.base_url, independent=True)
    assert key not in repr(player) and key not in repr(coach) and key not in repr(vars(player))
    assert (player.name, coach.name, player.model) == ("claude-player", "claude-coach-independent",
                                                       claude.DEFAULT_MODEL)
    with pytest.raises(ValueError, match="api_key"):
        ClaudePlayer("  ")


# --- validate_key ----------------------------------------------------------------------------

def test_a_malformed_key_is_refused_without_a_call(fake):
    ok, message = claude.validate_key("hello", base_url=fake.base_url)
    assert not ok and "does not look like an Anthropic API key" in message
    assert fake.requests == []


def test_a_good_key_is_accepted_with_one_cheap_call(fake, key):
    ok, message = claude.validate_key(key, base_url=fake.base_url)
    assert ok and claude.DEFAULT_MODEL in message
    assert [r["path"].split("?")[0] for r in fake.requests] == ["/v1/models"]
    sent = fake.requests[0]["headers"]
    assert key in (sent.get("x-api-key", ""), sent.get("authorization", "").removeprefix("Bearer "))


def test_a_rejected_key_says_so_and_hides_the_key(fake, key):
    fake.scenario("auth_401")
    ok, message = claude.validate_key(key, base_url=fake.base_url)
    assert not ok and "rejected (401)" in message and key not in message


def test_no_connection_says_so(key):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok, message = claude.validate_key(key, base_url=f"http://127.0.0.1:{port}", timeout=2)
    assert not ok and "No connection" in message


def test_the_fake_accepts_the_key_as_x_api_key_or_bearer_and_refuses_none(fake, key):
    for headers in ({"x-api-key": key}, {"Authorization": f"Bearer {key}"}, {}):
        request = urllib.request.Request(fake.base_url + "/v1/models", headers=headers)
        try:
            status = urllib.request.urlopen(request, timeout=5).status
        except urllib.error.HTTPError as refused:
            status = refused.code
        assert status == (200 if headers else 401)


def test_the_fake_starts_from_a_plain_script_with_a_scenario(key):
    process = subprocess.Popen([sys.executable, "tests/fake_anthropic.py", "--port", "0", "--scenario", "slow",
                                "--delay", "0.001"], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert "scenario slow" in line
        base_url = line.split(" on ")[1].split()[0]
        assert claude.validate_key(key, base_url=base_url)[0]
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- timeouts --------------------------------------------------------------------------------

def test_a_stream_that_stalls_times_out_retries_and_then_says_what_to_do(fake, key):
    slept = []
    fake.enqueue(*[tool({"reasoning": "x" * 60, "actions": []}, delay=1.0, chunk=20)] * 2)
    player = ClaudePlayer(key, base_url=fake.base_url, timeout=0.2, retries=1, sleep=slept.append)
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    with pytest.raises(core.AgentError, match="did not answer in time"):
        list(player.propose(world, core.Constraints(), core.Portfolio(), []))
    assert slept == [0.5] and len(fake.messages_requests) == 2


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
                                    lambda k: k + "\u2019", lambda k: k[:20] + " " + k[20:], lambda k: "sk-ant-"])
def test_a_key_no_api_would_take_is_refused_before_any_call_and_never_quoted(fake, key, mangle):
    bad = mangle(key)
    assert claude.validate_key(bad, base_url=fake.base_url) == (False, claude.MALFORMED_KEY)
    with pytest.raises(ValueError, match="api_key: That does not look like an Anthropic API key") as refused:
        ClaudePlayer(bad, base_url=fake.base_url)
    assert key[12:30] not in str(refused.value)
    assert fake.requests == []
