"""The command line: `python -m core presets | check | exchange | history | backtest`.

Exit codes of `check`: 0 APPROVE, 1 REJECT, 2 ABORT, 3 invalid input. Bad input never shows a
traceback: one line on stderr names the field and the value.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from core.house import HouseCoach, HousePlayer
from core.loop import run_exchange_sync
from core.presets import InvalidInput, explain, list_presets, load_preset
from core.rules import check_proposal
from core.schema import ET, OUTCOMES, Portfolio, Proposal, WorldState
from core.store import Store, StoreError

INVALID = 3
EXIT_CODES = {"APPROVE": 0, "REJECT": 1, "ABORT": 2}


def _read_json(path: str, what: str) -> object:
    try:
        return json.loads(Path(path).read_text())
    except OSError as error:
        raise InvalidInput(f"{what}: cannot read {path}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{what}: {path} is not valid JSON: {error}") from None


def _model(cls, data: object, what: str):
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"{what}: {explain(error)}") from None


def cmd_presets(args) -> int:
    for name in list_presets():
        print(name)
    return 0


def cmd_check(args) -> int:
    proposal = _model(Proposal, _read_json(args.proposal, "proposal"), "proposal")
    constraints = load_preset(args.preset)
    portfolio = _model(Portfolio, _read_json(args.portfolio, "portfolio"), "portfolio") if args.portfolio else Portfolio()
    verdict = check_proposal(proposal, constraints, portfolio)
    print(verdict.model_dump_json(indent=2))
    return EXIT_CODES[verdict.decision]


def cmd_exchange(args) -> int:
    as_of = args.as_of or datetime.now(ET).strftime("%Y-%m-%d %H:%M")
    world = _model(WorldState, {
        "symbol": args.symbol, "as_of": as_of, "price": args.price, "sma5": args.sma5, "sma10": args.sma10,
        "volume": args.volume, "volatility_regime": args.volatility, "session": args.session,
        "position": args.position, "atr": args.atr,
    }, "world state")
    constraints = load_preset(args.preset)
    store = Store(args.db) if args.db else None
    artifact = run_exchange_sync(world, constraints, Portfolio(), HousePlayer(seed=args.seed), HouseCoach(),
                                 store=store, strategy_id=args.strategy)
    print(json.dumps(artifact, indent=2))
    return 0


def cmd_history(args) -> int:
    store = Store(args.db) if args.db else Store()
    for row in store.list_exchanges(outcome=args.outcome, symbol=args.symbol, strategy=args.strategy, limit=args.limit):
        print(json.dumps(row))
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """Usage errors are invalid input too: exit 3, never argparse's 2 (which means ABORT here)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(INVALID, f"error: {message}\n")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m core", description="Player-Coach Trade Review engine")
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("presets", help="list the shipped presets").set_defaults(run=cmd_presets)

    check = sub.add_parser("check", help="check a proposal JSON against a preset; exit 0/1/2/3")
    check.add_argument("proposal", help="a JSON file: {reasoning, actions: [...]}")
    check.add_argument("--preset", default="moderate")
    check.add_argument("--portfolio", help="a JSON file with the portfolio state")
    check.set_defaults(run=cmd_check)

    exchange = sub.add_parser("exchange", help="run one exchange with the house agents, print the artifact")
    exchange.add_argument("--symbol", required=True)
    exchange.add_argument("--price", type=float, required=True)
    exchange.add_argument("--sma5", type=float, required=True)
    exchange.add_argument("--sma10", type=float, required=True)
    exchange.add_argument("--volume", type=float, default=0)
    exchange.add_argument("--volatility", default="medium", help="low | medium | high")
    exchange.add_argument("--session", default="NY_open")
    exchange.add_argument("--position", default="flat")
    exchange.add_argument("--atr", type=float)
    exchange.add_argument("--preset", default="moderate")
    exchange.add_argument("--as-of", help='ET date and time, e.g. "2025-03-04 10:00" (default: now)')
    exchange.add_argument("--db", help="store the exchange in this SQLite file")
    exchange.add_argument("--strategy", help="strategy id to file the exchange under")
    exchange.add_argument("--seed", type=int, default=0)
    exchange.set_defaults(run=cmd_exchange)

    history = sub.add_parser("history", help="stored exchanges as JSON lines, newest first")
    history.add_argument("--db")
    history.add_argument("--outcome", choices=OUTCOMES)
    history.add_argument("--symbol")
    history.add_argument("--strategy")
    history.add_argument("--limit", type=_positive, default=50)
    history.set_defaults(run=cmd_history)

    from core.backtest import add_backtest_parser  # backtest: symbol, dates, preset(s), --json

    add_backtest_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (InvalidInput, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        return INVALID


if __name__ == "__main__":
    sys.exit(main())
