"""The command line: `python -m core presets | check | exchange | repeat | history | show | prune | backtest | challenge | sweep | attribution | sensitivity | frontier | agents | mcp`.

Exit codes of `check`: 0 APPROVE, 1 REJECT, 2 ABORT, 3 invalid input. Of `exchange`: 0 APPROVE,
1 REJECT-MAX, 2 ABORT, 3 invalid input, 4 ERROR or INTERRUPTED. Bad input never shows a traceback:
one line on stderr names the field and quotes at most a short excerpt of the value.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from datetime import date, datetime, timedelta, timezone

from core.cli.backtest import add_parser as add_backtest
from core.cli.challenge import add_parser as add_challenge
from core.cli.options import add_agent_options, add_world_options, agents_of, model_of, positive_int, world_of
from core.cli.sweep import add_parser as add_sweep
from core.cli.whatif import add_parsers as add_whatif
from core.journal.record import run_exchange_sync
from core.exchange.plugins import ENTRY_POINT_GROUP, installed_agents
from core.exchange.errors import InvalidInput, PlayerCoachError
from core.exchange.json_input import excerpt, read_json, shorten
from core.exchange.presets import list_presets, load_preset
from core.exchange.rules import check_proposal
from core.exchange.schema import MAX_PRICE, OUTCOMES, Portfolio, Proposal, WorldState, normalise_symbol
from core.journal.history import DATES_BY
from core.journal.options import db_path, open_store
from core.journal.store import HistoryFilter, Store, StoreError

INVALID = 3
EXIT_CODES = {"APPROVE": 0, "REJECT": 1, "ABORT": 2}
"""`check`: the verdict."""
EXCHANGE_EXIT_CODES = {"APPROVE": 0, "REJECT-MAX": 1, "ABORT": 2, "ERROR": 4, "INTERRUPTED": 4}
"""`exchange`: the outcome (3 stays invalid input)."""


MAX_JSON_BYTES = 4 * 2**20
"""The largest JSON file `check` reads (a proposal, a portfolio, a world): far above any real one."""


def _read_json(path: str, what: str) -> object:
    try:
        with open(path, "rb") as file:  # at most one byte past the limit: /dev/zero is never read whole
            text = file.read(MAX_JSON_BYTES + 1)
    except OSError as error:
        raise InvalidInput(f"{what}: cannot read {shorten(path, 120)}: {error.strerror}") from None
    if len(text) > MAX_JSON_BYTES:
        raise InvalidInput(f"{what}: {shorten(path, 120)} is larger than {MAX_JSON_BYTES // 2**20} MiB")
    return read_json(text, f"{what}: {shorten(path, 120)}")


def _atr_value(text: str) -> tuple[str, float]:
    """--atr SYMBOL=VALUE, e.g. MSFT=6.2."""
    symbol, _, value = text.partition("=")
    try:
        atr = float(value)
    except ValueError:
        atr = math.nan
    if not symbol or not math.isfinite(atr) or not 0 < atr <= MAX_PRICE:
        raise argparse.ArgumentTypeError(f"expected SYMBOL=VALUE with a positive ATR, e.g. MSFT=6.2; "
                                         f"got {excerpt(text, 60)}")
    try:
        return normalise_symbol(symbol), atr
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def cmd_presets(args) -> int:
    for name in list_presets():
        print(name)
    return 0


def cmd_check(args) -> int:
    proposal = model_of(Proposal, _read_json(args.proposal, "proposal"), "proposal")
    constraints = load_preset(args.preset)
    portfolio = model_of(Portfolio, _read_json(args.portfolio, "portfolio"), "portfolio") if args.portfolio else Portfolio()
    world = model_of(WorldState, _read_json(args.world, "world"), "world") if args.world else None
    verdict = check_proposal(proposal, constraints, portfolio, world, atr=dict(args.atr or []))
    print(verdict.model_dump_json(indent=2))
    return EXIT_CODES[verdict.decision]


def cmd_exchange(args) -> int:
    world = world_of(args)
    constraints = load_preset(args.preset)
    store = Store(args.db) if args.db else None
    player, coach = agents_of(args)
    artifact = run_exchange_sync(world, constraints, Portfolio(), player, coach, store=store, strategy_id=args.strategy)
    print(json.dumps(artifact.model_dump(mode="json"), indent=2))
    return EXCHANGE_EXIT_CODES[artifact.outcome]


def cmd_agents(args) -> int:
    agents = installed_agents()
    if not agents:
        print(f"no agents installed (entry point group {ENTRY_POINT_GROUP})", file=sys.stderr)
    for agent in agents:
        print(f"{agent.name}\t{agent.target}\t{'+'.join(agent.roles) or 'broken: ' + agent.problem}")
    return 0


def _when(text: str) -> date | datetime:
    """--since/--until: a day (YYYY-MM-DD: the whole day) or an instant (YYYY-MM-DDTHH:MM, UTC unless it says)."""
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be YYYY-MM-DD or YYYY-MM-DDTHH:MM, got {excerpt(text, 40)}") from None


def cmd_history(args) -> int:
    """Stored exchanges matching History's filters: summary rows, or (--full) whole artifacts, as JSON lines."""
    store = open_store(args.db, create=False)
    matching = HistoryFilter(outcome=args.outcome, symbol=args.symbol, strategy=args.strategy, since=args.since,
                             until=args.until, text=args.text, dates_by=args.dates_by, unfaithful=args.unfaithful,
                             player=args.player)
    damaged = 0
    if args.full:
        for found in store.artifacts(matching, limit=args.limit):
            if isinstance(found, StoreError):
                damaged += 1
                print(f"error: {shorten(str(found), 400)}", file=sys.stderr)
            else:
                print(found.model_dump_json())
    else:
        for row in store.list_exchanges(matching, limit=args.limit or 50):
            print(json.dumps(row))
    if store.skipped_rounds:
        print(f"note: the search skipped {store.skipped_rounds} damaged rounds (they match nothing)", file=sys.stderr)
    return INVALID if damaged else 0


def cmd_show(args) -> int:
    """One stored exchange's whole artifact as JSON."""
    artifact = open_store(args.db, create=False).get_exchange(args.run_id)
    if artifact is None:
        raise InvalidInput(f"run_id: no exchange {excerpt(args.run_id, 80)} in this database")
    print(json.dumps(artifact.model_dump(mode="json"), indent=2, ensure_ascii=False))
    return 0


MAX_AGE = timedelta(days=36_500)
"""The oldest --older-than: a hundred years (every exchange; --all says it plainly)."""


def _age(text: str) -> timedelta:
    """90d, 12w, 36h: an age in days, weeks or hours, at most MAX_AGE."""
    match = re.fullmatch(r"\s*(\d{1,12})\s*([dwh])\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"must be a number of days, weeks or hours like 90d, 12w or 36h, got {text[:40]!r}")
    unit = {"d": "days", "w": "weeks", "h": "hours"}[match[2]]
    if int(match[1]) > MAX_AGE / timedelta(**{unit: 1}):
        raise argparse.ArgumentTypeError(f"must be at most {MAX_AGE.days:,}d (use --all for every exchange), "
                                         f"got {text[:40]!r}")
    return timedelta(**{unit: int(match[1])})


def cmd_prune(args) -> int:
    store = open_store(args.db, create=False)
    before = None if args.all else datetime.now(timezone.utc) - args.older_than
    count = store.count_older(before)
    what = "every exchange" if before is None else f"the exchanges recorded before {before:%Y-%m-%d %H:%M} UTC"
    if count == 0:
        print(f"nothing to delete: no exchange in {store.path} matches ({what})")
        return 0
    if not args.yes:
        try:
            answer = input(f"Delete {count:,} exchanges ({what}) from {store.path}, with their rounds and coach "
                           "memory? This cannot be undone. [y/N] ")
        except EOFError:  # no one to ask
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted (answer y to delete, or pass --yes)")
            return 1
    size = store.size_bytes()
    deleted = store.prune(before)
    print(f"deleted {deleted:,} exchanges; {store.path} went from {size / 1e6:,.1f} MB to {store.size_bytes() / 1e6:,.1f} MB")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors are invalid input too: exit 3, never argparse's 2 (which means ABORT here)."""

    def error(self, message: str):
        self.exit(INVALID, f"error: {shorten(message, 400)} (see {self.prog} --help)\n")


def _add_history(sub) -> None:
    """`history` (History's filters, summary rows or whole artifacts) and `show` (one artifact)."""
    history = sub.add_parser("history", help="stored exchanges as JSON lines, newest first, with History's filters")
    history.add_argument("--db", type=db_path)
    history.add_argument("--outcome", choices=OUTCOMES)
    history.add_argument("--symbol")
    history.add_argument("--strategy")
    history.add_argument("--player", help="who played the Player: house-player, claude-player, 'external: <client>'...")
    history.add_argument("--since", type=_when, help="from this day (YYYY-MM-DD) or instant (YYYY-MM-DDTHH:MM)")
    history.add_argument("--until", type=_when, help="to this day (the whole day) or instant")
    history.add_argument("--dates-by", choices=list(DATES_BY), default="run",
                         help="what the dates mean: when the exchange ran (UTC) or its market day (ET)")
    history.add_argument("--text", help="words in the reasoning or critiques (literal, any case)")
    history.add_argument("--unfaithful", action="store_true", help="only exchanges whose reasoning misstated its trade")
    history.add_argument("--full", action="store_true", help="whole artifacts, one JSON object a line (as `show`)")
    history.add_argument("--limit", type=positive_int, help="at most this many (default 50; with --full every match)")
    history.set_defaults(run=cmd_history)

    show = sub.add_parser("show", help="one stored exchange's whole artifact as JSON")
    show.add_argument("run_id")
    show.add_argument("--db", type=db_path)
    show.set_defaults(run=cmd_show)


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="python -m core", description="Player-Coach Trade Review engine")
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("presets", help="list the shipped presets").set_defaults(run=cmd_presets)

    check = sub.add_parser("check", help="check a proposal JSON against a preset; exit 0/1/2/3")
    check.add_argument("proposal", help="a JSON file: {reasoning, actions: [...]}")
    check.add_argument("--preset", default="moderate")
    check.add_argument("--portfolio", help="a JSON file with the portfolio state")
    check.add_argument("--world", help="a JSON file with the world state (its atr counts for its symbol)")
    check.add_argument("--atr", type=_atr_value, action="append", metavar="SYMBOL=VALUE",
                       help="the 14-day ATR of a symbol, for min_stop_atr_multiple (repeatable)")
    check.set_defaults(run=cmd_check)

    exchange = sub.add_parser("exchange", help="run one exchange (house agents unless --player/--coach), print the "
                                               "artifact; exit 0 APPROVE, 1 REJECT-MAX, 2 ABORT, 3 bad input, 4 ERROR")
    add_world_options(exchange)
    add_agent_options(exchange)
    exchange.set_defaults(run=cmd_exchange)

    _add_history(sub)
    add_challenge(sub)
    add_whatif(sub)

    sub.add_parser("agents", help=f"list the agents installed as entry points ({ENTRY_POINT_GROUP})").set_defaults(
        run=cmd_agents)
    prune = sub.add_parser("prune", help="delete old exchanges (with their rounds and coach memory), then VACUUM")
    age = prune.add_mutually_exclusive_group(required=True)
    age.add_argument("--older-than", type=_age, metavar="AGE", help="run more than AGE ago: 90d, 12w or 36h")
    age.add_argument("--all", action="store_true", help="every exchange")
    prune.add_argument("--db", type=db_path)
    prune.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    prune.set_defaults(run=cmd_prune)

    add_sweep(sub)

    add_backtest(sub)
    from core.mcp.serve import add_parser as add_mcp
    from core.cli.repeat import add_parser as add_repeat

    add_repeat(sub)
    add_mcp(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except PlayerCoachError as error:
        print(f"error: {shorten(str(error), 400)}", file=sys.stderr)
        return INVALID
    except BrokenPipeError:  # `history --full | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error as Python exits
        return 0


if __name__ == "__main__":
    sys.exit(main())
