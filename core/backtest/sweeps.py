"""Sweeps: a grid of backtests, symbol x preset x seed, on any concurrent.futures.Executor.

    frame = core.sweep("sp500-2009", ["moderate", "aggressive"], None, None, challenge=0.06)

Every case is one BacktestSpec (one symbol, one schema, one seed) and its agents, all picklable,
so the same grid runs on a process pool over every core (the default with the house agents), on
threads (agents that cannot be pickled: Claude's wait on the network, and share the session's
spend guard), or on a Dask cluster through `Client(address).get_executor()`: no scheduler of our
own. A worker loads a symbol's bars once for all the cases it runs of that symbol and sends back
rows of figures, never frames. Rows come back in grid order whatever order the cases finish in, so
every executor gives the same DataFrame.
"""

from __future__ import annotations

import math
import numbers
import os
import pickle
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date

import pandas as pd

from core.backtest.engine import Backtest
from core.backtest.feed import Feed, SymbolFeed, backtest_bars
from core.backtest.spec import BacktestSpec, Costs, NamedSchema, named_schemas, parse_day
from core.backtest.challenge import ChallengeRules, pass_probability
from core.exchange.house import HouseCoach, HousePlayer
from core.exchange.errors import InvalidInput, MarketDataError
from core.market import OFFLINE_ENV, SETS, available_dates, universe_range, universe_symbols
from core.backtest.result import METRIC_LABELS
from core.exchange.schema import Constraints

THREADS = 4  # agents that wait on the network: a few calls in flight, the spend guard bounds the total
SYMBOLS_PER_CORE = 4  # a sweep of this many symbols per core runs a symbol's cases as one task (see _tasks)
CHALLENGE_PATHS = 2_000  # per case: the interval stays within about +-2 points
CHALLENGE_COLUMNS = ("p_pass", "ci_low", "ci_high", "p_fail_drawdown", "p_fail_daily", "p_timeout",
                     "median_days_to_pass")

Agents = Callable[[int], tuple[object, object]]
Progress = Callable[[int, int], None]


def house_agents(seed: int) -> tuple[HousePlayer, HouseCoach]:
    """The built-in agents for one seed of a sweep."""
    return HousePlayer(seed=seed), HouseCoach()


@dataclass(frozen=True)
class Case:
    """One backtest of a sweep: everything a worker needs, picklable. `spec` has one symbol and one schema."""

    spec: BacktestSpec
    player: object
    coach: object
    challenge: ChallengeRules | None = None
    online: bool | None = None

    @property
    def symbol(self) -> str:
        return self.spec.symbols[0]

    @property
    def preset(self) -> str:
        return self.spec.preset.name

    @property
    def seed(self) -> int:
        return self.spec.seed


def run_case(case: Case) -> dict:
    """Backtest one case and return its row: the metrics, the challenge figures, or the error."""
    return run_symbol([case])[0]


def run_symbol(cases: Sequence[Case]) -> list[dict]:
    """The rows of cases of one symbol and one date range, each as `run_case` gives it: the bars are
    loaded, validated and laid out once (one Feed) and every preset and seed reads them. A case whose
    agents' spend guard is spent is not run; its row says why."""
    feed: Feed | str | None = None
    rows = []
    for case in cases:
        refused = _guard_spent((case.player, case.coach))
        if refused:
            rows.append({**_row(case), "error": refused})
            continue
        if feed is None:
            feed = _feed(cases[0])
        rows.append(_run_on(case, feed))
    return rows


def _row(case: Case) -> dict:
    return {"symbol": case.symbol, "preset": case.preset, "seed": case.seed, "source": "", "error": ""}


def _feed(case: Case) -> Feed | str:
    """The case's bars as the engine reads them, or why there are none (every case of the symbol says so)."""
    spec = case.spec
    try:
        bars = backtest_bars(case.symbol, spec.start, spec.end, online=case.online)  # errors quote the dates asked
        return Feed([SymbolFeed.of(case.symbol, bars, spec.start, spec.end)], spec.start, spec.end)
    except (MarketDataError, InvalidInput, ValueError) as error:
        return str(error)


def _run_on(case: Case, feed: Feed | str) -> dict:
    row = _row(case)
    if isinstance(feed, str):
        return {**row, "error": feed}
    try:
        result = Backtest(case.spec, case.player, case.coach, feed=feed).summary()  # a row needs no more
    except (MarketDataError, InvalidInput, ValueError) as error:
        return {**row, "error": str(error)}
    row["source"] = result.source
    row.update({name: _number(result.metrics[name]) for name in METRIC_LABELS})
    if case.challenge is not None:
        returns = result.equity.pct_change().iloc[1:]
        outcome = pass_probability(returns, case.challenge, paths=CHALLENGE_PATHS, seed=case.seed)
        row.update({name: getattr(outcome, name) for name in CHALLENGE_COLUMNS})
    return row


def _number(value) -> float | int:
    if value is None:
        return math.nan
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _presets(presets: Iterable) -> list[tuple[str, Constraints]]:
    return [(schema.name, schema.constraints) for schema in named_schemas(presets)]


def _symbols(symbols: str | Sequence[str], start, end) -> tuple[list[str], date, date]:
    """A universe name stands for its members and, when no dates are given, its first and last day."""
    start = None if start is None else parse_day(start, "start")
    end = None if end is None else parse_day(end, "end")
    if isinstance(symbols, str) and symbols in SETS:
        first, last = universe_range(symbols)
        start, end = start or first, end or last
        if start > last or end < first:
            raise MarketDataError(f"start and end: {start} .. {end} is outside {symbols}'s days ({first} .. {last})")
        return universe_symbols(symbols), start, end
    listed = [symbols] if isinstance(symbols, str) else list(symbols)
    if start is None or end is None:
        raise InvalidInput("start and end: needed unless the symbols are a universe ("
                           + ", ".join(SETS) + ")")
    return listed, start, end


def _rules(challenge, constraints: Constraints) -> ChallengeRules | None:
    """The challenge of one preset: rules as given, or a target (or from_constraints' keywords) with its limits."""
    if challenge is None or isinstance(challenge, ChallengeRules):
        return challenge
    if isinstance(challenge, dict):
        return ChallengeRules.from_constraints(constraints, **challenge)
    return ChallengeRules.from_constraints(constraints, challenge)


def can_pickle(*objects) -> bool:
    """Whether the objects can cross to another process (agents holding an SDK client, a lock or a lambda cannot)."""
    try:
        pickle.dumps(objects)
    except Exception:  # an SDK client, a lock, a lambda: whatever cannot cross to another process
        return False
    return True


def _guard_spent(agents: tuple) -> str:
    """Why the agents' spend guard refuses further calls, or ''."""
    for agent in agents:
        guard = getattr(agent, "guard", None)
        if guard is None:
            continue
        if guard.dollars_per_session is not None and guard.spent_usd >= guard.dollars_per_session:
            return f"not run: the spend guard's ${guard.dollars_per_session:.2f} are spent"
        if guard.calls_per_hour is not None and guard.calls_last_hour() >= guard.calls_per_hour:
            return f"not run: the spend guard's {guard.calls_per_hour} calls this hour are used"
    return ""


def sweep(symbols: str | Sequence[str], presets, start=None, end=None, seeds: Sequence[int] = (0,),
          executor: Executor | None = None, *, agents: Agents | None = None,
          challenge: ChallengeRules | float | dict | None = None, allow_symbol: bool = True, online: bool | None = None,
          progress: Progress | None = None, **settings) -> pd.DataFrame:
    """Backtest every symbol x preset x seed; a row each, in that order, with the metrics and (when
    `challenge` is given) the pass probability.

    `symbols` is a list or a universe name ("sp500-2009": its members, and its dates when `start`
    and `end` are None). `presets` are names, Constraints or (name, Constraints). `agents(seed)`
    makes the (player, coach) of a seed (default: the house agents). `executor` is any
    concurrent.futures.Executor, e.g. Dask's `client.get_executor()`; by default a process pool
    over every core, or threads when the agents cannot be pickled (Claude), where a spent guard
    stops the cases not yet started. `challenge` is ChallengeRules, or a profit target with each
    preset's own limits, or ChallengeRules.from_constraints' keywords ({"profit_target_pct": 0.06,
    "max_days": 60}). `allow_symbol` adds each swept symbol to its case's `allowed_symbols`, so
    a preset's limits are tried on every symbol instead of rejecting all but its own list.
    `settings` are the spec's (capital, depth, walk_forward_split) or its costs' (fee_bps, slippage_bps,
    max_hold_days); every value is checked before any case starts.
    """
    cases = plan(symbols, presets, start, end, seeds, agents=agents, challenge=challenge, allow_symbol=allow_symbol,
                 online=online, **settings)
    return run_plan(cases, executor, progress)


def plan(symbols: str | Sequence[str], presets, start=None, end=None, seeds: Sequence[int] = (0,), *,
         agents: Agents | None = None, challenge: ChallengeRules | float | dict | None = None,
         allow_symbol: bool = True, online: bool | None = None, **settings) -> list[Case]:
    """The cases of a sweep (see `sweep`), every value checked before any of them runs: InvalidInput
    (or MarketDataError for a universe outside its dates, or symbols none of which has bars offline)."""
    symbols, start, end = _symbols(symbols, start, end)
    named = _presets(presets)
    base = _base_spec(symbols, named, start, end, seeds, settings)
    if online is False or (online is None and os.environ.get(OFFLINE_ENV) == "1"):
        if not any(available_dates(s) for s in base.symbols[:1_000]):
            raise MarketDataError(f"symbols: no local bars for {', '.join(base.symbols[:5])}"
                                  + (" and the others" if len(base.symbols) > 5 else "") + " (offline)")
    made = {seed: (agents or house_agents)(seed) for seed in seeds}
    cases = []
    for symbol in base.symbols:
        for name, constraints in named:
            schema = NamedSchema.model_construct(name=name, constraints=constraints)  # both checked in `base`
            spec = base.model_copy(update={"symbols": [symbol], "presets": [schema]})
            spec = spec.book_allowed() if allow_symbol else spec
            rules = _rules(challenge, spec.preset.constraints)
            cases += [Case(spec.model_copy(update={"seed": seed}), *made[seed], challenge=rules, online=online)
                      for seed in seeds]
    return cases


def run_plan(cases: list[Case], executor: Executor | None = None, progress: Progress | None = None) -> pd.DataFrame:
    """Run a sweep's cases on `executor` (see `sweep`); a row each, in the cases' order."""
    picklable = can_pickle(*{id(c.player): (c.player, c.coach) for c in cases}.values())
    own = executor is None
    if own:
        executor = default_executor(picklable)
    try:
        rows = _run(cases, _tasks(cases, picklable), executor, progress)
    finally:
        if own:
            executor.shutdown(cancel_futures=True)
    challenge = any(c.challenge is not None for c in cases)
    columns = ["symbol", "preset", "seed", "source", "error", *METRIC_LABELS, *(CHALLENGE_COLUMNS if challenge else ())]
    return pd.DataFrame(rows, columns=columns)


def default_executor(picklable: bool) -> Executor:
    """Where a grid of backtests runs when no executor is given: a process pool over every core for agents
    that can be pickled (the house's), else a few threads (agents that wait on the network)."""
    return ProcessPoolExecutor(cores()) if picklable else ThreadPoolExecutor(THREADS)


def cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one (a container limited to
    two cores of a larger machine gets two workers, not one per core of the machine), else every core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _tasks(cases: list[Case], picklable: bool) -> list[range]:
    """The cases each task runs: a symbol's presets and seeds together, so its bars are loaded once, when
    there are symbols enough to keep every core busy many times over; else one case a task, so a few
    symbols' presets still run side by side (and agents that wait on the network have calls in flight)."""
    starts = [i for i, case in enumerate(cases) if i == 0 or _bars_of(case) != _bars_of(cases[i - 1])]
    if not picklable or len(starts) < SYMBOLS_PER_CORE * cores():
        return [range(i, i + 1) for i in range(len(cases))]
    return [range(start, end) for start, end in zip(starts, [*starts[1:], len(cases)])]


def _bars_of(case: Case) -> tuple:
    return case.symbol, case.spec.start, case.spec.end, case.online


def _base_spec(symbols: list[str], named: list[tuple[str, Constraints]], start: date, end: date,
               seeds: Sequence[int], settings: dict) -> BacktestSpec:
    """The spec every case copies, validated once: symbols, dates, schemas, seeds and costs."""
    costs = {k: settings.pop(k) for k in ("fee_bps", "slippage_bps", "max_hold_days") if k in settings}
    spec = BacktestSpec(symbols=symbols, start=start, end=end, presets=[named[0]] if named else [],
                        costs=Costs(**costs), **settings)
    for seed in seeds:
        spec.changed(seed=seed)
    return spec


def _run(cases: list[Case], tasks: list[range], executor: Executor, progress: Progress | None) -> list[dict]:
    futures = {executor.submit(run_symbol, cases[task.start:task.stop]): task for task in tasks}
    rows: list[dict | None] = [None] * len(cases)
    done = 0
    for future in as_completed(futures):
        task = futures[future]
        rows[task.start:task.stop] = future.result()
        done += len(task)
        if progress is not None:
            progress(done, len(cases))
    return rows
