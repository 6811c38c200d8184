"""What each rule costs: the same backtest re-run with one limit changed, all else equal.

    spec = core.BacktestSpec(symbols=["MSFT", "AAPL", "IBM", "GOOG"], start="2012-01-03", end="2012-12-31",
                             presets=["aggressive"])
    core.attribution(spec)                                  # a row per limit, ranked by what it costs
    core.sensitivity(spec, "max_single_trade_pct", [0.01, 0.02, 0.05])
    core.frontier(spec, {"max_single_trade_pct": [0.02, 0.05], "max_leverage": [1, 2]}, rules)

Each variant is a whole backtest of the same days with the same agents and seed, so it sees what
no table of refused fills can: the entries the Player held back on its own because a limit left
no room. The variants run on any concurrent.futures.Executor, Dask's `client.get_executor()`
included, like sweeps; rows come back in the order asked whatever order the runs finish in.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed

import numpy as np
import pandas as pd
from pydantic import ValidationError

from core.backtest.challenge import Challenge, ChallengeRules, pass_probability
from core.backtest.engine import Backtest
from core.backtest.feed import Feed
from core.backtest.spec import BacktestSpec, NamedSchema
from core.backtest.sweeps import can_pickle, default_executor
from core.exchange.errors import InvalidInput
from core.exchange.house import HouseCoach, HousePlayer
from core.exchange.schema import Constraints

CHALLENGE_PATHS = 2_000  # per variant: P(pass) within about +-2 points, the same seed for every variant
FIGURES = ("total_return_pct", "drawdown_pct", "sharpe", "trades")
"""A variant's figures (the max drawdown as drawdown_pct, so it never shares a name with the limit max_drawdown_pct)."""

LIMITS = {  # constraint -> what it is: a rule the Coach checks, a circuit breaker before round 1, or both
    "allowed_symbols": "rule",
    "max_single_trade_pct": "rule",
    "max_position_pct": "rule",
    "max_open_positions": "rule",
    "max_leverage": "rule",
    "min_risk_reward": "rule",
    "min_stop_atr_multiple": "rule",
    "max_daily_loss_pct": "rule + breaker daily_loss_limit",
    "max_drawdown_pct": "rule + breaker mll_breached",
    "consistency_rule_pct": "breaker consistency_rule",
    "trading_cutoff_time": "breaker trading_cutoff",
    "tiers": "tiers",
}
"""Every limit attribution relaxes, one at a time."""

Progress = Callable[[int, int], None]


def _off(field: str, constraints: Constraints, spec: BacktestSpec):
    """The value that removes a limit, or the loosest the schema takes where it cannot be removed
    (fractions top out at 1.0: a consistency rule at 1.0 still stops a day whose gain exceeds all profit)."""
    if field == "allowed_symbols":
        return sorted(set(constraints.allowed_symbols) | set(spec.symbols))
    if field in ("trading_cutoff_time", "min_stop_atr_multiple"):
        return None
    if field == "tiers":
        return []
    if field == "min_risk_reward":
        return 0.01
    return _ceiling(field)


def _ceiling(field: str):
    """The largest value the schema accepts for an upper limit."""
    for bound in Constraints.model_fields[field].metadata:
        if hasattr(bound, "le"):
            return bound.le
    raise InvalidInput(f"relax: {field} has no largest value to relax to")


def _loosest(field: str, constraints: Constraints, spec: BacktestSpec):
    """The loosest value any shipped preset gives this limit."""
    from core.exchange.presets import list_presets, load_preset

    values = [getattr(load_preset(name), field) for name in list_presets()]
    if field == "allowed_symbols":
        return sorted(set(constraints.allowed_symbols).union(*values))
    if field in ("trading_cutoff_time", "min_stop_atr_multiple", "tiers"):
        return None if field != "tiers" else []
    if field == "min_risk_reward":
        return min(values)
    return max(values)


def _relaxed(relax, constraints: Constraints, spec: BacktestSpec) -> dict:
    """Each limit to relax, with its relaxed value."""
    if isinstance(relax, dict):
        unknown = [f for f in relax if f not in LIMITS]
        if unknown:
            raise InvalidInput(f"relax: {', '.join(map(str, unknown))} not among the limits ({', '.join(LIMITS)})")
        return dict(relax)
    if relax not in ("off", "loosest"):
        raise InvalidInput(f"relax: 'off', 'loosest' or a dict of values, got {relax!r}")
    pick = _off if relax == "off" else _loosest
    return {field: pick(field, constraints, spec) for field in LIMITS}


def _with(spec: BacktestSpec, changes: dict, *, in_tiers: bool = False) -> BacktestSpec:
    """The spec with some constraints of its schema changed, named after the change. `in_tiers`: a tier
    that sets a changed limit no longer does (relaxing a limit relaxes it whatever tier holds)."""
    schema = spec.preset
    data = schema.constraints.model_dump()
    if in_tiers and "tiers" not in changes:
        data["tiers"] = _tiers_without(data.get("tiers") or [], set(changes))
    try:
        constraints = Constraints.model_validate({**data, **changes})
    except ValidationError as error:
        from core.exchange.presets import explain

        raise InvalidInput(f"limits: {explain(error)}") from None
    name = schema.name + "".join(f", {k}={_short(v)}" for k, v in changes.items())
    return spec.model_copy(update={"presets": [NamedSchema.model_construct(name=name, constraints=constraints)]})


def _tiers_without(tiers: list[dict], limits: set[str]) -> list[dict]:
    """The tiers with `limits` taken out of what they set; a tier left setting nothing goes."""
    kept = []
    for tier in tiers:
        sets = {k: v for k, v in tier["set"].items() if k not in limits and v is not None}
        if sets:
            kept.append({**tier, "set": sets})
    return kept


def _short(value) -> str:
    if isinstance(value, list):
        return f"[{len(value)}]"
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _run(spec: BacktestSpec, player, coach, feed: Feed, challenge: ChallengeRules | None) -> dict:
    """One variant: its figures, and P(pass) with its interval when a challenge is given."""
    result = Backtest(spec, player, coach, feed=feed).summary()  # its figures need no more
    metrics = {**result.metrics, "drawdown_pct": result.metrics.get("max_drawdown_pct")}
    figures = {name: float(metrics.get(name) or 0.0) for name in FIGURES}
    if challenge is not None:
        returns = result.equity.pct_change().iloc[1:]
        odds = pass_probability(returns, challenge, paths=CHALLENGE_PATHS, seed=spec.seed)
        figures.update(p_pass=odds.p_pass, ci_low=odds.ci_low, ci_high=odds.ci_high)
    return figures


def _agents(spec: BacktestSpec, agents: tuple | None) -> tuple[object, object, bool]:
    """The (player, coach) of every variant, and whether they decide the same way every time (the house's do)."""
    if agents is None:
        if spec.agents != "house":
            raise InvalidInput(f"agents: the spec names {spec.agents!r}: pass agents=(player, coach) to run them")
        return HousePlayer(seed=spec.seed), HouseCoach(), True
    player, coach = agents
    return player, coach, isinstance(player, HousePlayer) and isinstance(coach, HouseCoach)


def _executor(player, coach) -> Executor:
    """Where a sweep would run these agents (sweeps.default_executor): every core, or a few threads."""
    return default_executor(can_pickle(player, coach))


def _run_all(specs: list[BacktestSpec], player, coach, challenge, executor: Executor | None, bars: dict | None,
             progress: Progress | None, cancel: Callable[[], bool] | None) -> list[dict | None]:
    """Every spec's figures, in order; None for those a cancel left unrun."""
    feed = Feed.load(specs[0].symbols, specs[0].start, specs[0].end, bars)  # loaded once, shipped to every run
    own = executor is None
    executor = executor or _executor(player, coach)
    rows: list[dict | None] = [None] * len(specs)
    try:
        futures = {executor.submit(_run, spec, player, coach, feed, challenge): i for i, spec in enumerate(specs)}
        for done, future in enumerate(as_completed(futures), start=1):
            rows[futures[future]] = future.result()
            if progress is not None:
                progress(done, len(specs))
            if cancel is not None and cancel():
                for pending in futures:
                    pending.cancel()
                break
    finally:
        if own:
            executor.shutdown(cancel_futures=True)
    return rows


def _challenge(challenge) -> ChallengeRules | Challenge | None:
    """Rules as given, or a shipped template by name (presets/challenges)."""
    if challenge is None or isinstance(challenge, (ChallengeRules, Challenge)):
        return challenge
    if isinstance(challenge, str):
        from core.backtest.templates import load_challenge

        return load_challenge(challenge)
    raise InvalidInput(f"challenge: ChallengeRules, a Challenge or a template's name, got {type(challenge).__name__}")


def _one_schema(spec: BacktestSpec) -> BacktestSpec:
    if not isinstance(spec, BacktestSpec):
        raise InvalidInput(f"spec: a BacktestSpec, got {type(spec).__name__}")
    if len(spec.presets) != 1:
        raise InvalidInput(f"spec: one schema to vary, got {len(spec.presets)} (spec.one(i) picks one)")
    return spec


def attribution(spec: BacktestSpec, *, relax="off", challenge: ChallengeRules | Challenge | str | None = None,
                executor: Executor | None = None, agents: tuple | None = None, bars: dict | None = None,
                progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> pd.DataFrame:
    """What each limit costs: the backtest of `spec` re-run once per limit with that limit relaxed
    ("off": removed, or the loosest value the schema takes; "loosest": the loosest shipped preset's
    value; or {limit: value}), same days, agents and seed. A row per limit, ranked by cost (the
    return relaxing it would have added, then P(pass)): its value and relaxed value, the deltas of
    total return, max drawdown and trades, P(pass) before and after with their intervals when
    `challenge` is given, and whether the difference is within noise. `agents` (player, coach) default to
    the house agents with the spec's seed; `bars` ({symbol: DataFrame}) stand in for the market data."""
    spec, challenge = _one_schema(spec), _challenge(challenge)
    player, coach, deterministic = _agents(spec, agents)
    constraints = spec.preset.constraints
    relaxed = {f: v for f, v in _relaxed(relax, constraints, spec).items() if v != getattr(constraints, f)}
    specs = [spec] + [_with(spec, {field: value}, in_tiers=True) for field, value in relaxed.items()]
    runs = _run_all(specs, player, coach, challenge, executor, bars, progress, cancel)
    base = runs[0] or {}
    rows = [_attribution_row(field, LIMITS[field], getattr(constraints, field), value, base, run, deterministic)
            for (field, value), run in zip(relaxed.items(), runs[1:], strict=True) if run is not None and base]
    frame = pd.DataFrame(rows, columns=_ATTRIBUTION_COLUMNS + (_ODDS_COLUMNS if challenge is not None else []))
    if len(frame):
        keys = ["delta_return_pct"] + (["delta_p_pass"] if challenge is not None else [])
        frame = frame.sort_values(keys, ascending=False, kind="stable").reset_index(drop=True)
    frame.attrs.update(base=base, complete=all(r is not None for r in runs), deterministic=deterministic,
                       noise=_NOISE[deterministic])
    return frame


_ATTRIBUTION_COLUMNS = ["limit", "kind", "value", "relaxed", "delta_return_pct", "delta_drawdown_pct",
                        "delta_trades", "within_noise"]
_ODDS_COLUMNS = ["p_pass", "ci_low", "ci_high", "p_pass_relaxed", "ci_low_relaxed", "ci_high_relaxed", "delta_p_pass"]
_NOISE = {True: "none: the house agents decide the same way every time, so any difference is the limit's",
          False: "not measured: these agents may decide differently on a rerun (see core.repeat); "
                 "a small difference may be chance"}


def _attribution_row(field, kind, value, relaxed, base: dict, run: dict, deterministic: bool) -> dict:
    row = {"limit": field, "kind": kind, "value": _shown(value), "relaxed": _shown(relaxed),
           "delta_return_pct": run["total_return_pct"] - base["total_return_pct"],
           "delta_drawdown_pct": run["drawdown_pct"] - base["drawdown_pct"],
           "delta_trades": int(run["trades"] - base["trades"])}
    same = abs(row["delta_return_pct"]) < 1e-9 and row["delta_trades"] == 0
    if "p_pass" in base:
        row.update(p_pass=base["p_pass"], ci_low=base["ci_low"], ci_high=base["ci_high"],
                   p_pass_relaxed=run["p_pass"], ci_low_relaxed=run["ci_low"], ci_high_relaxed=run["ci_high"],
                   delta_p_pass=run["p_pass"] - base["p_pass"])
        overlap = run["ci_low"] <= base["ci_high"] and base["ci_low"] <= run["ci_high"]
        same = same and overlap if deterministic else same
    row["within_noise"] = same if deterministic else None
    return row


def _shown(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value and not isinstance(value[0], dict) else f"{len(value)} tiers"
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def sensitivity(spec: BacktestSpec, constraint: str, values: Sequence, *, challenge: ChallengeRules | Challenge | str | None = None,
                executor: Executor | None = None, agents: tuple | None = None, bars: dict | None = None,
                progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> pd.DataFrame:
    """How the results move with one limit: return, max drawdown, Sharpe, trades (and P(pass) with its
    interval when `challenge` is given) at each value of `constraint`, same days, agents and seed."""
    spec, challenge = _one_schema(spec), _challenge(challenge)
    if constraint not in Constraints.model_fields or constraint in ("tiers", "abort_on_violations"):
        raise InvalidInput(f"constraint: {constraint!r} is not a limit of the schema")
    if not values:
        raise InvalidInput("values: give at least one value")
    player, coach, _ = _agents(spec, agents)
    specs = [_with(spec, {constraint: value}) for value in values]
    runs = _run_all(specs, player, coach, challenge, executor, bars, progress, cancel)
    rows = [{constraint: value, **run} for value, run in zip(values, runs, strict=True) if run is not None]
    return pd.DataFrame(rows, columns=[constraint, *FIGURES, *(("p_pass", "ci_low", "ci_high") if challenge else ())])


def frontier(spec: BacktestSpec, grid: dict[str, Sequence], challenge: ChallengeRules | Challenge | str, *, p_min: float = 0.8,
             executor: Executor | None = None, agents: tuple | None = None, bars: dict | None = None,
                progress: Progress | None = None, cancel: Callable[[], bool] | None = None) -> pd.DataFrame:
    """The rule sets on the Pareto front of (return, P(pass)) over a grid of limit values ({constraint:
    values}): no other rule set of the grid has both a higher return and a higher P(pass). `passes`
    flags those whose P(pass) lower bound is at least `p_min`. Best return first."""
    spec, challenge = _one_schema(spec), _challenge(challenge)
    if challenge is None:
        raise InvalidInput("challenge: the frontier needs one (P(pass) is one of its two axes)")
    if not grid or any(not values for values in grid.values()):
        raise InvalidInput("grid: give each constraint at least one value")
    if not 0 <= p_min <= 1:
        raise InvalidInput(f"p_min: a probability from 0 to 1, got {p_min!r}")
    player, coach, _ = _agents(spec, agents)
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    specs = [_with(spec, combo) for combo in combos]
    runs = _run_all(specs, player, coach, challenge, executor, bars, progress, cancel)
    rows = [{**combo, **run} for combo, run in zip(combos, runs, strict=True) if run is not None]
    frame = pd.DataFrame(rows, columns=[*grid, *FIGURES, "p_pass", "ci_low", "ci_high"])
    front = frame[_pareto(frame["total_return_pct"].to_numpy(), frame["p_pass"].to_numpy())].copy()
    front["passes"] = front["ci_low"] >= p_min
    return front.sort_values("total_return_pct", ascending=False, kind="stable").reset_index(drop=True)


def _pareto(returns: np.ndarray, odds: np.ndarray) -> np.ndarray:
    """True where no other point is at least as good on both axes and better on one."""
    better_or_equal = (returns[None, :] >= returns[:, None]) & (odds[None, :] >= odds[:, None])
    strictly = (returns[None, :] > returns[:, None]) | (odds[None, :] > odds[:, None])
    return ~(better_or_equal & strictly).any(axis=1)


def frontier_preset(spec: BacktestSpec, row: dict, challenge: ChallengeRules | Challenge | str) -> tuple[Constraints, dict]:
    """A frontier row as a schema to save as a preset, with its evidence: the spec it was found on, the
    challenge rules, and the figures."""
    changes = {k: row[k] for k in row if k in Constraints.model_fields}
    constraints = _with(_one_schema(spec), changes).preset.constraints
    challenge = _challenge(challenge)
    evidence = {"spec": spec.model_dump(mode="json"), "challenge": dataclasses.asdict(challenge),
                "figures": {k: float(row[k]) for k in (*FIGURES, "p_pass", "ci_low", "ci_high") if k in row}}
    return constraints, evidence
