"""The Claude models the app knows: prices in dollars per million tokens, names and lifecycle.

Prices are Anthropic's price list as of 2026-11-26 (platform.claude.com/docs/en/about-claude/pricing
and each model's page), except Claude Fable 5.2 and Mythos 5.2 (released 2026-11-09): no page of
Anthropic's that we could read gives their price yet, so theirs are ESTIMATED from secondary sources
(the planestro 1.3.1 release notes, 2026-11-11: "$8 / $40 per million tokens against Fable 5.1's
$10 / $50"; Mythos has shared Fable's price in every release so far) and ESTIMATED_PRICES marks them,
with the cache read at Fable 5.1's 0.025x. Thinking tokens are output tokens and billed as output. A 5-minute cache write costs 1.25x the input price; a cache read costs
0.1x, except where a model's page says otherwise (Fable 5.1 and Mythos 5.1 0.025x, Opus 5.5 and
Sonnet 5.5 0.05x). Claude Haiku 5.5 charges more for a request whose prompt (input, cache writes
and cache reads together) is over 100,000 tokens: every token of that request, output included,
is billed at the long-prompt rates.

A model missing from the table still runs. Its cost is estimated from the newest priced model of
its family (Haiku, Sonnet, Opus, Fable, Mythos) and labelled so, or, when the family is unknown,
shown as unknown: never as $0.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Literal

from pydantic import BaseModel

from core.exchange.errors import InvalidInput
from core.exchange.artifact import Usage


def _entry(input_usd: float, output_usd: float, cache_read: float = 0.1) -> dict[str, float]:
    return {"input": input_usd, "output": output_usd, "cache_write": round(input_usd * 1.25, 6),
            "cache_read": round(input_usd * cache_read, 6)}


DEFAULT_MODEL = "claude-haiku-5-5"
"""The model both agents use unless the trader picks another: current, the cheapest, and, though it thinks
by default, its thinking can be turned off (`thinking: {"type": "disabled"}`, at effort low to high), so it
takes a forced tool choice and spends no thinking tokens (core.claude.models)."""

PRICES: dict[str, dict[str, float]] = {
    "claude-haiku-5-5": _entry(0.10, 0.50),
    "claude-sonnet-5-5": _entry(2.0, 10.0, cache_read=0.05),
    "claude-opus-5-5": _entry(4.0, 20.0, cache_read=0.05),
    "claude-fable-5-2": _entry(8.0, 40.0, cache_read=0.025),
    "claude-mythos-5-2": _entry(8.0, 40.0, cache_read=0.025),
    "claude-fable-5-1": _entry(10.0, 50.0, cache_read=0.025),
    "claude-mythos-5-1": _entry(10.0, 50.0, cache_read=0.025),
    "claude-opus-5": _entry(5.0, 25.0),
    "claude-sonnet-5": _entry(2.0, 10.0),
    "claude-fable-5": _entry(10.0, 50.0),
    "claude-mythos-5": _entry(10.0, 50.0),
    "claude-opus-4-8": _entry(5.0, 25.0),
    "claude-opus-4-7": _entry(5.0, 25.0),
    "claude-sonnet-4-6": _entry(3.0, 15.0),
    "claude-opus-4-6": _entry(5.0, 25.0),
    "claude-opus-4-5-20251101": _entry(5.0, 25.0),
    "claude-haiku-4-5-20251001": _entry(1.0, 5.0),
    "claude-sonnet-4-5-20250929": _entry(3.0, 15.0),
}
"""Dollars per million tokens (input, output, cache_write, cache_read), newest first within a family."""

ESTIMATED_PRICES = frozenset({"claude-fable-5-2", "claude-mythos-5-2"})
"""Prices from secondary sources only (see above): their costs are shown as estimated."""

LONG_PROMPT_TOKENS = 100_000
LONG_PROMPT_PRICES: dict[str, dict[str, float]] = {"claude-haiku-5-5": _entry(0.50, 2.50)}
"""The rates of a request whose prompt is over LONG_PROMPT_TOKENS, for the models that have them."""

_ALIASES = {"claude-haiku-4-5": "claude-haiku-4-5-20251001", "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
            "claude-opus-4-5": "claude-opus-4-5-20251101"}

DISPLAY_NAMES = {
    "claude-haiku-5-5": "Claude Haiku 5.5", "claude-sonnet-5-5": "Claude Sonnet 5.5",
    "claude-opus-5-5": "Claude Opus 5.5", "claude-fable-5-2": "Claude Fable 5.2", "claude-fable-5-1": "Claude Fable 5.1", "claude-opus-5": "Claude Opus 5",
    "claude-sonnet-5": "Claude Sonnet 5", "claude-fable-5": "Claude Fable 5", "claude-opus-4-8": "Claude Opus 4.8",
    "claude-opus-4-7": "Claude Opus 4.7", "claude-sonnet-4-6": "Claude Sonnet 4.6", "claude-opus-4-6": "Claude Opus 4.6",
    "claude-opus-4-5-20251101": "Claude Opus 4.5", "claude-haiku-4-5-20251001": "Claude Haiku 4.5",
    "claude-sonnet-4-5-20250929": "Claude Sonnet 4.5",
}
"""The built-in model list, newest first: offered when the Models API cannot be asked (Mythos is by
invitation only, so it is priced but not offered)."""

RETIRING = {"claude-sonnet-4-5-20250929": "2026-11-30", "claude-sonnet-4-5": "2026-11-30"}
"""Deprecated models and the day they retire (the SDK's list and the model deprecations page)."""

RETIRED = frozenset({
    "claude-opus-4-1-20250805", "claude-opus-4-1", "claude-opus-4-20250514", "claude-opus-4-0",
    "claude-sonnet-4-20250514", "claude-sonnet-4-0", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest",
    "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest", "claude-3-opus-20240229", "claude-3-haiku-20240307",
    "claude-mythos-preview",
})
"""Models whose requests fail: never offered, even when a stale list names them."""

_FAMILY = re.compile(r"claude-(haiku|sonnet|opus|fable|mythos)\b")


class ModelInfo(BaseModel):
    """A model the trader can pick: its id, its name, whether the table prices it, and its retirement date."""

    id: str
    display_name: str
    priced: bool
    retires: str | None = None  # YYYY-MM-DD for a deprecated model
    line: str | None = None  # the Models API's `line` (haiku, sonnet, opus, fable, mythos), when it gives one

    def label(self) -> str:
        """One line for a model picker: name, price per million tokens, and the retirement date if any."""
        text = f"{self.display_name} · {price_text(self.id, self.line)}"
        return text + (f" · deprecated, retires {self.retires}" if self.retires else "")


def canonical(model: str) -> str:
    """The table's id for a model id or alias."""
    return _ALIASES.get(model, model)


def family(model: str, line: str | None = None) -> str | None:
    """haiku | sonnet | opus | fable | mythos: the Models API's `line` when it gives one, else read from a
    table id (the API asks not to infer a line from an id; only ids of this table are read so)."""
    if line:
        return line
    match = _FAMILY.match(canonical(model))
    return match.group(1) if match else None


def estimate_from(model: str, line: str | None = None) -> str | None:
    """The priced model whose prices stand in for `model`: itself when priced, else its line's newest."""
    name = canonical(model)
    if name in PRICES:
        return name
    kind = family(name, line)
    return next((priced for priced in PRICES if family(priced) == kind), None) if kind else None


def model_prices(model: str) -> dict[str, float]:
    """The price entry of a model (a dated id or its alias); an unknown model is InvalidInput naming it."""
    name = canonical(model)
    if name not in PRICES:
        raise InvalidInput(f"model: no price for model {model!r}; known: {', '.join(PRICES)}")
    return PRICES[name]


def price_text(model: str, line: str | None = None) -> str:
    """'$0.10 / $0.50 per M tokens (in / out)', marked when estimated, or 'price unknown'."""
    source = estimate_from(model, line)
    if source is None:
        return "price unknown"
    p = PRICES[source]
    text = f"${p['input']:g} / ${p['output']:g} per M tokens (in / out)"
    if source in ESTIMATED_PRICES:
        return f"≈{text}, estimated (no price list yet)"
    return text if source == canonical(model) else f"≈{text}, estimated from {DISPLAY_NAMES.get(source, source)}"


def cost_usd(model: str, input: int = 0, output: int = 0, cache_write: int = 0, cache_read: int = 0) -> float:
    """Dollars for one call's tokens at the model's own prices (InvalidInput when the table lacks it)."""
    model_prices(model)
    return _dollars(canonical(model), input, output, cache_write, cache_read)


def _dollars(name: str, input: int, output: int, cache_write: int, cache_read: int) -> float:
    p = PRICES[name]
    if input + cache_write + cache_read > LONG_PROMPT_TOKENS and name in LONG_PROMPT_PRICES:
        p = LONG_PROMPT_PRICES[name]
    dollars = (input * p["input"] + output * p["output"] + cache_write * p["cache_write"]
               + cache_read * p["cache_read"]) / 1_000_000
    return round(dollars, 8)


def usage(model: str, input: int = 0, output: int = 0, cache_write: int = 0, cache_read: int = 0,
          thinking: int = 0, line: str | None = None) -> Usage:
    """A Usage with its cost: from the table, estimated from the model's line, or unknown (never $0).

    `thinking` is the part of `output` the model spent thinking: counted apart, billed within output.
    """
    source = estimate_from(model, line)
    tokens = dict(input=input, output=output, cache_write=cache_write, cache_read=cache_read, thinking=thinking)
    if source is None:
        return Usage(**tokens, cost_basis="unknown")
    basis = "price list" if source == canonical(model) and source not in ESTIMATED_PRICES else "estimated"
    return Usage(**tokens, cost_usd=_dollars(source, input, output, cache_write, cache_read), cost_basis=basis)


def cost_text(usage: Usage) -> str:
    """The cost as a trader should read it: '$0.0123', '≈$0.0123 (estimated)' or 'unknown (not priced)'."""
    if usage.cost_basis == "unknown":
        return "unknown (not priced)" if usage.cost_usd == 0 else f"≥${usage.cost_usd:.4f} (some calls not priced)"
    if usage.cost_basis == "estimated":
        return f"≈${usage.cost_usd:.4f} (estimated)"
    return f"${usage.cost_usd:.4f}"


def builtin_models(today: date | None = None) -> list[ModelInfo]:
    """The built-in model list, newest first; retired models, and deprecated ones whose day has come, left out."""
    day = (today or date.today()).isoformat()
    return [ModelInfo(id=model, display_name=name, priced=True, retires=RETIRING.get(model))
            for model, name in DISPLAY_NAMES.items() if model not in RETIRED and RETIRING.get(model, "9999") > day]


# --- thinking: what each model does about it (core.claude.models builds its requests from this) ---

TYPICAL_THINKING = 1000
"""Thinking tokens a call of a model that cannot stop thinking is assumed to spend at low effort, for cost
estimates (an assumption to replace with a live measurement: scripts/live_check.py prints the usage)."""

Behaviour = Literal["off by default", "can disable", "between tools", "always"]
THINKING: dict[str, Behaviour] = {
    "claude-haiku-5-5": "can disable",      # thinks by default; disabled works at effort low to high
    "claude-opus-5": "can disable",
    "claude-sonnet-5-5": "between tools",   # thinking cannot be disabled, only turned off between tools
    "claude-opus-5-5": "always",
    "claude-fable-5-2": "always", "claude-mythos-5-2": "always",
    "claude-fable-5-1": "always", "claude-mythos-5-1": "always",
    "claude-fable-5": "always", "claude-mythos-5": "always",
}
"""What each model does about thinking when the Models API gives no `capabilities` (a gateway, an older
API): from the models' pages and the thinking guide (platform.claude.com/docs, "What's new in Claude
Haiku 5.5", "Building with extended thinking"; as of 2026-12-06). A model not listed here is asked
without a thinking setting and a forced tool choice, as models before 5.5 take; if it answers that
400 all the same, it is asked with tool choice auto from then on."""


def expected_thinking(model: str) -> int:
    """Thinking tokens a call of `model` is expected to spend with the agents' settings (for estimates):
    only a model that cannot stop thinking spends them (core.claude.models asks the others without)."""
    return TYPICAL_THINKING if THINKING.get(canonical(model)) == "always" else 0


# Typical tokens of a Claude backtest, as bench/claude_bench measures them against the fake server:
# every call sends a short new part and reads the cached rulebook and schema; each exchange writes
# that cached prefix once (counted per exchange, so the estimate errs on the dear side). A model that
# cannot stop thinking adds its thinking to every call's output (expected_thinking).
TOKENS_PER_CALL = {"input": 400, "cache_read": 5_800, "output": 350}
TOKENS_PER_EXCHANGE = {"cache_write": 5_800}


def estimate_cost(days: int, constraints, depth: str, model: str) -> dict:
    """Calls and dollars of a Claude backtest of `days` exchanges (days x symbols) before it runs: the
    typical case (1.5 rounds an exchange in standard depth) and the worst (every one uses max_rounds)."""
    rounds_worst = 1 if depth == "fast" else constraints.max_rounds
    rounds_typical = 1 if depth == "fast" else min(1.5, rounds_worst)
    thinking = expected_thinking(model)
    per_call = usage(model, **{**TOKENS_PER_CALL, "output": TOKENS_PER_CALL["output"] + thinking}).cost_usd
    per_day = usage(model, **TOKENS_PER_EXCHANGE).cost_usd
    calls_typical, calls_worst = days * 2 * rounds_typical, days * 2 * rounds_worst
    return {"days": days, "calls_typical": int(math.ceil(calls_typical)), "calls_worst": int(calls_worst),
            "dollars_typical": round(calls_typical * per_call + days * per_day, 4),
            "dollars_worst": round(calls_worst * per_call + days * per_day, 4),
            "thinking_per_call": thinking,
            # "estimated" for a model priced by its family, "unknown" when nothing prices it (dollars then 0)
            "cost_basis": usage(model, **TOKENS_PER_CALL).cost_basis}
