"""`python -m core challenge`: would a backtest's (or a file's) daily returns pass a funded-account challenge?

Its own module, like the other command families in core/cli; core/__main__.py adds it with
`add_parser(sub)`. Bad input is InvalidInput (exit 3, one line), as in every other command.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from core.backtest.challenge import (DRAWDOWN_RULES, MAX_HORIZON_DAYS, MAX_PATHS, MAX_RETURN_DAYS,
                                     MAX_RETURNS_FILE_BYTES, Challenge, ChallengeRules, pass_probability, phases_of,
                                     read_returns, rolling_pass_rate)
from core.backtest.templates import list_challenges, load_challenge
from core.exchange.errors import InvalidInput
from core.exchange.presets import list_presets, load_preset
from core.journal.options import db_path, open_store

MEANING = f"""\
What the numbers mean:
  P(pass)  the share of simulated paths that pass. Each path is drawn at random from this backtest's
           own daily returns (in blocks of --block days), so it says how often this P&L, reshuffled,
           would pass: not a forecast of days the backtest never saw.
  horizon  with no time limit (--max-days left out, as the templates do) a path runs at most
           {MAX_HORIZON_DAYS:,} trading days (ten years) per phase and then counts as timed out; a longer
           --max-days or --min-days is refused.
  from each start day  the actual sequence, walked from every day of the history in turn. It differs
           from P(pass): it keeps the real order of the days (streaks, regimes), it has as many starts
           as days (a few hundred, not {10_000:,} paths), and a start near the end runs out of history
           before a verdict, which counts as not passed.
Limits: at most {MAX_PATHS:,} paths and {MAX_RETURN_DAYS:,} days of returns; a returns file of at most
{MAX_RETURNS_FILE_BYTES // 2**20} MiB."""


def _whole(maximum: int, minimum: int = 1):
    """An argparse type: a whole number in [minimum, maximum], else a usage error (exit 3)."""
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not minimum <= int(text) <= maximum:
            raise argparse.ArgumentTypeError(f"must be a whole number from {minimum} to {maximum:,}, got {text!r}")
        return int(text)
    return parse


def add_parser(sub) -> None:
    """The `challenge` command and its options."""
    p = sub.add_parser("challenge", help="probability of passing a challenge (bootstrap of daily returns)",
                       description="The probability that a backtest's daily P&L passes a funded-account challenge: "
                                   "a named template (--template) or a profit target with a preset's limits.",
                       epilog=MEANING, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-backtest", metavar="RUN_ID", help="a stored backtest's run key (see --db)")
    source.add_argument("--returns", metavar="FILE.csv", help="daily returns: a return or equity column")
    p.add_argument("--template", metavar="NAME",
                   help=f"a shipped challenge: {', '.join(list_challenges())} (sets every rule below)")
    p.add_argument("--target", type=float, help="profit target as a fraction (0.06 = 6 %%); needed without --template")
    p.add_argument("--preset", help="the drawdown, daily loss and consistency limits (default: the "
                                    "backtest's preset, else moderate)")
    p.add_argument("--drawdown", choices=DRAWDOWN_RULES, default="trailing",
                   help="trailing: the loss limit follows the highest equity; static: it stays at the starting "
                        "balance (default trailing)")
    p.add_argument("--paths", type=_whole(MAX_PATHS), default=10_000, help=f"at most {MAX_PATHS:,} (default 10,000)")
    p.add_argument("--block", type=_whole(MAX_RETURN_DAYS), default=1, help="days drawn together (1 = independent)")
    p.add_argument("--max-days", type=_whole(MAX_HORIZON_DAYS),
                   help=f"time limit in trading days, at most {MAX_HORIZON_DAYS:,} (default: none, so the horizon)")
    p.add_argument("--min-days", type=_whole(MAX_HORIZON_DAYS, 0), default=0,
                   help="days with a non-zero return needed to pass")
    p.add_argument("--no-consistency", action="store_true", help="drop the preset's consistency rule")
    p.add_argument("--seed", type=_whole(2**32 - 1, 0), default=0)
    p.add_argument("--db", type=db_path, help="the SQLite file of --from-backtest")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def _rules(args, preset: str) -> ChallengeRules | Challenge:
    if args.template is not None:
        own = [flag for flag, given in (("--target", args.target is not None), ("--preset", args.preset),
                                        ("--max-days", args.max_days), ("--min-days", args.min_days),
                                        ("--no-consistency", args.no_consistency),
                                        ("--drawdown", args.drawdown != "trailing")) if given]
        if own:
            raise InvalidInput(f"--template: {args.template} sets its own rules; leave out {', '.join(own)}")
        return load_challenge(args.template)
    if args.target is None:
        raise InvalidInput(f"--target: give a profit target, or --template ({', '.join(list_challenges())})")
    return ChallengeRules.from_constraints(load_preset(preset), args.target, min_trading_days=args.min_days,
                                           max_days=args.max_days, consistency=not args.no_consistency,
                                           drawdown=args.drawdown)


def run(args) -> int:
    """Pass probability of a challenge for a stored backtest's daily returns or a returns file."""
    preset, source = args.preset, args.returns
    if args.from_backtest:
        from core.backtest.job import reopen_backtest

        try:
            result = reopen_backtest(open_store(args.db, create=False), args.from_backtest)
        except InvalidInput as error:
            raise InvalidInput(f"--from-backtest: {str(error).removeprefix('run_key: ')}") from None
        returns = result.equity.pct_change().iloc[1:]
        preset = preset or (result.preset if result.preset in list_presets() else "moderate")
        source = f"backtest {result.run_key} ({result.symbol} {result.start} .. {result.end}, {result.preset})"
    else:
        returns = read_returns(args.returns)
    preset = preset or "moderate"
    rules = _rules(args, preset)
    outcome = pass_probability(returns, rules, paths=args.paths, block=args.block, seed=args.seed)
    rolling = rolling_pass_rate(returns, rules)
    named = isinstance(rules, Challenge)
    if args.json:
        shown = [asdict(phase) for phase in phases_of(rules)] if named else asdict(rules)
        print(json.dumps({"source": source, "days": len(returns), "preset": None if named else preset,
                          "template": rules.name if named else None, "rules": shown, "result": outcome.to_dict(),
                          "rolling_pass_rate": None if rolling != rolling else rolling}, indent=2))
        return 0
    median = "—" if outcome.median_days_to_pass is None else f"{outcome.median_days_to_pass:g} days"
    what = (f"challenge {rules.name}: {rules.title}" if named
            else f"rules of {preset}, target {rules.profit_target_pct:.2%}, {rules.drawdown} drawdown")
    print(f"{source}: {len(returns)} daily returns; {what}")
    print(f"pass probability {outcome.p_pass:.1%} (95 % interval {outcome.ci_low:.1%} to {outcome.ci_high:.1%}, "
          f"{outcome.paths:,} paths drawn from these days, blocks of {outcome.block})")
    print(f"failed on drawdown {outcome.p_fail_drawdown:.1%}, on the daily limit {outcome.p_fail_daily:.1%}, "
          f"timed out {outcome.p_timeout:.1%}; median days to pass {median}")
    print("from each historical start day: " + ("no start day with enough history" if rolling != rolling
                                                  else f"{rolling:.1%} passed"))
    return 0
