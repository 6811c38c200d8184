"""The model price table: dollars per million tokens, one entry per Claude model.

Cache writes (5-minute cache) cost 1.25x the input price and cache reads 0.1x, as Anthropic's
pricing page states; they are spelled out per model so the table reads like the price list.
"""

from __future__ import annotations

from core.schema import Usage


def _entry(input_usd: float, output_usd: float) -> dict[str, float]:
    return {"input": input_usd, "output": output_usd, "cache_write": round(input_usd * 1.25, 6),
            "cache_read": round(input_usd * 0.1, 6)}


DEFAULT_MODEL = "claude-haiku-4-5-20251001"
"""The model both agents use unless the trader picks another (the cheapest, and fast)."""

PRICES: dict[str, dict[str, float]] = {
    "claude-haiku-4-5-20251001": _entry(1.0, 5.0),
    "claude-sonnet-4-5-20250929": _entry(3.0, 15.0),
    "claude-opus-4-5-20251101": _entry(5.0, 25.0),
    "claude-opus-4-1-20250805": _entry(15.0, 75.0),
}
"""Dollars per million tokens: input, output, cache_write, cache_read."""

_ALIASES = {"claude-haiku-4-5": "claude-haiku-4-5-20251001", "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
            "claude-opus-4-5": "claude-opus-4-5-20251101", "claude-opus-4-1": "claude-opus-4-1-20250805"}


def model_prices(model: str) -> dict[str, float]:
    """The price entry of a model (a dated id or its alias); unknown models raise KeyError naming them."""
    name = _ALIASES.get(model, model)
    if name not in PRICES:
        raise KeyError(f"no price for model {model!r}; known: {', '.join(PRICES)}")
    return PRICES[name]


def cost_usd(model: str, input: int = 0, output: int = 0, cache_write: int = 0, cache_read: int = 0) -> float:
    """Dollars for one call's tokens."""
    p = model_prices(model)
    dollars = (input * p["input"] + output * p["output"] + cache_write * p["cache_write"]
               + cache_read * p["cache_read"]) / 1_000_000
    return round(dollars, 8)


def usage(model: str, input: int = 0, output: int = 0, cache_write: int = 0, cache_read: int = 0) -> Usage:
    """A Usage with its cost filled in from the table."""
    return Usage(input=input, output=output, cache_write=cache_write, cache_read=cache_read,
                 cost_usd=cost_usd(model, input, output, cache_write, cache_read))
