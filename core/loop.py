"""The Player-Coach loop as a generator of events.

The UI, the backtest, the command line and the tests all consume the same events. The store,
when given, is written at the start and after every finished round, so an exchange that dies
half-way is still on record with what it had.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from core.agent import AgentError, Coach, Player, SpendLimitReached, Turn
from core.rules import breaker_detail, check_proposal, circuit_breaker
from core.schema import BREAKER_NAMES, NO_USAGE, Constraints, Portfolio, Proposal, Verdict, WorldState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExchangeStarted:
    run_id: str
    world: WorldState
    constraints: Constraints
    portfolio: Portfolio
    strategy_id: str | None


@dataclass(frozen=True, slots=True)
class BreakerTripped:
    name: str
    detail: str


@dataclass(frozen=True, slots=True)
class RoundStarted:
    round: int


@dataclass(frozen=True, slots=True)
class TextFragment:
    role: str  # "player" or "coach"
    text: str


@dataclass(frozen=True, slots=True)
class ProposalMade:
    round: int
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class VerdictReached:
    round: int
    verdict: Verdict
    record: dict  # the artifact's round, as stored


@dataclass(frozen=True, slots=True)
class ExchangeFinished:
    artifact: dict


Event = ExchangeStarted | BreakerTripped | RoundStarted | TextFragment | ProposalMade | VerdictReached | ExchangeFinished


def _speak(role: str, stream: Generator[str, None, Turn]) -> Generator[TextFragment, None, Turn]:
    """Wrap an agent's text fragments as events and hand back its Turn."""
    while True:
        try:
            fragment = next(stream)
        except StopIteration as done:
            return done.value
        yield TextFragment(role, fragment)


def _disagreement(opinion: dict | None, verdict: Verdict) -> bool | None:
    if opinion is None:
        return None
    return opinion.get("decision") != verdict.decision or set(opinion.get("violations") or []) != set(verdict.violations)


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


def run_exchange(
    world: WorldState,
    constraints: Constraints,
    portfolio: Portfolio,
    player: Player,
    coach: Coach,
    store=None,
    strategy_id: str | None = None,
    *,
    run_id: str | None = None,
    now: Callable[[], datetime] | None = None,
) -> Iterator[Event]:
    """Run one exchange, yielding events; the last is ExchangeFinished with the artifact.

    Closing the generator (or Ctrl-C) ends the exchange INTERRUPTED; an agent failure ends it
    ERROR. Either way every finished round stays in the artifact and in the store, and what the
    unfinished round was already billed still counts in the exchange's usage.
    """
    stamp = (now or (lambda: datetime.now(timezone.utc)))()
    usage = NO_USAGE
    unfinished = NO_USAGE  # billed in the round under way, not yet in `usage`
    rounds: list[dict] = []
    artifact = {
        "run_id": run_id or str(uuid.uuid4()),
        "timestamp": stamp.isoformat(),
        "outcome": "INTERRUPTED",
        "approved": False,
        "rounds_taken": 0,
        "termination_reason": None,
        "total_tokens": 0,
        "usage": usage.model_dump(),
        "rounds": rounds,
        "constraint_snapshot": constraints.model_dump(mode="json"),
        "portfolio_snapshot": portfolio.model_dump(mode="json"),
        "world_state": world.model_dump(mode="json"),
        "strategy_id": strategy_id,
        "symbol": world.symbol,
        "agents": {
            "player": getattr(player, "name", type(player).__name__),
            "coach": getattr(coach, "name", type(coach).__name__),
            "model": getattr(player, "model", None) or getattr(coach, "model", None),
        },
    }
    if store is not None:
        store.start_exchange(artifact)
    yield ExchangeStarted(artifact["run_id"], world, constraints, portfolio, strategy_id)

    finished = False

    def finish(outcome: str, reason: str | None, last_round: dict | None = None) -> None:
        nonlocal finished
        artifact.update(
            outcome=outcome,
            approved=outcome == "APPROVE",
            rounds_taken=len(rounds),
            termination_reason=reason,
            total_tokens=usage.total,
            usage=usage.model_dump(),
        )
        if store is not None:
            store.finish_exchange(artifact, last_round)
        finished = True

    try:
        breaker = circuit_breaker(constraints, portfolio, world.as_of)
        if breaker:
            finish("ABORT", breaker)
            yield BreakerTripped(breaker, breaker_detail(breaker, constraints, portfolio, world.as_of))
        for number in range(1, 0 if breaker else constraints.max_rounds + 1):
            yield RoundStarted(number)
            started = time.perf_counter()
            played = yield from _speak("player", player.propose(world, constraints, portfolio, rounds))
            unfinished = played.usage
            proposal = played.value
            yield ProposalMade(number, proposal)
            verdict = check_proposal(proposal, constraints, portfolio, world)
            coached = yield from _speak("coach", coach.critique(proposal, verdict, constraints, world, portfolio))
            verdict.feedback = coached.value
            spent = played.usage + coached.usage
            usage, unfinished = usage + spent, NO_USAGE
            record = {
                "round": number,
                "proposal": proposal.model_dump(),
                "evaluation": {
                    **verdict.model_dump(),
                    "coach_opinion": coached.opinion,
                    "disagrees": _disagreement(coached.opinion, verdict),
                },
                "tokens": spent.total,
                "usage": spent.model_dump(),
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            if played.path or coached.path:  # how a model agent got its answer (forced or auto tool, repair)
                record["agent_path"] = {"player": played.path, "coach": coached.path}
            rounds.append(record)
            ending = _ending(verdict, number, constraints)
            if ending:
                finish(*ending, last_round=record)  # the last round and the outcome in one write
            elif store is not None:
                store.record_round(artifact, record)
            yield VerdictReached(number, verdict, record)
            if ending:
                break
    except (GeneratorExit, KeyboardInterrupt):
        # A consumer that stops listening after the outcome is on record changes nothing.
        if not finished:
            usage = usage + unfinished
            finish("INTERRUPTED", "interrupted")
        raise
    except SpendLimitReached as limit:
        usage = usage + unfinished + limit.usage
        finish("ABORT", "spend_guard")
        log.info("spend guard stopped exchange %s: %s", artifact["run_id"], limit)
    except AgentError as failure:
        usage = usage + unfinished + failure.usage
        finish("ERROR", str(failure) or type(failure).__name__)
    except Exception as failure:  # an agent bug must still leave a stored, readable exchange
        log.exception("exchange %s failed", artifact["run_id"])
        usage = usage + unfinished
        finish("ERROR", f"{type(failure).__name__}: {failure}")
    yield ExchangeFinished(artifact)


def run_exchange_sync(*args, **kwargs) -> dict:
    """Run an exchange to the end and return its artifact."""
    for event in run_exchange(*args, **kwargs):
        pass
    return event.artifact


def replay_exchange(artifact: dict, words_per_fragment: int = 1) -> Iterator[Event]:
    """The events of a stored exchange, in order, without calling any agent."""
    world = WorldState.model_validate(artifact["world_state"])
    constraints = Constraints.model_validate(artifact["constraint_snapshot"])
    portfolio = Portfolio.model_validate(artifact["portfolio_snapshot"])
    yield ExchangeStarted(artifact["run_id"], world, constraints, portfolio, artifact.get("strategy_id"))
    if artifact["rounds_taken"] == 0 and artifact["termination_reason"] in BREAKER_NAMES:
        name = artifact["termination_reason"]
        yield BreakerTripped(name, breaker_detail(name, constraints, portfolio, world.as_of))
    for record in artifact["rounds"]:
        yield RoundStarted(record["round"])
        proposal = Proposal.model_validate(record["proposal"])
        for fragment in fragments(proposal.reasoning, words_per_fragment):
            yield TextFragment("player", fragment)
        yield ProposalMade(record["round"], proposal)
        evaluation = record["evaluation"]
        for fragment in fragments(evaluation["feedback"], words_per_fragment):
            yield TextFragment("coach", fragment)
        verdict = Verdict.model_validate({k: evaluation[k] for k in ("decision", "violations", "checks", "feedback")})
        yield VerdictReached(record["round"], verdict, record)
    yield ExchangeFinished(artifact)


def fragments(text: str, words: int = 1) -> Iterator[str]:
    """Split text into streaming fragments of a few words, keeping every character."""
    pieces = text.split(" ")
    for start in range(0, len(pieces), words):
        chunk = " ".join(pieces[start:start + words])
        yield chunk if start + words >= len(pieces) else chunk + " "
