"""Options more than one command takes: counts, symbols and days, the world state of an exchange, and
your own agents with their leash. Bad values are argparse errors or InvalidInput: exit 3, one line."""

from __future__ import annotations

import argparse
from datetime import datetime

from pydantic import ValidationError

from core.exchange.errors import InvalidInput
from core.exchange.guard import AgentLimits
from core.exchange.house import HouseCoach, HousePlayer
from core.exchange.plugins import load_agent
from core.exchange.presets import explain
from core.exchange.schema import ET, WorldState
from core.journal.options import db_path


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def symbol_list(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError(f"need one or more symbols separated by commas, got {text!r}")
    return symbols


def day(text: str):
    """A YYYY-MM-DD date within the days a backtest may ask for (nothing after it)."""
    from core.backtest.spec import parse_day

    try:
        return parse_day(text, "date")
    except InvalidInput as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("date: ")) from None


def model_of(cls, data: object, what: str):
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(f"{what}: {explain(error)}") from None


def world_of(args) -> WorldState:
    """The world state the options of add_world_options give (bad values: InvalidInput naming the field)."""
    as_of = args.as_of or datetime.now(ET).strftime("%Y-%m-%d %H:%M")
    return model_of(WorldState, {
        "symbol": args.symbol, "as_of": as_of, "price": args.price, "sma5": args.sma5, "sma10": args.sma10,
        "volume": args.volume, "volatility_regime": args.volatility, "session": args.session,
        "position": args.position, "atr": args.atr,
    }, "world state")


def add_world_options(command: argparse.ArgumentParser) -> None:
    """The world state, preset, database, strategy and house seed of an exchange (`exchange`, `repeat`)."""
    command.add_argument("--symbol", required=True)
    command.add_argument("--price", type=float, required=True)
    command.add_argument("--sma5", type=float, required=True)
    command.add_argument("--sma10", type=float, required=True)
    command.add_argument("--volume", type=float, default=0)
    command.add_argument("--volatility", default="medium", help="low | medium | high")
    command.add_argument("--session", default="NY_open")
    command.add_argument("--position", default="flat")
    command.add_argument("--atr", type=float)
    command.add_argument("--preset", default="moderate")
    command.add_argument("--as-of", help='ET date and time, e.g. "2025-03-04 10:00" (default: now)')
    command.add_argument("--db", type=db_path, help="store the exchange in this SQLite file")
    command.add_argument("--strategy", help="strategy id to file the exchange under")
    command.add_argument("--seed", type=int, default=0, help="the house Player's seed")


def add_agent_options(command: argparse.ArgumentParser) -> None:
    """--player / --coach: your own agent as module:Class or an installed agent's name (default: the house's),
    with the leash each of its turns runs on."""
    command.add_argument("--player", metavar="AGENT", help="module:Class or an installed agent's name (default: house)")
    command.add_argument("--coach", metavar="AGENT", help="module:Class or an installed agent's name (default: house)")
    limits = AgentLimits()
    command.add_argument("--agent-timeout", type=turn_seconds, default=limits.turn_seconds, metavar="SECONDS",
                         help=f"longest turn of your own agent before the exchange ends ERROR (default {limits.turn_seconds:g})")
    command.add_argument("--agent-max-text", type=positive_int, default=limits.max_text, metavar="CHARS",
                         help=f"most text your own agent may stream in one turn (default {limits.max_text:,})")


def turn_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0 and at most 3600, got {text!r}")
    return seconds


def agents_of(args) -> tuple[object, object]:
    """The Player and the Coach the options name: your own (guarded) or the house's."""
    limits = AgentLimits(args.agent_timeout, args.agent_max_text)
    player = load_agent(args.player, "player", limits) if args.player else HousePlayer(seed=args.seed)
    coach = load_agent(args.coach, "coach", limits) if args.coach else HouseCoach()
    return player, coach
