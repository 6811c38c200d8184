"""The house agents: a rule-based Player and Coach that need no key and no network.

The Player trades the trend (sma5 against sma10), puts its stop one volatility unit away and
its target a multiple of that risk beyond. Its first proposal is sometimes flawed the way a
hurried trader's is (too big, target too close, a stray symbol, a stop inside the noise); each
revision fixes exactly the violations the Coach named. It has a style of its own: it never
trades less than 1 % of equity and never aims further than 2.5 R, so a schema tighter than
that (the `strict` preset) keeps rejecting it. Everything is deterministic for a world state
and a seed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Generator
from typing import NamedTuple

from core.agent import Turn
from core.rules import risk_reward
from core.schema import Action, Constraints, Portfolio, Proposal, Verdict, WorldState

MIN_SIZE = 0.01  # the house Player's smallest trade, a fraction of equity
MAX_REWARD_MULTIPLE = 2.5  # the furthest target it will aim for, in multiples of its risk
STRAY_SYMBOL = "QQQ"  # an index it likes to watch, outside every shipped preset
_STOP_UNITS = {"low": 0.01, "medium": 0.02, "high": 0.035}  # stop distance / price without an ATR
_FLAWS = ("oversize", "thin_target", "stray_symbol", "tight_stop")


def _floor(x: float, digits: int) -> float:
    scale = 10**digits
    return math.floor(x * scale + 1e-9) / scale


def _ceil(x: float, digits: int) -> float:
    scale = 10**digits
    return math.ceil(x * scale - 1e-9) / scale


class _Plan(NamedTuple):
    """One entry in the Player's terms, before prices are rounded to the cent."""

    long: bool
    size: float
    distance: float  # entry to stop, in price
    reward: float  # target distance in multiples of `distance`
    watch_stray: bool = False

    def actions(self, symbol: str, price: float) -> list[Action]:
        entry = round(price, 2)
        stop = _floor(entry - self.distance, 2) if self.long else _ceil(entry + self.distance, 2)
        risk = abs(entry - stop)
        # Round the target away from the entry, so cents never cost the ratio it aimed for.
        target = _ceil(entry + self.reward * risk, 2) if self.long else _floor(entry - self.reward * risk, 2)
        trade = Action(
            action_type="enter_long" if self.long else "enter_short", symbol=symbol,
            size_pct=round(self.size, 4), entry_price=entry, stop_loss=round(stop, 2), take_profit=round(target, 2),
        )
        if self.watch_stray:
            return [trade, Action(action_type="hold", symbol=STRAY_SYMBOL)]
        return [trade]


class HousePlayer:
    """Rule-based Player: trend following, volatility stops, fixes what the Coach names."""

    name = "house-player"

    def __init__(self, seed: int = 0, flaw_rate: float = 0.5):
        self.seed = seed
        self.flaw_rate = flaw_rate

    def propose(
        self, world: WorldState, constraints: Constraints, portfolio: Portfolio, history: list[dict]
    ) -> Generator[str, None, Turn]:
        """Stream the reasoning a sentence at a time, return the proposal."""
        if history:
            sentences, actions = self._revise(world, constraints, portfolio, history[-1])
        else:
            sentences, actions = self._first(world, constraints, portfolio)
        reasoning = " ".join(sentences)
        for sentence in sentences[:-1]:
            yield sentence + " "
        yield sentences[-1]
        return Turn(Proposal(reasoning=reasoning, actions=actions))

    # -- the first proposal ---------------------------------------------------------------

    def _first(self, world: WorldState, c: Constraints, p: Portfolio) -> tuple[list[str], list[Action]]:
        trend = "up" if world.sma5 > world.sma10 else "down" if world.sma5 < world.sma10 else "flat"
        said = [f"{world.symbol} at {world.price:.2f}: sma5 {world.sma5:.2f} vs sma10 {world.sma10:.2f}, trend {trend}, "
                f"{world.volatility_regime} volatility."]
        held = p.positions.get(world.symbol, 0.0)
        if held or world.position != "flat":
            side_long = held > 0 if held else world.position == "long"
            if (trend == "down" and side_long) or (trend == "up" and not side_long):
                said.append(f"The trend has turned against the {'long' if side_long else 'short'}: exit.")
                return said, [Action(action_type="exit", symbol=world.symbol)]
            said.append(f"Already {'long' if side_long else 'short'} with the trend: hold.")
            return said, [Action(action_type="hold", symbol=world.symbol)]
        if trend == "flat":
            said.append("No trend to trade: hold.")
            return said, [Action(action_type="hold", symbol=world.symbol)]

        plan = self._ideal(world, c, p, trend == "up")
        # A stable hash of the seed and the world: the same inputs give the same flaw in any process.
        draw = zlib.crc32(f"{self.seed}|{world.symbol}|{world.price}|{world.sma5}|{world.sma10}|{world.as_of}".encode())
        if draw % 1000 < self.flaw_rate * 1000:
            flaw = _FLAWS[(draw // 1000) % len(_FLAWS)]
            if flaw == "oversize":
                plan = plan._replace(size=_floor(c.max_single_trade_pct * 1.6, 4))
            elif flaw == "thin_target":
                plan = plan._replace(reward=round(min(plan.reward, c.min_risk_reward) * 0.7, 2))
            elif flaw == "stray_symbol":
                plan = plan._replace(watch_stray=True)
            else:
                plan = plan._replace(distance=plan.distance * 0.5)
        said.append(
            f"{'Long' if plan.long else 'Short'} {plan.size:.2%} of equity with the stop {plan.distance:.2f} away "
            f"and the target at {plan.reward:.2f}R."
        )
        if plan.watch_stray:
            said.append(f"Keep {STRAY_SYMBOL} on watch as the market gauge.")
        return said, plan.actions(world.symbol, world.price)

    def _ideal(self, world: WorldState, c: Constraints, p: Portfolio, long: bool) -> _Plan:
        """The plan that respects every limit the house style allows it to respect."""
        distance = world.atr * 1.5 if world.atr else world.price * _STOP_UNITS[world.volatility_regime]
        if c.min_stop_atr_multiple and world.atr:
            distance = max(distance, c.min_stop_atr_multiple * world.atr + 0.01)
        reward = min(max(c.min_risk_reward, 2.0), MAX_REWARD_MULTIPLE)
        return _Plan(long, self._size(world, c, p, distance, long, c.max_single_trade_pct), distance, reward)

    @staticmethod
    def _size(world: WorldState, c: Constraints, p: Portfolio, distance: float, long: bool, want: float) -> float:
        held = p.positions.get(world.symbol, 0.0)
        room_position = c.max_position_pct - held if long else c.max_position_pct + held
        room_leverage = c.max_leverage - sum(abs(v) for v in p.positions.values())
        lost_today = max(0.0, -p.today_pnl) / p.start_of_day_equity
        drawn = 1 - p.equity / p.peak_equity
        budget = min(c.max_daily_loss_pct - lost_today, c.max_drawdown_pct - drawn) * 0.9
        room_risk = budget * world.price / distance
        size = _floor(min(want, room_position, room_leverage, room_risk), 4)
        return max(size, MIN_SIZE)

    # -- revisions ------------------------------------------------------------------------

    def _revise(self, world: WorldState, c: Constraints, p: Portfolio, last: dict) -> tuple[list[str], list[Action]]:
        previous = Proposal.model_validate(last["proposal"])
        violations = last["evaluation"]["violations"]
        said = [f"Round {last['round']} was {last['evaluation']['decision']}"
                + (f" for {', '.join(violations)}." if violations else ".")]
        actions = [a for a in previous.actions if a.symbol in c.allowed_symbols]
        if "allowed_symbols" in violations:
            dropped = sorted({a.symbol for a in previous.actions} - {a.symbol for a in actions})
            said.append(f"Dropped {', '.join(dropped)}: not in the allowed list.")
        entries = [a for a in actions if a.is_entry]
        if not entries:
            if not actions:
                actions = [Action(action_type="hold", symbol=world.symbol)]
                said.append("Nothing left to trade: hold.")
            return said, actions

        trade = entries[0]
        long = trade.action_type == "enter_long"
        ideal = self._ideal(world, c, p, long)
        plan = _Plan(long, trade.size_pct, abs(trade.entry_price - trade.stop_loss),
                     risk_reward(long, trade.entry_price, trade.stop_loss, trade.take_profit)
                     if trade.entry_price != trade.stop_loss else ideal.reward)
        for name in violations:
            if name == "bracket":
                plan = ideal
                said.append("Rebuilt the bracket around the current price.")
            elif name in ("max_single_trade_pct", "max_position_pct", "max_leverage", "max_daily_loss_pct", "max_drawdown_pct"):
                size = min(plan.size, self._size(world, c, p, plan.distance, long, min(plan.size, c.max_single_trade_pct)))
                said.append(f"{name}: size cut from {plan.size:.2%} to {size:.2%}.")
                plan = plan._replace(size=size)
            elif name == "min_risk_reward":
                reward = min(max(plan.reward, c.min_risk_reward), MAX_REWARD_MULTIPLE)
                said.append(f"Target moved out to {reward:.2f}R (minimum {c.min_risk_reward:.2f}).")
                plan = plan._replace(reward=reward)
            elif name == "min_stop_atr_multiple":
                size = self._size(world, c, p, ideal.distance, long, plan.size)
                said.append(f"Stop widened to {ideal.distance:.2f} and size set to {size:.2%} to keep the risk.")
                plan = plan._replace(distance=ideal.distance, size=min(plan.size, size))
            elif name == "max_open_positions":
                said.append("No room for another position: hold instead.")
                return said, [Action(action_type="hold", symbol=world.symbol)]
        rest = [a for a in actions if not a.is_entry]
        return said, plan.actions(trade.symbol, trade.entry_price) + rest


class HouseCoach:
    """Writes the critique from the rules' checks: each failing check with its arithmetic.

    The verdict itself and the full list of checks are the rules' (the round's record); the
    critique says what has to change, so nothing is said twice.
    """

    name = "house-coach"

    def critique(
        self, proposal: Proposal, verdict: Verdict, constraints: Constraints, world: WorldState, portfolio: Portfolio
    ) -> Generator[str, None, Turn]:
        """Stream the critique a line at a time, return it whole."""
        failing = [check for check in verdict.checks if not check.passed]
        lines = [f"{'[action ' + str(check.action + 1) + '] ' if check.action is not None else ''}{check.arithmetic}"
                 for check in failing]
        passed = len(verdict.checks) - len(failing)
        if not failing:
            lines.append(f"All {passed} checks pass: approved.")
        else:
            lines.append(f"The other {passed} checks pass." if passed else "No check passes.")
        if verdict.decision == "ABORT":
            lines.append("A hard limit was broken: the exchange stops here.")
        # A line at a time: the UI types them out at its own pace.
        for line in lines[:-1]:
            yield line + "\n"
        yield lines[-1]
        return Turn("\n".join(lines))
