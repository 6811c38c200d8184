"""The rules of SPEC §4: pure functions that judge a proposal and trip circuit breakers.

Every check records its arithmetic as text, so the Coach's critique shows its working and a
trader can redo the sum by hand.
"""

from __future__ import annotations

import math
from datetime import datetime

from core.exchange.schema import ET, Constraints, Portfolio, Proposal, WorldState
from core.exchange.artifact import Verdict
from core.exchange.tiers import in_force

TOLERANCE = 1e-9
_DEFAULT_PORTFOLIO = Portfolio()


def _ok(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _cmp(value: float, threshold: float, passed: bool, at_most: bool, digits: int) -> str:
    """'v <= t' or 'v > t', with more digits when rounding would hide why a check failed."""
    if not passed and f"{value:.{digits}f}" == f"{threshold:.{digits}f}":
        digits = 8
    sign = ("<=" if passed else ">") if at_most else (">=" if passed else "<")
    return f"{value:.{digits}f} {sign} {threshold:.{digits}f} {_ok(passed)}"


def _at_most(value: float, limit: float) -> bool:
    return math.isfinite(value) and value <= limit + TOLERANCE


def _at_least(value: float, limit: float) -> bool:
    return math.isfinite(value) and value >= limit - TOLERANCE


def risk_reward(side_long: bool, entry: float, stop: float, target: float) -> float:
    """Reward over risk: long (t-e)/(e-s), short (e-t)/(s-e)."""
    if side_long:
        return (target - entry) / (entry - stop)
    return (entry - target) / (stop - entry)


def _valid_bracket(side_long: bool, e: float, s: float, t: float, w: float) -> bool:
    if not all(math.isfinite(x) for x in (e, s, t, w)):
        return False
    ordered = s < e < t if side_long else t < e < s
    return ordered and min(e, s, t) > 0 and w > 0


def check_proposal(
    proposal: Proposal,
    constraints: Constraints,
    portfolio: Portfolio | None = None,
    world: WorldState | None = None,
    *,
    atr: dict[str, float] | None = None,
) -> Verdict:
    """Check every action against every constraint; decide ABORT, REJECT or APPROVE.

    `atr` gives the 14-day ATR of symbols other than the world's (the world's own `atr` counts for its
    symbol). With `min_stop_atr_multiple` set, an entry whose symbol has no known ATR fails: it cannot
    be verified, so it is never waved through.
    """
    portfolio = portfolio or _DEFAULT_PORTFOLIO
    c, tier = in_force(constraints, portfolio, world)  # the limits the tiers set now, and which tier set each
    checks: list[dict] = []  # validated into Check models once, by the Verdict

    def add(constraint: str, action: int | None, passed: bool, arithmetic: str, value=None, threshold=None) -> None:
        named = f"{constraint} ({tier[constraint]})" if constraint in tier else constraint
        checks.append({"constraint": constraint, "action": action, "passed": passed,
                       "arithmetic": f"{named}: {arithmetic}", "value": value, "threshold": threshold})

    allowed = c.allowed_symbols
    allowed_text = ", ".join(allowed)
    positions = dict(portfolio.positions)
    before = dict(positions)
    entry_of_symbol: dict[str, int] = {}
    risk_terms: list[tuple[float, float, float]] = []  # (w, e, s) of every entry
    atrs = {world.symbol: world.atr} if world is not None and world.atr is not None else {}
    atrs.update(atr or {})

    for i, a in enumerate(proposal.actions):
        symbol_ok = a.symbol in allowed
        add("allowed_symbols", i, symbol_ok, f"{a.symbol} {'in' if symbol_ok else 'not in'} [{allowed_text}] {_ok(symbol_ok)}")
        if a.action_type == "hold":
            continue
        if a.action_type == "exit":
            positions.pop(a.symbol, None)
            continue

        side_long = a.action_type == "enter_long"
        e, s, t, w = a.entry_price, a.stop_loss, a.take_profit, a.size_pct
        bracket_ok = _valid_bracket(side_long, e, s, t, w)
        order = f"{s:.2f} < {e:.2f} < {t:.2f}" if side_long else f"{t:.2f} < {e:.2f} < {s:.2f}"
        add("bracket", i, bracket_ok, f"{'long' if side_long else 'short'} {order}, size {w:.4f} > 0 {_ok(bracket_ok)}")

        passed = _at_most(w, c.max_single_trade_pct)
        add("max_single_trade_pct", i, passed, _cmp(w, c.max_single_trade_pct, passed, True, 4), w, c.max_single_trade_pct)

        if bracket_ok:
            rr = risk_reward(side_long, e, s, t)
            passed = _at_least(rr, c.min_risk_reward)
            if side_long:
                text = f"({t:.2f}-{e:.2f})/({e:.2f}-{s:.2f}) = {t - e:.2f}/{e - s:.2f} = "
            else:
                text = f"({e:.2f}-{t:.2f})/({s:.2f}-{e:.2f}) = {e - t:.2f}/{s - e:.2f} = "
            add("min_risk_reward", i, passed, text + _cmp(rr, c.min_risk_reward, passed, False, 2), rr, c.min_risk_reward)

            if c.min_stop_atr_multiple is not None:
                known = atrs.get(a.symbol)
                if known is None:
                    add("min_stop_atr_multiple", i, False, f"no ATR known for {a.symbol}, cannot verify FAIL",
                        None, c.min_stop_atr_multiple)
                else:
                    need = c.min_stop_atr_multiple * known
                    distance = abs(e - s)
                    passed = _at_least(distance, need)
                    add("min_stop_atr_multiple", i, passed,
                        f"|{e:.2f}-{s:.2f}| = {distance:.2f} vs {c.min_stop_atr_multiple:.2f}x{known:.2f} = "
                        + _cmp(distance, need, passed, False, 2), distance, need)

        positions[a.symbol] = positions.get(a.symbol, 0.0) + (w if side_long else -w)
        entry_of_symbol.setdefault(a.symbol, i)
        if e > 0:  # an entry at or below zero already fails its bracket; it has no risk fraction
            risk_terms.append((w, e, s))

    if not entry_of_symbol:
        return _decide(checks, c)

    for symbol, i in entry_of_symbol.items():
        # The position after all actions: an entry then an exit of the same symbol leaves none.
        after = positions.get(symbol, 0.0)
        old, new = before.get(symbol, 0.0), after - before.get(symbol, 0.0)
        size = abs(after)
        passed = _at_most(size, c.max_position_pct)
        add("max_position_pct", i, passed, f"{symbol} |{old:+.4f} {new:+.4f}| = " + _cmp(size, c.max_position_pct, passed, True, 4),
            size, c.max_position_pct)

    held = sorted(sym for sym, size in positions.items() if abs(size) > TOLERANCE)
    passed = len(held) <= c.max_open_positions
    add("max_open_positions", None, passed,
        f"{len(held)} held ({', '.join(held) or 'none'}) {'<=' if passed else '>'} {c.max_open_positions} {_ok(passed)}",
        len(held), c.max_open_positions)

    leverage = sum(abs(size) for size in positions.values())
    passed = _at_most(leverage, c.max_leverage)
    terms = " + ".join(f"{abs(positions[sym]):.4f}" for sym in held) or "0"
    add("max_leverage", None, passed, f"sum |position| = {terms} = " + _cmp(leverage, c.max_leverage, passed, True, 4),
        leverage, c.max_leverage)

    at_risk = sum(w * abs(e - s) / e for w, e, s in risk_terms)
    risk_text = " + ".join(f"{w:.4f}x{abs(e - s):.2f}/{e:.2f}" for w, e, s in risk_terms)

    minus_today = 0.0 - portfolio.today_pnl  # never -0.0, which would print as "-0.00"
    lost_today = max(0.0, minus_today) / portfolio.start_of_day_equity
    daily = lost_today + at_risk
    passed = _at_most(daily, c.max_daily_loss_pct)
    add("max_daily_loss_pct", None, passed,
        f"max(0, {minus_today:.2f})/{portfolio.start_of_day_equity:.2f} + {risk_text} = "
        f"{lost_today:.6f} + {at_risk:.6f} = " + _cmp(daily, c.max_daily_loss_pct, passed, True, 6),
        daily, c.max_daily_loss_pct)

    drawn = 1 - portfolio.equity / portfolio.peak_equity
    drawdown = drawn + at_risk
    passed = _at_most(drawdown, c.max_drawdown_pct)
    add("max_drawdown_pct", None, passed,
        f"1 - {portfolio.equity:.2f}/{portfolio.peak_equity:.2f} + {risk_text} = "
        f"{drawn:.6f} + {at_risk:.6f} = " + _cmp(drawdown, c.max_drawdown_pct, passed, True, 6),
        drawdown, c.max_drawdown_pct)

    return _decide(checks, c)


def _decide(checks: list[dict], constraints: Constraints) -> Verdict:
    violations = list(dict.fromkeys(ch["constraint"] for ch in checks if not ch["passed"]))
    if any(v in constraints.abort_on_violations for v in violations):
        decision = "ABORT"
    elif violations:
        decision = "REJECT"
    else:
        decision = "APPROVE"
    return Verdict.model_validate({"decision": decision, "violations": violations, "checks": checks, "feedback": ""})


def circuit_breaker(constraints: Constraints, portfolio: Portfolio, as_of: datetime) -> str | None:
    """The first breaker that fires before round 1, in priority order, or None (with the portfolio's tiers in force)."""
    c = in_force(constraints, portfolio)[0]
    return next((name for name, fired, _ in _breakers(c, portfolio, as_of) if fired), None)


def refused_symbol(constraints: Constraints, symbol: str) -> str | None:
    """"allowed_symbols" when the constraints do not allow the exchange's own symbol: nothing proposed on it
    can pass (a hold is checked for the symbol too), so the exchange ends before round 1, like a breaker."""
    return None if symbol in constraints.allowed_symbols else "allowed_symbols"


def breaker_detail(name: str, constraints: Constraints, portfolio: Portfolio, as_of: datetime,
                   symbol: str | None = None) -> str:
    """The arithmetic behind a breaker that fired, in the trader's words (naming the tier that set its limit);
    for "allowed_symbols", why the exchange's `symbol` cannot trade."""
    if name == "allowed_symbols":
        return (f"{symbol} not in [{', '.join(constraints.allowed_symbols)}]: nothing proposed on it can pass, "
                "so no agent is asked")
    c, tier = in_force(constraints, portfolio)
    words = next(words for breaker, _, words in _breakers(c, portfolio, as_of) if breaker == name)
    by = {"mll_breached": "max_drawdown_pct", "daily_loss_limit": "max_daily_loss_pct",
          "consistency_rule": "consistency_rule_pct"}.get(name)
    return words() + (f" ({tier[by]})" if by in tier else "")


def _breakers(c: Constraints, p: Portfolio, as_of: datetime):
    """(name, fired, its arithmetic in words) of each breaker in priority order, each threshold computed
    once for both; lazily, so the breakers after the first that fires cost nothing."""
    floor = p.peak_equity * (1 - c.max_drawdown_pct)
    yield ("mll_breached", p.equity <= floor,
           lambda: f"equity {p.equity:.2f} <= peak {p.peak_equity:.2f} x (1 - {c.max_drawdown_pct:.4f}) = {floor:.2f}")
    allowed_loss = c.max_daily_loss_pct * p.start_of_day_equity
    yield ("daily_loss_limit", -p.today_pnl >= allowed_loss,
           lambda: f"today's loss {-p.today_pnl:.2f} >= {c.max_daily_loss_pct:.4f} x {p.start_of_day_equity:.2f} "
                   f"= {allowed_loss:.2f}")
    most_today = c.consistency_rule_pct * p.cumulative_pnl
    yield ("consistency_rule", p.cumulative_pnl > 0 and p.today_pnl > most_today,
           lambda: f"today's gain {p.today_pnl:.2f} > {c.consistency_rule_pct:.4f} x cumulative "
                   f"{p.cumulative_pnl:.2f} = {most_today:.2f}")
    cutoff = c.cutoff()
    local = as_of.astimezone(ET) if as_of.tzinfo else as_of
    yield ("trading_cutoff", cutoff is not None and local.time() >= cutoff,
           lambda: f"{local:%H:%M} ET is at or after the {c.trading_cutoff_time} cutoff")
