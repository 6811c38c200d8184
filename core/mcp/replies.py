"""What the MCP tools answer: pydantic models, so each tool's output schema is generated from them.

The inputs are the engine's own models (Proposal, Constraints, WorldState, Portfolio); the
answers wrap them with what an outside Player needs to play the next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.backtest.challenge import ChallengeResult
from core.exchange.schema import Constraints, Decision, Portfolio, WorldState
from core.exchange.artifact import Check, ReasoningCheck


class Preset(BaseModel):
    """A constraint schema by name: shipped with the app or saved on the Constraints page."""

    name: str
    source: Literal["shipped", "saved"]
    constraints: Constraints


class Presets(BaseModel):
    presets: list[Preset]


class ExchangeOpened(BaseModel):
    """An exchange in which the caller plays the Player: what it plays on, and whether it is still open."""

    exchange_id: str
    open: bool = Field(description="False when a circuit breaker ended it at once (outcome ABORT, no round played).")
    outcome: str | None = Field(None, description="Set once the exchange has ended.")
    termination_reason: str | None = None
    breaker_detail: str | None = Field(None, description="The breaker's arithmetic, when one fired.")
    max_rounds: int = Field(description="Rounds the server allows; the round after a REJECT in the last one never comes.")
    world: WorldState
    portfolio: Portfolio
    constraints: Constraints


class RoundResult(BaseModel):
    """The Coach's answer to one proposal."""

    exchange_id: str
    round: int
    decision: Decision
    violations: list[str]
    checks: list[Check] = Field(description="Every constraint against every action, with its arithmetic.")
    critique: str = Field(description="The Coach's words: what has to change.")
    reasoning_check: ReasoningCheck | None = Field(
        None, description="What the proposal's reasoning states about its own numbers against its actions.")
    another_round_allowed: bool
    rounds_left: int
    outcome: str | None = Field(None, description="APPROVE, REJECT-MAX, ABORT or ERROR once the exchange has ended.")
    termination_reason: str | None = None


class History(BaseModel):
    """Stored exchanges, newest first, as `python -m core history` prints them."""

    exchanges: list[dict[str, Any]]


@dataclass(frozen=True)
class ChallengeAnswer(ChallengeResult):
    """The probability of passing a funded-account challenge, from bootstrapped daily returns: the
    challenge's own result (one definition of its fields), with the days it drew from, their source
    and the rules walked."""

    days: int
    source: str
    rules: dict[str, Any]
