"""One exchange of a backtest's day as the engine keeps it: what was decided (`Decision`), and the event
that says a decision was taken now rather than replayed (`Decided`), which core.backtest.job journals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from core.exchange.artifact import Artifact, Round
from core.exchange.loop import Ended
from core.exchange.schema import Action, WorldState


@dataclass(slots=True)
class Decision:
    """One exchange of a day: what was decided (or why nothing was), and what the approved actions are."""

    outcome: str
    reason: str
    rounds: int = 0
    tokens: int = 0
    cost: float = 0.0
    actions: list[Action] = field(default_factory=list)  # the approved proposal's actions (none unless APPROVE)
    run_id: str | None = None  # the recorded exchange, when exchanges are recorded
    verdicts: list[dict] = field(default_factory=list)  # per round: {decision, violations, entries: [Action]}
    world: WorldState | None = None
    tier: str = ""  # the tiers in force when it was decided (core.exchange.tiers)

    @classmethod
    def of(cls, artifact: Artifact, recorded: bool = False) -> Decision:
        """The decision an exchange's artifact holds."""
        return cls._of(artifact.outcome, artifact.termination_reason, artifact.rounds_taken, artifact.total_tokens,
                       artifact.usage.cost_usd, artifact.rounds, artifact.run_id if recorded else None)

    @classmethod
    def ended(cls, exchange: Ended) -> Decision:
        """The decision of an exchange decided only (core.exchange.loop.decide_exchange): what its artifact would
        hold (its tokens are its usage's)."""
        usage = exchange.usage
        return cls._of(exchange.outcome, exchange.reason, exchange.taken, usage.total, usage.cost_usd, exchange.rounds,
                       None)

    @classmethod
    def _of(cls, outcome: str, reason: str | None, taken: int, tokens: int, cost: float, rounds: list[Round],
            run_id: str | None) -> Decision:
        approved = outcome == "APPROVE"
        return cls(outcome, reason, taken, tokens, cost, list(rounds[-1].proposal.actions) if approved else [], run_id,
                   [{"decision": r.evaluation.decision, "violations": r.evaluation.violations,
                     "entries": [a for a in r.proposal.actions if a.is_entry]} for r in rounds])


@dataclass(frozen=True, slots=True)
class Decided:
    """An event: an exchange decided now (not replayed), before its day is simulated."""

    day: date
    symbol: str
    decision: Decision
