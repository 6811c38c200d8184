"""What an exchange produces: the checks and verdict of a round, the reasoning's check and grade, the
usage and cost, the rounds, and the artifact that holds them (SPEC §3). The inputs are in schema.py."""

from __future__ import annotations

import functools
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from core.exchange.schema import Constraints, Decision, Outcome, Portfolio, Proposal, WorldState, built


class Check(BaseModel):
    """One constraint checked against one action (action None: the whole proposal)."""

    constraint: str
    action: int | None
    passed: bool
    arithmetic: str
    value: float | None = None
    threshold: float | None = None


class Verdict(BaseModel):
    """The Coach's decision: from the rules, with the critique written by the Coach agent."""

    decision: Decision
    violations: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    feedback: str = ""


Quantity = Literal["entry", "stop", "target", "risk", "reward", "ratio", "size", "side", "exit", "hold"]


class Claim(BaseModel):
    """One thing the reasoning says about its trade, against what the actions do."""

    model_config = ConfigDict(extra="forbid")

    text: str  # the words of the reasoning the claim was read from
    quantity: Quantity
    said: float | str  # a number in `unit`, or a side/symbol as words ("long AMZN")
    actual: float | str | None  # None when no action has that quantity (no entry at all)
    unit: Literal["", "%"] = ""
    ok: bool

    def summary(self) -> str:
        """`said ratio 4.00, actual 2.50` -- the one line a round card shows for a mismatch."""
        def show(value: float | str | None) -> str:
            if value is None:
                return "no entry"
            return f"{value:.2f}{self.unit}" if isinstance(value, float) else value
        name = {"side": "", "exit": "", "hold": ""}.get(self.quantity, self.quantity + " ")
        return f"said {name}{show(self.said)}, actual {show(self.actual)}"


class ReasoningCheck(BaseModel):
    """Faithfulness of one proposal's reasoning: the share of its claims that hold (None: it claims nothing)."""

    model_config = ConfigDict(extra="forbid")

    score: float | None
    claims: list[Claim]

    @property
    def mismatches(self) -> list[Claim]:
        """The claims the actions contradict."""
        return [c for c in self.claims if not c.ok]

    def mismatch_line(self) -> str:
        """Every mismatch on one line: 'said ratio 4.00, actual 2.50; said reward 8.00, actual 5.00'."""
        return "; ".join(c.summary() for c in self.mismatches)


class ReasoningGrade(BaseModel):
    """An optional Claude grader's opinion of the Player's reasoning; it never changes the verdict."""

    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5, description="1 = the reasoning does not support the actions or misstates them; "
                                               "3 = sound but thin; 5 = clear, correct and complete.")
    reason: str = Field(description="One sentence: why this grade.")


class Usage(BaseModel):
    """Tokens and dollars of one call, a round or an exchange. Immutable: sums make new ones."""

    model_config = ConfigDict(frozen=True)

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    # Of `output`: the tokens a model spent thinking (billed as output; an artifact stored before this
    # field existed reads back as 0). Only the count is kept, never the thinking itself.
    thinking: int = 0
    cost_usd: float = 0.0
    # How cost_usd was found: the price list, an estimate from the model's family, or unknown (a
    # model nobody priced: cost_usd then counts only the priced part, and the screen says so).
    cost_basis: Literal["price list", "estimated", "unknown"] = "price list"

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def __add__(self, other: Usage) -> Usage:
        if other is NO_USAGE or other == NO_USAGE:  # the common case, without pydantic's __eq__
            return self
        return Usage(
            input=self.input + other.input,
            output=self.output + other.output,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
            thinking=self.thinking + other.thinking,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
            cost_basis=max(self.cost_basis, other.cost_basis, key=_COST_BASES.index),
        )


_COST_BASES = ("price list", "estimated", "unknown")  # a sum is as uncertain as its least certain part
NO_USAGE = Usage()


class Evaluation(Verdict):
    """A round's verdict as the artifact keeps it, with the Coach's own opinion in independent mode."""

    model_config = ConfigDict(extra="forbid")

    coach_opinion: dict | None = None
    disagrees: bool | None = None


class Round(BaseModel):
    """One finished round of an exchange: the proposal, its evaluation, tokens, cost and time."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=1)
    proposal: Proposal
    evaluation: Evaluation
    tokens: int = Field(ge=0)
    usage: Usage
    latency_ms: float = Field(ge=0)
    agent_path: dict[str, str | None] | None = None
    complete: bool = True  # False: the round the exchange stopped in, kept as it stood when it stopped
    # What the reasoning says about its own numbers against the actions (None: recorded before the check existed).
    reasoning_check: ReasoningCheck | None = None
    reasoning_grade: ReasoningGrade | None = None  # the optional Claude grader's 1-5, never part of the verdict


class Agents(BaseModel):
    """Who played: the Player's and the Coach's names and classes and, for Claude, the model."""

    model_config = ConfigDict(extra="forbid")

    player: str
    coach: str
    model: str | None = None
    player_class: str | None = None  # module:Class of each agent, so a user's own agent is named exactly
    coach_class: str | None = None


class Artifact(BaseModel):
    """The record of one exchange (a superset of the reference package's artifact).

    The loop builds it, `run_exchange_sync` returns it, the store writes and reads it;
    `model_dump(mode="json")` is its JSON form for files and downloads.
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    timestamp: str
    outcome: Outcome
    approved: bool
    rounds_taken: int = Field(ge=0)
    termination_reason: str | None
    total_tokens: int = Field(ge=0)
    usage: Usage
    rounds: list[Round]
    constraint_snapshot: Constraints
    portfolio_snapshot: Portfolio
    world_state: WorldState
    strategy_id: str | None
    symbol: str
    agents: Agents
    repeat_id: str | None = None  # the group of `core.repeat` this exchange is one of; None: a single exchange

    @model_serializer(mode="wrap")
    def _without_repeat_id(self, handler) -> dict:
        # A single exchange dumps as it did before repeats existed: its files and stored details stay the same.
        data = handler(self)
        if data.get("repeat_id") is None:
            data.pop("repeat_id", None)
        return data

    def violations(self) -> list[str]:
        """Every constraint violated in any round, in the order first seen."""
        return list(dict.fromkeys(v for r in self.rounds for v in r.evaluation.violations))


def snapshot(model: BaseModel) -> BaseModel:
    """A copy of an exchange's input (constraints, portfolio, world) for its artifact, which the caller's later
    changes cannot reach: these models hold only immutable values and flat lists or dicts of them, so copying
    those containers is enough (a deep copy cost ~10x more per exchange: a backtest makes thousands). What
    pydantic's __copy__ does, at a third of its cost."""
    values = model.__dict__.copy()
    for name in _containers(type(model)):
        value = values[name]
        if type(value) is list or type(value) is dict:
            values[name] = value.copy()
    copied = built(type(model), values, model.__pydantic_fields_set__)
    extra, private = model.__pydantic_extra__, getattr(model, "__pydantic_private__", None)
    if extra is not None or private is not None:  # core's inputs hold neither; a user's own subclass might
        object.__setattr__(copied, "__pydantic_extra__", None if extra is None else dict(extra))
        object.__setattr__(copied, "__pydantic_private__", None if private is None else dict(private))
    return copied


@functools.cache
def _containers(model: type) -> tuple[str, ...]:
    """The fields of a model class that hold a list or a dict (as `list[str] | None` may), read from their types
    once per class: the rest hold immutable values a copy can share."""
    def container(annotation: object) -> bool:
        return (annotation in (Any, object) or get_origin(annotation) in (list, dict)
                or any(container(arg) for arg in get_args(annotation)))
    return tuple(name for name, field in model.model_fields.items() if container(field.annotation))
