"""What a Player or a Coach is, to the loop.

Both roles stream text fragments (for the speech bubble) and end with a validated object plus
token usage: a method is a generator that yields `str` fragments and *returns* a `Turn`.
The loop reads it with `turn = yield from ...`, so house agents, Claude agents and test stubs
plug in the same way.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

from core.schema import NO_USAGE, Constraints, Portfolio, Proposal, Usage, Verdict, WorldState


@dataclass(frozen=True, slots=True)
class Turn:
    """What an agent hands back at the end of its stream.

    value: a `Proposal` (Player) or the critique text (Coach).
    opinion: the Coach's own verdict in independent mode, e.g. {"decision": ..., "violations": [...]}.
    path: how a model agent got its structured answer (e.g. "forced tool", "auto tool + strict schema",
    "+ repair" when it took the one repair); None for agents without a model.
    """

    value: Proposal | str
    usage: Usage = NO_USAGE
    opinion: dict | None = None
    path: str | None = None


class AgentError(Exception):
    """An agent could not produce a valid answer; the message is shown to the user as is.

    `usage` is what the failed turn had already been billed (failed attempts, a dropped stream),
    so the exchange's cost stays true when it ends early.
    """

    def __init__(self, message: str = "", usage: Usage = NO_USAGE) -> None:
        super().__init__(message)
        self.usage = usage


class SpendLimitReached(AgentError):
    """The spend guard refused a paid call; the exchange ends ABORT with reason spend_guard.

    A kind of AgentError only to share `usage`: the loop catches it first, for its own outcome.
    """


class RetryLater(AgentError):
    """The API asked to wait longer than the agent may wait on its own; `wait_s` says how long.

    The exchange ends ERROR with that wait in its reason, and the trader may run it again then.
    """

    def __init__(self, message: str, wait_s: float, usage: Usage = NO_USAGE) -> None:
        super().__init__(message, usage)
        self.wait_s = wait_s


class Player(Protocol):
    name: str

    def propose(
        self, world: WorldState, constraints: Constraints, portfolio: Portfolio, history: list[dict]
    ) -> Generator[str, None, Turn]:
        """Stream the reasoning, return Turn(Proposal). `history` holds the earlier artifact rounds."""
        ...


class Coach(Protocol):
    name: str

    def critique(
        self, proposal: Proposal, verdict: Verdict, constraints: Constraints, world: WorldState, portfolio: Portfolio
    ) -> Generator[str, None, Turn]:
        """Stream the critique of a proposal the rules have already judged, return Turn(str)."""
        ...
