"""Claude agents end to end: core.run_exchange with a Store, the real SDK, the fake Anthropic server."""

from __future__ import annotations

import json
import logging

import anthropic
import pytest

import core
from core import prices
from core.claude import keys, models
from core.claude import prompts
from core.claude.agents import ClaudeCoach, ClaudePlayer
from core.claude.spend_guard import SpendGuard
from core.exchange.loop import ExchangeFinished, TextFragment
from tests.support.fake_anthropic import (
    BROKEN_JSON, CRITIQUE, GOOD_PROPOSAL, SCENARIOS, THIN_PROPOSAL, FakeAnthropic, error, overloaded, rate_limited,
    tool,
)

MODEL = prices.DEFAULT_MODEL


class Session:
    """Both agents of one session against the fake, with the sleeps recorded instead of slept."""

    def __init__(self, fake: FakeAnthropic, key: str, guard: SpendGuard | None = None, independent: bool = False,
                 memory: list[dict] | None = None) -> None:
        self.slept: list[float] = []
        self.player = ClaudePlayer(key, base_url=fake.base_url, guard=guard, memory=memory, sleep=self.slept.append)
        self.coach = ClaudeCoach(key, base_url=fake.base_url, guard=guard, independent=independent,
                                 sleep=self.slept.append)

    def run(self, world, constraints, store, strategy_id=None) -> list:
        return list(core.run_exchange(world, constraints, core.Portfolio(), self.player, self.coach, store,
                                      strategy_id))


def artifact_of(events) -> dict:
    assert isinstance(events[-1], ExchangeFinished)
    return events[-1].artifact


def reported_usage(fake: FakeAnthropic, since: int = 0) -> core.Usage:
    """What the fake told the client from request `since` on, summed and priced (a dropped stream: its
    message_start's usage)."""
    total = core.Usage()
    for r in fake.messages_requests[since:]:
        u = r["usage"]
        if u:  # an HTTP error reply bills nothing
            total = total + prices.usage(MODEL, input=u["input"], output=u["output"], cache_write=u["cache_write"],
                                         cache_read=u["cache_read"])
    return total


def drive(stream):
    """Drive an agent's generator to its end: (fragments, Turn)."""
    shown = []
    while True:
        try:
            shown.append(next(stream))
        except StopIteration as done:
            return shown, done.value


def texts(events, role: str) -> str:
    return "".join(e.text for e in events if isinstance(e, TextFragment) and e.role == role)


def test_approve_in_round_one(fake, key, world, moderate, store):
    fake.scenario("approve")
    events = Session(fake, key).run(world, moderate, store)
    artifact = artifact_of(events)
    assert (artifact.outcome, artifact.rounds_taken, artifact.termination_reason) == ("APPROVE", 1, None)
    assert artifact.agents.model_dump() == {"player": "claude-player", "coach": "claude-coach", "model": MODEL,
                                            "player_class": "core:ClaudePlayer",
                                            "coach_class": "core:ClaudeCoach"}
    stored = store.get_exchange(artifact.run_id)
    assert stored.outcome == "APPROVE" and len(stored.rounds) == 1
    assert stored.rounds[0].proposal.actions[0].take_profit == 191.0
    assert stored.rounds[0].evaluation.feedback == CRITIQUE["feedback"]
    # usage: exactly what the fake reported, priced from the one table, summed per round and exchange
    expected = reported_usage(fake)
    assert artifact.usage.model_dump() == pytest.approx(expected.model_dump())
    assert artifact.rounds[0].usage.model_dump() == pytest.approx(expected.model_dump())
    assert artifact.total_tokens == expected.total and stored.usage == artifact.usage
    assert expected.cache_write > 4096 and expected.cost_usd > 0


def test_text_fragments_stream_in_order_before_the_proposal_and_the_verdict(fake, key, world, moderate, store):
    fake.scenario("approve")
    events = Session(fake, key).run(world, moderate, store)
    kinds = [type(e).__name__ + (":" + e.role if isinstance(e, TextFragment) else "") for e in events]
    made, verdict = kinds.index("ProposalMade"), kinds.index("VerdictReached")
    player_at = [i for i, k in enumerate(kinds) if k == "TextFragment:player"]
    coach_at = [i for i, k in enumerate(kinds) if k == "TextFragment:coach"]
    assert len(player_at) >= 5 and max(player_at) < made  # word by word, all before the proposal event
    assert len(coach_at) >= 3 and made < min(coach_at) and max(coach_at) < verdict
    assert texts(events, "player") == GOOD_PROPOSAL["reasoning"]  # in order, nothing repeated or lost
    assert texts(events, "coach") == CRITIQUE["feedback"]


def test_requests_carry_the_cache_markers_and_the_tool_schema(fake, key, world, moderate, store):
    fake.scenario("approve")
    Session(fake, key).run(world, moderate, store)
    player, coach = (r["body"] for r in fake.messages_requests)
    for body in (player, coach):
        assert [t["name"] for t in body["tools"]] == ["submit_proposal", "submit_critique", "submit_judgement",
                                                    "submit_grade"]
        assert body["tools"] == player["tools"] and body["system"] == player["system"]  # one shared prefix
        assert [b["cache_control"] for b in body["system"]] == [{"type": "ephemeral"}] * 2
        assert json.loads(body["system"][1]["text"].split("\n\n", 1)[1]) == moderate.model_dump(mode="json")
        assert body["model"] == MODEL and body["max_tokens"] == 1024 and body["stream"] is True
        # fine-grained tool streaming: the real API then streams the reasoning word by word, not in bursts
        assert all(t["eager_input_streaming"] is True for t in body["tools"])
    assert player["tool_choice"] == {"type": "tool", "name": "submit_proposal"}
    assert player["tools"][0]["input_schema"] == prompts.tool_schema(core.Proposal)
    assert coach["tool_choice"] == {"type": "tool", "name": "submit_critique"}
    situation = player["messages"][0]["content"][0]["text"]
    assert '"symbol":"AMZN"' in situation and '"equity":100000.0' in situation
    critique_request = coach["messages"][0]["content"][0]["text"]
    assert "The rules' verdict (final): APPROVE" in critique_request
    assert "PASS min_risk_reward: (191.00-185.00)/(185.00-182.00)" in critique_request
    # the Coach's first call already reads the prefix the Player's first call wrote
    first, second = (r["usage"] for r in fake.messages_requests)
    assert first["cache_write"] > 4096 and first["cache_read"] == 0
    assert second["cache_read"] >= first["cache_write"]


def test_reject_then_approve_sends_the_round_history_and_reads_from_cache(fake, key, world, moderate, store):
    fake.scenario("reject_then_approve")
    events = Session(fake, key).run(world, moderate, store)
    artifact = artifact_of(events)
    assert (artifact.outcome, artifact.rounds_taken) == ("APPROVE", 2)
    first = store.get_exchange(artifact.run_id).rounds[0].evaluation
    assert (first.decision, first.violations) == ("REJECT", ["min_risk_reward"])
    revision = fake.messages_requests[2]["body"]["messages"]
    assert [m["role"] for m in revision] == ["user", "assistant", "user"]
    assert revision[1]["content"][0]["input"] == THIN_PROPOSAL
    result = revision[2]["content"][0]["content"]
    assert "Round 1 verdict from the rules: REJECT (violations: min_risk_reward)" in result
    assert "FAIL min_risk_reward: (187.00-185.00)/(185.00-182.00) = 2.00/3.00 = 0.67 < 1.50 FAIL" in result
    assert CRITIQUE["feedback"] in result
    # rounds 2-3 read the system prompt and the schema from cache: the goal is >= 60 % of input
    r2 = artifact.rounds[1].usage
    assert r2.cache_read / (r2.input + r2.cache_read + r2.cache_write) >= 0.6
    assert artifact.usage.model_dump() == pytest.approx(reported_usage(fake).model_dump())


def test_reject_max_keeps_all_three_rounds(fake, key, world, moderate, store):
    fake.enqueue(*[tool(THIN_PROPOSAL), tool(CRITIQUE)] * 3)
    artifact = artifact_of(Session(fake, key).run(world, moderate, store))
    assert (artifact.outcome, artifact.rounds_taken) == ("REJECT-MAX", 3)
    history = fake.messages_requests[4]["body"]["messages"]
    assert len(history) == 5  # situation, then (proposal, result) for rounds 1 and 2
    assert len(store.get_exchange(artifact.run_id).rounds) == 3


def test_invalid_tool_input_gets_one_repair_quoting_the_error(fake, key, world, moderate, store):
    fake.scenario("repair")
    session = Session(fake, key)
    events = session.run(world, moderate, store)
    artifact = artifact_of(events)
    assert (artifact.outcome, artifact.rounds_taken) == ("APPROVE", 1)
    assert len(fake.messages_requests) == 3
    repair = fake.messages_requests[1]["body"]["messages"]
    assert repair[-2]["content"][0]["type"] == "tool_use"
    answer = repair[-1]["content"][0]
    assert answer["is_error"] is True and "enter_long needs take_profit" in answer["content"]
    assert artifact.rounds[0].usage.model_dump() == pytest.approx(reported_usage(fake).model_dump())  # both calls paid
    assert session.slept == []


def test_tool_input_that_is_not_json_gets_the_repair_too(fake, key, world, moderate, store):
    fake.scenario("broken_json")
    session = Session(fake, key)
    artifact = artifact_of(session.run(world, moderate, store))
    assert (artifact.outcome, artifact.rounds_taken) == ("APPROVE", 1)
    assert len(fake.messages_requests) == 3 and session.slept == []
    # nothing usable came back, so the same question is asked again with the problem quoted
    first, repair = (r["body"]["messages"] for r in fake.messages_requests[:2])
    assert len(repair) == len(first) == 1 and repair[0]["content"][:-1] == first[0]["content"]
    note = repair[0]["content"][-1]["text"]
    assert "could not be used: the input was not valid JSON (expected value" in note
    assert BROKEN_JSON not in note  # the error is quoted, not the model's whole answer
    # the broken reply is paid as far as the client read it: its input in full, output as message_start said
    broken, *rest = fake.messages_requests
    paid = reported_usage(fake)
    assert artifact.usage.input + artifact.usage.cache_read + artifact.usage.cache_write == (
        paid.input + paid.cache_read + paid.cache_write)
    assert artifact.usage.output == 1 + sum(r["usage"]["output"] for r in rest)


def test_tool_input_that_is_never_json_ends_error_readably(fake, key, world, moderate, store):
    fake.enqueue(tool(BROKEN_JSON), tool(BROKEN_JSON))
    artifact = artifact_of(Session(fake, key).run(world, moderate, store))
    assert (artifact.outcome, artifact.rounds_taken) == ("ERROR", 0)
    assert artifact.termination_reason.startswith("Claude's Player answer was invalid twice (the input was not "
                                                     "valid JSON (expected value at line 1 column")


def test_a_failed_turn_carries_every_paid_attempt(fake, key, world, moderate):
    fake.scenario("max_tokens_twice")
    with pytest.raises(core.AgentError, match="invalid twice") as failed:
        drive(ClaudePlayer(key, base_url=fake.base_url).propose(world, moderate, core.Portfolio(), []))
    assert failed.value.usage == reported_usage(fake) and failed.value.usage.cost_usd > 0
    # a dropped stream, then overloaded to the end: the dropped attempt's input is still on the bill
    fake.enqueue(tool(GOOD_PROPOSAL, drop_after=2), overloaded(), overloaded(), overloaded())
    with pytest.raises(core.AgentError, match="overloaded") as failed:
        drive(ClaudePlayer(key, base_url=fake.base_url, sleep=lambda s: None).propose(
            world, moderate, core.Portfolio(), []))
    assert len(fake.messages_requests) == 6
    assert failed.value.usage == reported_usage(fake, since=2) and failed.value.usage.cache_read > 4096


def test_the_spend_guard_refusing_a_retry_keeps_the_paid_attempt(fake, key, world, moderate):
    fake.enqueue(tool(GOOD_PROPOSAL, drop_after=2))
    guard = SpendGuard(calls_per_hour=1)
    player = ClaudePlayer(key, base_url=fake.base_url, guard=guard, sleep=lambda s: None)
    with pytest.raises(core.SpendLimitReached) as refused:
        drive(player.propose(world, moderate, core.Portfolio(), []))
    assert len(fake.messages_requests) == 1
    assert refused.value.usage == reported_usage(fake) and refused.value.usage.cache_write > 4096
    assert guard.spent_usd == pytest.approx(refused.value.usage.cost_usd)


def test_an_unexpected_sdk_failure_ends_error_with_the_key_redacted(fake, key, world, moderate, store, caplog,
                                                                    monkeypatch):
    session = Session(fake, key)

    def explode(self, **params):
        raise RuntimeError(f"header x-api-key: {key} was odd")

    monkeypatch.setattr(anthropic.resources.messages.Messages, "stream", explode)  # the SDK itself fails
    artifact = artifact_of(session.run(world, moderate, store))
    assert artifact.outcome == "ERROR"
    assert artifact.termination_reason == ("The Player's call to the Anthropic API failed: RuntimeError: "
                                              "header x-api-key: [key] was odd")
    assert key not in store.get_exchange(artifact.run_id).model_dump_json() and key not in caplog.text


def test_truncated_at_max_tokens_is_repaired_with_a_larger_budget(fake, key, world, moderate, store):
    fake.scenario("max_tokens")
    events = Session(fake, key).run(world, moderate, store)
    assert artifact_of(events).outcome == "APPROVE"
    first, repair = (r["body"] for r in fake.messages_requests[:2])
    assert (first["max_tokens"], repair["max_tokens"]) == (1024, 2048)
    assert "cut off at max_tokens=1024" in repair["messages"][-1]["content"][0]["content"]
    # the text shown while the cut-off answer streamed is not shown a second time
    assert texts(events, "player") == GOOD_PROPOSAL["reasoning"]


def test_a_failed_repair_ends_error_with_earlier_rounds_kept(fake, key, world, moderate, store):
    fake.enqueue(tool(THIN_PROPOSAL), tool(CRITIQUE))
    fake.scenario("max_tokens_twice")
    artifact = artifact_of(Session(fake, key).run(world, moderate, store))
    assert (artifact.outcome, artifact.rounds_taken) == ("ERROR", 1)
    assert artifact.termination_reason.startswith("Claude's Player answer was invalid twice (the answer was cut off")
    stored = store.get_exchange(artifact.run_id)
    assert stored.outcome == "ERROR" and stored.termination_reason == artifact.termination_reason
    assert [r.round for r in stored.rounds] == [1]


def test_a_rejected_key_is_not_retried_and_says_what_to_do(fake, key, world, moderate, store):
    fake.scenario("auth_401")
    session = Session(fake, key)
    artifact = artifact_of(session.run(world, moderate, store))
    assert (artifact.outcome, artifact.rounds_taken) == ("ERROR", 0)
    assert artifact.termination_reason == "The API key was rejected (401): check it in Settings."
    assert len(fake.messages_requests) == 1 and session.slept == []
    assert store.get_exchange(artifact.run_id).outcome == "ERROR"


def test_rate_limit_waits_for_retry_after_then_succeeds(fake, key, world, moderate, store):
    fake.scenario("rate_limit_429")
    session = Session(fake, key)
    artifact = artifact_of(session.run(world, moderate, store))
    assert artifact.outcome == "APPROVE"
    assert session.slept == [2.0] and len(fake.messages_requests) == 3
    assert artifact.usage.model_dump() == pytest.approx(reported_usage(fake).model_dump())  # the 429 billed nothing


def test_rate_limit_that_persists_ends_error_with_the_wait(fake, key, world, moderate, store):
    fake.enqueue(*[rate_limited(3)] * 4)
    session = Session(fake, key)
    artifact = artifact_of(session.run(world, moderate, store))
    assert artifact.outcome == "ERROR"
    assert artifact.termination_reason == "Rate limited by the Anthropic API (429): it asks to wait 3 s."
    assert session.slept == [3.0] * 3 and len(fake.messages_requests) == 4  # 3 retries, then stop


def test_a_long_retry_after_is_not_waited_for(fake, key, world, moderate, store):
    fake.enqueue(rate_limited(120))
    session = Session(fake, key)
    artifact = artifact_of(session.run(world, moderate, store))
    assert artifact.termination_reason == (
        "Rate limited by the Anthropic API (429): it asks to wait 2 min. That is longer than the 20 s this app "
        "waits on its own: run the exchange again in 2 min.")
    assert session.slept == [] and len(fake.messages_requests) == 1


def test_overloaded_backs_off_then_succeeds(fake, key, world, moderate, store):
    fake.scenario("overloaded_529")
    session = Session(fake, key)
    artifact = artifact_of(session.run(world, moderate, store))
    assert artifact.outcome == "APPROVE"
    assert session.slept == [0.5, 1.0] and len(fake.messages_requests) == 4
    assert artifact.usage.model_dump() == pytest.approx(reported_usage(fake).model_dump())


def test_overloaded_that_persists_ends_error(fake, key, world, moderate, store):
    fake.enqueue(*[overloaded()] * 4)
    artifact = artifact_of(Session(fake, key).run(world, moderate, store))
    assert artifact.termination_reason == "The Anthropic API is overloaded (529): try again in a minute."


def test_a_dropped_stream_is_retried_without_repeating_words(fake, key, world, moderate, store):
    fake.scenario("drop")
    guard = SpendGuard(dollars_per_session=1.0)
    session = Session(fake, key, guard=guard)
    events = session.run(world, moderate, store)
    artifact = artifact_of(events)
    assert artifact.outcome == "APPROVE"
    assert len(fake.messages_requests) == 3 and session.slept == [0.5]
    assert texts(events, "player") == GOOD_PROPOSAL["reasoning"]
    # the dropped attempt's input was billed (message_start said so): counted once, in the round and the guard
    dropped = fake.messages_requests[0]["usage"]
    assert dropped["cache_write"] > 4096
    assert artifact.usage.model_dump() == pytest.approx(reported_usage(fake).model_dump())
    assert artifact.usage.cache_write == dropped["cache_write"]
    assert guard.spent_usd == pytest.approx(artifact.usage.cost_usd)


def test_no_server_ends_error_saying_so(key, world, moderate, store):
    with FakeAnthropic() as gone:
        base_url = gone.base_url
    session = Session(type("Gone", (), {"base_url": base_url})(), key)
    artifact = artifact_of(session.run(world, moderate, store))
    assert artifact.outcome == "ERROR" and "Could not reach the Anthropic API" in artifact.termination_reason
    assert len(session.slept) == 3


def test_slow_stream_gives_the_same_exchange(fake, key, world, moderate, store):
    fake.scenario("slow", delay=0.002)
    events = Session(fake, key).run(world, moderate, store)
    assert artifact_of(events).outcome == "APPROVE"
    assert texts(events, "player") == GOOD_PROPOSAL["reasoning"]


def test_spend_guard_on_calls_aborts_without_a_call(fake, key, world, moderate, store):
    fake.scenario("approve")
    guard = SpendGuard(calls_per_hour=1)
    artifact = artifact_of(Session(fake, key, guard=guard).run(world, moderate, store))
    assert (artifact.outcome, artifact.termination_reason) == ("ABORT", "spend_guard")
    assert len(fake.messages_requests) == 1  # the Player's call went out, the Coach's never did
    assert store.get_exchange(artifact.run_id).termination_reason == "spend_guard"


def test_spend_guard_on_dollars_is_shared_by_both_agents(fake, key, world, moderate, store):
    guard = SpendGuard(dollars_per_session=0.0)
    artifact = artifact_of(Session(fake, key, guard=guard).run(world, moderate, store))
    assert (artifact.outcome, artifact.termination_reason) == ("ABORT", "spend_guard")
    assert fake.messages_requests == []
    guard = SpendGuard(dollars_per_session=1.0)
    Session(fake, key, guard=guard).run(world, moderate, store)
    assert guard.spent_usd == pytest.approx(reported_usage(fake).cost_usd)


def test_independent_coach_judges_without_checks_and_disagreement_is_flagged(fake, key, world, moderate, store):
    fake.enqueue(tool(GOOD_PROPOSAL), tool({"feedback": "The target is too close.", "decision": "REJECT",
                                            "violations": ["min_risk_reward"]}))
    artifact = artifact_of(Session(fake, key, independent=True).run(world, moderate, store))
    evaluation = artifact.rounds[0].evaluation
    assert evaluation.decision == "APPROVE"  # the verdict always comes from the rules
    assert evaluation.coach_opinion == {"decision": "REJECT", "violations": ["min_risk_reward"]}
    assert evaluation.disagrees is True and evaluation.feedback == "The target is too close."
    coach = fake.messages_requests[1]["body"]
    assert coach["tool_choice"]["name"] == "submit_judgement"
    request = coach["messages"][0]["content"][0]["text"]
    assert "PASS" not in request and "FAIL" not in request and "verdict (final)" not in request
    assert store.get_exchange(artifact.run_id).rounds[0].evaluation.disagrees is True


def test_the_player_is_told_its_strategy_memory(fake, key, world, moderate, store):
    fake.scenario("reject_then_approve")
    Session(fake, key).run(world, moderate, store, strategy_id="trend")
    memory = store.memory_summary("trend")
    assert memory and memory[0]["constraint"] == "min_risk_reward"
    fake.scenario("approve")
    Session(fake, key, memory=memory).run(world, moderate, store, strategy_id="trend")
    situation = fake.messages_requests[-2]["body"]["messages"][0]["content"][0]["text"]
    line = f"- AMZN: min_risk_reward failed {memory[0]['failures']} of {memory[0]['checks']} checks"
    assert line in situation


def test_no_trace_of_the_key_after_every_scenario(tmp_path, key, world, moderate, caplog):
    caplog.set_level(logging.DEBUG)
    store = core.Store(tmp_path / "scan.db")
    artifacts, messages = [], []
    for name in SCENARIOS:
        with FakeAnthropic() as server:
            server.scenario(name, delay=0.001)
            session = Session(server, key, guard=SpendGuard(calls_per_hour=100, dollars_per_session=5))
            artifacts.append(artifact_of(session.run(world, moderate, store, strategy_id="scan")))
            messages.append(models.validate_key(key, base_url=server.base_url).message)
    assert {a.outcome for a in artifacts} == {"APPROVE", "ERROR"}
    assert len(store.list_exchanges(limit=100)) == len(SCENARIOS)
    secret = key.encode()
    files = list(tmp_path.glob("scan.db*"))
    assert files and not any(secret in path.read_bytes() for path in files)
    assert key not in json.dumps([a.model_dump(mode="json") for a in artifacts]) and key not in json.dumps(messages)
    assert key not in json.dumps([store.get_exchange(a.run_id).model_dump(mode="json") for a in artifacts])
    assert caplog.records and key not in caplog.text
    assert key[12:] not in caplog.text  # not even the key without its prefix


def runs_of_the_key(text: str, key: str, shortest: int = keys.KEY_FRAGMENT) -> list[str]:
    """Every run of `shortest` or more characters of the key found in the text."""
    return [key[i:i + shortest] for i in range(len(key) - shortest + 1) if key[i:i + shortest] in text]


@pytest.mark.parametrize("quoted", [slice(-60, None), slice(5, 30), slice(12, 20)])
def test_an_upstream_error_quoting_part_of_the_key_leaves_no_fragment_anywhere(tmp_path, fake, key, world, moderate,
                                                                                quoted):
    fake.always = error(400, "invalid_request_error", f"header x-api-key: ...{key[quoted]} is not valid here")
    store = core.Store(tmp_path / "frag.db")
    artifact = artifact_of(Session(fake, key).run(world, moderate, store))
    assert artifact.outcome == "ERROR" and "[key]" in artifact.termination_reason
    assert runs_of_the_key(artifact.termination_reason, key) == []
    stored = store.get_exchange(artifact.run_id).model_dump_json()
    assert runs_of_the_key(stored, key) == []
    assert all(runs_of_the_key(path.read_bytes().decode("latin-1"), key) == [] for path in tmp_path.glob("frag.db*"))


def test_redact_keeps_text_that_only_shares_short_runs_with_the_key(key):
    # Around each run, characters no key holds: a letter next to it lengthens it whenever the random key goes on with
    # that letter (across a space too, as the key split by whitespace is hidden): the test failed about 1 run in 13.
    assert keys.redact(f"model <{key[15:22]}> is fine", key) == f"model <{key[15:22]}> is fine"  # 7 characters
    assert keys.redact(f"<{key[15:23]}>", key) == "<[key]>"  # 8 characters go; their neighbours stay
