"""Tiers: limits that change with the book (SPEC §4).

A tier is `{when, set}`. `when` names one condition read from what the rules already receive: the
portfolio's drawdown from its peak, today's loss, the profit since the start, or the world's volatility
regime. Every tier whose condition holds sets its values; where several set one limit, the strictest
wins (lowest for a `max_` limit or `consistency_rule_pct`, highest for a `min_` one), and replaces the
schema's own value. Nothing else is read, so a backtest's tier on day t follows from the close of t-1.

The circuit breakers run before any world is looked at (a backtest runs them once for the whole book),
so they follow the portfolio's tiers only; a `volatility_regime` tier changes the checks of proposals.
"""

from __future__ import annotations

from core.exchange.schema import Constraints, Portfolio, Tier, TierWhen, WorldState

TOLERANCE = 1e-9  # as the rules: a drawdown of exactly 5 % reaches a 5 % tier
NOTHING: dict[str, str] = {}


def drawdown_pct(portfolio: Portfolio) -> float:
    """How far equity is below its peak, as a fraction of the peak."""
    return 1 - portfolio.equity / portfolio.peak_equity


def daily_loss_pct(portfolio: Portfolio) -> float:
    """Today's loss (0 on a winning day) over the start-of-day equity."""
    return max(0.0, 0.0 - portfolio.today_pnl) / portfolio.start_of_day_equity


def profit_pct(portfolio: Portfolio) -> float:
    """The cumulative profit over the starting equity (equity less the cumulative P&L)."""
    start = portfolio.equity - portfolio.cumulative_pnl
    if start <= 0:  # a portfolio that says it started with nothing: any profit is past every target
        return float("inf") if portfolio.cumulative_pnl > 0 else 0.0
    return portfolio.cumulative_pnl / start


_MEASURES = {"drawdown_pct_at_least": drawdown_pct, "daily_loss_pct_at_least": daily_loss_pct,
             "profit_pct_at_least": profit_pct}
_WORDS = {"drawdown_pct_at_least": "drawdown", "daily_loss_pct_at_least": "daily loss",
          "profit_pct_at_least": "profit"}


def holds(when: TierWhen, portfolio: Portfolio, world: WorldState | None) -> bool:
    """Whether a tier's condition holds now; a regime tier never holds without a world."""
    condition = when.condition
    if condition == "volatility_regime":
        return world is not None and world.volatility_regime == when.volatility_regime
    return _MEASURES[condition](portfolio) >= getattr(when, condition) - TOLERANCE


def tier_name(when: TierWhen) -> str:
    """A tier in the trader's words: 'tier drawdown >= 5.00 %', 'tier volatility high'."""
    condition = when.condition
    if condition == "volatility_regime":
        return f"tier volatility {when.volatility_regime}"
    return f"tier {_WORDS[condition]} >= {getattr(when, condition) * 100:.2f} %"


def _stricter(limit: str, value: float, than: float | None) -> bool:
    if than is None:
        return True
    return value > than if limit.startswith("min_") else value < than


def tiers_in_force(constraints: Constraints, portfolio: Portfolio, world: WorldState | None = None) -> list[Tier]:
    """The tiers whose condition holds, in the schema's order."""
    return [tier for tier in constraints.tiers if holds(tier.when, portfolio, world)]


def tier_names(constraints: Constraints, portfolio: Portfolio, world: WorldState | None = None) -> str:
    """The tiers in force, named and joined ('tier drawdown >= 5.00 %; tier volatility high'), '' for none."""
    return "; ".join(tier_name(tier.when) for tier in tiers_in_force(constraints, portfolio, world))


def in_force(constraints: Constraints, portfolio: Portfolio,
             world: WorldState | None = None) -> tuple[Constraints, dict[str, str]]:
    """The limits in force now and, per limit a tier set, the tier's name ({} and the schema itself without tiers)."""
    if not constraints.tiers:  # the common case: no copy, no lookup
        return constraints, NOTHING
    chosen: dict[str, tuple[float, str]] = {}
    for tier in tiers_in_force(constraints, portfolio, world):
        for limit, value in tier.values().items():
            if _stricter(limit, value, chosen[limit][0] if limit in chosen else None):
                chosen[limit] = (value, tier_name(tier.when))
    if not chosen:
        return constraints, NOTHING
    effective = constraints.model_copy(update={limit: value for limit, (value, _) in chosen.items()})
    return effective, {limit: name for limit, (_, name) in chosen.items()}
