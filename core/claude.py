"""Claude as the Player and the Coach, on the official `anthropic` SDK.

Structured output comes from a forced tool call whose input schema is generated from a pydantic
model, so nothing is parsed out of prose. The call is streamed: the partial tool-input JSON is
read as it arrives and its `reasoning` (Player) or `feedback` (Coach) text is yielded as growing
fragments for the speech bubble. The rules stay in `core.rules`: the Coach model only explains
the verdict (or, in independent mode, gives an opinion that is stored beside it).

Every request of every agent shares one prompt prefix: the same three tools and the same
system blocks (the rulebook, then this exchange's constraint schema), both marked for prompt
caching. The Player's first call writes the prefix, every later call of the exchange (the
Coach's included) reads it. The rulebook is long on purpose: it is the full contract the models
work to (field meanings, every formula, the decision logic, worked examples computed by
`core.rules`), and it has to be, because Haiku 4.5 caches nothing under 4096 tokens.

The API key lives only inside the SDK client. It is never in a repr, a log line or an error
message: every message this module raises or logs goes through `_redact`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

import anthropic
import httpx2
import jiter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.agent import AgentError, SpendLimitReached, Turn
from core.prices import DEFAULT_MODEL, model_prices, usage as priced_usage
from core.rules import check_proposal
from core.schema import (
    NO_USAGE, RULE_NAMES, Constraints, Portfolio, Proposal, Usage, Verdict, WorldState,
)

log = logging.getLogger(__name__)

PROPOSAL_TOOL = "submit_proposal"
CRITIQUE_TOOL = "submit_critique"
JUDGEMENT_TOOL = "submit_judgement"
CACHE = {"type": "ephemeral"}

# What an Anthropic key looks like: checked before a key is used (anything else could break the
# HTTP header it travels in, and an error about that header would quote it), and searched for
# when a message is redacted.
_KEY_SHAPE = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")
MALFORMED_KEY = ("That does not look like an Anthropic API key: it starts with sk-ant- and has only letters, "
                 "digits, - and _ (no spaces).")


# --- structured outputs --------------------------------------------------------------------

class Critique(BaseModel):
    """The Coach's answer: the critique of a proposal the rules have judged."""

    model_config = ConfigDict(extra="forbid")

    feedback: str = Field(description="The critique in plain text (no markdown): each failed check with its "
                                      "arithmetic and the change that would pass it, or why the trade is sound.")


class Judgement(Critique):
    """The independent Coach's answer: its own critique and verdict, made without the rules' checks."""

    decision: Literal["APPROVE", "REJECT", "ABORT"] = Field(description="Your own verdict on the proposal.")
    violations: list[Literal[RULE_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="The constraint names you find violated; empty when none.")


def tool_schema(model: type[BaseModel]) -> dict:
    """A pydantic model's JSON schema with every $ref inlined, so the tool schema stands alone."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].split("/")[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


@functools.cache
def tools() -> tuple[dict, ...]:
    """The three tools, identical in every request so that the cached prefix is shared."""
    return (
        {"name": PROPOSAL_TOOL, "description": "The Player submits its proposal: reasoning first, then 1-3 actions.",
         "input_schema": tool_schema(Proposal)},
        {"name": CRITIQUE_TOOL, "description": "The Coach submits its critique of a proposal the rules have judged.",
         "input_schema": tool_schema(Critique)},
        {"name": JUDGEMENT_TOOL, "description": "The Coach, judging on its own, submits critique, verdict and violations.",
         "input_schema": tool_schema(Judgement)},
    )


# --- the spend guard -----------------------------------------------------------------------

class SpendGuard:
    """Limits on paid calls, shared by both agents of a session: calls per hour and dollars in all.

    `admit()` runs before every request and raises SpendLimitReached instead of letting it go;
    `record(cost)` adds a billed call's dollars. A call already admitted may take the total a
    little past `dollars_per_session`; the next one is refused. None is no limit; the limits may be
    changed at any time (the Settings page does), what was spent is kept.
    """

    def __init__(self, calls_per_hour: int | None = None, dollars_per_session: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.calls_per_hour = calls_per_hour
        self.dollars_per_session = dollars_per_session
        self.clock = clock
        self.spent_usd = 0.0
        self._calls: list[float] = []
        self._lock = threading.Lock()

    def calls_last_hour(self) -> int:
        """Requests admitted in the last 3600 s of the clock."""
        with self._lock:
            self._forget()
            return len(self._calls)

    def _forget(self) -> None:
        horizon = self.clock() - 3600
        self._calls = [t for t in self._calls if t > horizon]

    def admit(self) -> None:
        """Count one request, or raise SpendLimitReached when a limit is reached (nothing is counted then)."""
        with self._lock:
            self._forget()
            if self.calls_per_hour is not None and len(self._calls) >= self.calls_per_hour:
                raise SpendLimitReached(f"spend guard: {len(self._calls)} API calls in the last hour, "
                                        f"the limit is {self.calls_per_hour}")
            if self.dollars_per_session is not None and self.spent_usd >= self.dollars_per_session:
                raise SpendLimitReached(f"spend guard: ${self.spent_usd:.4f} spent this session, "
                                        f"the limit is ${self.dollars_per_session:.2f}")
            self._calls.append(self.clock())

    def record(self, cost_usd: float) -> None:
        """Add the dollars of a finished request."""
        with self._lock:
            self.spent_usd = round(self.spent_usd + cost_usd, 8)

    def __repr__(self) -> str:
        return (f"SpendGuard(calls_per_hour={self.calls_per_hour}, dollars_per_session={self.dollars_per_session}, "
                f"spent_usd={self.spent_usd})")


# --- the prompts ---------------------------------------------------------------------------

_RULEBOOK_HEAD = """\
# Player-Coach Trade Review: the rulebook

Two agents discuss a trade before it is executed. The Player proposes one to three trading
actions for a symbol. The Coach reviews the proposal against a constraint schema. A
deterministic rules engine computes every check and the verdict; the models never decide a
check by themselves, they explain and revise. An exchange has at most `max_rounds` rounds: in
each round the Player proposes, the rules check, the Coach writes its critique. The exchange
ends APPROVE when a proposal passes every check, ABORT at once when a violation named in
`abort_on_violations` occurs, and REJECT-MAX when the last round is still rejected.

You are told in the user message which role you play in this request. Answer only by calling
the tool named there, exactly once, with an input that matches its schema. Write plain text in
text fields: no markdown, no code fences, no HTML.

## The world state (the market snapshot the Player decides on)

- symbol: the ticker under review, upper case (AMZN, MSFT, TSLA, BTC-USD).
- as_of: the time of the snapshot, US Eastern Time.
- price: the last price. sma5, sma10: the simple moving averages of the last 5 and 10 closes.
  price above both and sma5 above sma10 is an up-trend; the mirror image is a down-trend.
- volume: the last session's volume. volatility_regime: low, medium or high.
- session: pre_market, NY_open, midday, close or after_hours.
- position: flat, long or short in this symbol before the proposal.
- atr (optional): the 14-day average true range, the typical daily range in price units.
  Stops closer than one ATR are usually inside the noise.
- vwap (optional): the volume-weighted average price of the session.

## The portfolio (account state before the proposal)

- equity: the account value now. peak_equity: the highest equity so far (for the drawdown).
- start_of_day_equity: equity at the start of today (for the daily loss).
- cumulative_pnl: profit and loss since the start. today_pnl: profit and loss today.
- positions: {symbol: signed fraction of equity}; +0.10 is long 10 % of equity, -0.05 short 5 %.

## An action (what the Player proposes, one to three of them)

- action_type: enter_long, enter_short, exit (close the whole position in the symbol) or hold.
- symbol: the ticker.
- size_pct: the size of an entry as a fraction of equity (0.03 = 3 %). Required for entries.
- entry_price, stop_loss, take_profit: the bracket of an entry, in price units. Required for
  entries. A long has stop < entry < target; a short has target < entry < stop.
- exit and hold name only the symbol; leave the other fields null.

## The constraint schema (its fields; this exchange's values follow in the next block)

"""

_RULEBOOK_RULES = """

Percentages are fractions of equity (0.05 = 5 %).

## The checks (computed by the rules engine for every entry action; w size_pct, e entry, s stop, t target)

| constraint | passes when |
|---|---|
| bracket (structural) | long: s < e < t; short: t < e < s; every price > 0; 0 < w |
| allowed_symbols | the action's symbol is in allowed_symbols (checked for every action, hold included) |
| max_single_trade_pct | w <= max_single_trade_pct |
| max_position_pct | per symbol: abs(existing position + new signed size) <= max_position_pct |
| max_open_positions | the number of symbols held after all actions <= max_open_positions |
| max_leverage | the sum over symbols of abs(position) after all actions <= max_leverage |
| min_risk_reward | long (t-e)/(e-s), short (e-t)/(s-e); >= min_risk_reward; not computed when the bracket is invalid |
| max_daily_loss_pct | max(0, -today_pnl)/start_of_day_equity + sum of w*abs(e-s)/e <= max_daily_loss_pct |
| max_drawdown_pct | 1 - equity/peak_equity + sum of w*abs(e-s)/e <= max_drawdown_pct |
| min_stop_atr_multiple | when set and atr is known: abs(e-s) >= min_stop_atr_multiple * atr |

The sums run over the entry actions of the proposal: each entry adds the fraction of equity it
would lose if its stop were hit (w * abs(e-s)/e). An exit removes the symbol's position before
the position, count and leverage checks; a hold checks only its symbol. A positive size adds to
a long position and an enter_short subtracts from it, so a short entry against an existing long
reduces the position. Numbers that are not finite (NaN, infinity) are invalid, never a pass.
Comparisons allow a tolerance of 1e-9, so 2.0 >= 2.0 passes. Every check is reported with its
arithmetic as text, e.g. `min_risk_reward: (267.14-264.14)/(264.14-262.14) = 3.00/2.00 = 1.50
< 2.00 FAIL`.

## The decision

- Any violation named in abort_on_violations: ABORT, and the exchange ends now.
- Otherwise any violation: REJECT, and the Player may revise in the next round (if any is left).
- Otherwise: APPROVE.

## Circuit breakers (checked before round 1; when one fires no agent is asked at all)

1. mll_breached: equity <= peak_equity * (1 - max_drawdown_pct).
2. daily_loss_limit: -today_pnl >= max_daily_loss_pct * start_of_day_equity.
3. consistency_rule: cumulative_pnl > 0 and today_pnl > consistency_rule_pct * cumulative_pnl.
4. trading_cutoff: the as_of time (ET) is at or after trading_cutoff_time.

## How the Player works

- Read the trend from price, sma5 and sma10; trade with it, or hold when it is unclear.
- Size every entry within max_single_trade_pct and within what max_position_pct leaves for the
  symbol after its existing position; keep the count of symbols and the leverage within limits.
- Put the stop where the trade is wrong (at least min_stop_atr_multiple ATRs away when that is
  set; about one ATR or more otherwise) and the target at least min_risk_reward times the stop
  distance beyond the entry. Check the arithmetic yourself before you submit.
- Keep the stop risk small: the sum of w*abs(e-s)/e plus the loss already taken today must stay
  within max_daily_loss_pct, and with the drawdown already taken within max_drawdown_pct.
- In a revision, fix every violation the rules named, change nothing that already passed unless
  a fix requires it, and say in the reasoning what you changed and why.
- The reasoning is two to four sentences of plain text; it is shown to a trader as it streams.

## How the Coach works

- The rules' verdict and checks are final. Explain them; never contradict them.
- For a rejection, name each failed check with its numbers and give the smallest change that
  would pass it (for example: move the target to 191.00 for a risk/reward of 2.00, or cut the
  size to 0.05). For an ABORT, say which hard limit was hit and why the exchange stops.
- For an approval, say in one or two sentences why the trade is sound, and point out the check
  with the least margin.
- In independent mode you get no checks: compute them yourself from this rulebook, give your
  own decision and the names of the violated constraints, and explain your arithmetic.
- Two to five sentences of plain text; no markdown.

## The tools

- submit_proposal (the Player): {"reasoning": text, "actions": [action, ...]} with one to three
  actions as described above. The reasoning comes first.
- submit_critique (the Coach): {"feedback": text}.
- submit_judgement (the Coach in independent mode): {"feedback": text, "decision":
  "APPROVE" | "REJECT" | "ABORT", "violations": [constraint names]}.

## Worked examples (computed by the rules engine, with the default schema shown above)
"""


def _example(title: str, proposal: dict, portfolio: Portfolio, world: WorldState, constraints: Constraints) -> str:
    verdict = check_proposal(Proposal.model_validate(proposal), constraints, portfolio, world)
    lines = [f"\n### {title}", f"World: {world.symbol} at {world.price:.2f}, sma5 {world.sma5:.2f}, "
             f"sma10 {world.sma10:.2f}" + (f", atr {world.atr:.2f}" if world.atr else ""),
             "Portfolio: " + portfolio.model_dump_json(), "Proposal: " + json.dumps(proposal), "Checks:"]
    lines += [f"- {'PASS' if c.passed else 'FAIL'} {c.arithmetic}" for c in verdict.checks]
    lines.append(f"Decision: {verdict.decision}" + (f" (violations: {', '.join(verdict.violations)})"
                                                   if verdict.violations else ""))
    return "\n".join(lines)


def _entry(side: str, symbol: str, size: float, e: float, s: float, t: float) -> dict:
    return {"action_type": side, "symbol": symbol, "size_pct": size, "entry_price": e, "stop_loss": s, "take_profit": t}


@functools.cache
def rulebook() -> str:
    """The static system prompt: the same for every exchange, role and model (the cached prefix)."""
    fields = []
    for name, info in Constraints.model_fields.items():
        default = info.get_default(call_default_factory=True)
        fields.append(f"- {name} (default {json.dumps(default)}): {info.description}")
    c = Constraints()
    amzn = WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180, atr=3.1)
    essay = WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=264.14, sma5=262, sma10=259)
    tsla = WorldState(symbol="TSLA", as_of="2025-03-04 11:30", price=240, sma5=244, sma10=250, atr=9.5)
    flat = Portfolio()
    examples = [
        _example("An approved long", {"reasoning": "Up-trend; 3 % long, stop 3 below, target 6 above.",
                                      "actions": [_entry("enter_long", "AMZN", 0.03, 185, 182, 191)]},
                 Portfolio(positions={"MSFT": 0.10}), amzn, c),
        _example("A target too close (the essay's example, min_risk_reward 2.0)",
                 {"reasoning": "Long with a quick target.", "actions": [_entry("enter_long", "AMZN", 0.03, 264.14, 262.14, 267.14)]},
                 flat, essay, c.model_copy(update={"min_risk_reward": 2.0})),
        _example("A short with its target on the wrong side",
                 {"reasoning": "Down-trend; short.", "actions": [_entry("enter_short", "TSLA", 0.02, 240, 250, 245)]},
                 flat, tsla, c),
        _example("Too big, and a symbol outside the list",
                 {"reasoning": "Two longs.", "actions": [_entry("enter_long", "AMZN", 0.08, 185, 181, 195),
                                                         _entry("enter_long", "QQQ", 0.02, 480, 472, 500)]},
                 flat, amzn, c),
        _example("Leverage over the limit: ABORT",
                 {"reasoning": "Add to the book.", "actions": [_entry("enter_long", "AMZN", 0.05, 185, 182, 191)]},
                 Portfolio(positions={"AMZN": 0.10, "MSFT": 0.15, "TSLA": 0.15, "BTC-USD": 1.2}), amzn,
                 c.model_copy(update={"max_open_positions": 5})),
        _example("Drawdown already near the limit: ABORT",
                 {"reasoning": "Recover the losses with a larger trade.",
                  "actions": [_entry("enter_long", "AMZN", 0.05, 185, 165, 215)]},
                 Portfolio(equity=90_500, peak_equity=100_000, start_of_day_equity=91_000, today_pnl=-500), amzn, c),
        _example("An exit frees a slot for a new entry",
                 {"reasoning": "Close MSFT, go long AMZN.", "actions": [{"action_type": "exit", "symbol": "MSFT"},
                                                                         _entry("enter_long", "AMZN", 0.04, 185, 181.5, 192)]},
                 Portfolio(positions={"MSFT": 0.10, "TSLA": 0.05, "BTC-USD": 0.05}), amzn, c),
        _example("A stop inside the noise (min_stop_atr_multiple 1.0, atr 3.10)",
                 {"reasoning": "Tight stop, quick target.", "actions": [_entry("enter_long", "AMZN", 0.03, 185, 183, 189)]},
                 flat, amzn, c.model_copy(update={"min_stop_atr_multiple": 1.0})),
    ]
    return _RULEBOOK_HEAD + "\n".join(fields) + _RULEBOOK_RULES + "\n".join(examples) + "\n"


def system_blocks(constraints: Constraints) -> list[dict]:
    """The system prompt: the rulebook, then this exchange's schema; both cache breakpoints."""
    schema = ("# The constraint schema of this exchange (JSON; these values are the ones checked)\n\n"
              + constraints.model_dump_json(indent=2))
    return [{"type": "text", "text": rulebook(), "cache_control": CACHE},
            {"type": "text", "text": schema, "cache_control": CACHE}]


def _json(model: BaseModel) -> str:
    return model.model_dump_json(exclude_none=True)


def memory_lines(memory: list[dict] | None) -> str:
    """The coach-memory summary as short lines: which constraint failed how often, per symbol."""
    if not memory:
        return "No earlier exchanges of this strategy are on record."
    return "\n".join(f"- {m['symbol']}: {m['constraint']} failed {m['failures']} of {m['checks']} checks"
                     for m in memory[:10])


def _round_result(record: dict) -> str:
    evaluation = record["evaluation"]
    lines = [f"Round {record['round']} verdict from the rules: {evaluation['decision']}"
             + (f" (violations: {', '.join(evaluation['violations'])})" if evaluation["violations"] else ""), "Checks:"]
    lines += [f"- {'PASS' if c['passed'] else 'FAIL'} {c['arithmetic']}" for c in evaluation["checks"]]
    if evaluation.get("feedback"):
        lines.append("The Coach's critique: " + evaluation["feedback"])
    return "\n".join(lines)


def player_messages(world: WorldState, portfolio: Portfolio, history: list[dict],
                    memory: list[dict] | None = None) -> list[dict]:
    """The Player's conversation: the situation, then each earlier round as its tool call and result."""
    opening = (f"You are the Player. Propose one to three actions for {world.symbol} by calling {PROPOSAL_TOOL}.\n\n"
               f"World state: {_json(world)}\nPortfolio: {_json(portfolio)}\n\n"
               f"Lessons from this strategy's coach memory (most frequent failures):\n{memory_lines(memory)}")
    messages: list[dict] = [{"role": "user", "content": [{"type": "text", "text": opening}]}]
    for record in history:
        call_id = f"toolu_round_{record['round']}"
        proposal = {k: v for k, v in record["proposal"].items()}
        proposal["actions"] = [{k: v for k, v in a.items() if v is not None} for a in proposal["actions"]]
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": call_id, "name": PROPOSAL_TOOL, "input": proposal}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": _round_result(record)},
            {"type": "text", "text": f"Round {record['round'] + 1}: revise your proposal to fix every violation, "
                                     f"then call {PROPOSAL_TOOL} again."}]})
    return messages


def coach_messages(proposal: Proposal, verdict: Verdict | None, world: WorldState, portfolio: Portfolio) -> list[dict]:
    """The Coach's request: the proposal, the situation and (unless independent) the rules' checks."""
    text = (f"World state: {_json(world)}\nPortfolio: {_json(portfolio)}\n"
            f"The Player's proposal: {_json(proposal)}\n\n")
    if verdict is None:
        text = ("You are the Coach, judging independently: no checks are given. Compute every check from the "
                f"rulebook, then call {JUDGEMENT_TOOL}.\n\n" + text)
    else:
        checks = "\n".join(f"- {'PASS' if c.passed else 'FAIL'} {c.arithmetic}" for c in verdict.checks)
        text = (f"You are the Coach. Write the critique of this proposal by calling {CRITIQUE_TOOL}.\n\n" + text
                + f"The rules' verdict (final): {verdict.decision}"
                + (f" (violations: {', '.join(verdict.violations)})" if verdict.violations else "")
                + f"\nChecks:\n{checks}")
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


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
