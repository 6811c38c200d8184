"""The challenge tool: daily returns (given, or a stored backtest's) against a challenge's rules."""

from __future__ import annotations

from dataclasses import asdict

from core.backtest.challenge import Challenge, ChallengeRules, pass_probability
from core.backtest.templates import load_challenge
from core.exchange.errors import InvalidInput
from core.exchange.schema import Constraints
from core.mcp.replies import ChallengeAnswer


def rules_of(template: str | None, rules: ChallengeRules | None, constraints: Constraints | None,
             target: float | None, limits: dict) -> Challenge | ChallengeRules:
    """One challenge from exactly one source: a shipped template, the caller's rules, or a preset's limits
    with a profit target (`limits`: max_days and min_trading_days for the last)."""
    given = [name for name, value in (("template", template), ("rules", rules), ("profit_target_pct", target))
             if value is not None]
    if len(given) != 1:
        raise InvalidInput("give one of template, rules, or profit_target_pct (with a preset's limits); got "
                           + (", ".join(given) or "none"))
    if template is not None:
        return load_challenge(template[:64])
    if rules is not None:
        return rules
    return ChallengeRules.from_constraints(constraints, target, **limits)


def pass_probability_of(store, returns: list[float] | None, backtest_id: str | None,
                        challenge: Challenge | ChallengeRules, sampling: dict) -> ChallengeAnswer:
    """Pass probability of `challenge` for the returns given or a stored backtest's (`sampling`: paths,
    block and seed); the bounds on paths and days are the challenge module's."""
    if (returns is None) == (backtest_id is None):
        raise InvalidInput("give returns or backtest_id, one of them")
    if returns is not None:
        series, source = returns, f"{len(returns)} daily returns"
    else:
        from core.backtest.job import reopen_backtest

        if store is None or len(backtest_id) > 64:
            raise InvalidInput(f"backtest_id: no stored backtest {backtest_id[:64]!r}")
        result = reopen_backtest(store, backtest_id)
        series, source = result.equity.pct_change().iloc[1:], f"backtest {result.run_key}"
    outcome = pass_probability(series, challenge, **sampling)
    shown = ({"name": challenge.name, "title": challenge.title, "phases": [asdict(p) for p in challenge.phases]}
             if isinstance(challenge, Challenge) else asdict(challenge))
    return ChallengeAnswer(days=len(series), source=source, rules=shown, **outcome.to_dict())
