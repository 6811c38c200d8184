"""What an exchange tells whoever watches it, in order: the events the loop (core.exchange.loop) yields
and the UI, the backtest, the command line, the journal and the tests consume.

Each event is a NamedTuple: immutable like a frozen dataclass, and built in a third of its time (an exchange
makes five or more, and a backtest thousands of exchanges)."""

from __future__ import annotations

from typing import NamedTuple

from core.exchange.artifact import Artifact, Round, Verdict
from core.exchange.schema import Constraints, Portfolio, Proposal, WorldState


class ExchangeStarted(NamedTuple):
    """The exchange is about to run: what it runs on, and its artifact as it stands (INTERRUPTED, no rounds).

    The loop keeps `artifact` current (each round appended, the outcome set when it ends), so a journal
    that holds it can record progress and close an exchange cut short with what it had."""

    run_id: str
    world: WorldState
    constraints: Constraints
    portfolio: Portfolio
    strategy_id: str | None
    artifact: Artifact | None = None


class BreakerTripped(NamedTuple):
    """A circuit breaker fired before round 1, or the exchange's symbol is not allowed (`name`
    "allowed_symbols"): the exchange ends ABORT with no agent call."""

    name: str
    detail: str


class RoundStarted(NamedTuple):
    """Round `round` (from 1) begins: the Player is about to speak."""

    round: int


class TextFragment(NamedTuple):
    """A few words of the Player's reasoning or the Coach's critique, for the speech bubble."""

    role: str  # "player" or "coach"
    text: str


class ProposalMade(NamedTuple):
    """The Player's validated proposal of round `round` and the rules' verdict on it, before the Coach speaks."""

    round: int
    proposal: Proposal
    verdict: Verdict | None = None  # the decision, violations and checks; the critique comes with VerdictReached


class VerdictReached(NamedTuple):
    """Round `round` is over: the rules' verdict with the Coach's critique, and the round as stored.
    `last`: this round ends the exchange (its outcome is already on the artifact)."""

    round: int
    verdict: Verdict
    record: Round
    last: bool = False


class ExchangeFinished(NamedTuple):
    """The last event: the exchange's artifact, with its outcome, as stored."""

    artifact: Artifact


Event = ExchangeStarted | BreakerTripped | RoundStarted | TextFragment | ProposalMade | VerdictReached | ExchangeFinished
