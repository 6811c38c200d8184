"""The challenge tool's arithmetic: daily returns (given, or a stored backtest's) into a pass probability."""

from __future__ import annotations

from core.backtest.challenge import ChallengeRules, pass_probability
from core.exchange.errors import InvalidInput
from core.exchange.schema import Constraints
from core.mcp.replies import ChallengeAnswer

MAX_RETURNS = 10_000
"""The most daily returns one call may send (forty years of trading days)."""


def pass_probability_of(store, target: float, returns: list[float] | None, backtest_id: str | None,
                        constraints: Constraints, preset: str, limits: dict, sampling: dict) -> ChallengeAnswer:
    """Pass probability of the challenge `constraints` and `target` describe, for the returns given or a
    stored backtest's; `limits` holds max_days and min_trading_days, `sampling` paths, block and seed."""
    if (returns is None) == (backtest_id is None):
        raise InvalidInput("give returns or backtest_id, one of them")
    if returns is not None:
        if len(returns) > MAX_RETURNS:
            raise InvalidInput(f"returns: {len(returns):,} days; at most {MAX_RETURNS:,}")
        series, source = returns, f"{len(returns)} daily returns"
    else:
        from core.backtest.engine import reopen_backtest

        if store is None or len(backtest_id) > 64:
            raise InvalidInput(f"backtest_id: no stored backtest {backtest_id[:64]!r}")
        result = reopen_backtest(store, backtest_id)
        series, source = result.equity.pct_change().iloc[1:], f"backtest {result.run_key}"
    if sampling["paths"] > 100_000:
        raise InvalidInput(f"paths: {sampling['paths']:,}; at most 100,000")
    try:
        rules = ChallengeRules.from_constraints(constraints, target, **limits)
        outcome = pass_probability(series, rules, **sampling)
    except ValueError as error:  # InvalidInput is a ValueError too
        raise InvalidInput(str(error)) from None
    return ChallengeAnswer(days=len(series), source=f"{source}; rules of {preset}", rules=vars(rules),
                           **outcome.to_dict())
