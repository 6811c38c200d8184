"""Claude as the Player and the Coach, on the official `anthropic` SDK (the SDK lives here only).

Structured output comes from a forced tool call whose input schema is generated from a pydantic
model (`core.prompts`), so nothing is parsed out of prose. The call is streamed: the partial
tool-input JSON is read as it arrives and its `reasoning` (Player) or `feedback` (Coach) text is
yielded as growing fragments for the speech bubble. The rules stay in `core.rules`: the Coach
model only explains the verdict (or, in independent mode, gives an opinion stored beside it).

The API key lives only inside the SDK client. It is never in a repr, a log line or an error
message: every message this module raises or logs goes through `_redact`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import jiter
from pydantic import ValidationError

from core.agent import AgentError, SpendLimitReached, Turn
from core.prices import DEFAULT_MODEL, model_prices, usage as priced_usage
from core.prompts import (
    CRITIQUE_TOOL, JUDGEMENT_TOOL, PROPOSAL_TOOL, Critique, Judgement, coach_messages, player_messages,
    system_blocks, tools,
)
from core.schema import NO_USAGE, Constraints, Portfolio, Proposal, Usage, Verdict, WorldState
from core.spend_guard import SpendGuard

log = logging.getLogger(__name__)


# What an Anthropic key looks like: checked before a key is used (anything else could break the
# HTTP header it travels in, and an error about that header would quote it), and searched for
# when a message is redacted.
_KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")
MALFORMED_KEY = ("That does not look like an Anthropic API key: it starts with sk-ant- and has only letters, "
                 "digits, - and _ (no spaces).")


# --- errors --------------------------------------------------------------------------------

def redact(text: str, key: str | None) -> str:
    """The text with the key (and anything shaped like an Anthropic key) replaced by [key]."""
    if key:
        text = text.replace(key, "[key]")
    return _KEY_SHAPE.sub("[key]", text)


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(response.headers[name]) * scale
        except (KeyError, ValueError):  # absent, or an HTTP date: fall back to backoff
            continue
    return None


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(error.get("message") or exc.message)


def _error_kind(exc: Exception) -> str:
    """auth | rate | overloaded | timeout | connection | server | refused (a request the API will not take)."""
    if isinstance(exc, anthropic.AuthenticationError):
        return "auth"
    if isinstance(exc, anthropic.RateLimitError):
        return "rate"
    if isinstance(exc, anthropic.APITimeoutError) or isinstance(exc, httpx2.TimeoutException):
        return "timeout"
    if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
        return "connection"
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        kind = (body.get("error") or {}).get("type") if isinstance(body.get("error"), dict) else None
        if isinstance(exc, anthropic.OverloadedError) or exc.status_code == 529 or kind == "overloaded_error":
            return "overloaded"
        if exc.status_code >= 500 or kind == "api_error":
            return "server"
    return "refused"


RETRIED = ("rate", "overloaded", "timeout", "connection", "server")


def _advice(kind: str, exc: Exception, wait: float | None, model: str) -> str:
    """What went wrong and what the user can do, in one sentence."""
    if kind == "auth":
        return "The API key was rejected (401): check it in Settings."
    if kind == "rate":
        return f"Rate limited by the Anthropic API (429): retry in {max(1, round(wait or 30))} s."
    if kind == "overloaded":
        return "The Anthropic API is overloaded (529): try again in a minute."
    if kind == "server":
        return f"The Anthropic API failed ({getattr(exc, 'status_code', 500)}): try again in a minute."
    if kind == "timeout":
        return "The Anthropic API did not answer in time: check your connection and retry."
    if kind == "connection":
        return "Could not reach the Anthropic API (the connection failed or dropped): check your network and retry."
    status = getattr(exc, "status_code", None)
    detail = _api_message(exc) if isinstance(exc, anthropic.APIStatusError) else str(exc)
    if status == 403:
        return f"The API key may not use {model} (403): choose another model in Settings. {detail}"
    if status == 404:
        return f"Model {model} was not found (404): choose another model in Settings."
    return f"The Anthropic API refused the request ({status}): {detail}"


# --- one streamed tool call ----------------------------------------------------------------

class _Bubble:
    """The text already shown in a speech bubble, so a retry or a repair never repeats words."""

    def __init__(self) -> None:
        self.shown = ""

    def update(self, text: str) -> str:
        """The fragment to show for the field's current text ('' when there is nothing new)."""
        if text.startswith(self.shown):
            fragment, self.shown = text[len(self.shown):], text
            return fragment
        if self.shown.startswith(text):
            return ""  # a new attempt is still replaying words that are already on screen
        self.shown = text  # a new attempt says something else: start a new paragraph
        return "\n\n" + text


def _partial_text(raw: str, name: str) -> str | None:
    """The (possibly unfinished) string field `name` of partial tool-input JSON."""
    try:
        value = jiter.from_json(raw.encode(), partial_mode="trailing-strings")
    except ValueError:
        return None
    text = value.get(name) if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


@dataclass
class _Reply:
    input: dict
    stop_reason: str | None
    usage: Usage  # every attempt the API billed for this reply, failed ones included
    tool_id: str
    problem: str | None = None  # why the input cannot be used even before validation


class _ClaudeAgent:
    """What the Player and the Coach share: the client, the retries, the stream, the repair."""

    name = "claude"
    role = "agent"

    def __init__(self, api_key: str, model: str = DEFAULT_MODEL, base_url: str | None = None,
                 guard: SpendGuard | None = None, max_tokens: int = 1024, *, retries: int = 3,
                 timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep, max_wait: float = 20.0) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key: an Anthropic API key is required")
        if not _KEY_SHAPE.fullmatch(api_key.strip()):
            raise ValueError(f"api_key: {MALFORMED_KEY}")  # never the key itself
        try:
            model_prices(model)
        except KeyError as exc:
            raise ValueError(f"model: {exc.args[0]}") from None
        self.model = model
        self.guard = guard
        self.max_tokens = max_tokens
        self.retries = retries
        self.max_wait = max_wait
        self._sleep = sleep
        # max_retries=0: this class's loop is the only retry policy, so requests can be counted.
        self._client = anthropic.Anthropic(api_key=api_key.strip(), base_url=base_url, max_retries=0, timeout=timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    def _redact(self, text: str) -> str:
        return redact(text, self._client.api_key)

    def _bill(self, reported: Any) -> Usage:
        """Price the usage the API reported for one attempt and count it against the spend guard."""
        if reported is None:  # the request failed before the API said anything
            return NO_USAGE
        spent = priced_usage(self.model, input=reported.input_tokens or 0, output=reported.output_tokens or 0,
                             cache_write=reported.cache_creation_input_tokens or 0,
                             cache_read=reported.cache_read_input_tokens or 0)
        if self.guard is not None:
            self.guard.record(spent.cost_usd)
        return spent

    def _stream(self, params: dict, field_name: str, bubble: _Bubble) -> Generator[str, None, _Reply]:
        """One request with bounded retries; yields the field's new text as it streams."""
        spent = NO_USAGE
        for attempt in range(self.retries + 1):
            if self.guard is not None:
                try:
                    self.guard.admit()
                except SpendLimitReached as limit:
                    limit.usage = spent  # the earlier attempts were paid for all the same
                    raise
            # message_start reports the input tokens: they are billed even if the stream breaks later.
            started = None
            raw, partial, tool_id = "", {}, "toolu_repair"
            try:
                with self._client.messages.stream(**params) as stream:
                    for event in stream:
                        if event.type == "message_start":
                            started = event.message.usage
                        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                            tool_id = event.content_block.id
                        elif event.type == "input_json":
                            partial = event.snapshot if isinstance(event.snapshot, dict) else partial
                            # The SDK's snapshot drops an unfinished string; the bubble wants its words now.
                            raw += event.partial_json
                            text = _partial_text(raw, field_name)
                            if text:
                                fragment = bubble.update(text)
                                if fragment:
                                    yield fragment
                    message = stream.get_final_message()
            except (anthropic.APIError, httpx2.TransportError) as exc:
                spent = spent + self._bill(started)
                kind = _error_kind(exc)
                wait = _retry_after(exc) if kind == "rate" else None
                if wait is None:
                    wait = min(0.5 * 2 ** attempt, 8.0)
                if kind not in RETRIED or attempt == self.retries or wait > self.max_wait:
                    advice = self._redact(_advice(kind, exc, wait, self.model))
                    log.warning("%s call failed after %d attempt(s): %s", self.role, attempt + 1, advice)
                    raise AgentError(advice, spent) from None
                log.info("%s call failed (%s), retry %d in %.1f s", self.role, kind, attempt + 1, wait)
                self._sleep(wait)
                continue
            except ValueError as exc:
                # The SDK could not parse the tool-input JSON (broken, not merely unfinished): an
                # invalid answer like any other, so it gets the repair request, not a crash.
                spent = spent + self._bill(started)
                reason = self._redact(str(exc.__cause__ or exc))
                return _Reply(partial, None, spent, tool_id, f"the input was not valid JSON ({reason})")
            except Exception as exc:
                # Whatever else the SDK raises ends the exchange ERROR here, redacted, rather than
                # reaching the loop's catch-all, which would store and log its text as it is.
                spent = spent + self._bill(started)
                advice = self._redact(f"The {self.role}'s call to the Anthropic API failed: "
                                      f"{type(exc).__name__}: {exc}")
                log.warning("%s", advice)
                raise AgentError(advice, spent) from None
            spent = spent + self._bill(message.usage)
            block = next((b for b in message.content if b.type == "tool_use"), None)
            tool_input = block.input if block is not None and isinstance(block.input, dict) else {}
            return _Reply(tool_input, message.stop_reason, spent, block.id if block is not None else tool_id)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _ask(self, system: list[dict], messages: list[dict], tool: str, field_name: str,
             parse: Callable[[dict], Any]) -> Generator[str, None, tuple[Any, Usage]]:
        """A forced tool call, validated by `parse`; one repair request quoting the problem, then AgentError."""
        bubble = _Bubble()
        spent = NO_USAGE
        max_tokens = self.max_tokens
        for attempt in (1, 2):
            params = {"model": self.model, "max_tokens": max_tokens, "system": system, "tools": list(tools()),
                      "tool_choice": {"type": "tool", "name": tool}, "messages": messages}
            try:
                reply = yield from self._stream(params, field_name, bubble)
            except AgentError as failure:  # the spend guard's refusal included
                failure.usage = spent + failure.usage
                raise
            spent = spent + reply.usage
            problem = reply.problem
            if problem is None and reply.stop_reason == "max_tokens":
                problem = f"the answer was cut off at max_tokens={max_tokens} before the {tool} input was complete"
            if problem is None:
                try:
                    return parse(reply.input), spent
                except ValidationError as exc:
                    problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}"
                                        for e in exc.errors()[:5])
            if attempt == 2:
                raise AgentError(self._redact(
                    f"Claude's {self.role} answer was invalid twice ({problem}); the exchange stopped here "
                    "with every earlier round kept. Try again, or raise max_tokens."), spent)
            log.info("%s answer invalid, asking once for a repair: %s", self.role, problem)
            if reply.stop_reason == "max_tokens":
                max_tokens *= 2  # one larger budget for the repair; the instruction asks for brevity too
            messages = [*messages,
                        {"role": "assistant", "content": [
                            {"type": "tool_use", "id": reply.tool_id, "name": tool, "input": reply.input}]},
                        {"role": "user", "content": [
                            {"type": "tool_result", "tool_use_id": reply.tool_id, "is_error": True,
                             "content": f"Invalid input: {problem}. Call {tool} again with a complete input that "
                                        "matches the schema; keep the text fields short."}]}]
        raise AssertionError("unreachable")


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
                history: list[dict]) -> Generator[str, None, Turn]:
        """Stream the reasoning of a proposal (a revision when `history` has earlier rounds)."""
        proposal, spent = yield from self._ask(system_blocks(constraints),
                                               player_messages(world, portfolio, history, self.memory),
                                               PROPOSAL_TOOL, "reasoning", Proposal.model_validate)
        return Turn(proposal, spent)


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
            judged, spent = yield from self._ask(system_blocks(constraints),
                                                 coach_messages(proposal, None, world, portfolio),
                                                 JUDGEMENT_TOOL, "feedback", Judgement.model_validate)
            return Turn(judged.feedback, spent, {"decision": judged.decision, "violations": list(judged.violations)})
        critiqued, spent = yield from self._ask(system_blocks(constraints),
                                                coach_messages(proposal, verdict, world, portfolio),
                                                CRITIQUE_TOOL, "feedback", Critique.model_validate)
        return Turn(critiqued.feedback, spent)


# --- the key check -------------------------------------------------------------------------

def validate_key(key: str, base_url: str | None = None, model: str | None = None,
                 timeout: float = 15.0) -> tuple[bool, str]:
    """Check a key with one cheap call (list one model): (ok, a message for the Settings page)."""
    key = (key or "").strip()
    if not _KEY_SHAPE.fullmatch(key):
        return False, MALFORMED_KEY
    client = anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)
    try:
        client.models.list(limit=1)
    except (anthropic.APIError, httpx2.TransportError) as exc:
        kind = _error_kind(exc)
        if kind == "auth":
            return False, "The key was rejected (401): check that it is copied whole and still active."
        if kind in ("connection", "timeout"):
            return False, "No connection to the Anthropic API: check your network (the key was not checked)."
        return False, redact(_advice(kind, exc, _retry_after(exc), model or DEFAULT_MODEL), key)
    finally:
        client.close()
    return True, f"the Anthropic API accepted it; {model or DEFAULT_MODEL} will play both roles."
