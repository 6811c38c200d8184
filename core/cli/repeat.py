"""`python -m core repeat`: the same exchange k times, and how far the answers agree (core.repeat).

Its own module, as `challenge` and `mcp` have; core/__main__.py adds it with `add_parser(sub)`. The world
options are the `exchange` command's. Exit 0, or 3 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import json

from core.exchange.house import HouseCoach, HousePlayer
from core.exchange.plugins import load_agent
from core.exchange.guard import AgentLimits
from core.exchange.presets import load_preset
from core.exchange.repeat import MAX_REPEATS, SPREAD_FIELDS, Repeatability, repeat
from core.exchange.schema import Portfolio
from core.journal.store import Store

SHOWN = {"size_pct": "size", "entry_price": "entry", "stop_loss": "stop", "take_profit": "target",
         "rounds_taken": "rounds", "cost_usd": "cost $"}


def _k(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_REPEATS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_REPEATS}, got {text!r}")
    return int(text)


def add_parser(sub) -> None:
    from core.cli.options import add_agent_options, add_world_options

    command = sub.add_parser("repeat", help="run the same exchange k times and say how far the answers agree "
                                            "(outcome, side, the spread of the trade, rounds and cost)")
    add_world_options(command)
    add_agent_options(command)
    command.add_argument("--k", type=_k, default=5, help=f"how many exchanges (1 to {MAX_REPEATS}; default 5)")
    command.add_argument("--vary-seed", action="store_true",
                         help="the house Player plays seed, seed+1, ... (default: the same seed every time)")
    command.add_argument("--json", action="store_true", help="print the figures as JSON")
    command.set_defaults(run=cmd_repeat)


def cmd_repeat(args) -> int:
    from core.cli.options import world_of

    world, constraints = world_of(args), load_preset(args.preset)
    store = Store(args.db) if args.db else None  # opened first: a database it cannot use costs no exchange
    limits = AgentLimits(args.agent_timeout, args.agent_max_text)

    def player(i: int):
        return load_agent(args.player, "player", limits) if args.player else \
            HousePlayer(seed=args.seed + (i if args.vary_seed else 0))

    def coach(i: int):
        return load_agent(args.coach, "coach", limits) if args.coach else HouseCoach()

    result = repeat(world, constraints, Portfolio(), player, coach, k=args.k, strategy_id=args.strategy)
    if store is not None:
        store.record_many(result.artifacts)
    print(json.dumps(result.summary(), indent=2) if args.json else report(result))
    return 0


def report(result: Repeatability) -> str:
    """The figures in a few lines for a terminal."""
    outcome, side = result.most_common()
    lines = [f"{result.k} exchanges (repeat {result.repeat_id[:8]}): {' '.join(result.outcomes)}",
             f"outcome agreement {result.outcome_agreement:.0%} ({outcome}), side agreement "
             f"{result.side_agreement:.0%} ({side})", f"{'':8}{'min':>12}{'median':>12}{'max':>12}"]
    for name in SPREAD_FIELDS:
        spread = result.spread[name]
        if spread is not None:
            lines.append(f"{SHOWN[name]:8}" + "".join(f"{v:>12,.4g}" for v in (spread.min, spread.median, spread.max)))
    return "\n".join(lines)
