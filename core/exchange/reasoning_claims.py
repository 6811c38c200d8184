"""How reasoning_check compares a claim read from the reasoning with what the proposal's actions do.

The tolerance (see core.exchange.reasoning): half a unit of the last stated digit, plus the error quoting prices to the
cent makes in that quantity, plus 1e-9; a stop or target is a price or a distance from the entry, whichever is nearer.
"""

from __future__ import annotations

from core.exchange.schema import Action

# An entry's bracket as the claims read it: (entry, stop, target, size, risk, reward), worked out once a proposal.
_Bracket = tuple[float, float, float, float, float, float]


def _brackets(actions: list[Action]) -> list[_Bracket]:
    brackets = []
    for a in actions:
        if a.is_entry:
            # float(): a claim's actual value is built unvalidated, and must be the float validating would make of it
            e, s, t = float(a.entry_price), float(a.stop_loss), float(a.take_profit)
            brackets.append((e, s, t, float(a.size_pct), abs(e - s), abs(t - e)))
    return brackets


def _candidates(quantity: str, unit: str, bracket: _Bracket) -> tuple[tuple[float, float], ...]:
    """(actual value, allowance for cent-rounded prices) for each way to read the claim on this entry."""
    e, s, t, w, risk, reward = bracket
    if quantity == "entry":
        return ((e, 0.0),)
    if quantity == "size":
        return ((w * 100, 0.0),)
    if quantity == "ratio":
        ratio = reward / risk if risk else float("inf")
        return ((ratio, 0.01 * (1 + ratio) / risk if risk > 0 else 0.0),)
    distance = risk if quantity in ("stop", "risk") else reward
    if unit == "%":  # of the price, or of equity at this size
        return (100 * distance / e, 1 / e), (100 * w * distance / e, w / e)
    if quantity == "stop" or quantity == "target":  # a price, or a distance from the entry
        return (s if quantity == "stop" else t, 0.0), (distance, 0.01)
    return ((distance, 0.01),)


def _compare(quantity: str, value: float, unit: str, decimals: int,
             brackets: list[_Bracket]) -> tuple[float | None, bool]:
    """The nearest actual value over the entries and its readings (the first of equals), and whether the claim holds."""
    best_miss = best = None  # the miss beyond the cent allowance, and its actual value
    for bracket in brackets:
        for actual, cents in _candidates(quantity, unit, bracket):
            miss = abs(value - actual) - cents
            if best_miss is None or miss < best_miss:
                best_miss, best = miss, actual
    if best_miss is None:
        return None, False
    return _rounded(best, 6), best_miss <= (_HALF_UNITS[decimals] if decimals < len(_HALF_UNITS) else _allowance(decimals))


def _allowance(decimals: int) -> float:
    """How far a number stated to `decimals` digits may miss: half a unit of its last digit, plus 1e-9."""
    return 0.5 * 10 ** -decimals + 1e-9


_HALF_UNITS = tuple(map(_allowance, range(8)))  # the usual ones, worked out once


def _rounded(x: float, places: int) -> float:
    """round(x, places), exactly. round() writes x in decimal and reads it back, ten times the cost of the rest of a
    claim; most values (prices, sizes, a score of 1.0) are whole in units of the last place, and for those the
    arithmetic is exact: when x * 10**places rounds to a whole N below 2**43, x itself is within 2**-11 units of N
    (no tie), so round() would read back N / 10**places, and IEEE division of two exact floats is that same nearest
    float."""
    scale = _SCALES[places]
    whole = x * scale
    if whole.is_integer() and -_EXACT < whole < _EXACT:
        return whole / scale
    return round(x, places)


_SCALES = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
_EXACT = 2.0 ** 43


_DOES = {"long": "enter_long", "short": "enter_short", "exit": "exit", "hold": "hold"}  # words -> action_type


def _does(side: str, symbol: str | None, actions: list[Action]) -> bool:
    """Whether an action does what the words announce (a side, an exit, a hold; on that symbol when one is named)."""
    wanted = _DOES[side]
    for a in actions:  # a plain loop: any() over a generator costs more than the look itself
        if a.action_type == wanted and (symbol is None or a.symbol == symbol):
            return True
    return False
