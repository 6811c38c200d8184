"""One streamed request to the Anthropic API: the SDK client, the retry policy, the stream, the bill.

The retry policy is the SDK's own (408, 409, 429 and >= 500 are retried, and a response's
`x-should-retry` header overrides that either way), run here with the SDK's retries off so that
every request is counted by the spend guard and waits are bounded. Thinking blocks are read for
their token count only: their text is never yielded, stored or logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import jiter

from core.claude.keys import KEY_FRAGMENT, Redactor
from core.claude.spend_guard import SpendGuard
from core.exchange.errors import AgentError, RetryLater, SpendLimitReached
from core.exchange.artifact import NO_USAGE, Usage
from core.prices import usage as priced_usage

log = logging.getLogger("core.claude.agents")  # one logger for everything the Claude agents say


# --- errors --------------------------------------------------------------------------------

def retry_after(exc: Exception) -> float | None:
    """The wait an error response asks for (retry-after-ms or retry-after), in seconds; None when it asks none."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(response.headers[name]) * scale
        except (KeyError, ValueError):  # absent, or an HTTP date: fall back to backoff
            continue
    return None


def api_message(exc: anthropic.APIStatusError) -> str:
    """The API's own words for an error response."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(error.get("message") or exc.message)


def error_kind(exc: Exception) -> str:
    """auth | rate | overloaded | timeout | connection | server | conflict | refused (a request the API will not take)."""
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
        if exc.status_code == 408:
            return "timeout"
        if exc.status_code == 409:
            return "conflict"
    return "refused"


RETRIED = ("rate", "overloaded", "timeout", "connection", "server", "conflict")
"""The kinds the SDK's own policy retries: 408, 409, 429, >= 500 and a failed connection."""


def should_retry(exc: Exception, kind: str) -> bool:
    """Whether to try again: the response's x-should-retry header when it has one, else the kind."""
    response = getattr(exc, "response", None)
    header = response.headers.get("x-should-retry") if response is not None else None
    if header in ("true", "false"):
        return header == "true"
    return kind in RETRIED


def advice(kind: str, exc: Exception, wait: float | None, model: str, stall_s: float = 20.0) -> str:
    """What went wrong and what the user can do, in one sentence."""
    status = getattr(exc, "status_code", None)
    if kind == "auth":
        return "The API key was rejected (401): check it in Settings."
    if kind == "rate":
        return f"Rate limited by the Anthropic API (429): it asks to wait {duration(wait or 30)}."
    if kind == "overloaded":
        return "The Anthropic API is overloaded (529): try again in a minute."
    if kind == "server":
        return f"The Anthropic API failed ({status or 500}): try again in a minute."
    if kind == "conflict":
        return "The Anthropic API answered 409 (a conflict on its side): try again in a minute."
    if kind == "timeout":
        if status == 408:
            return "The Anthropic API timed out the request (408): try again in a minute."
        return f"The Anthropic API stopped answering (no data for {stall_s:g} s): check your connection and retry."
    if kind == "connection":
        return "Could not reach the Anthropic API (the connection failed or dropped): check your network and retry."
    detail = api_message(exc) if isinstance(exc, anthropic.APIStatusError) else str(exc)
    if status == 403:
        return f"The API key may not use {model} (403): choose another model in Settings. {detail}"
    if status == 404:
        return f"Model {model} was not found (404): choose another model in Settings."
    return f"The Anthropic API refused the request ({status}): {detail}"


def duration(seconds: float) -> str:
    """'45 s', '3 min', '2 h 5 min'."""
    seconds = max(1, round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def refuses_forced_tool_error(exc: Exception) -> bool:
    """A 400 that says the model will not take a forced tool choice (thinking is on for it)."""
    if not isinstance(exc, anthropic.BadRequestError):
        return False
    text = api_message(exc).lower()
    return "tool_choice" in text and ("forc" in text or "thinking" in text)


class ForcedToolRefused(Exception):
    """Raised by one request when the model refused the forced tool choice; nothing was billed."""


def refuses_thinking_setting_error(exc: Exception) -> bool:
    """A 400 about the request's thinking or effort setting (a model, or a gateway, that does not take it)."""
    if not isinstance(exc, anthropic.BadRequestError):
        return False
    text = api_message(exc).lower()
    return "tool_choice" not in text and ("thinking" in text or "effort" in text)


class SettingRefused(Exception):
    """Raised by one request when the model refused its thinking or effort setting; nothing was billed."""


def refusal_text(role: str, message: Any) -> str:
    """Why the model refused, in the API's words (stop_details), and what that means for the exchange."""
    details = getattr(message, "stop_details", None)
    category = getattr(details, "category", None)
    explanation = getattr(details, "explanation", None)
    reason = "; ".join(part for part in (f"category {category}" if category else "", explanation or "") if part)
    return (f"Claude refused the {role}'s request (stop reason refusal: {reason or 'no reason given'}). "
            "The exchange stopped here with every earlier round kept; asking again on the same conversation "
            "would be refused again, so change the situation or the model before you retry.")


# --- the stream ----------------------------------------------------------------------------

HELD_BACK = 2 * KEY_FRAGMENT
"""Characters of streamed text shown only once more has arrived: enough for a key's first KEY_FRAGMENT
characters even when spaces separate them, so the screen never shows a part of the key that redaction
would hide a moment later."""


class Bubble:
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


def partial_text(raw: str, name: str) -> str | None:
    """The (possibly unfinished) string field `name` of partial tool-input JSON."""
    try:
        value = jiter.from_json(raw.encode(), partial_mode="trailing-strings")
    except ValueError:
        return None
    text = value.get(name) if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


@dataclass
class Meter:
    """The usage the stream has reported so far (message_start, then message_delta's running totals)."""

    input: int = 0
    output: int = 0
    thinking: int = 0  # of the output: tokens the model spent thinking (output_tokens_details)
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
        details = getattr(usage, "output_tokens_details", None)
        if getattr(details, "thinking_tokens", None) is not None:
            self.thinking = details.thinking_tokens


@dataclass
class Reply:
    """What one request gave: the tool input, why it stopped, and every attempt's usage."""

    input: dict
    stop_reason: str | None
    usage: Usage  # every attempt the API billed for this reply, failed ones included
    tool_id: str
    problem: str | None = None  # why the input cannot be used even before validation


class Caller:
    """One model at one address for one role: the SDK client, bounded retries, the stream and the bill."""

    def __init__(self, api_key: str, model: str, base_url: str | None, guard: SpendGuard | None, role: str, *,
                 retries: int, stall_timeout_s: float, sleep: Callable[[float], None], max_wait: float) -> None:
        self.model, self.guard, self.role = model, guard, role
        self.retries, self.max_wait, self.stall_timeout_s, self.sleep = retries, max_wait, stall_timeout_s, sleep
        self.line: str | None = None  # the model's line from the Models API, for estimated prices
        self.redact = Redactor(api_key)  # the text with the key hidden (it holds the key, as the client does)
        # max_retries=0: this class's loop is the only retry policy, so requests can be counted. The
        # read timeout is the stall detector: no byte for stall_timeout_s ends the attempt.
        timeout = anthropic.Timeout(stall_timeout_s, connect=min(stall_timeout_s, 10.0))
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)

    @property
    def address(self) -> str:
        """Where requests go (a gateway may treat a model differently from Anthropic's API)."""
        return str(self.client.base_url)

    def bill(self, meter: Meter) -> Usage:
        """Price what the stream reported for one attempt and count it against the spend guard."""
        if not meter.heard:  # the request failed before the API said anything
            return NO_USAGE
        spent = priced_usage(self.model, input=meter.input, output=meter.output, cache_write=meter.cache_write,
                             cache_read=meter.cache_read, thinking=meter.thinking, line=self.line)
        if self.guard is not None:
            self.guard.record(spent.cost_usd, spent.cost_basis)
        return spent

    def admit(self, spent: Usage) -> None:
        """Ask the spend guard before a request; its refusal carries what was already paid."""
        if self.guard is not None:
            try:
                self.guard.admit()
            except SpendLimitReached as limit:
                limit.usage = spent  # the earlier attempts were paid for all the same
                raise

    def stream(self, params: dict, field_name: str, bubble: Bubble, tool: str) -> Generator[str, None, Reply]:
        """One request with bounded retries; yields the field's new text (redacted) as it streams."""
        spent = NO_USAGE
        attempt = stalls = 0
        while True:
            self.admit(spent)
            meter = Meter()
            try:
                message, tool_id = yield from self._attempt(params, field_name, bubble, tool, meter)
            except (anthropic.APIError, httpx2.TransportError) as exc:
                spent = spent + self.bill(meter)
                if refuses_forced_tool_error(exc) and params["tool_choice"]["type"] == "tool":
                    raise ForcedToolRefused() from None
                if refuses_thinking_setting_error(exc) and ("thinking" in params or "output_config" in params):
                    raise SettingRefused() from None
                kind = error_kind(exc)
                stalls += kind == "timeout"
                wait = self._wait(kind, exc, attempt, spent)
                if not should_retry(exc, kind) or attempt >= self.retries or stalls > 1:
                    said = self.redact(advice(kind, exc, wait, self.model, self.stall_timeout_s))
                    log.warning("%s call failed after %d attempt(s): %s", self.role, attempt + 1, said)
                    raise AgentError(said, spent) from None
                log.info("%s call failed (%s), retry %d in %.1f s", self.role, kind, attempt + 1, wait)
                self.sleep(wait)
                attempt += 1
                continue
            except ValueError as exc:
                # The SDK could not parse the tool-input JSON (broken, not merely unfinished): an
                # invalid answer like any other, so it gets the repair request, not a crash.
                spent = spent + self.bill(meter)
                reason = self.redact(str(exc.__cause__ or exc))
                return Reply({}, None, spent, "toolu_repair", f"the input was not valid JSON ({reason})")
            except Exception as exc:
                # Whatever else the SDK raises ends the exchange ERROR here, redacted, rather than
                # reaching the loop's catch-all, which would store and log its text as it is.
                spent = spent + self.bill(meter)
                said = self.redact(f"The {self.role}'s call to the Anthropic API failed: {type(exc).__name__}: {exc}")
                log.warning("%s", said)
                raise AgentError(said, spent) from None
            spent = spent + self.bill(meter)
            if message.stop_reason == "refusal":
                raise AgentError(self.redact(refusal_text(self.role, message)), spent)
            block = next((b for b in message.content if b.type == "tool_use" and b.name == tool), None)
            if block is None:
                return Reply({}, message.stop_reason, spent, tool_id,
                             f"the answer did not call {tool}" if message.stop_reason != "max_tokens" else None)
            tool_input = block.input if isinstance(block.input, dict) else {}
            return Reply(tool_input, message.stop_reason, spent, block.id)

    def _attempt(self, params: dict, field_name: str, bubble: Bubble, tool: str,
                 meter: Meter) -> Generator[str, None, tuple[Any, str]]:
        """One streamed request: the final message and the tool call's id; the meter follows the usage."""
        raw, tool_id, current = "", "toolu_repair", None
        with self.client.messages.stream(**params) as stream:
            for event in stream:
                if event.type == "message_start":
                    meter.read(event.message.usage)  # the input is billed even if the stream breaks later
                elif event.type == "message_delta":
                    meter.read(event.usage)  # running totals: a broken stream still counts its output
                elif event.type == "content_block_start":
                    # a thinking block is skipped: only its tokens count (in the usage), never its text
                    current = event.content_block.name if event.content_block.type == "tool_use" else None
                    if current == tool:
                        tool_id = event.content_block.id
                elif event.type == "input_json" and current == tool:
                    # The SDK's snapshot drops an unfinished string; the bubble wants its words now. The
                    # last HELD_BACK characters wait for the next delta: they may be the start of a key
                    # that redaction can only recognise once more of it has arrived.
                    raw += event.partial_json
                    text = partial_text(raw, field_name)
                    fragment = bubble.update(self.redact(text)[:-HELD_BACK]) if text else ""
                    if fragment:
                        yield fragment
            message = stream.get_final_message()
        text = partial_text(raw, field_name)
        fragment = bubble.update(self.redact(text)) if text else ""  # the whole answer is in: show its end
        if fragment:
            yield fragment
        return message, tool_id

    def _wait(self, kind: str, exc: Exception, attempt: int, spent: Usage) -> float:
        """Seconds before the next attempt; RetryLater when the API asks for more than max_wait."""
        asked = retry_after(exc) if kind in ("rate", "overloaded") else None
        if asked is not None and asked > self.max_wait:
            text = self.redact(advice(kind, exc, asked, self.model, self.stall_timeout_s)
                               + f" That is longer than the {self.max_wait:g} s this app waits on its own: "
                                 f"run the exchange again in {duration(asked)}.")
            raise RetryLater(text, asked, spent)
        return asked if asked is not None else min(0.5 * 2 ** attempt, 8.0)

    def close(self) -> None:
        self.client.close()
