"""`python -m core sweep`: backtest symbols x presets x seeds on every core or a Dask cluster.

Every value is checked where the options are read (exit 3, one line) and the sweep's spec is
validated before any case starts: a sweep that cannot run is refused, never a table of errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.cli.dask import add_dask_options, connect_dask
from core.cli.options import day, positive_int
from core.exchange.errors import InvalidInput, MarketDataError

MAX_SEED = 2**32 - 1


def _progress_bar(done: int, total: int, width: int = 30) -> None:
    """A one-line progress bar on stderr, redrawn in place."""
    filled = width * done // total
    end = "\n" if done == total else ""
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} backtests", end=end, file=sys.stderr, flush=True)


def _names(what: str):
    """An argparse type: names separated by commas, at least one."""
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"need one or more {what} separated by commas, got {text!r}")
        return names
    return parse


def _seeds(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and int(part) <= MAX_SEED for part in parts):
        raise argparse.ArgumentTypeError(f"must be whole numbers from 0 to {MAX_SEED:,} separated by commas, "
                                         f"got {text[:80]!r}")
    return tuple(int(part) for part in parts)


def _universe(text: str) -> str:
    from core.market import SETS

    if text not in SETS:
        raise argparse.ArgumentTypeError(f"not a shipped universe: {text[:80]!r} (known: {', '.join(SETS)})")
    return text


def _out(text: str) -> Path:
    """A CSV file the sweep can write: its folder exists and is writable (checked before any case runs)."""
    path = Path(text)
    folder = path.parent if str(path.parent) else Path(".")
    if not text.strip() or path.is_dir():
        raise argparse.ArgumentTypeError(f"need a file to write, got {text[:120]!r}")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text[:120]!r}: the folder {str(folder)[:120]!r} "
                                         "does not exist or is not writable")
    return path


def add_parser(sub) -> None:
    """The `sweep` command."""
    grid = sub.add_parser("sweep", help="backtest symbols x presets x seeds on every core or a Dask cluster")
    which = grid.add_mutually_exclusive_group(required=True)
    which.add_argument("--universe", type=_universe, help="a shipped universe, e.g. sp500-2009 (offline; its dates "
                                                          "by default)")
    which.add_argument("--symbols", type=_names("symbols"), help="comma-separated symbols (needs --start and --end)")
    grid.add_argument("--presets", type=_names("preset names"), default=["moderate"],
                      help="comma-separated preset names")
    grid.add_argument("--start", type=day, help="YYYY-MM-DD")
    grid.add_argument("--end", type=day, help="YYYY-MM-DD")
    grid.add_argument("--seeds", type=_seeds, default=(0,), help="house Player seeds, e.g. 0,1,2")
    grid.add_argument("--target", type=float, help="add the pass probability of a challenge with this profit "
                                                   "target and each preset's limits")
    grid.add_argument("--max-days", type=positive_int, help="the challenge's time limit in trading days")
    grid.add_argument("--offline", action="store_true", help="never ask yfinance: cache, then the shipped data")
    add_dask_options(grid)
    grid.add_argument("--out", type=_out, help="also write every row to this CSV file")
    grid.add_argument("--json", action="store_true", help="print every row as JSON")
    grid.set_defaults(run=cmd_sweep)


def cmd_sweep(args) -> int:
    """Backtest every symbol x preset x seed, locally or on a Dask cluster; print a summary per preset."""
    from core.backtest.sweeps import plan, run_plan
    from core.exports import safe_csv

    challenge = None if args.target is None else {"profit_target_pct": args.target, "max_days": args.max_days}
    try:
        cases = plan(args.universe or args.symbols, args.presets, args.start, args.end, seeds=args.seeds,
                     challenge=challenge, online=False if args.universe or args.offline else None)
    except MarketDataError as error:
        raise InvalidInput(str(error)) from None
    client = connect_dask(args.dask, args.dask_timeout) if args.dask else None
    try:
        frame = run_plan(cases, client.get_executor() if client else None,
                         progress=None if args.json else _progress_bar)
    finally:
        if client is not None:
            client.close()
    if args.out:
        args.out.write_text(safe_csv(frame))
    if args.json:
        print(frame.to_json(orient="records", indent=2))
        return 0
    ran = frame[frame["error"] == ""]
    failed = frame[frame["error"] != ""]
    if not len(ran):
        raise InvalidInput(f"no backtest ran: {failed['symbol'].iloc[0]}: {failed['error'].iloc[0]}")
    columns = {"symbol": "count", "total_return_pct": "mean", "sharpe": "median", "max_drawdown_pct": "mean",
               "trades": "sum", **({"p_pass": "mean"} if args.target is not None else {})}
    summary = ran.groupby("preset", sort=False).agg(columns).rename(columns={
        "symbol": "backtests", "total_return_pct": "mean return %", "sharpe": "median Sharpe",
        "max_drawdown_pct": "mean max drawdown %", "trades": "trades", "p_pass": "mean pass probability"})
    print(summary.to_string(float_format=lambda v: f"{v:,.3f}"))
    if len(failed):
        print(f"{len(failed)} backtests did not run, e.g. {failed['symbol'].iloc[0]}: {failed['error'].iloc[0]}")
    return 0
