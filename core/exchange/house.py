"""The house agents: a rule-based Player and Coach that need no key and no network.

The Player trades the trend (sma5 against sma10), puts its stop one and a half ATRs away (a
share of the price by volatility regime when no ATR is known) and its target at 2 R; where the
schema asks for more it plans a quarter above the ATR and R/R minimums, so a backtest's fill at
the next open still passes. It sizes to the tightest of the schema's limits. Its first proposal
is sometimes flawed the way a hurried trader's is (too big, target too close, a stray symbol, a
stop inside the noise), but never in a way that breaks a limit the schema aborts on; each
revision fixes the violations the Coach named and says what changed, new number first. When
nothing it could propose would pass (the symbol is not allowed) it says so in round 1.
Everything is deterministic for a world state and a seed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Generator
from functools import partial
from typing import NamedTuple

from core.exchange.agent import Turn
from core.exchange.rules import PlanJudge, risk_reward
from core.exchange.schema import Action, Constraints, Portfolio, Proposal, WorldState, built
from core.exchange.artifact import Round
from core.exchange.house_coach import HouseCoach  # noqa: F401 (the house agents, importable together from here)

STRAY_SYMBOL = "QQQ"  # an index it likes to watch, outside every shipped preset
TARGET_R = 2.0  # its usual target, in multiples of the risk, when the schema asks for less
STOP_ATRS = 1.5  # its usual stop distance, in ATRs
HEADROOM = 1.25  # its plan clears the schema's R/R and ATR minimums by a quarter: a fill at the next open still passes
_STOP_UNITS = {"low": 0.01, "medium": 0.02, "high": 0.035}  # stop distance / price without an ATR
_FLAWS = ("oversize", "thin_target", "stray_symbol", "tight_stop")


def _floor(x: float, digits: int) -> float:
    scale = 10**digits
    return math.floor(x * scale + 1e-9) / scale


def _ceil(x: float, digits: int) -> float:
    scale = 10**digits
    return math.ceil(x * scale - 1e-9) / scale


def _stop_at(long: bool, entry: float, distance: float) -> float:
    """The stop `distance` away, rounded to the cent away from the entry."""
    return _floor(entry - distance, 2) if long else _ceil(entry + distance, 2)


def _target_at(long: bool, entry: float, stop: float, reward: float) -> float:
    """The target `reward` R away, rounded to the cent away from the entry so cents never cost the ratio."""
    risk = abs(entry - stop)
    return _ceil(entry + reward * risk, 2) if long else _floor(entry - reward * risk, 2)


def _entry(long: bool, symbol: str, size: float, entry: float, stop: float, target: float) -> Action:
    return _action("enter_long" if long else "enter_short", symbol, round(size, 4), round(entry, 2), round(stop, 2),
                   round(target, 2))


_NUMBERS = ("size_pct", "entry_price", "stop_loss", "take_profit")
_A_SIDE = frozenset({"action_type", "symbol"})  # the fields a hold or an exit is given (an entry: all)
_FLOATS, _ACTIONS = frozenset({float}), frozenset({Action})
# Every field given, as schema.built's fields set (copied from a frozenset faster than read off each values dict).
_ALL_SIDES, _PROPOSED = frozenset(Action.model_fields), frozenset(Proposal.model_fields)


def _action(action_type: str, symbol: str, *numbers: float) -> Action:
    """An entry of the Player's own (its four numbers), not validated again where validating would return it as it
    is: finite Python floats, and a symbol a world's or action's validation made (or STRAY_SYMBOL)."""
    # Floats all (no generator walks them) and finite (their sum is: a sum too large for a float only costs the
    # validation below, which returns them as they are).
    if type(symbol) is str and set(map(type, numbers)) == _FLOATS and math.isfinite(sum(numbers)):
        return built(Action, {"action_type": action_type, "symbol": symbol, **dict(zip(_NUMBERS, numbers))}, _ALL_SIDES)
    return Action(action_type=action_type, symbol=symbol, **dict(zip(_NUMBERS, numbers)))


def _proposal(reasoning: str, actions: list[Action]) -> Proposal:
    """The proposal of the Player's own actions (see _action), not validated again."""
    if 1 <= len(actions) <= 3 and set(map(type, actions)) == _ACTIONS:  # Actions all, no generator walking them
        return built(Proposal, {"reasoning": reasoning, "actions": list(actions)}, _PROPOSED)
    return Proposal(reasoning=reasoning, actions=actions)


def _price(x: float) -> str:
    """A price or an ATR to the cent, with more digits only where the cents would hide some."""
    text = f"{x:.4f}"  # four decimals: drop the last two where they are zeros, one where only it is
    return text if text[-1] != "0" else text[:-1] if text[-2] != "0" else text[:-2]


def _bare(action_type: str, symbol: str) -> Action:
    """A hold or an exit of the Player's own, not validated again where validating would return it as it is (see
    `_action`)."""
    if type(symbol) is str:
        return built(Action, {"action_type": action_type, "symbol": symbol, "size_pct": None, "entry_price": None,
                              "stop_loss": None, "take_profit": None}, _A_SIDE)
    return Action(action_type=action_type, symbol=symbol)


_hold = partial(_bare, "hold")  # a hold of the Player's own: no Python frame of its own around _bare


def _ratio(a: Action) -> float:
    return risk_reward(a.action_type == "enter_long", a.entry_price, a.stop_loss, a.take_profit)


def describe(a: Action) -> str:
    """An action in the trader's words, with every number it carries."""
    if not a.is_entry:
        return f"{a.action_type} {a.symbol}"
    side = "long" if a.action_type == "enter_long" else "short"
    return (f"{side} {a.size_pct:.2%} of equity in {a.symbol} at {a.entry_price:.2f}, stop {a.stop_loss:.2f}, "
            f"target {a.take_profit:.2f} ({_ratio(a):.2f}R)")


def size_limits(c: Constraints, p: Portfolio, symbol: str, entry: float, stop: float) -> dict[str, float]:
    """The largest size each limit allows a new entry in a symbol not yet held, with this bracket."""
    others = sum(abs(v) for s, v in p.positions.items() if s != symbol)
    lost_today = max(0.0, -p.today_pnl) / p.start_of_day_equity
    drawn = 1 - p.equity / p.peak_equity
    per_unit = abs(entry - stop) / entry  # the equity lost to the stop per unit of size
    return {
        "max_single_trade_pct": c.max_single_trade_pct,
        "max_position_pct": c.max_position_pct,
        "max_leverage": c.max_leverage - others,
        "max_daily_loss_pct": (c.max_daily_loss_pct - lost_today) / per_unit,
        "max_drawdown_pct": (c.max_drawdown_pct - drawn) / per_unit,
    }


def _largest_size(c: Constraints, p: Portfolio, symbol: str, entry: float, stop: float) -> tuple[float, str]:
    """The largest size every limit allows (to 0.01 %), and the limit that binds."""
    limits = size_limits(c, p, symbol, entry, stop)
    binding = min(limits, key=limits.get)
    return max(0.0, _floor(limits[binding], 4)), binding


class _Bracket(NamedTuple):
    long: bool
    entry: float
    distance: float  # entry to stop before rounding the stop to the cent
    stop: float
    target: float


class HousePlayer:
    """Rule-based Player: trend following, volatility stops, fixes what the Coach names."""

    name = "house-player"

    def __init__(self, seed: int = 0, flaw_rate: float = 0.5):
        self.seed = seed
        self.flaw_rate = flaw_rate

    def propose(
        self, world: WorldState, constraints: Constraints, portfolio: Portfolio, history: list[Round]
    ) -> Generator[str, None, Turn]:
        """Stream the reasoning a sentence at a time, return the proposal (with the rules' verdict on it
        when planning it took one: the loop then need not judge the same actions again)."""
        judge = PlanJudge(constraints, portfolio, world)
        c = judge.limits[0]  # plan to the limits the tiers set now, those the judge judges by
        if history:
            sentences, actions = self._revise(world, c, portfolio, history, judge)
        else:
            sentences, actions = self._first(world, c, portfolio, judge)
        reasoning = " ".join(sentences)
        for sentence in sentences[:-1]:
            yield sentence + " "
        yield sentences[-1]
        return Turn(_proposal(reasoning, actions), checked=judge.last(actions))

    # -- what the market and the schema allow --------------------------------------------

    @staticmethod
    def _trend(world: WorldState) -> str:
        return "up" if world.sma5 > world.sma10 else "down" if world.sma5 < world.sma10 else "flat"

    @staticmethod
    def _no_pass(world: WorldState, c: Constraints, p: Portfolio) -> str | None:
        """Why nothing at all on this symbol can pass (not even a hold), or None."""
        if world.symbol not in c.allowed_symbols:
            return (f"{world.symbol} is not in allowed_symbols ({', '.join(c.allowed_symbols)}); "
                    "nothing I can propose will pass: hold.")
        return None

    def _stand_aside(self, world: WorldState, c: Constraints, p: Portfolio,
                     long: bool) -> tuple[str | None, _Bracket | None, tuple[float, str] | None]:
        """Why a new entry on this side cannot pass today, in numbers, or None when one can; the trend's plan,
        when one can; and its largest size with the limit that binds, when working that out was part of the answer
        (a long). The plan is worked out only past the reasons that need none (most days a backtest holds)."""
        symbol = world.symbol
        if c.min_stop_atr_multiple is not None and world.atr is None:
            return (f"min_stop_atr_multiple is {c.min_stop_atr_multiple:.2f} but no ATR is known for {symbol}, "
                    "so no stop can be verified: hold."), None, None
        held = [s for s, v in p.positions.items() if abs(v) > 1e-9 and s != symbol]
        if len(held) + 1 > c.max_open_positions:
            return (f"{len(held)} positions are open ({', '.join(sorted(held))}) and max_open_positions is "
                    f"{c.max_open_positions}: no room for {symbol}, hold."), None, None
        plan = self._bracket(world, c, long)
        entry = plan.entry
        if entry <= 0:
            return f"{symbol} at {world.price:g} is below a cent: no bracket can be priced, hold.", None, None
        invalid = self._invalid_bracket(plan)
        if invalid:
            return invalid, None, None
        # Room is judged on a long's stop whichever the trend: for a long that is the plan's own size.
        stop = plan.stop if long else _stop_at(True, entry, plan.distance)
        size, binding = _largest_size(c, p, symbol, entry, stop)
        if size <= 0:
            return f"{binding} leaves no room for a new entry: hold.", None, None
        return None, plan, (size, binding) if long else None

    @staticmethod
    def _invalid_bracket(plan: _Bracket) -> str | None:
        """Why the trend's entry has no valid bracket (a stop or target at or below zero), or None.

        A stop as wide as volatility (and the schema's ATR minimum) asks, below a short's entry by the
        R/R asked, can fall under zero; a narrower stop would break the schema or the house style, so hold."""
        if plan.stop > 0 and plan.target > 0:
            return None
        side, name = ("long", "stop") if plan.long else ("short", "target")
        return (f"At a price of {plan.entry:.2f} the {side} needs a stop so wide (volatility, the ATR minimum) that "
                f"its {name} would be at or below zero: no valid bracket, hold.")

    @staticmethod
    def _distance(world: WorldState, c: Constraints) -> float:
        """Entry to stop, in price: the house style, never inside the schema's ATR minimum."""
        distance = world.atr * STOP_ATRS if world.atr else world.price * _STOP_UNITS[world.volatility_regime]
        if c.min_stop_atr_multiple is not None and world.atr:
            distance = max(distance, c.min_stop_atr_multiple * world.atr * HEADROOM)
        return distance

    def _bracket(self, world: WorldState, c: Constraints, long: bool) -> _Bracket:
        """The house style's entry, stop and target on this side: worked out once per proposal."""
        entry, distance = round(world.price, 2), self._distance(world, c)
        stop = _stop_at(long, entry, distance)
        return _Bracket(long, entry, distance, stop, _target_at(long, entry, stop, max(c.min_risk_reward * HEADROOM,
                                                                                          TARGET_R)))

    def _ideal(self, world: WorldState, c: Constraints, p: Portfolio, plan: _Bracket,
               sized: tuple[float, str] | None = None) -> Action:
        """The entry that respects every limit: stop by volatility, target at the R asked, sized to the limits
        (`sized`: the plan's largest size, when already known)."""
        size = (sized or _largest_size(c, p, world.symbol, plan.entry, plan.stop))[0]
        return _entry(plan.long, world.symbol, size, plan.entry, plan.stop, plan.target)

    # -- the first proposal ---------------------------------------------------------------

    def _first(self, world: WorldState, c: Constraints, p: Portfolio, judge: PlanJudge) -> tuple[list[str], list[Action]]:
        trend = self._trend(world)
        atr = f", ATR {_price(world.atr)}" if world.atr else ", no ATR known"
        said = [f"{world.symbol} last {world.price:.2f}: sma5 {world.sma5:.2f} vs sma10 {world.sma10:.2f}, "
                f"trend {trend}, {world.volatility_regime} volatility{atr}."]
        impossible = self._no_pass(world, c, p)
        if impossible:
            return said + [impossible], [_hold(world.symbol)]
        held = p.positions.get(world.symbol, 0.0)
        if held or world.position != "flat":
            side_long = held > 0 if held else world.position == "long"
            if (trend == "down" and side_long) or (trend == "up" and not side_long):
                said.append(f"The trend has turned against the {'long' if side_long else 'short'}: exit.")
                return said, [_bare("exit", world.symbol)]
            said.append(f"Already {'long' if side_long else 'short'} with the trend: hold.")
            return said, [_hold(world.symbol)]
        if trend == "flat":
            return said + ["No trend to trade: hold."], [_hold(world.symbol)]
        aside, plan, sized = self._stand_aside(world, c, p, trend == "up")
        if aside:
            return said + [aside], [_hold(world.symbol)]

        sized = sized or _largest_size(c, p, world.symbol, plan.entry, plan.stop)
        actions = self._maybe_flawed(world, c, judge, self._ideal(world, c, p, plan, sized))
        trade = actions[0]
        words = describe(trade)
        said.append(words[0].upper() + words[1:] + ".")
        # A hurried stop sizes anew; otherwise the trade's bracket is the plan's, whose largest size is known.
        same = trade.entry_price == plan.entry and trade.stop_loss == plan.stop
        cap, binding = sized if same else _largest_size(c, p, world.symbol, trade.entry_price, trade.stop_loss)
        if trade.size_pct == cap:
            said.append(f"That is the most {binding} allows.")
        if len(actions) > 1:
            said.append(f"Keep {STRAY_SYMBOL} on watch as the market gauge.")
        return said, actions

    def _maybe_flawed(self, world: WorldState, c: Constraints, judge: PlanJudge, ideal: Action) -> list[Action]:
        """Sometimes (by the seed) a hurried version of the ideal entry: one the Coach rejects but never aborts."""
        # A stable hash of what identifies the decision (the seed, the symbol, the market day): the same flaw in
        # any process, and never the last digits of a float, which move with how much history was loaded.
        draw = zlib.crc32(f"{self.seed}|{world.symbol}|{world.as_of.date().isoformat()}".encode())
        if draw % 1000 >= self.flaw_rate * 1000:
            return [ideal]
        first = (draw // 1000) % len(_FLAWS)
        for flaw in _FLAWS[first:] + _FLAWS[:first]:
            actions = self._flawed(flaw, world, c, ideal)
            if judge(actions) == "REJECT":
                return actions
        return [ideal]

    @staticmethod
    def _flawed(flaw: str, world: WorldState, c: Constraints, ideal: Action) -> list[Action]:
        long = ideal.action_type == "enter_long"
        e, s, t, w = ideal.entry_price, ideal.stop_loss, ideal.take_profit, ideal.size_pct
        if flaw == "oversize":
            return [_entry(long, world.symbol, _floor(c.max_single_trade_pct * 1.6, 4), e, s, t)]
        if flaw == "thin_target":
            return [_entry(long, world.symbol, w, e, s, _target_at(long, e, s, round(c.min_risk_reward * 0.7, 2)))]
        if flaw == "stray_symbol":
            return [ideal, _hold(STRAY_SYMBOL)]
        tight = _stop_at(long, e, abs(e - s) * 0.5)
        return [_entry(long, world.symbol, w, e, tight, _target_at(long, e, tight, _ratio(ideal)))]

    # -- revisions ------------------------------------------------------------------------

    def _revise(self, world: WorldState, c: Constraints, p: Portfolio, history: list[Round],
                judge: PlanJudge) -> tuple[list[str], list[Action]]:
        last = history[-1]
        previous = last.proposal.actions
        violations = last.evaluation.violations
        said = [f"Round {last.round} was {last.evaluation.decision}"
                + (f" for {', '.join(violations)}." if violations else ".")]
        impossible = self._no_pass(world, c, p)
        if impossible:
            return said + ["Still: " + impossible], previous
        kept = [a for a in previous if a.symbol in c.allowed_symbols]
        for symbol in dict.fromkeys(a.symbol for a in previous if a.symbol not in c.allowed_symbols):
            said.append(f"Dropped {symbol}: it is not in allowed_symbols.")
        entry = next((a for a in kept if a.is_entry and a.symbol == world.symbol), None)
        if entry is None:
            actions = kept or [_hold(world.symbol)]
        else:
            fixes, fixed = self._fix(entry, violations, world, c, p)
            said += fixes
            actions = [fixed] + [a for a in kept if not a.is_entry]
        rejected = [r.proposal.actions for r in history]
        passes = judge(actions) == "APPROVE"
        if passes and actions not in rejected:  # Actions compare field by field
            return said + self._now(actions), actions
        more, actions = self._start_over(world, c, p, rejected)
        return said + more, actions

    def _start_over(self, world: WorldState, c: Constraints, p: Portfolio,
                    rejected: list[list[Action]]) -> tuple[list[str], list[Action]]:
        """When fixing the last proposal is not enough: the clean entry, else a hold."""
        trend = self._trend(world)
        if trend == "flat":
            return ["No trend to trade: hold."], [_hold(world.symbol)]
        aside, plan, sized = self._stand_aside(world, c, p, trend == "up")
        if not aside:
            actions = [self._ideal(world, c, p, plan, sized)]
            if actions not in rejected:
                return ["Starting over from the market."] + self._now(actions), actions
            aside = "The clean entry was rejected already: hold."
        return [aside], [_hold(world.symbol)]

    @staticmethod
    def _now(actions: list[Action]) -> list[str]:
        return ["Now: " + "; ".join(describe(a) for a in actions) + "."]

    def _fix(self, a: Action, violations: list[str], world: WorldState, c: Constraints,
             p: Portfolio) -> tuple[list[str], Action]:
        """Fix each named violation of one entry; a sentence per change, new number first."""
        long = a.action_type == "enter_long"
        e, s, t, w = a.entry_price, a.stop_loss, a.take_profit, a.size_pct
        said: list[str] = []
        if "bracket" in violations or e != round(e, 2) or not (s < e < t if long else t < e < s):
            fresh = self._ideal(world, c, p, self._bracket(world, c, long))
            said.append(f"The bracket was broken; rebuilt it at {fresh.entry_price:.2f}.")
            return said, fresh
        if "max_open_positions" in violations:
            return said + [f"max_open_positions is {c.max_open_positions}: no room for {a.symbol}."], _hold(a.symbol)
        if "min_stop_atr_multiple" in violations and world.atr:
            need = c.min_stop_atr_multiple * world.atr
            reward = _ratio(a)
            s = _stop_at(long, e, need + 0.01)
            said.append(f"Stop {s:.2f} (was {a.stop_loss:.2f}): {abs(e - s):.2f} away, at least "
                        f"{c.min_stop_atr_multiple:.2f} x ATR {_price(world.atr)} = {_price(need)}.")
            t = _target_at(long, e, s, reward)
            said.append(f"Target {t:.2f} (was {a.take_profit:.2f}) to keep {risk_reward(long, e, s, t):.2f}R.")
        if "min_risk_reward" in violations:
            before = t
            t = _target_at(long, e, s, c.min_risk_reward)
            said.append(f"Target {t:.2f} (was {before:.2f}): {risk_reward(long, e, s, t):.2f}R against the "
                        f"minimum {c.min_risk_reward:.2f}.")
        cap, binding = _largest_size(c, p, a.symbol, e, s)
        if w > cap + 1e-12:
            said.append(f"Size {cap:.2%} (was {w:.2%}), the most {binding} allows.")
            w = cap
        return said, _entry(long, a.symbol, w, e, s, t)


def read_failing_checks_only(player: object, coach: object) -> bool:
    """Whether these agents read no passing check's arithmetic: the house Coach quotes the failing checks, and the
    house Player revises by the violations' names. Not assumed of a subclass, which may read more."""
    return type(player) is HousePlayer and type(coach) is HouseCoach
