"""How repeatable an agent is: the same exchange run k times, and how far the answers agree.

Claude is not deterministic, and a trader deciding whether to trust an agent asks whether it would
make the same call again. `repeat` runs k independent exchanges on the same world, constraints and
portfolio, each with agents fresh from the factories, and measures how far they agree: the share of
the most common outcome, the share of the most common side of the final trade, and the spread (min,
median, max) of the final trade's size, entry, stop and target, of the rounds taken and of the cost.

Pure, like the loop: nothing is stored. Every artifact carries the group's `repeat_id`, so the journal
records the k exchanges as one group (`Store.record_many(result.artifacts)`).
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass

from core.exchange.agent import Coach, Player
from core.exchange.errors import InvalidInput
from core.exchange.loop import run_exchange_sync
from core.exchange.schema import ENTRY_TYPES, SIDES, Action, Constraints, Portfolio, WorldState
from core.exchange.artifact import Artifact

MAX_REPEATS = 100
"""The most exchanges one repeat runs (each may be paid calls)."""

"""The side of a final trade in the trader's words; an exchange that traded nothing (a breaker, an error
before any round) has the side "none"."""

SPREAD_FIELDS = ("size_pct", "entry_price", "stop_loss", "take_profit", "rounds_taken", "cost_usd")
"""What the spread is measured on: the final trade's figures (entries only), the rounds and the cost."""


@dataclass(frozen=True, slots=True)
class Spread:
    """The least, the median and the greatest of one figure over the repeats that have it."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        """The spread of `values`, or None when there are none."""
        return cls(min(values), statistics.median(values), max(values)) if values else None


def final_trade(artifact: Artifact) -> Action | None:
    """The trade an exchange ended on: its last decided round's first entry (else its first action)."""
    decided = [r for r in artifact.rounds if r.complete]
    if not decided:
        return None
    actions = decided[-1].proposal.actions
    return next((a for a in actions if a.action_type in ENTRY_TYPES), actions[0])


def side(artifact: Artifact) -> str:
    """long, short, exit, hold, or none: the side of the exchange's final trade."""
    trade = final_trade(artifact)
    return "none" if trade is None else SIDES[trade.action_type]


def _agreement(values: list[str]) -> float:
    """The share of the most common value (1.0: all the same)."""
    return Counter(values).most_common(1)[0][1] / len(values)


@dataclass(frozen=True)
class Repeatability:
    """k exchanges on the same inputs and how far they agree. `artifacts` are in the order they finished."""

    repeat_id: str
    artifacts: tuple[Artifact, ...]

    @property
    def k(self) -> int:
        return len(self.artifacts)

    @property
    def outcomes(self) -> list[str]:
        return [a.outcome for a in self.artifacts]

    @property
    def sides(self) -> list[str]:
        return [side(a) for a in self.artifacts]

    @property
    def outcome_agreement(self) -> float:
        """The share of the most common outcome."""
        return _agreement(self.outcomes)

    @property
    def side_agreement(self) -> float:
        """The share of the most common side of the final trade (long, short, exit, hold, none)."""
        return _agreement(self.sides)

    def most_common(self) -> tuple[str, str]:
        """(the most common outcome, the most common side)."""
        return Counter(self.outcomes).most_common(1)[0][0], Counter(self.sides).most_common(1)[0][0]

    @property
    def spread(self) -> dict[str, Spread | None]:
        """Per SPREAD_FIELDS, the spread over the repeats that have the figure (None: none has it).

        Prices and size come from final trades that are entries; the cost from exchanges whose price is known.
        """
        trades = [t for t in map(final_trade, self.artifacts) if t is not None and t.action_type in ENTRY_TYPES]
        values = {name: [getattr(t, name) for t in trades] for name in SPREAD_FIELDS[:4]}
        values["rounds_taken"] = [float(a.rounds_taken) for a in self.artifacts]
        values["cost_usd"] = [a.usage.cost_usd for a in self.artifacts if a.usage.cost_basis != "unknown"]
        return {name: Spread.of(found) for name, found in values.items()}

    def summary(self) -> dict:
        """The figures as JSON-ready data (the CLI's --json)."""
        return {
            "repeat_id": self.repeat_id, "k": self.k, "outcomes": self.outcomes, "sides": self.sides,
            "outcome_agreement": self.outcome_agreement, "side_agreement": self.side_agreement,
            "spread": {name: None if s is None else {"min": s.min, "median": s.median, "max": s.max}
                       for name, s in self.spread.items()},
            "run_ids": [a.run_id for a in self.artifacts],
        }


def repeat_exchanges(world: WorldState, constraints: Constraints, portfolio: Portfolio,
                     player_factory: Callable[[int], Player], coach_factory: Callable[[int], Coach], k: int = 5,
                     executor: Executor | None = None, *, repeat_id: str | None = None,
                     strategy_id: str | None = None) -> Iterator[Artifact]:
    """The artifacts of k independent exchanges, as each finishes, every one tagged with the group's repeat_id.

    `player_factory(i)` and `coach_factory(i)` make the agents of the i-th exchange (0 to k-1): fresh agents
    each time, so nothing one exchange learned reaches the next. `executor` (any concurrent.futures Executor)
    runs them side by side; None runs them one after another.
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_REPEATS:
        raise InvalidInput(f"k: must be a whole number from 1 to {MAX_REPEATS}, got {k!r}")
    for name, factory in (("player_factory", player_factory), ("coach_factory", coach_factory)):
        if not callable(factory):
            raise InvalidInput(f"{name}: must make an agent from the exchange's number, got {factory!r}")
    group = repeat_id or str(uuid.uuid4())

    def one(i: int) -> Artifact:
        artifact = run_exchange_sync(world, constraints, portfolio, player_factory(i), coach_factory(i),
                                     strategy_id=strategy_id)
        artifact.repeat_id = group
        return artifact

    if executor is None:
        for i in range(k):
            yield one(i)
        return
    for done in as_completed([executor.submit(one, i) for i in range(k)]):
        yield done.result()


def repeat(world: WorldState, constraints: Constraints, portfolio: Portfolio,
           player_factory: Callable[[int], Player], coach_factory: Callable[[int], Coach], k: int = 5,
           executor: Executor | None = None, *, repeat_id: str | None = None,
           strategy_id: str | None = None) -> Repeatability:
    """Run k independent exchanges on the same inputs and measure how far they agree (see the module)."""
    group = repeat_id or str(uuid.uuid4())
    artifacts = repeat_exchanges(world, constraints, portfolio, player_factory, coach_factory, k, executor,
                                 repeat_id=group, strategy_id=strategy_id)
    return Repeatability(group, tuple(artifacts))
