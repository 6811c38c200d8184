"""Backtests kept in the journal: a run stored as it goes (resumable, cancellable, run a slice at a
time), reopened without asking an agent, and looked up as a trader does: one entry per thing that was
run (a comparison of two presets is one), each with its true state.

The engine (core.backtest.engine) stores nothing: `run_stored` reads the days a run already decided
from the store, hands them to the engine, and writes each new decision the engine reports before that
day is simulated. `run_backtest`, `compare` and `compare_presets` are the calls with a `store=`.

A run is stored as "running" when it starts and "paused" between the page's slices; neither says
whether anything is still advancing it. A run that no page has written to for STALE_AFTER (a crash,
a closed tab) is *interrupted*: its decided days are kept, and running it again resumes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pandas as pd

from core.backtest import result as metrics
from core.backtest.engine import Backtest, Decided, Decision, Progress, agent_name
from core.backtest.feed import Feed
from core.backtest.result import BacktestResult, plain
from core.backtest.spec import BacktestSpec, Costs, spec_seed
from core.exchange.errors import InvalidInput
from core.exchange.schema import CAPITAL, Action, Constraints
from core.market import Bars

RETRY_OUTCOMES = ("ERROR", "INTERRUPTED")  # a stored exchange with these outcomes is decided again on resume
SLICE_EXCHANGES = {"house": 1000, "claude": 1}
"""New exchanges per slice of the Backtest page, by its agents: between slices the page answers Cancel (a click
elsewhere on the page stops a slice at its progress bar's next move), and each slice costs a script run and
the browser a round trip. A house exchange takes about half a millisecond (1,000 are about 0.5 s on a quiet
machine, whatever the book's size: a four-symbol year is one slice), a Claude one several calls."""
OWN_SLICE_EXCHANGES = 5  # an installed agent's speed is unknown: answer clicks often
STALE_AFTER = timedelta(minutes=2)
"""A run not written to for this long is interrupted; the page writes after every slice (a few seconds)."""


def slice_days(agents: str, symbols: int = 1) -> int:
    """How many new days the Backtest page decides per slice with these agents (a spec's `agents`) on a book
    of `symbols`: a day is one exchange per symbol, and at least one day."""
    return max(1, SLICE_EXCHANGES.get(agents, OWN_SLICE_EXCHANGES) // symbols)


def ends_in_first_slice(spec: BacktestSpec, feed: Feed) -> bool:
    """Whether the Backtest page's first slice of `spec` (bars in `feed`) ends it: one preset, over no more days
    than a slice decides (the engine pauses only with days left to decide)."""
    return len(spec.presets) == 1 and len(feed.calendar()) <= slice_days(spec.agents, len(spec.symbols))


def run_state(row: dict, now: datetime, live: Collection[str] = ()) -> str:
    """finished or cancelled as stored; running while something advances it (its key in `live`, or
    written to within STALE_AFTER); else interrupted."""
    if row["status"] in ("finished", "cancelled"):
        return row["status"]
    if row["run_key"] in live or now - datetime.fromisoformat(row["updated"]) < STALE_AFTER:
        return "running"
    return "interrupted"


@dataclass
class PastRun:
    """One entry of the past-runs list: its stored runs in order (one per preset) and the spec that ran them."""

    key: str  # the job's key, or the run's key for a run started elsewhere (the CLI, Python)
    created: str
    spec: BacktestSpec  # symbols, dates, the presets by name with their constraints, agents, depth, costs, capital
    runs: list[dict]  # the stored backtest rows, in the spec's preset order
    state: str  # finished | running | interrupted | cancelled

    @property
    def run_keys(self) -> list[str]:
        return [r["run_key"] for r in self.runs]

    @property
    def presets(self) -> list[str]:
        """The names of its presets, in order."""
        return [p.name for p in self.spec.presets]


def agents_of(player: str) -> str:
    """How a spec names the agents of a stored run, from its Player's name: house, claude, or the agent's own."""
    return "house" if player.startswith("house") else "claude" if player.startswith("claude") else player


def job_spec(form: dict, runs: list[dict]) -> BacktestSpec:
    """The spec of a page job: as stored (a BacktestSpec's JSON), or from the plain form earlier versions
    stored (preset names, the agents' label), with each preset's constraints from its stored run."""
    if not form["presets"] or not isinstance(form["presets"][0], str):
        return BacktestSpec(**form)
    ran = {r["preset"]: Constraints.model_validate_json(r["constraints"]) for r in runs}
    label = form.get("agents") or (runs[0]["player"] if runs else "house")
    agents = "house" if label.startswith("House") else "claude" if label.startswith("Claude") else agents_of(label)
    return BacktestSpec(
        symbols=form["symbols"], start=form["start"], end=form["end"], depth=form.get("depth", "standard"),
        presets=[(name, ran.get(name) or _preset_or_default(name)) for name in form["presets"]], agents=agents,
        costs=Costs(**{k: form[k] for k in Costs.model_fields if k in form}),
        **({"capital": form["capital"]} if "capital" in form else {}))


def _preset_or_default(name: str) -> Constraints:
    """A preset not run yet (a job that died before it): the shipped preset of that name, else the defaults."""
    from core.exchange.presets import load_preset  # reads files: only for such a job

    try:
        return load_preset(name)
    except InvalidInput:
        return Constraints()


def _job_state(states: list[str], complete: bool) -> str:
    """The state of several runs seen as one: any still running, then a cancel, then a crash, else finished."""
    for state in ("running", "cancelled", "interrupted"):
        if state in states:
            return state
    return "finished" if complete else "interrupted"  # a crash between two presets' runs


def past_runs(store, live: Collection[str] = (), now: datetime | None = None, limit: int = 50) -> list[PastRun]:
    """The stored backtests, newest first: each page job (one or two presets) as one entry, and every
    other stored run on its own. `live` holds the keys this session is advancing now."""
    now = now or datetime.now(timezone.utc)
    rows = {r["run_key"]: r for r in store.list_backtests(limit=limit)}
    entries, claimed = [], set()
    for job in store.backtest_jobs(limit=limit):
        runs = [rows.get(k) or store.get_backtest(k) for k in job["run_keys"]]
        runs = [r for r in runs if r is not None]
        claimed.update(job["run_keys"])
        states = [run_state(r, now, live) for r in runs]
        if job["job_key"] in live:
            states.append("running")
        try:
            spec = job_spec(job["form"], runs)
        except (InvalidInput, KeyError, TypeError):  # a form nothing can read: its runs are listed on their own
            claimed.difference_update(job["run_keys"])
            continue
        complete = len(runs) == len(spec.presets)
        entries.append(PastRun(job["job_key"], job["created"], spec, runs, _job_state(states, complete)))
    for key, row in rows.items():
        if key not in claimed:
            spec = stored_spec(row).changed(agents=agents_of(row["player"]))
            entries.append(PastRun(key, row["created"], spec, [row], run_state(row, now, live)))
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries[:limit]


# -- a run stored as it goes ------------------------------------------------------------------------

def run(test: Backtest, store=None, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
        stop_after: int | None = None) -> BacktestResult:
    """`test` run in memory, or with the journal at its edge when a `store` is given (`run_stored`)."""
    if store is None:
        return test.run(progress=progress, cancel=cancel, stop_after=stop_after)
    return run_stored(test, store, progress, cancel, stop_after)


class StoredRun:
    """A run with the journal at its edge, played a slice at a time by one process (the Backtest page): its
    stored days are read once and its state (book, curve, rows) carries over from slice to slice, so a slice
    simulates only its own days. Each new decision is written before its day is simulated, so a crash or a
    closed tab loses no decided day: another StoredRun, or run_stored, resumes from them."""

    def __init__(self, test: Backtest, store):
        from core.journal.record import run_exchange_sync as recorded

        self.test, self.store = test, store
        stored = store.backtest_days(test.run_key)
        decided = {(date.fromisoformat(day), symbol): _decision(row) for (day, symbol), row in stored.items()
                   if row["outcome"] not in RETRY_OUTCOMES}
        _start(test, store, days_done=len({day for day, _ in stored}))

        def write(event: Decided) -> None:
            store.save_backtest_day(_row(test.run_key, event))

        exchange = (lambda *args, **kw: recorded(*args, store=store, **kw)) if test.record_exchanges else None
        self._run = test.runner(decided=decided, events=write, exchange=exchange)

    def play(self, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
             stop_after: int | None = None) -> str:
        """Simulate on from the first day not simulated yet (see Backtest.run); the status it stopped with."""
        return self._run.play(progress, cancel, stop_after)

    def result(self, status: str) -> BacktestResult:
        """The result as far as it got, its row stored with the metrics. It ends the run: what is open is closed."""
        result = self._run.result(status)
        self.store.finish_backtest(self.test.run_key, result.status, len(result.equity) - 1,
                                   {k: plain(v) for k, v in result.metrics.items()})
        return result

    def advance(self, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
                stop_after: int | None = None) -> BacktestResult | None:
        """One slice: play on; None while paused (the row says how far it got), else the result."""
        status = self.play(progress, cancel, stop_after)
        if status != "paused":
            return self.result(status)
        # no metrics yet: nothing reads a paused run's, and computing them would close its open positions
        self.store.pause_backtest(self.test.run_key, len(self._run.equity_points) - 1)
        return None


def run_stored(test: Backtest, store, progress: Progress | None = None, cancel: Callable[[], bool] | None = None,
               stop_after: int | None = None) -> BacktestResult:
    """Run `test` with the journal at its edge: the days it already decided are replayed, each new
    decision is written before its day is simulated, and the run's row says where it stands after."""
    run = StoredRun(test, store)
    return run.result(run.play(progress, cancel, stop_after))


def _start(test: Backtest, store, days_done: int) -> None:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.start_backtest({
        "run_key": test.run_key, "created": now, "updated": now, "status": "running", "symbol": test.symbol,
        "start": str(test.start), "end": str(test.end), "preset": test.preset,
        "constraints": test.constraints.model_dump_json(), "player": agent_name(test.player),
        "coach": agent_name(test.coach),
        "model": test.settings["player_model"], "depth": test.depth, "settings": json.dumps(test.settings),
        "days_total": len(test.calendar), "days_done": days_done, "metrics": None,
    })


def _row(run_key: str, event: Decided) -> dict:
    """A decision as the backtest_days table keeps it."""
    d = event.decision
    verdicts = [{**v, "entries": [a.model_dump(mode="json") for a in v["entries"]]} for v in d.verdicts]
    return {"run_key": run_key, "day": str(event.day), "symbol": event.symbol, "outcome": d.outcome,
            "reason": d.reason, "rounds": d.rounds, "tokens": d.tokens, "cost_usd": d.cost,
            "actions": json.dumps([a.model_dump(mode="json") for a in d.actions]), "exchange_run_id": d.run_id,
            "verdicts": json.dumps(verdicts)}


def _decision(row: dict) -> Decision:
    """A stored decision, read back."""
    verdicts = [{**v, "entries": [Action.model_validate(a) for a in v.get("entries") or []]}
                for v in json.loads(row.get("verdicts") or "[]")]
    return Decision(row["outcome"], row["reason"], row["rounds"], row["tokens"], row["cost_usd"],
                    [Action.model_validate(a) for a in json.loads(row["actions"])], row["exchange_run_id"], verdicts)


# -- the calls with a store: one run, reopening, comparing ------------------------------------------------

def run_backtest(
    symbol: str,
    start: date | str,
    end: date | str,
    constraints: Constraints,
    player,
    coach,
    capital: float = CAPITAL,
    fee_bps: float = Costs().fee_bps,
    slippage_bps: float = Costs().slippage_bps,
    max_hold_days: int = Costs().max_hold_days,
    bars: Bars | pd.DataFrame | dict | None = None,
    store=None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    *,
    depth: str = "standard",
    preset: str = "custom",
    record_exchanges: bool = False,
    walk_forward_split: float = 0.7,
    run_key: str | None = None,
    stop_after: int | None = None,
) -> BacktestResult:
    """`run(Backtest(BacktestSpec(...), player, coach), store, ...)` with the spec's fields spelled out:
    one symbol (or a list) over the trading days in [start, end]. `bars` replaces loading (a DataFrame
    or core.market.Bars, or a dict by symbol)."""
    if bars is not None and not isinstance(bars, dict):
        bars = {symbol if isinstance(symbol, str) else symbol[0]: bars}
    test = Backtest(symbol, start, end, constraints, player, coach, capital=capital,
                    costs=Costs(fee_bps, slippage_bps, max_hold_days), depth=depth, preset=preset,
                    walk_forward_split=walk_forward_split, bars=bars, record_exchanges=record_exchanges,
                    run_key=run_key)
    return run(test, store, progress, cancel, stop_after)


def stored_spec(row: dict) -> BacktestSpec:
    """The spec of a stored run, from its row (core.journal's backtests table)."""
    settings = row["settings"]
    return BacktestSpec(
        symbols=row["symbol"].split(","), start=row["start"], end=row["end"],
        presets=[(row["preset"], Constraints.model_validate_json(row["constraints"]))], depth=row["depth"],
        # a row of an earlier version may lack a setting: the default it ran with then
        costs=Costs(**{k: settings[k] for k in Costs.model_fields if k in settings}),
        capital=settings.get("capital", CAPITAL), seed=spec_seed(settings.get("player_seed")))


def reopen_backtest(store, run_key: str, bars: Bars | pd.DataFrame | dict | None = None) -> BacktestResult:
    """Rebuild a stored backtest from its stored exchanges, calling no agent (a run cancelled
    part-way comes back as far as it got)."""
    row = store.get_backtest(run_key)
    if row is None:
        raise InvalidInput(f"run_key: no backtest {run_key!r}")
    settings = row["settings"]
    spec = stored_spec(row)
    player = _Replayed(row["player"], settings.get("player_model"), settings.get("player_seed"))
    coach = _Replayed(row["coach"], None, None)
    if bars is not None and not isinstance(bars, dict):
        bars = {spec.symbols[0]: bars}
    result = run_stored(Backtest(spec, player, coach, bars=bars, run_key=run_key), store, stop_after=0)
    if result.status == "paused":  # stopped at the first undecided day: keep the stored status
        result.status = row["status"]
        store.set_backtest_status(run_key, row["status"])
    return result


class _Replayed:
    """Stands in for the agents of a stored run; never asked (stop_after=0 stops at the first undecided day)."""

    def __init__(self, name, model, seed):
        self.name, self.model, self.seed = name, model, seed

    def propose(self, *args):
        raise RuntimeError("a reopened backtest never calls an agent")

    critique = propose


@dataclass
class Comparison:
    """Two backtests on the same days: `table` has one column per preset and `better` per metric."""

    table: pd.DataFrame
    results: dict[str, BacktestResult]


def compare(spec: BacktestSpec, player, coach, *, feed: Feed | None = None, bars: dict | None = None, store=None,
            progress: Progress | None = None, cancel=None) -> Comparison:
    """Run each schema of `spec` on the same bars and days, one after the other (kept in `store` when given)."""
    feed = feed or Feed.load(spec.symbols, spec.start, spec.end, bars)  # loaded once: every run sees the same days
    results, runs = {}, spec.runs()
    for k, one in enumerate(runs):
        step = None if progress is None else (
            lambda n, total, day, k=k: progress(k * total + n, len(runs) * total, day))
        results[one.preset.name] = run(Backtest(one, player, coach, feed=feed), store, step, cancel)
    return Comparison(metrics.compare_table(results), results)


def compare_presets(symbols: str | list[str], start, end, first, second, player, coach, *, bars=None, store=None,
                    progress: Progress | None = None, cancel=None, capital: float = CAPITAL,
                    fee_bps: float = Costs().fee_bps, slippage_bps: float = Costs().slippage_bps,
                    max_hold_days: int = Costs().max_hold_days, depth: str = "standard",
                    walk_forward_split: float = 0.7) -> Comparison:
    """Backtest two schemas on the same bars and days; each is a preset name, a Constraints, or
    (name, Constraints). Returns the side-by-side table with the better value per metric marked."""
    if bars is not None and not isinstance(bars, dict):
        bars = {symbols if isinstance(symbols, str) else symbols[0]: bars}
    spec = BacktestSpec(symbols=symbols, start=start, end=end, presets=[first, second], depth=depth,
                        costs=Costs(fee_bps, slippage_bps, max_hold_days), capital=capital,
                        walk_forward_split=walk_forward_split, seed=spec_seed(getattr(player, "seed", None)))
    return compare(spec, player, coach, bars=bars, store=store, progress=progress, cancel=cancel)
