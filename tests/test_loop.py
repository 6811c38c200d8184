"""The loop: events in order, outcomes, breakers, faults, and what the store keeps."""

from __future__ import annotations

from dataclasses import replace

import pytest

import core
from core.exchange.agent import AgentError, SpendLimitReached, Turn
from core.exchange.rules import CheckedActions, PlanJudge
from tests.support.builders import entry, proposal, same_as_validated


class ScriptedPlayer:
    """Proposes the given proposals in turn and counts its calls."""

    name = "scripted-player"

    def __init__(self, *proposals, fail_on: int | None = None):
        self.proposals = proposals
        self.calls = 0
        self.fail_on = fail_on

    def propose(self, world, constraints, portfolio, history):
        self.calls += 1
        if self.fail_on == self.calls:
            raise AgentError("the model returned nonsense twice")
        p = self.proposals[min(self.calls, len(self.proposals)) - 1]
        yield "thinking "
        yield "hard"
        return Turn(p, core.Usage(input=100, output=20, cost_usd=0.0002))


GOOD = proposal(entry(size=0.03, e=100, s=98, t=104), reasoning="good")
TOO_BIG = proposal(entry(size=0.5, e=100, s=98, t=104), reasoning="too big")
LEVERED = proposal(entry(size=0.05, e=100, s=98, t=104), reasoning="levered")


def run(world, constraints, player, store=None, portfolio=None, **kw):
    events = list(core.run_exchange(world, constraints, portfolio or core.Portfolio(), player, core.HouseCoach(),
                                    store=store, **kw))
    return events, events[-1].artifact


def test_event_order_of_a_two_round_exchange(world, moderate):
    events, artifact = run(world, moderate, ScriptedPlayer(TOO_BIG, GOOD))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "ExchangeStarted" and kinds[-1] == "ExchangeFinished"
    first_round = kinds[1:kinds.index("VerdictReached") + 1]
    assert first_round[:4] == ["RoundStarted", "TextFragment", "TextFragment", "ProposalMade"]
    assert set(first_round[4:-1]) == {"TextFragment"} and first_round[-1] == "VerdictReached"
    player_text = "".join(e.text for e in events if isinstance(e, core.TextFragment) and e.role == "player")
    assert player_text == "thinking hardthinking hard"
    assert artifact.outcome == "APPROVE" and artifact.approved and artifact.rounds_taken == 2
    assert artifact.rounds[0].evaluation.violations == ["max_single_trade_pct", "max_position_pct"]


def test_usage_is_summed_per_round_and_exchange(world, moderate):
    _, artifact = run(world, moderate, ScriptedPlayer(TOO_BIG, GOOD))
    assert artifact.rounds[0].tokens == 120
    assert artifact.usage.model_dump() == {"input": 200, "output": 40, "thinking": 0, "cache_read": 0, "cache_write": 0, "cost_usd": 0.0004,
                                              "cost_basis": "price list"}
    assert artifact.total_tokens == 240


def test_reject_max_after_max_rounds(world, moderate):
    player = ScriptedPlayer(TOO_BIG)
    _, artifact = run(world, moderate.model_copy(update={"max_rounds": 2}), player)
    assert artifact.outcome == "REJECT-MAX" and artifact.rounds_taken == 2 and player.calls == 2
    assert artifact.termination_reason == "max_rounds"


def test_abort_ends_the_loop_at_once(world, moderate):
    player = ScriptedPlayer(LEVERED, GOOD)
    portfolio = core.Portfolio(positions={"MSFT": 0.75, "TSLA": 0.74})
    _, artifact = run(world, moderate, player, portfolio=portfolio)
    assert artifact.outcome == "ABORT" and player.calls == 1 and artifact.rounds_taken == 1
    assert artifact.termination_reason == "abort_on_violations: max_leverage"


def test_breaker_ends_the_exchange_before_any_agent_call(world, moderate, store):
    player = ScriptedPlayer(GOOD)
    events, artifact = run(world, moderate, player, store=store, portfolio=core.Portfolio(today_pnl=-5_000))
    assert player.calls == 0
    assert [type(e).__name__ for e in events] == ["ExchangeStarted", "BreakerTripped", "ExchangeFinished"]
    assert events[1].name == "daily_loss_limit" and "5000.00" in events[1].detail
    assert (artifact.outcome, artifact.rounds_taken, artifact.termination_reason) == ("ABORT", 0, "daily_loss_limit")
    assert store.get_exchange(artifact.run_id) == artifact


def test_agent_error_is_stored_as_error_with_the_finished_rounds(world, moderate, store):
    _, artifact = run(world, moderate, ScriptedPlayer(TOO_BIG, fail_on=2), store=store)
    assert artifact.outcome == "ERROR" and artifact.rounds_taken == 1
    assert artifact.termination_reason == "the model returned nonsense twice"
    stored = store.get_exchange(artifact.run_id)
    assert stored.outcome == "ERROR" and len(stored.rounds) == 1


def test_a_failed_round_still_counts_what_it_was_billed(world, moderate, store):
    class FailingCoach(core.HouseCoach):
        def critique(self, *args):
            yield "checking"
            raise AgentError("rate limited, retry in 30 s", core.Usage(input=7, output=3, cost_usd=0.0001))

    artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), ScriptedPlayer(GOOD), FailingCoach(),
                                      store=store)
    assert (artifact.outcome, artifact.rounds_taken) == ("ERROR", 0)
    # the Player's paid proposal (100 in, 20 out) plus the Coach's billed attempt
    assert artifact.usage.model_dump() == {"input": 107, "output": 23, "thinking": 0, "cache_read": 0, "cache_write": 0, "cost_usd": 0.0003,
                                              "cost_basis": "price list"}
    assert store.get_exchange(artifact.run_id).usage == artifact.usage
    assert store.summary()["cost_usd"] == pytest.approx(0.0003)


def test_an_agent_bug_is_an_error_not_a_crash(world, moderate, store):
    class Broken:
        name = "broken"

        def propose(self, *args):
            raise ZeroDivisionError("oops")
            yield  # pragma: no cover

    _, artifact = run(world, moderate, Broken(), store=store)
    assert artifact.outcome == "ERROR" and artifact.termination_reason == "ZeroDivisionError: oops"
    assert store.get_exchange(artifact.run_id).outcome == "ERROR"


def test_spend_guard_aborts(world, moderate):
    class Broke:
        name = "broke"

        def propose(self, *args):
            raise SpendLimitReached("over the hourly limit")
            yield  # pragma: no cover

    _, artifact = run(world, moderate, Broke())
    assert (artifact.outcome, artifact.termination_reason) == ("ABORT", "spend_guard")


def test_closing_the_generator_after_round_one_stores_interrupted(world, moderate, store):
    events = core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD), core.HouseCoach(),
                               store=store)
    for event in events:
        if isinstance(event, core.VerdictReached):
            run_id = event.record and store.list_exchanges()[0]["run_id"]
            break
    events.close()
    stored = store.get_exchange(run_id)
    assert stored.outcome == "INTERRUPTED" and stored.termination_reason == "interrupted"
    assert [r.round for r in stored.rounds] == [1]
    assert stored.rounds[0].evaluation.decision == "REJECT"


@pytest.mark.parametrize("stored", [True, False])
def test_stop_ends_it_interrupted_saying_why_with_its_finished_rounds(world, moderate, store, stored):
    from core.exchange.loop import stop

    events = core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD), core.HouseCoach(),
                               store=store if stored else None, stream=True)
    seen = []
    for event in events:
        seen.append(event)
        if isinstance(event, core.TextFragment) and len([e for e in seen if isinstance(e, core.RoundStarted)]) == 2:
            break  # round 2's Player is speaking
    stop(events, "timed out: no proposal within 600 s")
    live = seen[0].artifact
    got = store.get_exchange(live.run_id) if stored else live
    assert (got.outcome, got.termination_reason, got.rounds_taken) == (
        "INTERRUPTED", "timed out: no proposal within 600 s", 1)
    assert got.rounds[0].evaluation.decision == "REJECT"
    stop(events, "again")  # ended already: as it ended
    assert (store.get_exchange(live.run_id) if stored else live).termination_reason.startswith("timed out")


def test_stop_after_the_outcome_changes_nothing(world, moderate, store):
    from core.exchange.loop import stop

    events = core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(GOOD), core.HouseCoach(), store=store)
    for event in events:
        if isinstance(event, core.VerdictReached):
            break
    stop(events, "too late")
    (row,) = store.list_exchanges()
    assert (row["outcome"], row["termination_reason"]) == ("APPROVE", None)


def test_keyboard_interrupt_mid_round_stores_interrupted(world, moderate, store):
    class Slow:
        name = "slow"

        def __init__(self):
            self.calls = 0

        def propose(self, world, constraints, portfolio, history):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            yield "x"
            return Turn(TOO_BIG)

    with pytest.raises(KeyboardInterrupt):
        run(world, moderate, Slow(), store=store)
    (row,) = store.list_exchanges()
    assert row["outcome"] == "INTERRUPTED" and row["rounds_taken"] == 1


def test_a_crash_before_finishing_leaves_an_interrupted_row(world, moderate, store):
    events = core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD), core.HouseCoach(),
                               store=store)
    for event in events:
        if isinstance(event, core.VerdictReached):
            break
    # No close(): as if the process died here. The row is on disk already.
    (row,) = core.Store(store.path).list_exchanges()
    assert row["outcome"] == "INTERRUPTED" and row["rounds_taken"] == 1 and row["finished"] == 0


def test_independent_coach_opinion_and_disagreement_are_recorded(world, moderate):
    class Contrarian(core.HouseCoach):
        def critique(self, proposal, verdict, *args):
            yield "I disagree."
            return Turn("I disagree.", opinion={"decision": "REJECT", "violations": ["min_risk_reward"]})

    events = list(core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(GOOD), Contrarian()))
    evaluation = events[-1].artifact.rounds[0].evaluation
    assert evaluation.decision == "APPROVE"  # the rules decide
    assert evaluation.coach_opinion["decision"] == "REJECT" and evaluation.disagrees is True


def test_the_artifact_is_the_typed_model_and_its_json_validates_back(world, moderate):
    events, artifact = run(world, moderate, ScriptedPlayer(TOO_BIG, GOOD), strategy_id="s1")
    assert isinstance(artifact, core.Artifact) and all(isinstance(r, core.Round) for r in artifact.rounds)
    assert [e.record for e in events if isinstance(e, core.VerdictReached)] == artifact.rounds
    data = artifact.model_dump(mode="json")
    assert set(data) == set(core.Artifact.model_fields) - {"repeat_id"}  # written only for a repeated exchange
    assert core.Artifact.model_validate(data) == artifact
    assert artifact.agents.model_dump() == {"player": "scripted-player", "coach": "house-coach", "model": None,
                                            "player_class": "tests.test_loop:ScriptedPlayer",
                                            "coach_class": "core:HouseCoach"}
    assert artifact.strategy_id == "s1" and artifact.symbol == "AMZN"
    assert artifact.model_dump(mode="json")["world_state"]["as_of"] == "2025-03-04T10:00:00-05:00"
    round_one = artifact.rounds[0]
    assert set(data["rounds"][0]) == {"round", "proposal", "evaluation", "tokens", "usage", "latency_ms", "agent_path",
                                     "complete", "reasoning_check", "reasoning_grade"}
    assert set(round_one.evaluation.model_dump()) >= {"decision", "violations", "checks", "feedback"}
    assert round_one.latency_ms >= 0
    assert same_as_validated(artifact)  # the loop builds it, its rounds and verdicts without validating them
    assert all(same_as_validated(e.verdict) for e in events if isinstance(e, (core.ProposalMade, core.VerdictReached)))


class Words(str):
    """Text of a str subclass, as a user's agent or script might hand over."""


class WordyCoach:
    name = "wordy-coach"

    def critique(self, proposal, verdict, constraints, world, portfolio):
        return Turn(Words("fine by the rules"))


def test_text_handed_over_as_a_str_subclass_is_recorded_as_plain_text(world, moderate):
    artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), ScriptedPlayer(GOOD), WordyCoach(),
                                      run_id=Words("r-1"), strategy_id=Words("s-1"))
    assert artifact.rounds[0].evaluation.feedback == "fine by the rules" and artifact.run_id == "r-1"
    assert {type(artifact.rounds[0].evaluation.feedback), type(artifact.run_id), type(artifact.strategy_id)} == {str}


def test_replay_yields_the_same_events_without_agents(world, moderate, store):
    live, artifact = run(world, moderate, ScriptedPlayer(TOO_BIG, GOOD), store=store)
    replayed = list(core.replay_exchange(store.get_exchange(artifact.run_id)))
    def shape(events):
        return [(type(e).__name__, getattr(e, "round", None)) for e in events if not isinstance(e, core.TextFragment)]
    assert shape(replayed) == shape(live)
    coach_text = "".join(e.text for e in replayed if isinstance(e, core.TextFragment) and e.role == "coach")
    assert coach_text == "".join(r.evaluation.feedback for r in artifact.rounds)
    verdicts = [e.verdict.decision for e in replayed if isinstance(e, core.VerdictReached)]
    assert verdicts == ["REJECT", "APPROVE"]


def test_replay_of_a_breaker_shows_the_breaker(world, moderate):
    _, artifact = run(world, moderate, ScriptedPlayer(GOOD), portfolio=core.Portfolio(equity=80_000, peak_equity=100_000))
    replayed = list(core.replay_exchange(artifact))
    assert isinstance(replayed[1], core.BreakerTripped) and replayed[1].name == "mll_breached"


def test_stopping_while_the_coach_speaks_keeps_the_round_as_it_stood(world, moderate, store):
    events = core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG), core.HouseCoach(),
                               store=store, strategy_id="s", run_id="stopped")
    for event in events:
        if isinstance(event, core.TextFragment) and event.role == "coach":
            said = event.text
            break
    events.close()  # Stop: the proposal and the checks were on screen, the critique half said
    stored = store.get_exchange("stopped")
    assert (stored.outcome, stored.rounds_taken) == ("INTERRUPTED", 0)
    (kept,) = stored.rounds
    assert kept.complete is False and kept.round == 1
    assert kept.proposal == TOO_BIG and kept.evaluation.decision == "REJECT"
    assert kept.evaluation.checks == core.check_proposal(TOO_BIG, moderate, core.Portfolio(), world).checks
    assert kept.evaluation.feedback == said
    assert store.coach_memory("s") == []  # no verdict was given: the coach memory learns nothing from it
    assert store.list_exchanges()[0]["rounds_taken"] == 0


def test_stopping_while_the_player_speaks_keeps_no_round(world, moderate, store):
    events = core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(GOOD), core.HouseCoach(),
                               store=store, run_id="early")
    for event in events:
        if isinstance(event, core.TextFragment):
            break
    events.close()
    stored = store.get_exchange("early")
    assert (stored.outcome, stored.rounds) == ("INTERRUPTED", [])


def test_a_coach_that_fails_leaves_the_checked_proposal_on_record(world, moderate, store):
    class FailingCoach(core.HouseCoach):
        def critique(self, *args):
            yield "checking"
            raise AgentError("overloaded")

    artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), ScriptedPlayer(GOOD), FailingCoach(),
                                      store=store)
    assert (artifact.outcome, artifact.rounds_taken) == ("ERROR", 0)
    assert [(r.round, r.complete, r.evaluation.feedback) for r in artifact.rounds] == [(1, False, "checking")]
    assert store.get_exchange(artifact.run_id).rounds == artifact.rounds


def test_the_verdict_is_known_when_the_proposal_is_made(world, moderate):
    events, artifact = run(world, moderate, ScriptedPlayer(TOO_BIG, GOOD))
    made = [e for e in events if isinstance(e, core.ProposalMade)]
    reached = [e for e in events if isinstance(e, core.VerdictReached)]
    assert [(m.verdict.decision, m.verdict.checks) for m in made] == [(r.verdict.decision, r.verdict.checks) for r in reached]


def test_a_rounds_latency_is_the_agents_time_not_the_consumers(world, moderate, monkeypatch):
    import core.exchange.loop

    clock = [1000.0]
    monkeypatch.setattr(core.exchange.loop.time, "perf_counter", lambda: clock[0])

    class Thinker(ScriptedPlayer):
        def propose(self, *args):
            clock[0] += 0.25  # the agent's own time
            return (yield from super().propose(*args))

    for event in core.run_exchange(world, moderate, core.Portfolio(), Thinker(GOOD), core.HouseCoach()):
        clock[0] += 5.0  # the consumer animates every event for five seconds
    (record,) = event.artifact.rounds
    assert record.latency_ms == 250.0


def test_without_streaming_the_same_exchange_yields_no_text_fragments(world, moderate):
    """stream=False (a backtest shows no speech bubbles) changes the events, never the artifact."""
    def strip(artifact):
        data = artifact.model_dump()
        for r in data["rounds"]:
            r["latency_ms"] = 0
        return {k: v for k, v in data.items() if k not in ("run_id", "timestamp")}

    streamed = list(core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD),
                                      core.HouseCoach()))
    quiet = list(core.run_exchange(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD), core.HouseCoach(),
                                   stream=False))
    assert not any(isinstance(e, core.TextFragment) for e in quiet)
    assert [type(e) for e in quiet] == [type(e) for e in streamed if not isinstance(e, core.TextFragment)]
    assert strip(quiet[-1].artifact) == strip(streamed[-1].artifact)
    assert quiet[-1].artifact.rounds[0].evaluation.feedback.startswith("[action 1] max_single_trade_pct")


def test_a_caller_that_changes_its_inputs_afterwards_does_not_rewrite_the_record(world, moderate):
    portfolio = core.Portfolio(positions={"MSFT": 0.02})
    artifact = core.run_exchange_sync(world, moderate, portfolio, ScriptedPlayer(GOOD), core.HouseCoach())
    portfolio.positions["TSLA"] = 0.5
    moderate.allowed_symbols.append("QQQ")
    assert artifact.portfolio_snapshot.positions == {"MSFT": 0.02}
    assert "QQQ" not in artifact.constraint_snapshot.allowed_symbols


def test_an_exchange_on_a_symbol_the_constraints_do_not_allow_ends_before_round_one(moderate):
    """Issue 20 item 7 (SPEC §4): ABORT, rounds_taken 0, the reason naming allowed_symbols, no agent called."""
    strict = core.load_preset("strict")  # allows neither TSLA nor BTC-USD
    tsla = core.WorldState(symbol="TSLA", as_of="2025-03-04 10:00", price=250, sma5=255, sma10=248)
    player = ScriptedPlayer(GOOD)

    class Silent(core.HouseCoach):
        def critique(self, *args):
            raise AssertionError("the coach was asked")

    events = list(core.run_exchange(tsla, strict, core.Portfolio(), player, Silent()))
    artifact = events[-1].artifact
    assert (artifact.outcome, artifact.rounds_taken, artifact.termination_reason) == ("ABORT", 0, "allowed_symbols")
    assert player.calls == 0 and artifact.total_tokens == 0 and artifact.rounds == []
    tripped = next(e for e in events if isinstance(e, core.BreakerTripped))
    assert tripped.name == "allowed_symbols" and tripped.detail.startswith("TSLA not in [")
    assert [type(e) for e in core.replay_exchange(artifact)] == [type(e) for e in events]
    # A breaker on the book still comes first; a hold on another symbol is still checked for the symbol only.
    broke = core.run_exchange_sync(tsla, strict, core.Portfolio(today_pnl=-5_000), player, Silent())
    assert broke.termination_reason == "daily_loss_limit"
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    other = core.run_exchange_sync(world, moderate, core.Portfolio(), ScriptedPlayer(
        proposal({"action_type": "hold", "symbol": "QQQ"}, reasoning="hold QQQ")), core.HouseCoach())
    assert other.rounds[0].evaluation.violations == ["allowed_symbols"] and other.rounds_taken >= 1


class PlanningPlayer:
    """Proposes a copy of `actions` (GOOD's), judged while planning as the house Player judges (PlanJudge);
    `judged_on` other constraints, `change` what it does to the verdict or the actions after judging."""

    name = "planning-player"

    def __init__(self, judged_on=None, change=None, actions=GOOD.actions):
        self.judged_on, self.change, self.actions, self.verdict = judged_on, change, actions, None

    def propose(self, world, constraints, portfolio, history):
        actions = [a.model_copy() for a in self.actions]
        judge = PlanJudge(self.judged_on or constraints, portfolio, world)
        judge(actions)
        checked = judge.last(actions)
        self.verdict = checked.verdict
        if self.change:
            checked = self.change(checked, actions)
        return Turn(core.Proposal(reasoning="planned", actions=actions), checked=checked)
        yield


def _verdict(events):
    return next(e for e in events if isinstance(e, core.VerdictReached)).verdict


def test_a_verdict_the_player_reached_on_the_loops_own_inputs_is_the_rounds_verdict(world, moderate):
    player = PlanningPlayer()
    events, artifact = run(world, moderate, player)
    assert _verdict(events) is player.verdict and artifact.outcome == "APPROVE"  # taken as it was, not judged again


WRONG = core.Verdict(decision="ABORT", violations=["max_leverage"], checks=[], feedback="")


def test_a_verdict_reached_on_other_inputs_is_never_taken(world, moderate):
    """Equal values are not enough: a verdict reached on another constraints object is judged again."""
    player = PlanningPlayer(judged_on=moderate.model_copy(), change=lambda checked, _: replace(checked, verdict=WRONG))
    events, artifact = run(world, moderate, player)
    assert artifact.outcome == "APPROVE" and artifact.rounds[0].evaluation.checks  # the rules ran for the round


def test_a_verdict_on_other_actions_is_never_taken(world, moderate):
    class Swapping(PlanningPlayer):
        def propose(self, world, constraints, portfolio, history):
            turn = yield from super().propose(world, constraints, portfolio, history)
            return Turn(TOO_BIG, checked=turn.checked)  # the verdict was on GOOD's actions

    _, artifact = run(world, moderate, Swapping())
    assert artifact.rounds[0].evaluation.violations == ["max_single_trade_pct", "max_position_pct"]


def test_actions_changed_after_they_were_judged_are_judged_again(world, moderate):
    def grow(checked, actions):
        actions[0].size_pct = 0.5  # the Action is mutable: the verdict on 3 % no longer says anything
        return checked

    events, artifact = run(world, moderate, PlanningPlayer(change=grow))
    assert artifact.rounds[0].evaluation.violations == ["max_single_trade_pct", "max_position_pct"]


def test_a_verdict_a_player_wrote_itself_is_never_taken(world, moderate):
    """Only the rules' own verdict (sealed by PlanJudge) is taken: an agent cannot approve its own trade."""
    def forge(checked, actions):
        approve = core.Verdict(decision="APPROVE", violations=[], checks=[], feedback="")
        return CheckedActions(actions, checked.constraints, checked.portfolio, checked.world, approve)

    _, artifact = run(world, moderate, PlanningPlayer(actions=TOO_BIG.actions, change=forge))
    assert artifact.outcome == "REJECT-MAX"
    assert artifact.rounds[0].evaluation.violations == ["max_single_trade_pct", "max_position_pct"]


def test_the_house_players_own_verdicts_are_the_rules_verdicts(moderate):
    """The house Player judges what it proposes and hands the verdict on: each round's is what the rules say."""
    for seed in range(4):
        for world in (core.WorldState(symbol=s, as_of="2025-03-04 10:00", price=185, sma5=183 + d, sma10=180,
                                      atr=3.1) for s in ("AMZN", "MSFT") for d in (0, -6)):
            artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(seed=seed),
                                              core.HouseCoach())
            for r in artifact.rounds:
                verdict = core.check_proposal(r.proposal, moderate, core.Portfolio(), world)
                assert r.evaluation.model_dump(include={"decision", "violations", "checks"}) == \
                    verdict.model_dump(include={"decision", "violations", "checks"})


def test_decision_only_leaves_the_rounds_unchecked_unless_a_grader_reads_the_check(world, moderate):
    checked = core.run_exchange_sync(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD), core.HouseCoach())
    unchecked = core.run_exchange_sync(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD),
                                       core.HouseCoach(), decision_only=True)
    assert all(isinstance(r.reasoning_check, core.ReasoningCheck) for r in checked.rounds)
    assert len(unchecked.rounds) == 2 and all(r.reasoning_check is None for r in unchecked.rounds)
    assert [r.evaluation for r in unchecked.rounds] == [r.evaluation for r in checked.rounds]
    heard = []

    class Grader:
        def grade(self, proposal, world, constraints, portfolio, said):
            heard.append(said)
            return Turn(core.ReasoningGrade(score=3, reason="sound but thin"))

    graded = core.run_exchange_sync(world, moderate, core.Portfolio(), ScriptedPlayer(TOO_BIG, GOOD),
                                    core.HouseCoach(), decision_only=True, grader=Grader())
    assert len(heard) == 2 and all(isinstance(r.reasoning_check, core.ReasoningCheck) for r in graded.rounds)


def test_decision_only_keeps_the_callers_objects_and_breakers_checked_still_refuses_a_symbol(world, moderate):
    book = core.Portfolio()
    shared = core.run_exchange_sync(world, moderate, book, ScriptedPlayer(GOOD), core.HouseCoach(), decision_only=True)
    copied = core.run_exchange_sync(world, moderate, book, ScriptedPlayer(GOOD), core.HouseCoach())
    assert (shared.world_state, shared.constraint_snapshot, shared.portfolio_snapshot) == (world, moderate, book)
    assert shared.world_state is world and shared.portfolio_snapshot is book
    assert copied.world_state == world and copied.world_state is not world
    elsewhere = moderate.model_copy(update={"allowed_symbols": ["MSFT"]})
    refused = core.run_exchange_sync(world, elsewhere, book, ScriptedPlayer(GOOD), core.HouseCoach(),
                                     breakers_checked=True)
    assert (refused.outcome, refused.termination_reason) == ("ABORT", "allowed_symbols")
    # the caller's word is taken: the breakers are not run again (a backtest ran them on the day's book)
    sunk = core.Portfolio(equity=80_000, peak_equity=100_000, start_of_day_equity=80_000)
    tripped = core.run_exchange_sync(world, moderate, sunk, ScriptedPlayer(GOOD), core.HouseCoach())
    taken = core.run_exchange_sync(world, moderate, sunk, ScriptedPlayer(GOOD), core.HouseCoach(), breakers_checked=True)
    assert tripped.termination_reason == "mll_breached" and taken.rounds_taken == 1


def test_decision_only_with_the_house_agents_writes_the_failing_checks_only_and_the_critique_stays(moderate):
    """The house Coach quotes the failing checks and the house Player reads the violations' names: deciding only,
    a passing check's arithmetic is left empty, and every other part of the rounds is what it is otherwise. Other
    agents (a subclass too) get every check written."""
    failing = passing = 0
    for seed in range(6):
        for world in (core.WorldState(symbol=s, as_of=f"2025-03-0{day} 10:00", price=185, sma5=183 + d, sma10=180,
                                      atr=3.1) for s in ("AMZN", "MSFT") for d in (6, -6) for day in (3, 4, 5)):
            play = dict(world=world, constraints=moderate, portfolio=core.Portfolio(), run_id="r",
                        now=lambda: world.as_of)
            written = core.run_exchange_sync(**play, player=core.HousePlayer(seed, 0.9), coach=core.HouseCoach())
            lean = core.run_exchange_sync(**play, player=core.HousePlayer(seed, 0.9), coach=core.HouseCoach(),
                                          decision_only=True)
            assert lean.model_dump(exclude={"rounds"}) == written.model_dump(exclude={"rounds"})
            for mine, theirs in zip(lean.rounds, written.rounds, strict=True):
                assert mine.model_dump(exclude={"evaluation": {"checks"}, "reasoning_check": True, "latency_ms": True}) \
                    == theirs.model_dump(exclude={"evaluation": {"checks"}, "reasoning_check": True, "latency_ms": True})
                for check, full in zip(mine.evaluation.checks, theirs.evaluation.checks, strict=True):
                    assert check.model_dump(exclude={"arithmetic"}) == full.model_dump(exclude={"arithmetic"})
                    assert check.arithmetic == ("" if check.passed else full.arithmetic) and full.arithmetic
                    failing += not check.passed
                    passing += check.passed
    assert failing >= 20 and passing >= 100

    class OwnCoach(core.HouseCoach):
        pass

    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=189, sma10=180, atr=3.1)
    for player, coach in ((core.HousePlayer(), OwnCoach()), (ScriptedPlayer(TOO_BIG, GOOD), core.HouseCoach())):
        other = core.run_exchange_sync(world, moderate, core.Portfolio(), player, coach, decision_only=True)
        assert all(check.arithmetic for r in other.rounds for check in r.evaluation.checks)
