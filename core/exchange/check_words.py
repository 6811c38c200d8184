"""The arithmetic each check of the rules (core.exchange.rules) shows, in words, so a trader can redo the sum by hand.

One function per check, given the numbers the check compared: a check's words can then be written when it is made
or later, when someone reads them (a backtest's house Coach quotes the failing checks only; see rules._Checks).
"""

from __future__ import annotations


def ok(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def compared(value: float, threshold: float, passed: bool, at_most: bool, spec: str) -> str:
    """'v <= t' or 'v > t' written to `spec` (".4f"), with 8 digits when rounding would hide why a check failed."""
    if passed:
        return f"{value:{spec}} {'<=' if at_most else '>='} {threshold:{spec}} PASS"
    shown, limit = f"{value:{spec}}", f"{threshold:{spec}}"
    if shown == limit:
        shown, limit = f"{value:.8f}", f"{threshold:.8f}"
    return f"{shown} {'>' if at_most else '<'} {limit} FAIL"


class Prices:
    """An entry's price, stop and target to the cent, as each check of the entry shows them: written once, when a
    check's words are first written."""

    __slots__ = ("numbers", "words")

    def __init__(self, e: float, s: float, t: float):
        self.numbers = (e, s, t)
        self.words: tuple[str, str, str] | None = None

    def written(self) -> tuple[str, str, str]:
        if self.words is None:
            e, s, t = self.numbers
            self.words = f"{e:.2f}", f"{s:.2f}", f"{t:.2f}"
        return self.words


class AtRisk:
    """The risk to the new stops, term by term and summed, as both loss checks show it: written once."""

    __slots__ = ("terms", "total", "words")

    def __init__(self, terms: list[tuple[float, float, float]], total: float):
        self.terms, self.total = terms, total
        self.words: tuple[str, str] | None = None

    def written(self) -> tuple[str, str]:
        if self.words is None:
            self.words = (" + ".join(f"{w:.4f}x{abs(e - s):.2f}/{e:.2f}" for w, e, s in self.terms),
                          f"{self.total:.6f}")
        return self.words


def allowed(symbol: str, symbols: list[str], passed: bool) -> str:
    return f"{symbol} {'in' if passed else 'not in'} [{', '.join(symbols)}] {ok(passed)}"


def bracket(side_long: bool, prices: Prices, w: float, passed: bool) -> str:
    E, S, T = prices.written()
    return f"{'long' if side_long else 'short'} {f'{S} < {E} < {T}' if side_long else f'{T} < {E} < {S}'}, size {w:.4f} > 0 {ok(passed)}"


def risk_reward(side_long: bool, prices: Prices, rr: float, least: float, passed: bool) -> str:
    E, S, T = prices.written()
    e, s, t = prices.numbers
    return ((f"({T}-{E})/({E}-{S}) = {t - e:.2f}/{e - s:.2f} = " if side_long else
             f"({E}-{T})/({S}-{E}) = {e - t:.2f}/{s - e:.2f} = ") + compared(rr, least, passed, False, ".2f"))


def no_atr(symbol: str) -> str:
    return f"no ATR known for {symbol}, cannot verify FAIL"


def stop_atr(prices: Prices, distance: float, multiple: float, known: float, need: float, passed: bool) -> str:
    E, S, _ = prices.written()
    return f"|{E}-{S}| = {distance:.2f} vs {multiple:.2f}x{known:.2f} = " + compared(distance, need, passed, False, ".2f")


def position(symbol: str, old: float, after: float, size: float, limit: float, passed: bool) -> str:
    return f"{symbol} |{old:+.4f} {after - old:+.4f}| = " + compared(size, limit, passed, True, ".4f")


def open_positions(held: list[str], limit: int, passed: bool) -> str:
    return f"{len(held)} held ({', '.join(held) or 'none'}) {'<=' if passed else '>'} {limit} {ok(passed)}"


def leverage(held: list[str], positions: dict[str, float], total: float, limit: float, passed: bool) -> str:
    return (f"sum |position| = {' + '.join(f'{abs(positions[sym]):.4f}' for sym in held) or '0'} = "
            + compared(total, limit, passed, True, ".4f"))


def daily_loss(minus_today: float, start_equity: float, risk: AtRisk, lost_today: float, daily: float, limit: float,
               passed: bool) -> str:
    risk_text, risk_sum = risk.written()
    return (f"max(0, {minus_today:.2f})/{start_equity:.2f} + {risk_text} = "
            f"{lost_today:.6f} + {risk_sum} = " + compared(daily, limit, passed, True, ".6f"))


def drawdown(equity: float, peak: float, risk: AtRisk, drawn: float, total: float, limit: float, passed: bool) -> str:
    risk_text, risk_sum = risk.written()
    return (f"1 - {equity:.2f}/{peak:.2f} + {risk_text} = "
            f"{drawn:.6f} + {risk_sum} = " + compared(total, limit, passed, True, ".6f"))
