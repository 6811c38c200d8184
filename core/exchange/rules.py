"""The rules of SPEC §4: pure functions that judge a proposal and trip circuit breakers.

Every check records its arithmetic as text, so the Coach's critique shows its working and a
trader can redo the sum by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from core.exchange import check_words
from core.exchange.schema import ET, Action, Constraints, Portfolio, Proposal, WorldState, built
from core.exchange.artifact import Check, Verdict
from core.exchange.tiers import in_force

TOLERANCE = 1e-9
_DEFAULT_PORTFOLIO = Portfolio()
# Every field given, as built's fields set: copied from a frozenset faster than read off each values dict.
_CHECK_FIELDS, _VERDICT_FIELDS = frozenset(Check.model_fields), frozenset(Verdict.model_fields)
_Unwritten = list[tuple[Check, dict[str, str], Callable[..., str], tuple]]  # checks, and how to write their words


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
    isfinite = math.isfinite
    if not (isfinite(e) and isfinite(s) and isfinite(t) and isfinite(w)):
        return False
    ordered = s < e < t if side_long else t < e < s
    return ordered and min(e, s, t) > 0 and w > 0


class _Checks:
    """The checks of one proposal as they are made, each with its arithmetic in words (check_words).

    `words` says whose words are written as the check is made: every check's (True); the failing checks' only
    ("failing"), the others' Checks made with none and kept in `unwritten` (a list) for `_write`, or not kept (None:
    nobody reads them); or nobody's, and then no Check is made at all (False: the failing checks' names, `ruling`)."""

    __slots__ = ("tier", "made", "failed", "words", "unwritten")

    def __init__(self, tier: dict[str, str], words: bool | str = True, unwritten: _Unwritten | None = None):
        self.tier = tier
        self.made: list[Check] = []
        self.failed: list[str] = []
        self.words = words
        self.unwritten = unwritten

    def add(self, constraint: str, action: int | None, passed: bool, value, threshold, write: Callable[..., str],
            *numbers) -> None:
        """One check; `write(*numbers)` writes its arithmetic."""
        if not passed:
            self.failed.append(constraint)
        words = self.words
        if words is False:
            return
        now = words is True or not passed
        # Built, not validated: each value made the type validation made of it (a count a float, and a backtest's
        # numpy figures, whose comparisons give numpy booleans, Python ones: `True if passed`, without a call).
        check = built(Check, {
            "constraint": constraint, "action": action, "passed": True if passed else False,
            "arithmetic": _head(self.tier, constraint) + write(*numbers) if now else "",
            "value": None if value is None else float(value),
            "threshold": None if threshold is None else float(threshold)}, _CHECK_FIELDS)
        if not now and self.unwritten is not None:
            self.unwritten.append((check, self.tier, write, numbers))
        self.made.append(check)


def _head(tier: dict[str, str], constraint: str) -> str:
    """What a check's arithmetic starts with: the limit, and the tier that set it."""
    return f"{constraint} ({tier[constraint]}): " if constraint in tier else f"{constraint}: "


def _write(unwritten: _Unwritten) -> None:
    """Write the arithmetic of checks made without it into each, as it would have been written when made."""
    for check, tier, write, numbers in unwritten:
        check.__dict__["arithmetic"] = _head(tier, check.constraint) + write(*numbers)  # set already: nothing else moves
    unwritten.clear()


def check_proposal(proposal: Proposal, constraints: Constraints, portfolio: Portfolio | None = None,
                   world: WorldState | None = None, *, atr: dict[str, float] | None = None,
                   passing_words: bool = True) -> Verdict:
    """Check every action against every constraint; decide ABORT, REJECT or APPROVE.

    `atr` gives the 14-day ATR of symbols other than the world's (the world's own `atr` counts for its
    symbol). With `min_stop_atr_multiple` set, an entry whose symbol has no known ATR fails: it cannot
    be verified, so it is never waved through. `passing_words=False` leaves a passing check's arithmetic
    empty, for a caller whose readers read the failing checks' only (the loop, deciding for a backtest
    with the house agents).
    """
    if passing_words:
        return check_actions(proposal.actions, constraints, portfolio, world, atr=atr)
    portfolio = portfolio or _DEFAULT_PORTFOLIO
    return _verdict(_Checks({}, "failing", None), proposal.actions, in_force(constraints, portfolio, world), portfolio,
                    world, atr)


def check_actions(actions: list[Action], constraints: Constraints, portfolio: Portfolio | None = None,
                  world: WorldState | None = None, *, atr: dict[str, float] | None = None) -> Verdict:
    """`check_proposal` on actions not yet written into a proposal: for an agent that judges what it plans
    to propose (the house Player), and hands the verdict on with `CheckedActions`."""
    portfolio = portfolio or _DEFAULT_PORTFOLIO
    return _verdict(_Checks({}), actions, in_force(constraints, portfolio, world), portfolio, world, atr)


class Ruling(NamedTuple):
    """A verdict's decision and violations, without the checks that reached them."""

    decision: str
    violations: list[str]


def ruling(actions: list[Action], constraints: Constraints, portfolio: Portfolio | None = None,
           world: WorldState | None = None, *, atr: dict[str, float] | None = None) -> Ruling:
    """`check_actions`' decision and violations alone, the arithmetic of each check left unwritten: for a caller
    that reads nothing else (a backtest's re-check of an approved entry at its fill price)."""
    portfolio = portfolio or _DEFAULT_PORTFOLIO
    c, tier = in_force(constraints, portfolio, world)
    checks = _Checks(tier, words=False)
    _judge(checks, actions, c, portfolio, world, atr)
    return Ruling(_decision(checks.failed, c), list(dict.fromkeys(checks.failed)))


def _verdict(checks: _Checks, actions: list[Action], limits: tuple[Constraints, dict[str, str]], portfolio: Portfolio,
             world: WorldState | None, atr: dict[str, float] | None) -> Verdict:
    """The verdict under `limits` (the limits in force and, per limit a tier set, the tier's name), made by `checks`."""
    c, checks.tier = limits
    _judge(checks, actions, c, portfolio, world, atr)
    return built(Verdict, {"decision": _decision(checks.failed, c), "violations": list(dict.fromkeys(checks.failed)),
                           "checks": checks.made, "feedback": ""}, _VERDICT_FIELDS)


_BY_THE_RULES = object()  # the seal PlanJudge puts on what it judged: a verdict an agent wrote itself is never taken


def _as_judged(actions: list[Action]) -> tuple:
    return tuple(tuple(a.__dict__.values()) for a in actions)  # Actions are mutable: their values when judged


@dataclass(frozen=True, slots=True)
class CheckedActions:
    """A verdict `PlanJudge` reached while a Player planned its proposal, and the very objects it judged:
    the loop takes it for the round instead of running the same rules over the same inputs again. The
    verdict's passing checks are written when the loop takes it (`verdict_on`), for whoever reads them."""

    actions: list[Action]
    constraints: Constraints
    portfolio: Portfolio
    world: WorldState
    verdict: Verdict
    values: tuple = ()  # the actions' values when judged
    seal: object = None  # _BY_THE_RULES when PlanJudge made it
    unwritten: list = field(default_factory=list)  # the verdict's passing checks, their arithmetic not written yet

    def verdict_on(self, proposal: Proposal, constraints: Constraints, portfolio: Portfolio,
                   world: WorldState, passing_words: bool = True) -> Verdict | None:
        """The verdict when the rules reached it (sealed by PlanJudge, never one a Player built) on these very
        objects (the proposal's own actions, unchanged since, and the loop's constraints, portfolio and world:
        by identity, never by equal values), else None. Its passing checks' arithmetic is written unless
        `passing_words` is False (see check_proposal)."""
        if self.seal is not _BY_THE_RULES:
            return None
        if constraints is not self.constraints or portfolio is not self.portfolio or world is not self.world:
            return None
        mine, theirs = self.actions, proposal.actions
        if len(mine) != len(theirs) or any(a is not b for a, b in zip(mine, theirs)):
            return None
        if _as_judged(theirs) != self.values:
            return None
        if passing_words:
            _write(self.unwritten)
        return self.verdict


class PlanJudge:
    """The rules' verdicts on the actions a Player tries while planning one proposal, on the constraints,
    portfolio and world the loop gave it (the tiers are applied inside the rules, as the loop's check does):
    the verdict on the actions it ends up proposing goes to the loop with its Turn (`last`). Only the failing
    checks' arithmetic is written while planning: a try the Player drops is never read."""

    __slots__ = ("constraints", "portfolio", "world", "judged", "limits")

    def __init__(self, constraints: Constraints, portfolio: Portfolio, world: WorldState):
        self.constraints, self.portfolio, self.world = constraints, portfolio, world
        self.judged: CheckedActions | None = None
        # The limits in force and who set each (check_actions' own), worked out once for every try of the plan:
        # the tiers follow the portfolio and the world, which stay the same while a Player plans.
        self.limits = in_force(constraints, portfolio or _DEFAULT_PORTFOLIO, world)

    def __call__(self, actions: list[Action]) -> str:
        """The decision on these actions; the verdict is kept for `last`."""
        checks = _Checks({}, "failing", [])
        verdict = _verdict(checks, actions, self.limits, self.portfolio or _DEFAULT_PORTFOLIO, self.world, None)
        self.judged = CheckedActions(actions, self.constraints, self.portfolio, self.world, verdict,
                                     _as_judged(actions), _BY_THE_RULES, checks.unwritten)
        return verdict.decision

    def last(self, actions: list[Action]) -> CheckedActions | None:
        """The verdict on the very `actions` proposed, if they were the last ones judged."""
        return self.judged if self.judged is not None and self.judged.actions is actions else None


def _decision(failed: list[str], c: Constraints) -> str:
    if not failed:  # most verdicts (a backtest's holds): no generator for `any` over nothing
        return "APPROVE"
    return "ABORT" if any(v in c.abort_on_violations for v in failed) else "REJECT"


def _judge(checks: _Checks, actions: list[Action], c: Constraints, portfolio: Portfolio, world: WorldState | None,
           atr: dict[str, float] | None) -> None:
    """Every check of SPEC §4 on these actions, in the Coach's order: each action's, then the book's after them."""
    allowed = c.allowed_symbols
    positions = portfolio.positions  # the book after the actions so far: copied at the first that changes it
    entry_of_symbol: dict[str, int] = {}
    risk_terms: list[tuple[float, float, float]] = []  # (w, e, s) of every entry

    for i, a in enumerate(actions):
        symbol_ok = a.symbol in allowed
        checks.add("allowed_symbols", i, symbol_ok, None, None, check_words.allowed, a.symbol, allowed, symbol_ok)
        if a.action_type == "hold":
            continue
        if positions is portfolio.positions:
            positions = dict(positions)
        if a.action_type == "exit":
            positions.pop(a.symbol, None)
            continue
        side_long = a.action_type == "enter_long"
        _entry_checks(checks, i, a, side_long, c, _atr_of(a.symbol, world, atr))
        w = a.size_pct
        positions[a.symbol] = positions.get(a.symbol, 0.0) + (w if side_long else -w)
        entry_of_symbol.setdefault(a.symbol, i)
        if a.entry_price > 0:  # an entry at or below zero already fails its bracket; it has no risk fraction
            risk_terms.append((w, a.entry_price, a.stop_loss))

    if entry_of_symbol:
        _book_checks(checks, c, portfolio, positions, entry_of_symbol, risk_terms)


def _atr_of(symbol: str, world: WorldState | None, atr: dict[str, float] | None) -> float | None:
    """The symbol's known ATR: given in `atr`, else the world's own for its symbol."""
    if atr and symbol in atr:
        return atr[symbol]
    return world.atr if world is not None and world.symbol == symbol else None


def _entry_checks(checks: _Checks, i: int, a: Action, side_long: bool, c: Constraints, known: float | None) -> None:
    """The checks of one entry on its own: its bracket, its size, its reward to risk, its stop against the ATR."""
    e, s, t, w = a.entry_price, a.stop_loss, a.take_profit, a.size_pct
    prices = check_words.Prices(e, s, t)
    bracket_ok = _valid_bracket(side_long, e, s, t, w)
    checks.add("bracket", i, bracket_ok, None, None, check_words.bracket, side_long, prices, w, bracket_ok)

    limit = c.max_single_trade_pct
    size_ok = _at_most(w, limit)
    checks.add("max_single_trade_pct", i, size_ok, w, limit, check_words.compared, w, limit, size_ok, True, ".4f")
    if not bracket_ok:
        return

    rr = risk_reward(side_long, e, s, t)
    least = c.min_risk_reward
    rr_ok = _at_least(rr, least)
    checks.add("min_risk_reward", i, rr_ok, rr, least, check_words.risk_reward, side_long, prices, rr, least, rr_ok)

    multiple = c.min_stop_atr_multiple
    if multiple is None:
        return
    if known is None:
        checks.add("min_stop_atr_multiple", i, False, None, multiple, check_words.no_atr, a.symbol)
        return
    need = multiple * known
    distance = abs(e - s)
    far_ok = _at_least(distance, need)
    checks.add("min_stop_atr_multiple", i, far_ok, distance, need, check_words.stop_atr, prices, distance, multiple, known,
               need, far_ok)


def _book_checks(checks: _Checks, c: Constraints, portfolio: Portfolio, positions: dict[str, float],
                 entry_of_symbol: dict[str, int], risk_terms: list[tuple[float, float, float]]) -> None:
    """The checks of the book after every action: each entered position, open positions, leverage, and the
    risk to the new stops against today's loss and the drawdown."""
    before = portfolio.positions
    for symbol, i in entry_of_symbol.items():
        # The position after all actions: an entry then an exit of the same symbol leaves none.
        after = positions.get(symbol, 0.0)
        old = before.get(symbol, 0.0)
        size = abs(after)
        limit = c.max_position_pct
        passed = _at_most(size, limit)
        checks.add("max_position_pct", i, passed, size, limit, check_words.position, symbol, old, after, size, limit, passed)

    held = [sym for sym, size in positions.items() if abs(size) > TOLERANCE]
    if checks.words is not False:  # in the order the words list them; the count alone needs none
        held.sort()
    most = c.max_open_positions
    room_ok = len(held) <= most
    checks.add("max_open_positions", None, room_ok, len(held), most, check_words.open_positions, held, most, room_ok)

    leverage = sum(map(abs, positions.values()))
    leverage_ok = _at_most(leverage, c.max_leverage)
    checks.add("max_leverage", None, leverage_ok, leverage, c.max_leverage, check_words.leverage, held, positions, leverage,
               c.max_leverage, leverage_ok)

    at_risk = sum(w * abs(e - s) / e for w, e, s in risk_terms)
    risk = check_words.AtRisk(risk_terms, at_risk)  # both loss checks show it, written once
    minus_today = 0.0 - portfolio.today_pnl  # never -0.0, which would print as "-0.00"
    lost_today = max(0.0, minus_today) / portfolio.start_of_day_equity
    daily = lost_today + at_risk
    limit = c.max_daily_loss_pct
    daily_ok = _at_most(daily, limit)
    checks.add("max_daily_loss_pct", None, daily_ok, daily, limit, check_words.daily_loss, minus_today,
               portfolio.start_of_day_equity, risk, lost_today, daily, limit, daily_ok)

    drawn = 1 - portfolio.equity / portfolio.peak_equity
    drawdown = drawn + at_risk
    limit = c.max_drawdown_pct
    drawdown_ok = _at_most(drawdown, limit)
    checks.add("max_drawdown_pct", None, drawdown_ok, drawdown, limit, check_words.drawdown, portfolio.equity,
               portfolio.peak_equity, risk, drawn, drawdown, limit, drawdown_ok)


def circuit_breaker(constraints: Constraints, portfolio: Portfolio, as_of: datetime) -> str | None:
    """The first breaker that fires before round 1, in priority order, or None (with the portfolio's tiers in force)."""
    c, p = in_force(constraints, portfolio)[0], portfolio
    floor, allowed_loss, most_today = _thresholds(c, p)
    if p.equity <= floor:
        return "mll_breached"
    if -p.today_pnl >= allowed_loss:
        return "daily_loss_limit"
    if p.cumulative_pnl > 0 and p.today_pnl > most_today:
        return "consistency_rule"
    cutoff = c.cutoff()
    if cutoff is not None and _eastern(as_of).time() >= cutoff:
        return "trading_cutoff"
    return None


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
    p = portfolio
    floor, allowed_loss, most_today = _thresholds(c, p)
    if name == "mll_breached":
        words, by = (f"equity {p.equity:.2f} <= peak {p.peak_equity:.2f} x (1 - {c.max_drawdown_pct:.4f}) = "
                     f"{floor:.2f}"), "max_drawdown_pct"
    elif name == "daily_loss_limit":
        words, by = (f"today's loss {-p.today_pnl:.2f} >= {c.max_daily_loss_pct:.4f} x {p.start_of_day_equity:.2f} "
                     f"= {allowed_loss:.2f}"), "max_daily_loss_pct"
    elif name == "consistency_rule":
        words, by = (f"today's gain {p.today_pnl:.2f} > {c.consistency_rule_pct:.4f} x cumulative "
                     f"{p.cumulative_pnl:.2f} = {most_today:.2f}"), "consistency_rule_pct"
    elif name == "trading_cutoff":
        words, by = f"{_eastern(as_of):%H:%M} ET is at or after the {c.trading_cutoff_time} cutoff", None
    else:
        raise ValueError(f"no circuit breaker is named {name!r}")
    return words + (f" ({tier[by]})" if by in tier else "")


def _thresholds(c: Constraints, p: Portfolio) -> tuple[float, float, float]:
    """The breakers' thresholds, each written once for the check and its words: the equity floor of the drawdown
    limit, the loss allowed today, and the most a day may gain under the consistency rule."""
    return (p.peak_equity * (1 - c.max_drawdown_pct), c.max_daily_loss_pct * p.start_of_day_equity,
            c.consistency_rule_pct * p.cumulative_pnl)


def _eastern(as_of: datetime) -> datetime:
    """The time as a trader in New York reads it (a naive time already is)."""
    return as_of.astimezone(ET) if as_of.tzinfo else as_of
