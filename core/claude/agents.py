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

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import anthropic
import httpx2
import jiter
from pydantic import ValidationError

from core.exchange.agent import Turn
from core.exchange.errors import AgentError, InvalidInput, RetryLater, SpendLimitReached
from core.prices import (
    DEFAULT_MODEL, PRICES, RETIRED, RETIRING, ModelInfo, canonical, usage as priced_usage,
)
from core.claude.prompts import (
    CRITIQUE_TOOL, GRADE_TOOL, JUDGEMENT_TOOL, PROPOSAL_TOOL, Critique, Judgement, coach_messages, grader_messages,
    player_messages, system_blocks, tools,
)
from core.exchange.schema import NO_USAGE, Constraints, Portfolio, Proposal, ReasoningGrade, Round, Usage, Verdict, WorldState
from core.claude.spend_guard import SpendGuard

log = logging.getLogger(__name__)


# What an Anthropic key looks like: checked before a key is used (anything else could break the
# HTTP header it travels in, and an error about that header would quote it), and searched for
# when a message is redacted.
_KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")
KEY_MIN_LENGTH = 40  # Anthropic keys have about 108 characters; a much shorter one was cut off
_KEY_CHARS = re.compile(r"[A-Za-z0-9_\-]")


def key_problem(key: str, base_url: str | None = None) -> str | None:
    """What is wrong with a typed key, in plain words that never quote it; None when its shape is fine.

    With a base URL (a gateway that speaks Anthropic's API, set in Settings or ANTHROPIC_BASE_URL)
    any key goes that can travel in an HTTP header: no spaces, only printable ASCII.
    """
    if not key:
        return "Enter a key first."
    where = next((i for i, c in enumerate(key) if c.isspace()), None)
    if where is not None:
        return (f"The key contains a space or a line break (character {where + 1} of {len(key)}): "
                "copy it again as one piece.")
    where = next((i for i, c in enumerate(key) if not (c.isascii() and c.isprintable())), None)
    if where is not None:
        return (f"The key contains a character that is not plain text (character {where + 1} of {len(key)}, "
                "for example a typographic quote or an invisible character): copy it again from the console.")
    if base_url:
        return None
    if "=" in key or key[0] in "'\"" or key[-1] in "'\"":
        return "Paste only the key itself, without a variable name, an = sign or quotes around it."
    if not key.startswith("sk-ant-"):
        return "An Anthropic key starts with sk-ant-; this one does not, so its start is missing or mistyped."
    where = next((i for i, c in enumerate(key) if not _KEY_CHARS.fullmatch(c)), None)
    if where is not None:
        return (f"The key contains a character an Anthropic key never has (character {where + 1} of {len(key)}; "
                "keys have only letters, digits, - and _).")
    if len(key) < KEY_MIN_LENGTH:
        return (f"The key has only {len(key)} characters, an Anthropic key about 108: it looks cut off, "
                "copy it again whole.")
    return None


def gateway(base_url: str | None) -> str | None:
    """The base URL requests go to: the one given, else ANTHROPIC_BASE_URL, else None (Anthropic's API)."""
    return base_url or os.environ.get("ANTHROPIC_BASE_URL") or None


# --- errors --------------------------------------------------------------------------------

KEY_FRAGMENT = 8
"""The shortest run of the key's characters that redact() removes: an error that quotes part of the key
(its last 60 characters, say) gives none of it away."""


def redact(text: str, key: str | None) -> str:
    """The text with the key, any run of KEY_FRAGMENT or more of its characters, and anything shaped like
    an Anthropic key replaced by [key]."""
    if key and len(key) >= KEY_FRAGMENT:
        pieces = {key[i:i + KEY_FRAGMENT] for i in range(len(key) - KEY_FRAGMENT + 1)}
        out, i = [], 0
        while i < len(text):
            if text[i:i + KEY_FRAGMENT] in pieces:
                end = i + KEY_FRAGMENT
                while end < len(text) and text[i:end + 1] in key:  # the longest run of the key from here
                    end += 1
                out.append("[key]")
                i = end
            else:
                out.append(text[i])
                i += 1
        text = "".join(out)
    elif key:
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


def _advice(kind: str, exc: Exception, wait: float | None, model: str, stall_s: float = 20.0) -> str:
    """What went wrong and what the user can do, in one sentence."""
    if kind == "auth":
        return "The API key was rejected (401): check it in Settings."
    if kind == "rate":
        return f"Rate limited by the Anthropic API (429): it asks to wait {_duration(wait or 30)}."
    if kind == "overloaded":
        return "The Anthropic API is overloaded (529): try again in a minute."
    if kind == "server":
        return f"The Anthropic API failed ({getattr(exc, 'status_code', 500)}): try again in a minute."
    if kind == "timeout":
        return f"The Anthropic API stopped answering (no data for {stall_s:g} s): check your connection and retry."
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


FORCED = "forced tool"
AUTO = "auto tool + strict schema"
REFUSES_FORCED_TOOL = frozenset({"claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1", "claude-mythos-5-1",
                                 "claude-fable-5-2", "claude-mythos-5-2"})
"""Models whose pages say a forced tool choice returns an error (they always think): asked with tool
choice auto, strict tool schemas and an instruction instead."""
_learnt: set[tuple[str, str]] = set()  # (base URL, model) that answered a forced tool choice with the 400
_learnt_lock = threading.Lock()


def refuses_forced_tool(model: str, base_url: str) -> bool:
    """Whether `model` at `base_url` is known to refuse a forced tool choice (documented, or learnt this process)."""
    return model in REFUSES_FORCED_TOOL or (base_url, model) in _learnt


@functools.cache
def strict_tools() -> tuple[dict, ...]:
    """The tools with `strict: true` and their schemas in the subset strict mode accepts (the SDK's transform)."""
    return tuple({**spec, "strict": True, "input_schema": anthropic.transform_schema(spec["input_schema"])}
                 for spec in tools())


def _refuses_forced_tool(exc: Exception) -> bool:
    """A 400 that says the model will not take a forced tool choice (thinking is on for it)."""
    if not isinstance(exc, anthropic.BadRequestError):
        return False
    text = _api_message(exc).lower()
    return "tool_choice" in text and ("forc" in text or "thinking" in text)


class _ForcedToolRefused(Exception):
    """Raised by one request when the model refused the forced tool choice; nothing was billed."""


@dataclass
class _Meter:
    """The usage the stream has reported so far (message_start, then message_delta's running totals)."""

    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0
    heard: bool = False  # the API said anything at all, so the attempt is billed

    def read(self, usage: Any) -> None:
        self.heard = True
        for field, name in (("input", "input_tokens"), ("output", "output_tokens"),
                            ("cache_write", "cache_creation_input_tokens"), ("cache_read", "cache_read_input_tokens")):
            value = getattr(usage, name, None)
            if value is not None:
                setattr(self, field, value)


@dataclass
class _Reply:
    input: dict
    stop_reason: str | None
    usage: Usage  # every attempt the API billed for this reply, failed ones included
    tool_id: str
    problem: str | None = None  # why the input cannot be used even before validation


class _ClaudeAgent:
    """What the Player and the Coach share: the client, the retries, the stream, the fallback, the repair."""

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
        self.max_tokens = max_tokens
        self.retries = retries
        self.max_wait = max_wait
        self.stall_timeout_s = stall_timeout_s
        self._sleep = sleep
        # max_retries=0: this class's loop is the only retry policy, so requests can be counted. The
        # read timeout is the stall detector: no byte for stall_timeout_s ends the attempt.
        timeout = anthropic.Timeout(stall_timeout_s, connect=min(stall_timeout_s, 10.0))
        self._client = anthropic.Anthropic(api_key=api_key.strip(), base_url=base_url, max_retries=0, timeout=timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"

    def _redact(self, text: str) -> str:
        return redact(text, self._client.api_key)

    def _bill(self, meter: _Meter) -> Usage:
        """Price what the stream reported for one attempt and count it against the spend guard."""
        if not meter.heard:  # the request failed before the API said anything
            return NO_USAGE
        spent = priced_usage(self.model, input=meter.input, output=meter.output, cache_write=meter.cache_write,
                             cache_read=meter.cache_read)
        if self.guard is not None:
            self.guard.record(spent.cost_usd, spent.cost_basis)
        return spent

    def _admit(self, spent: Usage) -> None:
        if self.guard is not None:
            try:
                self.guard.admit()
            except SpendLimitReached as limit:
                limit.usage = spent  # the earlier attempts were paid for all the same
                raise

    def _stream(self, params: dict, field_name: str, bubble: _Bubble, tool: str) -> Generator[str, None, _Reply]:
        """One request with bounded retries; yields the field's new text as it streams."""
        spent = NO_USAGE
        attempt = stalls = 0
        while True:
            self._admit(spent)
            meter = _Meter()
            try:
                message, tool_id = yield from self._attempt(params, field_name, bubble, tool, meter)
            except (anthropic.APIError, httpx2.TransportError) as exc:
                spent = spent + self._bill(meter)
                if _refuses_forced_tool(exc) and params["tool_choice"]["type"] == "tool":
                    raise _ForcedToolRefused() from None
                kind = _error_kind(exc)
                stalls += kind == "timeout"
                wait = self._wait(kind, exc, attempt, spent)
                if kind not in RETRIED or attempt >= self.retries or stalls > 1:
                    advice = self._redact(_advice(kind, exc, wait, self.model, self.stall_timeout_s))
                    log.warning("%s call failed after %d attempt(s): %s", self.role, attempt + 1, advice)
                    raise AgentError(advice, spent) from None
                log.info("%s call failed (%s), retry %d in %.1f s", self.role, kind, attempt + 1, wait)
                self._sleep(wait)
                attempt += 1
                continue
            except ValueError as exc:
                # The SDK could not parse the tool-input JSON (broken, not merely unfinished): an
                # invalid answer like any other, so it gets the repair request, not a crash.
                spent = spent + self._bill(meter)
                reason = self._redact(str(exc.__cause__ or exc))
                return _Reply({}, None, spent, "toolu_repair", f"the input was not valid JSON ({reason})")
            except Exception as exc:
                # Whatever else the SDK raises ends the exchange ERROR here, redacted, rather than
                # reaching the loop's catch-all, which would store and log its text as it is.
                spent = spent + self._bill(meter)
                advice = self._redact(f"The {self.role}'s call to the Anthropic API failed: "
                                      f"{type(exc).__name__}: {exc}")
                log.warning("%s", advice)
                raise AgentError(advice, spent) from None
            spent = spent + self._bill(meter)
            if message.stop_reason == "refusal":
                raise AgentError(self._redact(_refusal_text(self.role, message)), spent)
            block = next((b for b in message.content if b.type == "tool_use" and b.name == tool), None)
            if block is None:
                return _Reply({}, message.stop_reason, spent, tool_id,
                              f"the answer did not call {tool}" if message.stop_reason != "max_tokens" else None)
            tool_input = block.input if isinstance(block.input, dict) else {}
            return _Reply(tool_input, message.stop_reason, spent, block.id)

    def _attempt(self, params: dict, field_name: str, bubble: _Bubble, tool: str,
                 meter: _Meter) -> Generator[str, None, tuple[Any, str]]:
        """One streamed request: the final message and the tool call's id; the meter follows the usage."""
        raw, tool_id, current = "", "toolu_repair", None
        with self._client.messages.stream(**params) as stream:
            for event in stream:
                if event.type == "message_start":
                    meter.read(event.message.usage)  # the input is billed even if the stream breaks later
                elif event.type == "message_delta":
                    meter.read(event.usage)  # running totals: a broken stream still counts its output
                elif event.type == "content_block_start":
                    current = event.content_block.name if event.content_block.type == "tool_use" else None
                    if current == tool:
                        tool_id = event.content_block.id
                elif event.type == "input_json" and current == tool:
                    # The SDK's snapshot drops an unfinished string; the bubble wants its words now.
                    raw += event.partial_json
                    text = _partial_text(raw, field_name)
                    fragment = bubble.update(text) if text else ""
                    if fragment:
                        yield fragment
            return stream.get_final_message(), tool_id

    def _wait(self, kind: str, exc: Exception, attempt: int, spent: Usage) -> float:
        """Seconds before the next attempt; RetryLater when the API asks for more than max_wait."""
        asked = _retry_after(exc) if kind in ("rate", "overloaded") else None
        if asked is not None and asked > self.max_wait:
            text = self._redact(_advice(kind, exc, asked, self.model, self.stall_timeout_s)
                                + f" That is longer than the {self.max_wait:g} s this app waits on its own: "
                                  f"run the exchange again in {_duration(asked)}.")
            raise RetryLater(text, asked, spent)
        return asked if asked is not None else min(0.5 * 2 ** attempt, 8.0)

    def _params(self, path: str, system: list[dict], messages: list[dict], tool: str, max_tokens: int) -> dict:
        """The request: a forced tool choice, or (for a model that refuses one) auto with strict schemas."""
        if path == FORCED:
            return {"model": self.model, "max_tokens": max_tokens, "system": system, "tools": list(tools()),
                    "tool_choice": {"type": "tool", "name": tool}, "messages": messages}
        last = messages[-1]
        told = {"type": "text", "text": f"Answer only by calling the tool {tool}, exactly once, with an input that "
                                        "matches its schema; write nothing outside that call."}
        return {"model": self.model, "max_tokens": max_tokens, "system": system, "tools": list(strict_tools()),
                "tool_choice": {"type": "auto"},
                "messages": [*messages[:-1], {**last, "content": [*last["content"], told]}]}

    def _call(self, system: list[dict], messages: list[dict], tool: str, field_name: str, bubble: _Bubble,
              max_tokens: int) -> Generator[str, None, tuple[str, _Reply]]:
        """One request on the model's path; a refused forced tool choice switches the model to auto, once."""
        where = str(self._client.base_url)  # a gateway may treat a model differently from Anthropic's API
        path = AUTO if refuses_forced_tool(self.model, where) else FORCED
        try:
            reply = yield from self._stream(self._params(path, system, messages, tool, max_tokens), field_name,
                                            bubble, tool)
        except _ForcedToolRefused:
            with _learnt_lock:
                _learnt.add((where, self.model))
            log.info("%s refuses a forced tool choice: asking with tool choice auto from now on", self.model)
            path = AUTO
            reply = yield from self._stream(self._params(path, system, messages, tool, max_tokens), field_name,
                                            bubble, tool)
        return path, reply

    def _ask(self, system: list[dict], messages: list[dict], tool: str, field_name: str,
             parse: Callable[[dict], Any]) -> Generator[str, None, tuple[Any, Usage, str]]:
        """A tool call validated by `parse`; one repair request quoting the problem, then AgentError.

        Returns (value, usage, path): the path says how the answer came (forced or auto tool, + repair).
        """
        bubble = _Bubble()
        spent = NO_USAGE
        max_tokens = self.max_tokens
        for attempt in (1, 2):
            try:
                path, reply = yield from self._call(system, messages, tool, field_name, bubble, max_tokens)
            except (AgentError, SpendLimitReached) as failure:
                failure.usage = spent + failure.usage
                raise
            spent = spent + reply.usage
            problem = reply.problem
            cut_off = reply.stop_reason == "max_tokens"
            if problem is None and cut_off:
                problem = f"the answer was cut off at max_tokens={max_tokens} before the {tool} input was complete"
            if problem is None:
                try:
                    return parse(reply.input), spent, path + (" + repair" if attempt == 2 else "")
                except ValidationError as exc:
                    problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}"
                                        for e in exc.errors()[:5])
            if attempt == 2:
                advice = " Try again, or raise max_tokens." if cut_off else " Try again, or choose another model."
                raise AgentError(self._redact(
                    f"Claude's {self.role} answer was invalid twice ({problem}); the exchange stopped here "
                    f"with every earlier round kept.{advice}"), spent)
            log.info("%s answer invalid, asking once for a repair: %s", self.role, problem)
            if cut_off:
                max_tokens *= 2  # one larger budget for the repair; the instruction asks for brevity too
            messages = _repair(messages, path, tool, reply, problem)
        raise AssertionError("unreachable")


def _repair(messages: list[dict], path: str, tool: str, reply: _Reply, problem: str) -> list[dict]:
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


def _refusal_text(role: str, message: Any) -> str:
    """Why the model refused, in the API's words (stop_details), and what that means for the exchange."""
    details = getattr(message, "stop_details", None)
    category = getattr(details, "category", None)
    explanation = getattr(details, "explanation", None)
    reason = "; ".join(part for part in (f"category {category}" if category else "", explanation or "") if part)
    return (f"Claude refused the {role}'s request (stop reason refusal: {reason or 'no reason given'}). "
            "The exchange stopped here with every earlier round kept; asking again on the same conversation "
            "would be refused again, so change the situation or the model before you retry.")


def _duration(seconds: float) -> str:
    """'45 s', '3 min', '2 h 5 min'."""
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


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
                                                     player_messages(world, portfolio, history, self.memory),
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


# --- the key check and the model list ------------------------------------------------------

@dataclass(frozen=True)
class KeyCheck:
    """The result of validate_key.

    status: valid | invalid (only a 401 or a malformed key: discard it) | unchecked (the API could
    not be asked now: keep the key) | model refused (the key works, the chosen model not).
    models: the models the key may use, newest first, when the Models API answered.
    """

    status: Literal["valid", "invalid", "unchecked", "model refused"]
    message: str
    models: list[ModelInfo] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "valid"

    @property
    def keep(self) -> bool:
        """Whether the session should hold on to the key: anything but a refused or malformed key."""
        return self.status != "invalid"


def _client(key: str, base_url: str | None, timeout: float) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)


def _models(client: anthropic.Anthropic, today: date) -> list[ModelInfo]:
    """The Models API's list for this key, newest first, retired models (and overdue ones) left out."""
    listed = []
    for entry in client.models.list(limit=1000):  # the SDK follows the pages
        lifecycle = getattr(entry, "lifecycle", None)
        retires_at = getattr(entry, "retires_at", None)
        retires = retires_at.date().isoformat() if retires_at else RETIRING.get(entry.id)
        if lifecycle == "retired" or entry.id in RETIRED or (retires and retires <= today.isoformat()):
            continue
        deprecated = lifecycle == "deprecated" or entry.id in RETIRING
        # A gateway may leave out the release date or the name: the list keeps its order, the id names it.
        released = str(getattr(entry, "created_at", None) or "")
        listed.append((released, ModelInfo(id=entry.id, display_name=getattr(entry, "display_name", None) or entry.id,
                                           priced=canonical(entry.id) in PRICES,
                                           retires=retires if deprecated else None)))
    listed.sort(key=lambda pair: pair[0], reverse=True)
    return [info for _, info in listed]


def list_models(api_key: str, base_url: str | None = None, *, timeout: float = 15.0,
                today: date | None = None) -> list[ModelInfo]:
    """The models this key may use, from the Models API, newest first (AgentError, redacted, when it cannot)."""
    key = (api_key or "").strip()
    client = _client(key, gateway(base_url), timeout)
    try:
        return _models(client, today or date.today())
    except (anthropic.APIError, httpx2.TransportError) as exc:
        raise AgentError(_listing_failed(exc, key, timeout)) from None
    finally:
        client.close()


def _listing_failed(exc: Exception, key: str, timeout: float) -> str:
    """Why the Models API gave no list, in one sentence (redacted)."""
    if getattr(exc, "status_code", None) == 404:
        return "this server has no Models API (404)"
    return redact(_advice(_error_kind(exc), exc, _retry_after(exc), "the Models API", timeout), key).rstrip(".")


def _unchecked(exc: Exception, key: str, timeout: float) -> KeyCheck:
    why = _listing_failed(exc, key, timeout)
    return KeyCheck("unchecked", f"Could not check the key now ({why}). It is kept for this "
                                 "session and used as it is; validate again later to be sure.")


def validate_key(key: str, base_url: str | None = None, model: str | None = None,
                 timeout: float = 15.0, today: date | None = None) -> KeyCheck:
    """Check a key (the Models API) and the chosen model (a free token count) for the Settings page.

    Only a 401 (or a malformed key) says the key is wrong; a 429, a 5xx or no connection means it
    could not be checked now, and the key stays for the session. A 403 on the model says the key
    may not use that model.
    """
    key = (key or "").strip()
    base_url = gateway(base_url)
    problem = key_problem(key, base_url)
    if problem:
        return KeyCheck("invalid", problem)
    model = model or DEFAULT_MODEL
    client = _client(key, base_url, timeout)
    try:
        try:
            models = _models(client, today or date.today())
        except (anthropic.APIError, httpx2.TransportError) as exc:
            if _error_kind(exc) == "auth":
                return KeyCheck("invalid", "The key was rejected (401): check that it is copied whole and still active.")
            return _unchecked(exc, key, timeout)
        try:
            client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "ok"}])
        except (anthropic.APIError, httpx2.TransportError) as exc:
            status = getattr(exc, "status_code", None)
            if status in (403, 404):
                verb = "may not use" if status == 403 else "cannot find"
                return KeyCheck("model refused", f"The key works, but this key {verb} {model} ({status}): "
                                                 "choose another model below.", models)
            why = redact(_advice(_error_kind(exc), exc, _retry_after(exc), model, timeout), key)
            return KeyCheck("valid", f"the Anthropic API accepted it; {model} could not be checked now ({why})",
                            models)
    finally:
        client.close()
    return KeyCheck("valid", f"the Anthropic API accepted it; {model} will play both roles.", models)
