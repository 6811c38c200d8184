"""`python -m core attribution | sensitivity | frontier`: what each rule costs, how results move with one
limit, and the rule sets on the (return, P(pass)) front. Counterfactual backtests of one spec, on
every core or a Dask cluster (`--dask ADDRESS`). Bad input is InvalidInput: exit 3, one line.
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from core.cli.dask import add_dask_options, connect_dask
from core.exchange.errors import InvalidInput

LIMIT_VALUE = "LIMIT=V1,V2,..."
SHORT = ("limit", "value", "relaxed", "delta_return_pct", "delta_drawdown_pct", "delta_trades", "delta_p_pass",
         "within_noise")


def _progress(done: int, total: int, width: int = 30) -> None:
    """A one-line progress bar on stderr, redrawn in place."""
    filled = width * done // total
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} backtests", end="\n" if done == total else "",
          file=sys.stderr, flush=True)


def _number(text: str) -> float | int | None:
    text = text.strip()
    if text.lower() in ("off", "none", "null"):
        return None
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        return text  # a time of day (trading_cutoff_time): the schema checks it


def _values(text: str) -> list:
    values = [_number(v) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"need one or more values separated by commas, got {text!r}")
    return values


def _grid(text: str) -> tuple[str, list]:
    limit, _, values = text.partition("=")
    if not limit.strip() or not values.strip():
        raise argparse.ArgumentTypeError(f"give {LIMIT_VALUE}, got {text!r}")
    return limit.strip(), _values(values)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbols", required=True, help="one symbol or a portfolio, separated by commas (MSFT,AAPL)")
    p.add_argument("--start", required=True, help="YYYY-MM-DD")
    p.add_argument("--end", required=True, help="YYYY-MM-DD")
    p.add_argument("--preset", default="moderate", help="the preset whose limits are varied")
    p.add_argument("--seed", type=int, default=0, help="the house Player's seed (the same in every run)")
    p.add_argument("--template", metavar="NAME", help="a shipped challenge: adds P(pass) with its interval")
    p.add_argument("--offline", action="store_true", help="never ask yfinance: the shipped data only")
    p.add_argument("--json", action="store_true", help="every row as JSON")
    add_dask_options(p)


def add_parsers(sub) -> None:
    """The three commands and their options."""
    p = sub.add_parser("attribution", help="what each limit costs: the backtest re-run with one limit relaxed at a time")
    _common(p)
    p.add_argument("--relax", choices=("off", "loosest"), default="off",
                   help="off: remove the limit (or its loosest allowed value); loosest: the loosest shipped preset's")
    p.set_defaults(run=cmd_attribution)
    p = sub.add_parser("sensitivity", help="how the results move with one limit")
    _common(p)
    p.add_argument("--limit", required=True, help="the constraint to vary, e.g. max_single_trade_pct")
    p.add_argument("--values", required=True, type=_values, help="its values, separated by commas")
    p.set_defaults(run=cmd_sensitivity)
    p = sub.add_parser("frontier", help="the rule sets on the front of (return, P(pass)) over a grid of limits")
    _common(p)
    p.add_argument("--grid", required=True, type=_grid, action="append", metavar=LIMIT_VALUE,
                   help="a limit and its values; repeat for each limit of the grid")
    p.add_argument("--p-min", type=float, default=0.8, help="flag rule sets whose P(pass) lower bound is at least this")
    p.set_defaults(run=cmd_frontier)


def _spec(args):
    from core.backtest.spec import BacktestSpec

    return BacktestSpec(symbols=[s.strip() for s in args.symbols.split(",") if s.strip()], start=args.start,
                        end=args.end, presets=[args.preset], seed=args.seed)


def _run(args, work) -> pd.DataFrame:
    """`work(executor, progress)` on the local cores or the Dask scheduler the options name."""
    import os

    from core import market

    if args.offline:
        os.environ[market.OFFLINE_ENV] = "1"
    progress = None if args.json else _progress
    if not args.dask:
        return work(None, progress)
    client = connect_dask(args.dask, args.dask_timeout)
    try:
        return work(client.get_executor(), progress)
    finally:
        client.close()


def _print(frame: pd.DataFrame, args, note: str = "") -> int:
    if args.json:
        print(json.dumps({"rows": json.loads(frame.to_json(orient="records")), **frame.attrs}, indent=2, default=str))
    else:
        print(frame.to_string(index=False, float_format=lambda v: f"{v:,.3f}") if len(frame) else "(no rows)")
        if note:
            print(note)
    return 0


def cmd_attribution(args) -> int:
    from core.backtest.whatif import attribution

    spec = _spec(args)
    frame = _run(args, lambda executor, progress: attribution(spec, relax=args.relax, challenge=args.template,
                                                              executor=executor, progress=progress))
    if not args.json:  # the terminal gets the ranking; --json has every column
        frame = frame[[c for c in frame.columns if c in SHORT]]
    return _print(frame, args, f"noise: {frame.attrs['noise']}")


def cmd_sensitivity(args) -> int:
    from core.backtest.whatif import sensitivity

    spec = _spec(args)
    return _print(_run(args, lambda executor, progress: sensitivity(
        spec, args.limit, args.values, challenge=args.template, executor=executor, progress=progress)), args)


def cmd_frontier(args) -> int:
    from core.backtest.whatif import frontier

    spec = _spec(args)
    if not args.template:
        raise InvalidInput("--template: the frontier needs a challenge (P(pass) is one of its axes)")
    return _print(_run(args, lambda executor, progress: frontier(
        spec, dict(args.grid), args.template, p_min=args.p_min, executor=executor, progress=progress)), args)
