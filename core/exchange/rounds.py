"""A round under way in the Player-Coach loop: what the agents said so far, their own time, and the Round it
becomes when it ends (or as it stood when the exchange stopped in it)."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from types import GeneratorType

from pydantic import ValidationError

from core.exchange.agent import Turn
from core.exchange.errors import AgentError
from core.exchange.events import TextFragment
from core.exchange.presets import explain
from core.exchange.schema import Proposal, built
from core.exchange.artifact import Evaluation, ReasoningCheck, ReasoningGrade, Round, Usage, Verdict


class RoundUnderWay:
    """What the round under way has said so far, and the agents' own time in it (never a consumer's)."""

    __slots__ = ("number", "text", "seconds", "proposal", "verdict", "played", "checked")

    def __init__(self, number: int):
        self.number = number
        self.text = {"player": "", "coach": ""}
        self.seconds = 0.0
        self.proposal: Proposal | None = None
        self.verdict: Verdict | None = None
        self.played: Turn | None = None
        self.checked: ReasoningCheck | None = None

    def speak(self, role: str, agent: object, stream: object) -> Generator[TextFragment, None, Turn]:
        """Wrap an agent's text fragments as events and hand back its Turn, timing only the agent. A
        user's own agent that streams or returns something else ends the exchange ERROR saying what."""
        name = getattr(agent, "name", type(agent).__name__)
        if not isinstance(stream, _STREAMS):  # a plain method that returns its answer without streaming
            return _checked_turn(role, name, stream)
        while True:
            start = time.perf_counter()
            try:
                fragment = next(stream)
            except StopIteration as done:
                return _checked_turn(role, name, done.value)
            finally:
                self.seconds += time.perf_counter() - start
            if not isinstance(fragment, str):
                raise AgentError(f"the {role} {name} streamed {type(fragment).__name__}, not text")
            self.text[role] += fragment
            yield TextFragment(role, fragment)

    def hear(self, role: str, agent: object, stream: object) -> Turn:
        """`speak` without events, for a consumer that shows none (a backtest): the agent's text is
        drained in one go and only the agent's time counted."""
        name = getattr(agent, "name", type(agent).__name__)
        if not isinstance(stream, _STREAMS):
            return _checked_turn(role, name, stream)
        said = []
        start = time.perf_counter()
        try:
            while True:
                try:
                    fragment = next(stream)
                except StopIteration as done:
                    return _checked_turn(role, name, done.value)
                if not isinstance(fragment, str):
                    raise AgentError(f"the {role} {name} streamed {type(fragment).__name__}, not text")
                said.append(fragment)
        finally:
            self.text[role] += "".join(said)
            self.seconds += time.perf_counter() - start

    def record(self, coached: Turn, spent: Usage, grade: ReasoningGrade | None) -> Round:
        """The round as it ends, as stored; the verdict now holds the Coach's critique."""
        verdict, played = self.verdict, self.played
        verdict.feedback = coached.value
        paths = {"player": played.path, "coach": coached.path} if played.path or coached.path else None
        tokens = spent.total
        if (grade is None and coached.opinion is None and tokens >= 0 and type(coached.value) is str
                and text_or_none(played.path) and text_or_none(coached.path)):
            # Built, not validated: the verdict is the rules' own and nothing an agent handed back needs
            # checking or converting (text of a str subclass would be made plain text); validating would
            # return these values as they are (the lists copied, as it would).
            evaluation = built(Evaluation, {"decision": verdict.decision, "violations": list(verdict.violations),
                                            "checks": list(verdict.checks), "feedback": coached.value,
                                            "coach_opinion": None, "disagrees": None})
            return built(Round, {
                "round": self.number, "proposal": self.proposal, "evaluation": evaluation, "tokens": tokens,
                "usage": spent, "latency_ms": round(self.seconds * 1000, 3), "agent_path": paths, "complete": True,
                "reasoning_check": self.checked, "reasoning_grade": None}, _FINISHED_ROUND)
        return Round(
            round=self.number,
            proposal=self.proposal,
            evaluation=Evaluation(
                decision=verdict.decision, violations=verdict.violations, checks=verdict.checks,
                feedback=coached.value, coach_opinion=coached.opinion,
                disagrees=_disagreement(coached.opinion, verdict),
            ),
            tokens=tokens,
            usage=spent,
            latency_ms=round(self.seconds * 1000, 3),
            # How a model agent got its answer (forced or auto tool, repair); None for the others.
            agent_path=paths,
            reasoning_check=self.checked,
            reasoning_grade=grade,
        )

    def as_it_stood(self, usage: Usage) -> Round | None:
        """The round the exchange stopped in, once its proposal and checks exist: kept, marked incomplete."""
        if self.verdict is None:
            return None
        return Round(
            round=self.number, proposal=self.proposal,
            evaluation=Evaluation(decision=self.verdict.decision, violations=self.verdict.violations,
                                  checks=self.verdict.checks, feedback=self.text["coach"]),
            tokens=usage.total, usage=usage, latency_ms=round(self.seconds * 1000, 3),
            agent_path={"player": self.played.path, "coach": None} if self.played and self.played.path else None,
            complete=False, reasoning_check=self.checked,
        )


_FINISHED_ROUND = frozenset(Round.model_fields) - {"complete"}  # the fields a finished round is given


def text_or_none(text: object) -> bool:
    """Whether an agent path (or a strategy id) is text or None, as the models take them without converting."""
    return text is None or type(text) is str


_STREAMS = (GeneratorType, Iterator)  # an answer streamed as text (a generator: told without the ABC's lookups)


def _checked_turn(role: str, name: str, answer: object) -> Turn:
    """The agent's answer as a Turn holding a Proposal (Player) or the critique text (Coach)."""
    turn = answer if isinstance(answer, Turn) else Turn(answer)
    if role == "coach":
        if not isinstance(turn.value, str):
            raise AgentError(f"the coach {name} returned {type(turn.value).__name__}, not the critique as text")
        return turn
    if isinstance(turn.value, Proposal):
        return turn
    if isinstance(turn.value, dict):
        try:
            return Turn(Proposal.model_validate(turn.value), turn.usage, turn.opinion, turn.path)
        except ValidationError as error:
            raise AgentError(f"the player {name} returned an invalid proposal: {explain(error)}") from None
    raise AgentError(f"the player {name} returned {type(turn.value).__name__} ({str(turn.value)[:60]!r}), "
                     "not a Turn with a Proposal")


def _disagreement(opinion: dict | None, verdict: Verdict) -> bool | None:
    if opinion is None:
        return None
    return opinion.get("decision") != verdict.decision or set(opinion.get("violations") or []) != set(verdict.violations)
