"""Claude as the Player, the Coach and the Grader, on the official `anthropic` SDK (the SDK lives in
core/claude only).

Structured output comes from a tool call whose input schema is generated from a pydantic model
(`core.claude.prompts`), so nothing is parsed out of prose. The call is streamed
(`core.claude.transport`): the partial tool-input JSON is read as it arrives and its `reasoning`
(Player) or `feedback` (Coach) text is yielded as growing fragments for the speech bubble. Each
model is asked as `core.claude.models` plans for it: thinking turned off and a forced tool choice
where the model allows it, else the least thinking it takes, tool choice auto and room in
`max_tokens` for the thinking. The rules stay in `core.exchange.rules`: the Coach model only
explains the verdict (or, in independent mode, gives an opinion stored beside it).

The API key lives only inside the SDK client. Every text these agents hand back (the words they
stream, the answer that is stored, an error) goes through the key's redaction first, so a key an
upstream error or the model itself echoes never reaches the screen, the store or an export.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Generator
from typing import Any

import anthropic
from pydantic import ValidationError

from core.claude.keys import gateway, key_problem, redact_all
from core.claude.models import (
    ThinkingPlan, learn_refuses_forced_tool, refuses_forced_tool, thinking_plan, without_settings,
)
from core.claude.prompts import (
    CRITIQUE_TOOL, GRADE_TOOL, JUDGEMENT_TOOL, PROPOSAL_TOOL, Critique, Judgement, coach_messages, grader_messages,
    player_messages, system_blocks, tools,
)
from core.claude.spend_guard import SpendGuard
from core.claude.transport import Bubble, Caller, ForcedToolRefused, Reply, SettingRefused
from core.exchange.agent import Turn
from core.exchange.errors import AgentError, InvalidInput, SpendLimitReached
from core.exchange.schema import Constraints, Portfolio, Proposal, WorldState
from core.exchange.artifact import NO_USAGE, ReasoningGrade, Round, Usage, Verdict
from core.prices import DEFAULT_MODEL

log = logging.getLogger(__name__)

FORCED = "forced tool"
AUTO = "auto tool + strict schema"


@functools.cache
def strict_tools() -> tuple[dict, ...]:
    """The tools with `strict: true` and their schemas in the subset strict mode accepts (the SDK's transform)."""
    return tuple({**spec, "strict": True, "input_schema": anthropic.transform_schema(spec["input_schema"])}
                 for spec in tools())


class _ClaudeAgent:
    """What the Player, the Coach and the Grader share: the caller, the model's plan, the fallback, the repair."""

    name = "claude"
    role = "agent"

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, base_url: str | None = None,
                 guard: SpendGuard | None = None, max_tokens: int = 1024, *, retries: int = 3,
                 stall_timeout_s: float = 20.0, sleep: Callable[[float], None] = time.sleep,
                 max_wait: float = 20.0) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise InvalidInput("api_key: an Anthropic API key is required")
        base_url = gateway(base_url)
        problem = key_problem(api_key.strip(), base_url)
        if problem:
            raise InvalidInput(f"api_key: {problem}")  # never the key itself
        if not isinstance(model, str) or not model.strip():
            raise InvalidInput("model: a Claude model id is required")
        self.model = model
        self.guard = guard
        self.max_tokens = max_tokens  # the room the answer needs; thinking gets more on top (models.THINKING_ROOM)
        self._caller = Caller(api_key.strip(), model, base_url, guard, self.role, retries=retries,
                              stall_timeout_s=stall_timeout_s, sleep=sleep, max_wait=max_wait)
        self._plan: ThinkingPlan | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    def plan(self) -> ThinkingPlan:
        """How this model is asked (asked of the Models API on the first call, then kept)."""
        if self._plan is None:
            self._plan = thinking_plan(self._caller.client, self.model)
            self._caller.line = self._plan.line
        return self._plan

    def _params(self, path: str, system: list[dict], messages: list[dict], tool: str, max_tokens: int) -> dict:
        """The request: a forced tool choice, or (for a model that refuses one) auto with strict schemas."""
        plan = self.plan()
        if path == FORCED:
            return {"model": self.model, "max_tokens": max_tokens, "system": system, "tools": list(tools()),
                    "tool_choice": {"type": "tool", "name": tool}, "messages": messages, **plan.request()}
        last = messages[-1]
        told = {"type": "text", "text": f"Answer only by calling the tool {tool}, exactly once, with an input that "
                                        "matches its schema; write nothing outside that call."}
        # A forced tool choice refused with thinking disabled is asked again with no thinking setting.
        settings = plan.request() if not plan.forced_tool else {}
        return {"model": self.model, "max_tokens": max_tokens, "system": system, "tools": list(strict_tools()),
                "tool_choice": {"type": "auto"},
                "messages": [*messages[:-1], {**last, "content": [*last["content"], told]}], **settings}

    def _path(self) -> str:
        plan = self.plan()
        return FORCED if plan.forced_tool and not refuses_forced_tool(self.model, self._caller.address) else AUTO

    def _call(self, system: list[dict], messages: list[dict], tool: str, field_name: str, bubble: Bubble,
              answer_tokens: int) -> Generator[str, None, tuple[str, _Sent]]:
        """One request on the model's path. A thinking setting or a forced tool choice the model refuses (an
        unbilled 400) is learnt, and the request asked again the way the model takes it."""
        for _ in range(3):  # at most: the setting refused, then the forced tool choice
            path = self._path()
            max_tokens = self.plan().max_tokens_for(answer_tokens, auto=path == AUTO)
            try:
                reply = yield from self._caller.stream(self._params(path, system, messages, tool, max_tokens),
                                                       field_name, bubble, tool)
                return path, _Sent(reply, max_tokens)
            except SettingRefused:
                # The table (or a gateway) was wrong about the thinking setting: ask as the model is by default.
                self._plan = without_settings(self.plan(), self.model, self._caller.address)
                log.info("%s refused its thinking setting: asking without one from now on", self.model)
            except ForcedToolRefused:
                learn_refuses_forced_tool(self.model, self._caller.address)
                log.info("%s refuses a forced tool choice: asking with tool choice auto from now on", self.model)
        raise AgentError(f"{self.model} refused every way of asking it (thinking settings, tool choice): "
                         "choose another model in Settings.")

    def _ask(self, system: list[dict], messages: list[dict], tool: str, field_name: str,
             parse: Callable[[dict], Any]) -> Generator[str, None, tuple[Any, Usage, str]]:
        """A tool call validated by `parse`; one repair request quoting the problem, then AgentError.

        Returns (value, usage, path): the path says how the answer came (forced or auto tool, + repair).
        Every string of the answer is redacted before it is parsed, so what is stored never holds the key.
        """
        bubble = Bubble()
        spent = NO_USAGE
        answer_tokens = self.max_tokens
        for attempt in (1, 2):
            try:
                path, sent = yield from self._call(system, messages, tool, field_name, bubble, answer_tokens)
            except (AgentError, SpendLimitReached) as failure:
                failure.usage = spent + failure.usage
                raise
            reply = sent.reply
            spent = spent + reply.usage
            problem = reply.problem
            cut_off = reply.stop_reason == "max_tokens"
            if problem is None and cut_off:
                problem = f"the answer was cut off at max_tokens={sent.max_tokens} before the {tool} input was complete"
            if problem is None:
                try:
                    value = parse(redact_all(reply.input, self._caller.redact))
                    return value, spent, path + (" + repair" if attempt == 2 else "")
                except ValidationError as exc:
                    problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}"
                                        for e in exc.errors()[:5])
            if attempt == 2:
                advice = " Try again, or raise max_tokens." if cut_off else " Try again, or choose another model."
                raise AgentError(self._caller.redact(
                    f"Claude's {self.role} answer was invalid twice ({problem}); the exchange stopped here "
                    f"with every earlier round kept.{advice}"), spent)
            log.info("%s answer invalid, asking once for a repair: %s", self.role, self._caller.redact(problem))
            if cut_off:
                answer_tokens *= 2  # one larger budget for the repair; the instruction asks for brevity too
            messages = _repair(messages, path, tool, reply, problem)
        raise AssertionError("unreachable")


class _Sent:
    """A reply and the max_tokens it was asked with."""

    def __init__(self, reply: Reply, max_tokens: int) -> None:
        self.reply, self.max_tokens = reply, max_tokens


def _repair(messages: list[dict], path: str, tool: str, reply: Reply, problem: str) -> list[dict]:
    """The conversation for the one repair request, quoting the problem.

    On the forced path the invalid call goes back with an error result. A model on the auto path
    thinks, and its thinking would have to go back unchanged with the call, so it is asked afresh
    with the problem added to the last user turn instead.
    """
    again = f"Call {tool} again with a complete input that matches the schema; keep the text fields short."
    if path == AUTO or reply.problem is not None and not reply.input:
        last = messages[-1]
        note = {"type": "text", "text": f"Your previous answer could not be used: {problem}. {again}"}
        return [*messages[:-1], {**last, "content": [*last["content"], note]}]
    return [*messages,
            {"role": "assistant", "content": [{"type": "tool_use", "id": reply.tool_id, "name": tool, "input": reply.input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": reply.tool_id, "is_error": True,
                                          "content": f"Invalid input: {problem}. {again}"}]}]



class ClaudePlayer(_ClaudeAgent):
    """The Player on Claude: streams its reasoning, returns Turn(Proposal)."""

    name = "claude-player"
    role = "Player"

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, base_url: str | None = None,
                 guard: SpendGuard | None = None, memory: list[dict] | None = None, max_tokens: int = 1024,
                 **options: Any) -> None:
        super().__init__(api_key, model, base_url, guard, max_tokens, **options)
        self.memory = list(memory or [])

    def propose(self, world: WorldState, constraints: Constraints, portfolio: Portfolio,
                history: list[Round]) -> Generator[str, None, Turn]:
        """Stream the reasoning of a proposal (a revision when `history` has earlier rounds)."""
        proposal, spent, path = yield from self._ask(system_blocks(constraints),
                                                     player_messages(world, portfolio, history, self.memory, constraints),
                                                     PROPOSAL_TOOL, "reasoning", Proposal.model_validate)
        return Turn(proposal, spent, path=path)


class ClaudeCoach(_ClaudeAgent):
    """The Coach on Claude: streams the critique of the rules' verdict; independent mode adds its own verdict."""

    name = "claude-coach"
    role = "Coach"

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, base_url: str | None = None,
                 guard: SpendGuard | None = None, independent: bool = False, max_tokens: int = 1024,
                 **options: Any) -> None:
        super().__init__(api_key, model, base_url, guard, max_tokens, **options)
        self.independent = independent
        if independent:
            self.name = "claude-coach-independent"

    def critique(self, proposal: Proposal, verdict: Verdict, constraints: Constraints, world: WorldState,
                 portfolio: Portfolio) -> Generator[str, None, Turn]:
        """Stream the critique; return Turn(feedback) (with opinion {decision, violations} when independent)."""
        if self.independent:
            judged, spent, path = yield from self._ask(system_blocks(constraints),
                                                       coach_messages(proposal, None, world, portfolio),
                                                       JUDGEMENT_TOOL, "feedback", Judgement.model_validate)
            return Turn(judged.feedback, spent, {"decision": judged.decision, "violations": list(judged.violations)},
                        path=path)
        critiqued, spent, path = yield from self._ask(system_blocks(constraints),
                                                      coach_messages(proposal, verdict, world, portfolio),
                                                      CRITIQUE_TOOL, "feedback", Critique.model_validate)
        return Turn(critiqued.feedback, spent, path=path)


class ClaudeGrader(_ClaudeAgent):
    """An optional third call: grades the Player's reasoning 1-5 with one sentence. It never changes the verdict."""

    name = "claude-grader"
    role = "Grader"

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, base_url: str | None = None,
                 guard: SpendGuard | None = None, max_tokens: int = 256, **options: Any) -> None:
        super().__init__(api_key, model, base_url, guard, max_tokens, **options)

    def grade(self, proposal: Proposal, world: WorldState, constraints: Constraints, portfolio: Portfolio,
              faithfulness: str) -> Turn:
        """Turn(ReasoningGrade, usage); AgentError (or the spend guard's refusal) when no grade could be had."""
        asking = self._ask(system_blocks(constraints), grader_messages(proposal, world, portfolio, faithfulness),
                           GRADE_TOOL, "reason", ReasoningGrade.model_validate)
        while True:  # nobody watches the grader type: run its stream to the end
            try:
                next(asking)
            except StopIteration as done:
                grade, spent, path = done.value
                return Turn(grade, spent, path=path)
