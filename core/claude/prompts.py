"""What the Claude agents say: the tools, the system prompt and the messages (no SDK here).

Every request of every agent shares one prompt prefix: the same three tools and the same system
blocks (the rulebook, then this exchange's constraint schema), both marked for prompt caching.
The Player's first call writes the prefix, every later call of the exchange (the Coach's
included) reads it. The rulebook is long on purpose: it is the full contract the models work to
(field meanings, every formula, the decision logic, worked examples computed by `core.rules`),
and it has to be, because some models cache nothing under 4096 tokens.

The tools' input schemas come from the pydantic models, so nothing is parsed out of prose. Each
tool asks for eager input streaming, so the API sends the `reasoning` text as it is written
instead of in bursts after its JSON is validated.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.exchange.rules import check_proposal
from core.exchange.tiers import in_force
from core.exchange.schema import RULE_NAMES, Constraints, Decision, Portfolio, Proposal, WorldState
from core.exchange.artifact import ReasoningGrade, Round, Usage, Verdict

PROPOSAL_TOOL = "submit_proposal"
CRITIQUE_TOOL = "submit_critique"
JUDGEMENT_TOOL = "submit_judgement"
GRADE_TOOL = "submit_grade"
CACHE = {"type": "ephemeral"}


# --- structured outputs --------------------------------------------------------------------

class Critique(BaseModel):
    """The Coach's answer: the critique of a proposal the rules have judged."""

    model_config = ConfigDict(extra="forbid")

    feedback: str = Field(description="The critique in plain text (no markdown): each failed check with its "
                                      "arithmetic and the change that would pass it, or why the trade is sound.")


class Judgement(Critique):
    """The independent Coach's answer: its own critique and verdict, made without the rules' checks."""

    decision: Decision = Field(description="Your own verdict on the proposal.")
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
    """The four tools, identical in every request so that the cached prefix is shared (the grader's too)."""
    return (
        {"name": PROPOSAL_TOOL, "description": "The Player submits its proposal: reasoning first, then 1-3 actions.",
         "input_schema": tool_schema(Proposal), "eager_input_streaming": True},
        {"name": CRITIQUE_TOOL, "description": "The Coach submits its critique of a proposal the rules have judged.",
         "input_schema": tool_schema(Critique), "eager_input_streaming": True},
        {"name": JUDGEMENT_TOOL, "description": "The Coach, judging on its own, submits critique, verdict and violations.",
         "input_schema": tool_schema(Judgement), "eager_input_streaming": True},
        {"name": GRADE_TOOL, "description": "The Grader submits its grade of the Player's reasoning, 1 to 5, and why.",
         "input_schema": tool_schema(ReasoningGrade), "eager_input_streaming": True},
    )



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


def _round_result(record: Round) -> str:
    evaluation = record.evaluation
    lines = [f"Round {record.round} verdict from the rules: {evaluation.decision}"
             + (f" (violations: {', '.join(evaluation.violations)})" if evaluation.violations else ""), "Checks:"]
    lines += [f"- {'PASS' if c.passed else 'FAIL'} {c.arithmetic}" for c in evaluation.checks]
    if evaluation.feedback:
        lines.append("The Coach's critique: " + evaluation.feedback)
    return "\n".join(lines)


def tiers_line(constraints: Constraints | None, world: WorldState, portfolio: Portfolio) -> str:
    """The limits the schema's tiers set now, in the Player's words ('' when no tier holds)."""
    if constraints is None or not constraints.tiers:
        return ""
    effective, named = in_force(constraints, portfolio, world)
    if not named:
        return "No tier of the schema holds now: its base limits apply.\n\n"
    limits = ", ".join(f"{limit} = {getattr(effective, limit):g} ({tier})" for limit, tier in named.items())
    return f"Tiers in force now, so these limits replace the schema's: {limits}.\n\n"


def player_messages(world: WorldState, portfolio: Portfolio, history: list[Round],
                    memory: list[dict] | None = None, constraints: Constraints | None = None) -> list[dict]:
    """The Player's conversation: the situation (with the limits its tiers set now), then each earlier
    round as its tool call and result."""
    opening = (f"You are the Player. Propose one to three actions for {world.symbol} by calling {PROPOSAL_TOOL}.\n\n"
               f"World state: {_json(world)}\nPortfolio: {_json(portfolio)}\n\n"
               + tiers_line(constraints, world, portfolio) +
               f"Lessons from this strategy's coach memory (most frequent failures):\n{memory_lines(memory)}")
    messages: list[dict] = [{"role": "user", "content": [{"type": "text", "text": opening}]}]
    for record in history:
        call_id = f"toolu_round_{record.round}"
        proposal = record.proposal.model_dump(mode="json", exclude_none=True)
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": call_id, "name": PROPOSAL_TOOL, "input": proposal}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call_id, "content": _round_result(record)},
            {"type": "text", "text": f"Round {record.round + 1}: revise your proposal to fix every violation, "
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


def grader_messages(proposal: Proposal, world: WorldState, portfolio: Portfolio, faithfulness: str) -> list[dict]:
    """The Grader's request: the situation, the proposal and what its stated numbers were found to be."""
    text = (f"You are the Grader. Grade the Player's reasoning from 1 to 5 by calling {GRADE_TOOL}: does it follow "
            "from the world state, does it justify each action, and do the numbers it states match the actions? "
            "Judge the reasoning, not whether the trade passes the schema (the rules decide that). Give the reason "
            "in one sentence.\n\n"
            f"World state: {_json(world)}\nPortfolio: {_json(portfolio)}\nThe Player's proposal: {_json(proposal)}\n"
            f"The reasoning's stated numbers against the actions: {faithfulness}")
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


GRADE_OUTPUT_TOKENS = 80  # a one-sentence reason and a digit, in the tool call's JSON


def grade_estimate(model: str, constraints: Constraints) -> Usage:
    """What one grading call costs, about: the shared prefix read from the cache, a short request, one sentence."""
    from core.prices import usage  # prices are not needed to build prompts

    example = Proposal(reasoning="x" * 300, actions=[{"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.03,
                                                      "entry_price": 185.0, "stop_loss": 181.3, "take_profit": 192.4}])
    world = WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185.0, sma5=183.0, sma10=180.0)
    request = grader_messages(example, world, Portfolio(), "x" * 120)
    prefix = json.dumps(list(tools())) + "".join(block["text"] for block in system_blocks(constraints))
    # About four characters a token, as the API counts English and JSON.
    return usage(model, input=len(json.dumps(request)) // 4, output=GRADE_OUTPUT_TOKENS, cache_read=len(prefix) // 4)
