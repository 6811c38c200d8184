"""What an exchange tells whoever watches it, in order: the events the loop (core.exchange.loop) yields
and the UI, the backtest, the command line, the journal and the tests consume."""

from __future__ import annotations

from dataclasses import dataclass

from core.exchange.artifact import Artifact, Round, Verdict
from core.exchange.schema import Constraints, Portfolio, Proposal, WorldState


@dataclass(frozen=True, slots=True)
class ExchangeStarted:
    """The exchange is about to run: what it runs on, and its artifact as it stands (INTERRUPTED, no rounds).

    The loop keeps `artifact` current (each round appended, the outcome set when it ends), so a journal
    that holds it can record progress and close an exchange cut short with what it had."""

    run_id: str
    world: WorldState
    constraints: Constraints
    portfolio: Portfolio
    strategy_id: str | None
    artifact: Artifact | None = None


@dataclass(frozen=True, slots=True)
class BreakerTripped:
    """A circuit breaker fired before round 1, or the exchange's symbol is not allowed (`name`
    "allowed_symbols"): the exchange ends ABORT with no agent call."""

    name: str
    detail: str


@dataclass(frozen=True, slots=True)
class RoundStarted:
    """Round `round` (from 1) begins: the Player is about to speak."""

    round: int


@dataclass(frozen=True, slots=True)
class TextFragment:
    """A few words of the Player's reasoning or the Coach's critique, for the speech bubble."""

    role: str  # "player" or "coach"
    text: str


@dataclass(frozen=True, slots=True)
class ProposalMade:
    """The Player's validated proposal of round `round` and the rules' verdict on it, before the Coach speaks."""

    round: int
    proposal: Proposal
    verdict: Verdict | None = None  # the decision, violations and checks; the critique comes with VerdictReached


@dataclass(frozen=True, slots=True)
class VerdictReached:
    """Round `round` is over: the rules' verdict with the Coach's critique, and the round as stored.
    `last`: this round ends the exchange (its outcome is already on the artifact)."""

    round: int
    verdict: Verdict
    record: Round
    last: bool = False


@dataclass(frozen=True, slots=True)
class ExchangeFinished:
    """The last event: the exchange's artifact, with its outcome, as stored."""

    artifact: Artifact


Event = ExchangeStarted | BreakerTripped | RoundStarted | TextFragment | ProposalMade | VerdictReached | ExchangeFinished
