"""`python -m core backtest`: one preset, or two compared on the same days, over daily bars; one symbol
or a portfolio in one book. Its options are core.BacktestSpec's, with its defaults."""

from __future__ import annotations

import argparse
import json
import os
import sys

from core.cli.options import add_agent_options, agents_of, day, symbol_list
from core.exchange.errors import InvalidInput
from core.journal.options import db_path
from core.journal.store import Store


def _add_spec_options(p: argparse.ArgumentParser) -> None:
    """A backtest's capital, costs, depth and seed, with the defaults of core.BacktestSpec."""
    from core.backtest.spec import DEPTHS, BacktestSpec, Costs

    spec, costs = BacktestSpec.model_fields, Costs.model_fields
    p.add_argument("--capital", type=float, default=spec["capital"].default)
    p.add_argument("--fee-bps", type=float, default=costs["fee_bps"].default, help="fees in basis points per fill")
    p.add_argument("--slippage-bps", type=float, default=costs["slippage_bps"].default,
                   help="slippage in basis points per fill")
    p.add_argument("--max-hold-days", type=int, default=costs["max_hold_days"].default,
                   help="close a trade after this many bars")
    p.add_argument("--depth", choices=DEPTHS, default=spec["depth"].default)
    p.add_argument("--seed", type=int, default=spec["seed"].default, help="the house Player's seed")


def _spec(args, symbols, presets):
    """The BacktestSpec of a command's options (bad values: InvalidInput naming the option's field)."""
    from core.backtest.spec import BacktestSpec, Costs

    return BacktestSpec(symbols=symbols, start=args.start, end=args.end, presets=presets, agents=args.player or "house",
                        seed=args.seed, depth=args.depth, capital=args.capital,
                        costs=Costs(args.fee_bps, args.slippage_bps, args.max_hold_days))


def add_parser(sub) -> None:
    p = sub.add_parser("backtest", help="backtest a preset (house agents unless --player/--coach) over daily bars: one symbol or a "
                                        "portfolio")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--symbol", type=symbol_list, dest="symbols", help="one symbol")
    which.add_argument("--symbols", type=symbol_list, help="a portfolio: symbols separated by commas, in the order "
                                                        "of each day's exchanges (MSFT,AAPL,IBM)")
    p.add_argument("--start", required=True, type=day, help="YYYY-MM-DD")
    p.add_argument("--end", required=True, type=day, help="YYYY-MM-DD")
    p.add_argument("--preset", default="moderate")
    p.add_argument("--compare", help="a second preset to run on the same days")
    _add_spec_options(p)
    add_agent_options(p)
    p.add_argument("--db", type=db_path, help="store (and resume) the run in this SQLite file")
    p.add_argument("--offline", action="store_true", help="never ask yfinance: cache, then the shipped snapshot")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(run=cmd_backtest)


def cmd_backtest(args) -> int:
    """Run `python -m core backtest ...`; prints the metrics (and, for a portfolio, the symbols and the
    limits that bound) or, with --json, the whole result."""

    from core import market
    from core.backtest import engine, job
    from core.backtest import result as metrics

    if args.offline:
        os.environ[market.OFFLINE_ENV] = "1"
    spec = _spec(args, args.symbols, [args.preset] + ([args.compare] if args.compare else []))
    store = Store(args.db) if args.db else None
    player, coach = agents_of(args)
    try:
        if args.compare:
            comparison = job.compare(spec, player, coach, store=store)
            results, table = comparison.results, comparison.table
        else:
            result = job.run(engine.Backtest(spec, player, coach), store)
            results, table = {spec.preset.name: result}, metrics.compare_table({spec.preset.name: result})
    except (market.MarketDataError, ValueError) as error:
        raise InvalidInput(str(error)) from None
    if args.json:
        out = {name: r.to_dict() for name, r in results.items()}
        if args.compare:
            out["comparison"] = json.loads(table.to_json(orient="index"))
        json.dump(out, sys.stdout, indent=2, default=str)
        print()
        return 0
    first = next(iter(results.values()))
    print(f"{first.symbol} {first.start} .. {first.end}: bars from {first.source} ({first.note})")
    print(_shown(table.rename(index=metrics.METRIC_LABELS)))
    for name, r in results.items():
        if len(r.symbols) > 1:
            print(f"\n{name}: by symbol\n{_shown(r.by_symbol)}")
        if len(r.limits):
            print(f"\n{name}: the limits that bound\n{_shown(r.limits)}")
    return 0


def _shown(table) -> str:
    return table.map(lambda v: f"{v:,.3f}" if isinstance(v, float) else v).to_string()
