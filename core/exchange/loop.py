"""The Player-Coach loop as a generator of events.

The UI, the backtest, the command line and the tests all consume the same events. The loop stores
nothing: `core.journal.record` writes the events as they come (the exchange when it starts, each
round as it ends), so an exchange that dies half-way is still on record with what it had.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from datetime import datetime, timezone
from typing import NamedTuple

from core.exchange.agent import Coach, Player, Turn
from core.exchange.errors import AgentError, Interrupted, SpendLimitReached
from core.exchange.events import (  # importable from here, as before
    BreakerTripped, Event, ExchangeFinished, ExchangeStarted, ProposalMade, RoundStarted, TextFragment, VerdictReached,
)
from core.exchange.house import read_failing_checks_only
from core.exchange.plugins import agent_class
from core.exchange.reasoning import reasoning_check
from core.exchange.rounds import RoundUnderWay, text_or_none
from core.exchange.rules import breaker_detail, check_proposal, circuit_breaker, refused_symbol
from core.exchange.schema import BEFORE_ROUND_ONE, Constraints, Portfolio, Proposal, WorldState, built
from core.exchange.artifact import (
    NO_USAGE, Agents, Artifact, ReasoningCheck, ReasoningGrade, Round, Usage, Verdict, snapshot,
)

log = logging.getLogger(__name__)


def _grade(grader, proposal: Proposal, world: WorldState, constraints: Constraints, portfolio: Portfolio,
           checked: ReasoningCheck) -> tuple[ReasoningGrade | None, Usage]:
    """The optional grader's opinion and what it cost; a grader that fails leaves no grade, never an error."""
    if grader is None:
        return None, NO_USAGE
    said = ("no numbers stated" if checked.score is None else
            f"{sum(c.ok for c in checked.claims)} of {len(checked.claims)} statements hold"
            + (f"; mismatches: {checked.mismatch_line()}" if checked.mismatches else ""))
    try:
        turn = grader.grade(proposal, world, constraints, portfolio, said)
    except (AgentError, SpendLimitReached) as failure:
        log.warning("no grade for this round: %s", failure)
        return None, failure.usage
    return turn.value, turn.usage


def _verdict(played: Turn, constraints: Constraints, portfolio: Portfolio, world: WorldState,
             passing_words: bool) -> Verdict:
    """The rules' verdict on the Player's proposal: the one the Player reached on these very inputs while
    planning it (the house Player judges what it proposes), else the rules run now; a passing check's
    arithmetic written unless `passing_words` is False."""
    proposal = played.value
    checked = played.checked
    verdict = None if checked is None else checked.verdict_on(proposal, constraints, portfolio, world, passing_words)
    return verdict or check_proposal(proposal, constraints, portfolio, world, passing_words=passing_words)


def _ending(verdict: Verdict, number: int, constraints: Constraints) -> tuple[str, str | None] | None:
    """The outcome and reason when this round ends the exchange, else None."""
    if verdict.decision == "APPROVE":
        return "APPROVE", None
    if verdict.decision == "ABORT":
        hard = [v for v in verdict.violations if v in constraints.abort_on_violations]
        return "ABORT", "abort_on_violations: " + ", ".join(hard)
    if number == constraints.max_rounds:
        return "REJECT-MAX", "max_rounds"
    return None


def _agents(player: object, coach: object, *, kept: bool = True) -> Agents | None:
    """Who plays: names as the agents give them, classes as `module:Class`. `kept=False`, for an exchange that keeps
    no artifact: only refuse agents the artifact would refuse, and build nothing for the others (None)."""
    player_name, coach_name = getattr(player, "name", type(player).__name__), getattr(coach, "name", type(coach).__name__)
    model = getattr(player, "model", None) or getattr(coach, "model", None)
    names = {"player": player_name, "coach": coach_name, "model": model,
             "player_class": agent_class(player), "coach_class": agent_class(coach)}
    if type(player_name) is str and type(coach_name) is str and text_or_none(model):
        # text as the model holds it (the classes' names are): nothing to convert
        return built(Agents, names) if kept else None
    return Agents(**names)  # an agent named otherwise is refused (or converted) as before


_STAMPED: tuple[datetime | None, str] = (None, "")  # the last clock reading and its text


def _timestamp(stamp: datetime) -> str:
    """The clock reading as ISO text, written once for the exchanges that share it (a backtest's symbols of one day
    share their day's clock: core.world.as_of); a datetime never changes, so the same object has the same text."""
    global _STAMPED
    last, text = _STAMPED  # one tuple, read and replaced whole: threads never pair one reading with another's text
    if stamp is not last:
        text = stamp.isoformat()
        _STAMPED = stamp, text
    return text


_STARTED = frozenset(Artifact.model_fields) - {"repeat_id"}  # the fields an exchange's artifact is given


def _artifact(run_id: str, timestamp: str, held: tuple[Constraints, Portfolio, WorldState], strategy_id: str | None,
              agents: Agents) -> Artifact:
    """The exchange's artifact as it starts (INTERRUPTED, no rounds), holding the constraints, portfolio and world
    it runs on (`held`: copies, unless the caller never changes them)."""
    constraints, portfolio, world = held
    fields = {"run_id": run_id, "timestamp": timestamp, "outcome": "INTERRUPTED", "approved": False, "rounds_taken": 0,
              "termination_reason": None, "total_tokens": 0, "usage": NO_USAGE, "rounds": [],
              "constraint_snapshot": constraints, "portfolio_snapshot": portfolio, "world_state": world,
              "strategy_id": strategy_id, "symbol": world.symbol, "agents": agents}
    if (type(run_id) is str and type(timestamp) is str and type(world.symbol) is str and text_or_none(strategy_id)
            and isinstance(constraints, Constraints) and isinstance(portfolio, Portfolio) and isinstance(world, WorldState)):
        # The models themselves (or their copies) and our own values: validating would return them as they are.
        return built(Artifact, {**fields, "repeat_id": None}, _STARTED)
    return Artifact(**fields)  # an id, a time or a strategy given as something else than text: refused or converted


def run_exchange(
    world: WorldState,
    constraints: Constraints,
    portfolio: Portfolio,
    player: Player,
    coach: Coach,
    *,
    strategy_id: str | None = None,
    run_id: str | None = None,
    now: Callable[[], datetime] | None = None,
    grader=None,
    stream: bool = True,
    decision_only: bool = False,
    breakers_checked: bool = False,
) -> Iterator[Event]:
    """Run one exchange, yielding events; the last is ExchangeFinished with the artifact.

    `stream=False` yields no TextFragment (a backtest shows none; building them costs time).
    `grader` (optional, e.g. core.claude.ClaudeGrader) grades each proposal's reasoning; its grade is
    recorded in the round and never changes the verdict.
    `decision_only=True` is for a caller that reads only the decision (a backtest that records no exchange):
    each round's `reasoning_check` is left None, which skips checking every sentence (a grader still gets the
    check), and the artifact holds the world, constraints and portfolio themselves, not copies, for a caller that
    never changes them afterwards (a backtest builds new ones every day). With the house Player and Coach, which
    read no passing check's arithmetic, a passing check's `arithmetic` is also left empty (the critique, which
    quotes the failing checks, is the same).
    `breakers_checked=True` says the caller already ran the circuit breakers on these constraints, a portfolio
    of the same equity, and this world's `as_of`, and none fired (a backtest runs them once a day for the whole
    book): the loop does not run them again. The exchange's own symbol is still checked against the allowed.

    It stores nothing: wrap it in `core.journal.record(events, store)` to keep it on record.
    `decide_exchange` walks the same rounds without events or artifact (an unrecorded backtest): a change to the
    rounds here is made there too; tests/test_loop_decide.py holds the two equal.
    Closing the generator (or Ctrl-C) ends the exchange INTERRUPTED (`stop(events, reason)` does so saying why,
    the reason its termination_reason); an agent failure ends it
    ERROR. Either way every finished round stays in the artifact, and what the
    unfinished round was already billed still counts in the exchange's usage. The unfinished
    round itself is kept as it stood (`complete` false) once its proposal has been checked.
    A round's `latency_ms` is the agents' own time: what the consumer spends between events
    (an animation) is not counted.
    """
    stamp = (now or (lambda: datetime.now(timezone.utc)))()
    # Copies: a caller that changes its portfolio afterwards must not rewrite this record.
    held = (constraints, portfolio, world) if decision_only else \
        (snapshot(constraints), snapshot(portfolio), snapshot(world))
    artifact = _artifact(run_id or str(uuid.uuid4()), _timestamp(stamp), held, strategy_id, _agents(player, coach))
    exchange = _Exchange(artifact, world, constraints, portfolio, player, coach, grader, stream, decision_only)
    try:
        yield ExchangeStarted(artifact.run_id, world, constraints, portfolio, strategy_id, artifact)
        breaker = (None if breakers_checked else circuit_breaker(constraints, portfolio, world.as_of)) or \
            refused_symbol(constraints, world.symbol)
        if breaker:
            exchange.finish("ABORT", breaker)
            yield BreakerTripped(breaker, breaker_detail(breaker, constraints, portfolio, world.as_of, world.symbol))
        for number in range(1, 0 if breaker else constraints.max_rounds + 1):
            if (yield from exchange.play_round(number)):
                break
    except (GeneratorExit, KeyboardInterrupt):
        # A consumer that stops listening after the outcome is on record changes nothing.
        exchange.cut_short("interrupted")
        raise
    except Interrupted as why:  # thrown in by stop(): ended as closing it would, saying why
        exchange.cut_short(str(why) or "interrupted")
    except Exception as failure:  # an agent bug must still leave a stored, readable exchange
        exchange.finish(*_failed(failure, artifact.run_id))
    yield ExchangeFinished(artifact)


class _Exchange:
    """An exchange under way in `run_exchange`: what it plays on, its artifact, what it has spent, the round under
    way, and how it ends wherever it stops."""

    __slots__ = ("artifact", "world", "constraints", "portfolio", "player", "coach", "grader", "stream", "check",
                 "passing_words", "usage", "unfinished", "current", "finished")

    def __init__(self, artifact: Artifact, world: WorldState, constraints: Constraints, portfolio: Portfolio,
                 player: Player, coach: Coach, grader, stream: bool, decision_only: bool):
        self.artifact, self.world, self.constraints, self.portfolio = artifact, world, constraints, portfolio
        self.player, self.coach, self.grader, self.stream = player, coach, grader, stream
        self.check = not decision_only or grader is not None  # whether each round's reasoning is checked
        self.passing_words = not (decision_only and read_failing_checks_only(player, coach))
        self.usage = self.unfinished = NO_USAGE  # `unfinished`: billed in the round under way, not yet in `usage`
        self.current: RoundUnderWay | None = None
        self.finished = False

    def play_round(self, number: int) -> Generator[Event, None, bool]:
        """Play round `number`, yielding its events; whether it ended the exchange."""
        world, constraints, portfolio, player, coach = self.world, self.constraints, self.portfolio, self.player, self.coach
        current = self.current = RoundUnderWay(number)
        yield RoundStarted(number)
        said = player.propose(world, constraints, portfolio, self.artifact.rounds)
        played = current.played = (yield from current.speak("player", player, said)) if self.stream else \
            current.hear("player", player, said)
        self.unfinished = played.usage
        proposal = current.proposal = played.value
        started = time.perf_counter()
        checked = current.checked = reasoning_check(proposal) if self.check else None
        grade, graded = _grade(self.grader, proposal, world, constraints, portfolio, checked)
        self.unfinished = self.unfinished + graded
        verdict = current.verdict = _verdict(played, constraints, portfolio, world, self.passing_words)
        current.seconds += time.perf_counter() - started
        # A copy without the critique, which comes with VerdictReached (what model_copy makes, at a third of its cost).
        before = built(Verdict, verdict.__dict__.copy(), verdict.__pydantic_fields_set__)
        yield ProposalMade(number, proposal, before)
        said = coach.critique(proposal, verdict, constraints, world, portfolio)
        coached = (yield from current.speak("coach", coach, said)) if self.stream else \
            current.hear("coach", coach, said)
        spent = played.usage + graded + coached.usage
        self.usage, self.unfinished = self.usage + spent, NO_USAGE
        record = current.record(coached, spent, grade)
        self.artifact.rounds.append(record)
        self.current = None  # finished: nothing left to keep as it stood
        ending = _ending(verdict, number, constraints)
        if ending:
            self.finish(*ending)
        yield VerdictReached(number, verdict, record, last=bool(ending))
        return bool(ending)

    def cut_short(self, reason: str) -> None:
        """End it INTERRUPTED with `reason`, unless it had already ended."""
        if not self.finished:
            self.finish("INTERRUPTED", reason, NO_USAGE)

    def finish(self, outcome: str, reason: str | None, billed: Usage | None = None) -> None:
        """Write how it ended into the artifact. `billed`: when it stopped before its end (None: it ended as the
        rules say), what a failure billed beyond what the round under way had, all of which then counts."""
        artifact, rounds = self.artifact, self.artifact.rounds
        if billed is not None:
            self.usage = self.usage + self.unfinished + billed
        if self.current is not None and not self.finished:  # cut short in a round: keep it as it stood
            as_it_stood = self.current.as_it_stood(self.unfinished)
            if as_it_stood is not None:
                rounds.append(as_it_stood)
        # Straight into the model's fields: each was set when the artifact was built, so pydantic's own
        # __setattr__ (a field lookup and a fields-set update per name) would change nothing else.
        artifact.__dict__.update(outcome=outcome, approved=outcome == "APPROVE",
                                 rounds_taken=sum(r.complete for r in rounds), termination_reason=reason,
                                 total_tokens=self.usage.total, usage=self.usage)
        self.finished = True


def _failed(failure: Exception, run_id: str) -> tuple[str, str, Usage]:
    """How an agent's failure ends exchange `run_id`: its outcome, its reason, and what the failure billed beyond
    the round under way. Called while handling it (an unforeseen failure is logged with its traceback)."""
    if isinstance(failure, SpendLimitReached):
        log.info("spend guard stopped exchange %s: %s", run_id, failure)
        return "ABORT", "spend_guard", failure.usage
    if isinstance(failure, AgentError):
        return "ERROR", str(failure) or type(failure).__name__, failure.usage
    log.exception("exchange %s failed", run_id)
    return "ERROR", f"{type(failure).__name__}: {failure}", NO_USAGE


class Ended(NamedTuple):
    """How an exchange decided only ended (`decide_exchange`): its artifact's outcome, reason, rounds and usage."""

    outcome: str
    reason: str | None
    rounds: list[Round]
    usage: Usage
    taken: int  # the rounds finished (the artifact's rounds_taken): all but one kept as it stood


def decide_exchange(world: WorldState, constraints: Constraints, portfolio: Portfolio, player: Player, coach: Coach,
                    *, run_id: str, breakers_checked: bool = False) -> Ended:
    """`run_exchange(..., stream=False, decision_only=True)` without its events and artifact, for a caller that reads
    only how the exchange ended (a backtest that records no exchange): the agents are asked the same things on the
    same inputs, and the outcome, reason, rounds and usage are the artifact's. Nobody can stop it between events,
    so it never ends INTERRUPTED; `run_id` names it in the log when an agent fails."""
    _agents(player, coach, kept=False)  # an agent named by something else than text is refused here as there
    passing_words = not read_failing_checks_only(player, coach)
    rounds: list[Round] = []
    usage = unfinished = NO_USAGE  # `unfinished`: billed in the round under way, not yet in `usage`
    current: RoundUnderWay | None = None

    def ended(outcome: str, reason: str | None) -> Ended:
        taken = len(rounds)  # every round so far is finished
        if current is not None:  # cut short in a round: keep it as it stood
            as_it_stood = current.as_it_stood(unfinished)
            if as_it_stood is not None:
                rounds.append(as_it_stood)
        return Ended(outcome, reason, rounds, usage, taken)

    try:
        breaker = (None if breakers_checked else circuit_breaker(constraints, portfolio, world.as_of)) or \
            refused_symbol(constraints, world.symbol)
        if breaker:
            return ended("ABORT", breaker)
        for number in range(1, constraints.max_rounds + 1):
            current = RoundUnderWay(number)
            played = current.played = current.hear("player", player, player.propose(world, constraints, portfolio,
                                                                                    rounds))
            unfinished = played.usage
            proposal = current.proposal = played.value
            started = time.perf_counter()
            verdict = current.verdict = _verdict(played, constraints, portfolio, world, passing_words)
            current.seconds += time.perf_counter() - started
            coached = current.hear("coach", coach, coach.critique(proposal, verdict, constraints, world, portfolio))
            spent = played.usage + coached.usage
            usage, unfinished = usage + spent, NO_USAGE
            rounds.append(current.record(coached, spent, None))
            current = None
            ending = _ending(verdict, number, constraints)
            if ending:
                return ended(*ending)
    except Exception as failure:  # a failure ends the exchange as it ends run_exchange's
        outcome, reason, billed = _failed(failure, run_id)
        usage = usage + unfinished + billed
        return ended(outcome, reason)
    return ended("INTERRUPTED", None)  # no round at all (max_rounds set below 1 unvalidated): as the artifact starts


def stop(events: Iterator[Event], reason: str) -> None:
    """End an exchange under way INTERRUPTED with `reason` as its termination reason, keeping every finished round
    and the round under way as it stood, as closing its events does; one that has ended stays as it ended. `events`:
    `run_exchange`'s generator, or `core.journal.record`'s around it (which writes the ending)."""
    try:
        events.throw(Interrupted(reason))
    except (Interrupted, StopIteration):
        pass  # it had ended, or never started
    finally:
        events.close()


def run_exchange_sync(*args, **kwargs) -> Artifact:
    """Run an exchange to the end and return its artifact."""
    kwargs.setdefault("stream", False)  # nobody sees the text events: the agents' text is drained whole
    for event in run_exchange(*args, **kwargs):
        pass
    return event.artifact


def replay_exchange(artifact: Artifact, words_per_fragment: int = 1) -> Iterator[Event]:
    """The events of a stored exchange, in order, without calling any agent."""
    world, constraints, portfolio = artifact.world_state, artifact.constraint_snapshot, artifact.portfolio_snapshot
    yield ExchangeStarted(artifact.run_id, world, constraints, portfolio, artifact.strategy_id, artifact)
    if artifact.rounds_taken == 0 and artifact.termination_reason in BEFORE_ROUND_ONE:
        name = artifact.termination_reason
        yield BreakerTripped(name, breaker_detail(name, constraints, portfolio, world.as_of, world.symbol))
    for record in artifact.rounds:
        yield RoundStarted(record.round)
        for fragment in fragments(record.proposal.reasoning, words_per_fragment):
            yield TextFragment("player", fragment)
        verdict = Verdict(decision=record.evaluation.decision, violations=record.evaluation.violations,
                          checks=record.evaluation.checks, feedback="")
        yield ProposalMade(record.round, record.proposal, verdict)
        evaluation = record.evaluation
        for fragment in fragments(evaluation.feedback, words_per_fragment):
            yield TextFragment("coach", fragment)
        verdict = Verdict(decision=evaluation.decision, violations=evaluation.violations, checks=evaluation.checks,
                          feedback=evaluation.feedback)
        yield VerdictReached(record.round, verdict, record, last=record is artifact.rounds[-1])
    yield ExchangeFinished(artifact)


def fragments(text: str, words: int = 1) -> Iterator[str]:
    """Split text into streaming fragments of a few words, keeping every character."""
    pieces = text.split(" ")
    for start in range(0, len(pieces), words):
        chunk = " ".join(pieces[start:start + words])
        yield chunk if start + words >= len(pieces) else chunk + " "
