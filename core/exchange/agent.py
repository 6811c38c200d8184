"""What a Player or a Coach is, to the loop.

Both roles stream text fragments (for the speech bubble) and end with a validated object plus
token usage: a method is a generator that yields `str` fragments and *returns* a `Turn`.
The loop reads it with `turn = yield from ...`, so house agents, Claude agents and test stubs
plug in the same way.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple, Protocol

from core.exchange.errors import AgentError, RetryLater, SpendLimitReached  # noqa: F401  (importable from here, as before)
from core.exchange.schema import Constraints, Portfolio, Proposal, WorldState
from core.exchange.artifact import NO_USAGE, Round, Usage, Verdict
from core.exchange.rules import CheckedActions


class Turn(NamedTuple):
    """What an agent hands back at the end of its stream.

    value: a `Proposal` (Player) or the critique text (Coach).
    opinion: the Coach's own verdict in independent mode, e.g. {"decision": ..., "violations": [...]}.
    path: how a model agent got its structured answer (e.g. "forced tool", "auto tool + strict schema",
    "+ repair" when it took the one repair); None for agents without a model.
    checked: the rules' verdict a Player reached on the very actions it proposes while planning them
    (`core.exchange.rules.PlanJudge.last`); the loop uses it only when PlanJudge reached it on the loop's
    own objects and the actions are unchanged since, and otherwise checks the proposal itself.

    A NamedTuple, immutable like the events (core.exchange.events) and as cheap to build: two a round.
    """

    value: Proposal | str
    usage: Usage = NO_USAGE
    opinion: dict | None = None
    path: str | None = None
    checked: CheckedActions | None = None


class Player(Protocol):
    name: str

    def propose(
        self, world: WorldState, constraints: Constraints, portfolio: Portfolio, history: list[Round]
    ) -> Generator[str, None, Turn]:
        """Stream the reasoning, return Turn(Proposal). `history` holds the earlier rounds (`core.Round`)."""
        ...


class Coach(Protocol):
    name: str

    def critique(
        self, proposal: Proposal, verdict: Verdict, constraints: Constraints, world: WorldState, portfolio: Portfolio
    ) -> Generator[str, None, Turn]:
        """Stream the critique of a proposal the rules have already judged, return Turn(str)."""
        ...
