"""Challenge pass probability: would this daily P&L pass a funded-account challenge? (SPEC §7)

A challenge is our rule set seen from the account's side: a loss limit (trailing from the peak, as
the `mll_breached` breaker, or static from the starting balance), a daily loss limit, a profit target,
maybe a consistency rule and a minimum of trading days, and a time limit; a `Challenge` chains phases
(a two-step evaluation), each from a fresh account. `pass_probability` bootstraps a series of daily
returns into many paths and walks each one day by day, many paths at once with numpy;
`rolling_pass_rate` walks the actual sequence from every historical start day.

The walk, per path, from equity 1.0: a day whose return is <= -max_daily_loss_pct fails it
(daily); equity <= running peak x (1 - max_drawdown_pct) fails it (drawdown; static: equity <=
1 - max_drawdown_pct); otherwise it passes on the first day with equity >= 1 + profit_target_pct, at
least `min_trading_days` days with a non-zero return and, when set, the best day's gain <=
consistency_rule_pct x the total profit (gains in units of the starting equity, as the consistency
breaker compares dollars); a path still running after `max_days` days (ten years of trading days
when there is no time limit) times out. Limits compare with the rules' tolerance of 1e-9.

Bounded work: at most MAX_HORIZON_DAYS days per phase, MAX_PATHS paths and MAX_RETURN_DAYS days of
returns, walked PATH_CELLS (path x day) cells at a time, so memory stays near 300 MB whatever the input.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.exchange.errors import InvalidInput
from core.exchange.schema import Constraints

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
TOLERANCE = 1e-9  # as the rules: a return of exactly -2.00 % breaches a 2 % daily limit
MAX_HORIZON_DAYS = 2520
"""The longest a phase runs: ten years of 252 trading days. With no time limit a path times out there;
a longer time limit or minimum of trading days is refused (a path of 10**9 days would run for days)."""
MAX_PATHS = 100_000
"""The most bootstrap paths: the 95 % interval is then within 0.3 points; more paths add time, not knowledge
(the backtest's own days are the uncertainty that remains)."""
MAX_DAILY_RETURN = 10.0  # +1,000 % in a day: above it is a unit mistake, and compounding it overflows floats
MAX_RETURN_DAYS = 100_000
"""The most daily returns a challenge reads (about 400 years of trading days)."""
MAX_RETURNS_FILE_BYTES = 32 * 2**20
"""The largest returns file read (32 MiB: 100,000 days with a date and an equity column fit several times)."""
CHUNK_DAYS = 256  # days walked per numpy step; paths that finished drop out between steps
PATH_CELLS = 10_000 * CHUNK_DAYS  # path x day cells per step: 10,000 paths of 256 days (about 20 MB an array)
DRAWDOWN_RULES = ("trailing", "static")

TIMEOUT, PASS, DRAWDOWN, DAILY, OPEN = 0, 1, 2, 3, 4  # a path's outcome; OPEN: the history ran out

# Draws the returns of days [d0, d1) for the given paths; NaN where a path has no more data.
Draw = Callable[[np.ndarray, int, int], np.ndarray]


def _fraction(name: str, value, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or not 0 < value <= 1:
        raise InvalidInput(f"{name}: must be a fraction in (0, 1] (0.06 = 6 %), got {value!r}")
    return float(value)


def _whole(name: str, value, minimum: int, *, allow_none: bool = False, maximum: int | None = None,
           why: str = "") -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInput(f"{name}: must be a whole number of at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name}: {value:,} is more than the {maximum:,}{why} allowed")
    return int(value)


@dataclass(frozen=True)
class ChallengeRules:
    """A funded-account challenge: fractions of the starting equity, days as trading days.

    `drawdown` "trailing" measures the loss limit from the running peak, "static" from the starting
    balance; `max_daily_loss_pct` None is no daily limit; `max_days` None runs up to MAX_HORIZON_DAYS."""

    profit_target_pct: float
    max_drawdown_pct: float
    max_daily_loss_pct: float | None
    consistency_rule_pct: float | None = None
    min_trading_days: int = 0
    max_days: int | None = None
    drawdown: str = "trailing"

    def __post_init__(self) -> None:
        _fraction("profit_target_pct", self.profit_target_pct)
        _fraction("max_drawdown_pct", self.max_drawdown_pct)
        _fraction("max_daily_loss_pct", self.max_daily_loss_pct, allow_none=True)
        _fraction("consistency_rule_pct", self.consistency_rule_pct, allow_none=True)
        horizon = " (ten years of trading days)"
        _whole("min_trading_days", self.min_trading_days, 0, maximum=MAX_HORIZON_DAYS, why=horizon)
        _whole("max_days", self.max_days, 1, allow_none=True, maximum=MAX_HORIZON_DAYS, why=horizon)
        if self.drawdown not in DRAWDOWN_RULES:
            raise InvalidInput(f"drawdown: must be one of {', '.join(DRAWDOWN_RULES)}, got {self.drawdown!r}")

    @property
    def horizon(self) -> int:
        """The days a path runs at most: the time limit, else MAX_HORIZON_DAYS."""
        return self.max_days or MAX_HORIZON_DAYS

    @classmethod
    def from_constraints(cls, constraints: Constraints, profit_target_pct: float, *, min_trading_days: int = 0,
                         max_days: int | None = None, consistency: bool = True,
                         drawdown: str = "trailing") -> ChallengeRules:
        """The challenge a preset describes: its drawdown, daily loss and consistency limits, plus a target."""
        return cls(profit_target_pct=profit_target_pct, max_drawdown_pct=constraints.max_drawdown_pct,
                   max_daily_loss_pct=constraints.max_daily_loss_pct,
                   consistency_rule_pct=constraints.consistency_rule_pct if consistency else None,
                   min_trading_days=min_trading_days, max_days=max_days, drawdown=drawdown)


@dataclass(frozen=True)
class Challenge:
    """A named challenge of one or more phases, each passed in turn from a fresh account (a two-step evaluation)."""

    name: str
    title: str
    phases: tuple[ChallengeRules, ...]
    about: str = ""

    def __post_init__(self) -> None:
        if not self.phases or not all(isinstance(p, ChallengeRules) for p in self.phases):
            raise InvalidInput(f"phases: a challenge needs one or more phases of rules, got {self.phases!r}")


def phases_of(rules: ChallengeRules | Challenge) -> tuple[ChallengeRules, ...]:
    """The phases a challenge is walked through: one for plain rules."""
    return rules.phases if isinstance(rules, Challenge) else (rules,)


@dataclass(frozen=True)
class ChallengeResult:
    """The share of simulated paths that passed, its Wilson 95 % interval, and how the rest ended."""

    p_pass: float
    ci_low: float
    ci_high: float
    p_fail_drawdown: float
    p_fail_daily: float
    p_timeout: float
    median_days_to_pass: float | None
    paths: int
    block: int
    seed: int

    def to_dict(self) -> dict:
        """A JSON-ready dict (floats rounded to 6 places)."""
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def wilson_interval(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion passed/n (never outside [0, 1], not empty at 0 or n)."""
    if n <= 0:
        return 0.0, 1.0
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (0.0 if passed == 0 else centre - half), (1.0 if passed == n else centre + half)


def as_returns(daily_returns) -> np.ndarray:
    """Daily returns as a float array; raises InvalidInput naming the first bad value."""
    try:
        values = np.asarray(daily_returns, dtype=float).ravel()
    except (TypeError, ValueError):
        raise InvalidInput("daily_returns: not a series of numbers") from None
    if not len(values):
        raise InvalidInput("daily_returns: empty (need at least one day)")
    if len(values) > MAX_RETURN_DAYS:
        raise InvalidInput(f"daily_returns: {len(values):,} days is more than the {MAX_RETURN_DAYS:,} (about 400 "
                           "years of trading days) a challenge reads")
    bad = ~np.isfinite(values) | (values < -1) | (values > MAX_DAILY_RETURN)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidInput(f"daily_returns: day {i + 1} is {float(values[i])!r} (need a finite return from -1 "
                           f"to {MAX_DAILY_RETURN:g}, a fraction: 0.01 is 1 %)")
    return values


def _walk(draw: Draw, n_paths: int, rules: ChallengeRules, horizon: int,
          step: int = CHUNK_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """Walk every path day by day (a chunk of days per numpy step): the outcome and its day per path."""
    outcome = np.full(n_paths, TIMEOUT, dtype=np.int8)
    day = np.full(n_paths, horizon, dtype=np.int64)
    alive = np.arange(n_paths)
    equity, peak = np.ones(n_paths), np.ones(n_paths)
    active, best = np.zeros(n_paths, dtype=np.int64), np.full(n_paths, -np.inf)
    trailing = rules.drawdown == "trailing"
    d0 = 0
    while d0 < horizon and alive.size:
        d1 = min(horizon, d0 + step)
        r = draw(alive, d0, d1)
        curve = equity[:, None] * np.cumprod(1 + r, axis=1)
        no_data = np.isnan(r)
        daily = r <= -rules.max_daily_loss_pct + TOLERANCE if rules.max_daily_loss_pct is not None \
            else np.zeros_like(no_data)
        if trailing:
            peaks = np.maximum(np.maximum.accumulate(curve, axis=1), peak[:, None])
            drawdown = curve <= peaks * (1 - rules.max_drawdown_pct) + TOLERANCE
        else:  # static: from the starting balance, whatever the path made since
            drawdown = curve <= (1 - rules.max_drawdown_pct) + TOLERANCE
        passed = curve >= 1 + rules.profit_target_pct - TOLERANCE
        days_on = bests = None  # counted only when a rule needs them (the walk's hot loop)
        if rules.min_trading_days:
            days_on = active[:, None] + np.cumsum(r != 0, axis=1)
            passed &= days_on >= rules.min_trading_days
        if rules.consistency_rule_pct is not None:
            gains = np.empty_like(curve)  # a day's gain: the equity before it times its return
            gains[:, 0] = equity * r[:, 0]
            gains[:, 1:] = curve[:, :-1] * r[:, 1:]
            bests = np.maximum(np.maximum.accumulate(gains, axis=1), best[:, None])
            passed &= bests <= rules.consistency_rule_pct * (curve - 1) + TOLERANCE
        event = no_data | daily | drawdown | passed
        ended = event.any(axis=1)
        rows = np.flatnonzero(ended)
        first = event[rows].argmax(axis=1)
        code = np.where(no_data[rows, first], OPEN, np.where(daily[rows, first], DAILY,
                        np.where(drawdown[rows, first], DRAWDOWN, PASS)))
        outcome[alive[rows]] = code
        day[alive[rows]] = d0 + first + np.where(code == OPEN, 0, 1)
        going = ~ended
        equity = curve[going, -1]
        peak = peaks[going, -1] if trailing else peak[going]
        active = days_on[going, -1] if days_on is not None else active[going]
        best = bests[going, -1] if bests is not None else best[going]
        alive = alive[going]
        d0 = d1
    return outcome, day


def _in_batches(n_paths: int, step: int, walk: Callable[[int, int], tuple[np.ndarray, np.ndarray]]):
    """Walk paths [0, n) a batch at a time, so that a step holds at most PATH_CELLS cells: bounded memory."""
    batch = max(1, PATH_CELLS // step)
    outcome, day = np.empty(n_paths, dtype=np.int8), np.empty(n_paths, dtype=np.int64)
    for b0 in range(0, n_paths, batch):
        b1 = min(n_paths, b0 + batch)
        outcome[b0:b1], day[b0:b1] = walk(b0, b1)
    return outcome, day


def _bootstrap(returns: np.ndarray, rules: ChallengeRules, n_paths: int, block: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One phase of `n_paths` bootstrap paths: the outcome and its day per path."""
    horizon = rules.horizon
    if not returns.any():  # not one day moved (no trades): every path runs out of time, no need to walk it
        return np.full(n_paths, TIMEOUT, dtype=np.int8), np.full(n_paths, horizon, dtype=np.int64)
    step = block * max(1, CHUNK_DAYS // block)  # every step is whole blocks

    def walk(b0: int, b1: int):
        size = b1 - b0

        def draw(rows: np.ndarray, d0: int, d1: int) -> np.ndarray:
            # The starts are drawn for every path of the batch alike, so a path does not depend on which
            # others are still running.
            starts = rng.integers(0, len(returns) - block + 1, size=(size, -(-(d1 - d0) // block)))
            if block == 1:
                return returns[starts[rows]]
            days = np.arange(d1 - d0)  # day j of the step is day j % block of its block j // block
            return returns[starts[rows][:, days // block] + days % block]

        return _walk(draw, size, rules, horizon, step)

    return _in_batches(n_paths, min(step, horizon), walk)


def pass_probability(daily_returns, rules: ChallengeRules | Challenge, paths: int = 10_000, block: int = 1,
                     seed: int = 0) -> ChallengeResult:
    """Monte-Carlo probability of passing the challenge: `paths` bootstrap paths of the daily returns
    in blocks of `block` consecutive days (1 = independent days), each walked as the module says; with
    phases, a path that passes one starts the next from a fresh account on new draws. With no `max_days`
    a phase runs up to MAX_HORIZON_DAYS (ten years of trading days), then counts as a timeout."""
    returns = as_returns(daily_returns)
    _whole("paths", paths, 1, maximum=MAX_PATHS)
    _whole("block", block, 1)
    _whole("seed", seed, 0)
    if block > len(returns):
        raise InvalidInput(f"block: {block} days is longer than the {len(returns)} days of returns")
    rng = np.random.default_rng(seed)
    outcome = np.full(paths, TIMEOUT, dtype=np.int8)
    day = np.zeros(paths, dtype=np.int64)
    going = np.arange(paths)  # the paths still in the challenge
    for phase in phases_of(rules):
        outcome[going], walked = _bootstrap(returns, phase, len(going), block, rng)
        day[going] += walked
        going = going[outcome[going] == PASS]
        if not going.size:
            break
    passed = int((outcome == PASS).sum())
    low, high = wilson_interval(passed, paths)
    return ChallengeResult(
        p_pass=passed / paths, ci_low=low, ci_high=high,
        p_fail_drawdown=float((outcome == DRAWDOWN).mean()), p_fail_daily=float((outcome == DAILY).mean()),
        p_timeout=float((outcome == TIMEOUT).mean()),
        median_days_to_pass=float(np.median(day[outcome == PASS])) if passed else None,
        paths=paths, block=block, seed=seed,
    )


def rolling_pass_rate(daily_returns, rules: ChallengeRules | Challenge) -> float:
    """The share of historical start days from which the actual sequence passes (each phase from the
    day after the last one passed). With time limits, only start days with that many days of history
    after them count; without, every start day counts and one the history ends on before a verdict did
    not pass. A phase runs at most MAX_HORIZON_DAYS. NaN when no start day counts."""
    returns = as_returns(daily_returns)
    n = len(returns)
    phases = phases_of(rules)
    limited = all(phase.max_days for phase in phases)
    starts = n - sum(phase.max_days for phase in phases) + 1 if limited else n
    if starts <= 0:
        return math.nan
    if not returns.any():
        return 0.0  # equity never moves: no start day passes
    horizons = [phase.max_days or min(n, MAX_HORIZON_DAYS) for phase in phases]
    padded = np.concatenate([returns, np.full(sum(horizons), np.nan)])
    offsets = np.arange(starts)  # where each start day's current phase begins
    for phase, horizon in zip(phases, horizons):
        def walk(b0: int, b1: int, phase=phase, horizon=horizon, mine=offsets):
            def draw(rows: np.ndarray, d0: int, d1: int) -> np.ndarray:
                return padded[mine[b0:b1][rows][:, None] + np.arange(d0, d1)]
            return _walk(draw, b1 - b0, phase, horizon)

        outcome, day = _in_batches(len(offsets), min(CHUNK_DAYS, horizon), walk)
        offsets = offsets[outcome == PASS] + day[outcome == PASS]
    return len(offsets) / starts


def read_returns(path: str | Path) -> pd.Series:
    """Daily returns from a CSV file: a `return`/`returns` column, else an `equity` column (its
    day-to-day changes), else the one numeric column. Raises InvalidInput naming the problem; a file
    above MAX_RETURNS_FILE_BYTES is refused before it is read."""
    try:
        size = os.path.getsize(path)
        if size <= MAX_RETURNS_FILE_BYTES:
            frame = pd.read_csv(path, nrows=MAX_RETURN_DAYS + 2)  # one more than an equity column needs: too long
    except OSError as error:
        raise InvalidInput(f"returns: cannot read {path}: {error.strerror or error}") from None
    except (ValueError, pd.errors.ParserError) as error:
        raise InvalidInput(f"returns: {path} is not a CSV file: {error}") from None
    if size > MAX_RETURNS_FILE_BYTES:
        raise InvalidInput(f"returns: {path} is {size / 2**20:,.1f} MiB; a returns file may be at most "
                           f"{MAX_RETURNS_FILE_BYTES // 2**20} MiB")
    if len(frame) > MAX_RETURN_DAYS + 1:
        raise InvalidInput(f"returns: {path} has more than the {MAX_RETURN_DAYS:,} days (about 400 years of trading "
                           "days) a challenge reads")
    columns = {str(c).strip().lower(): c for c in frame.columns}
    if "return" in columns or "returns" in columns:
        series = frame[columns.get("return", columns.get("returns"))]
    elif "equity" in columns:
        series = pd.to_numeric(frame[columns["equity"]], errors="coerce").pct_change().iloc[1:]
    else:
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        if len(numeric) != 1:
            raise InvalidInput(f"returns: {path} needs a 'return' or 'equity' column, or exactly one numeric "
                               f"column (it has {', '.join(map(str, frame.columns)) or 'none'})")
        series = frame[numeric[0]]
    series = pd.to_numeric(series, errors="coerce")
    as_returns(series)  # the named error for a bad value
    return series.reset_index(drop=True)
