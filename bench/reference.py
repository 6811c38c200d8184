"""The reference package, `player-coach-core` 2.0.1, timed beside ours on the same exchanges.

It is installed into a virtual environment of its own (never the project's), kept between runs in
PLAYER_COACH_REFERENCE_VENV (default: the temp folder). Its `CoachLoop` runs the rounds our house
Player played, proposal for proposal, with a Coach that defers to its mechanical checks, so both
sides do the same work: the rounds, the rules, the artifact, and the store when there is one.

Its trading-cutoff breaker reads the wall clock in New York, where ours reads the world's `as_of`: run
after the cutoff (16:20 ET by default), it ended every exchange before round 1, and the ratios compared
our rounds with its aborts. It is given the world's time instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "player-coach-core==2.0.1"
VENV = Path(os.environ.get("PLAYER_COACH_REFERENCE_VENV") or Path(tempfile.gettempdir()) / "player-coach-reference-2.0.1")

_TIMER = r'''
import json, sys, tempfile, time
from pathlib import Path
from player_coach.artifacts.writer import ArtifactWriter
from player_coach.constraints.schema import ConstraintSchema
from player_coach.database.store import DatabaseStore
from player_coach.loop.breaker_registry import BreakerRegistry, CircuitBreaker, default_breakers
from player_coach.loop.circuit_breakers import is_trading_cutoff_reached
from player_coach.loop.coach_loop import CoachLoop
from player_coach.portfolio.state import PortfolioState

cases, n, batches, with_db = json.load(sys.stdin)

class Player:  # plays back our house Player's proposals, round by round
    def __init__(self):
        self.rounds, self.at = [], 0
    def decide(self, world_state, constraints, history=None, patterns=None):
        proposal = self.rounds[min(len(history or ()), len(self.rounds) - 1)]
        return {**proposal, "tokens_used": {"player": 0}}

class Coach:  # approves; the loop's mechanical checks reject what breaks a limit
    def evaluate(self, proposal, constraints, world_state):
        return {"verdict": "APPROVE", "violations": [], "critique": "", "tokens_used": {"coach": 0}}

def breakers(clock):  # its own breakers, the cutoff read at the world's time rather than now in New York
    return BreakerRegistry([*(b for b in default_breakers() if b.name != "trading_cutoff"),
                            CircuitBreaker("trading_cutoff", 4, lambda p, c: is_trading_cutoff_reached(c, clock))])

with tempfile.TemporaryDirectory() as tmp:
    player, writer = Player(), ArtifactWriter(Path(tmp) / "artifacts")
    loops = {clock: CoachLoop(player, Coach(), writer, breakers=breakers(clock))
             for clock in {c["clock"] for c in cases}}
    prepared = [(c["world"], ConstraintSchema.from_dict(c["constraints"]), c["rounds"], loops[c["clock"]])
                for c in cases]
    store = DatabaseStore(Path(tmp) / "reference.db") if with_db else None
    rounds, unplayed, best = 0, 0, float("inf")
    for batch in range(batches + 1):  # the first batch warms up
        start = time.perf_counter()
        for i in range(n):
            world, schema, player.rounds, loop = prepared[i % len(prepared)]
            book = PortfolioState(capital=100_000.0, daily_starting_balance=100_000.0, peak_capital=100_000.0,
                                  cash_available=100_000.0)
            artifact = loop.run(world, schema, book, db_store=store, output_dir=writer.output_dir)
            if batch == 0:
                rounds += artifact["rounds_taken"]
                unplayed += bool(player.rounds) and not artifact["rounds_taken"]
        if batch:
            best = min(best, (time.perf_counter() - start) / n)
print(json.dumps({"seconds": best, "mean_rounds": rounds / n, "unplayed": unplayed}))
'''


def python() -> Path | None:
    """The reference environment's interpreter, installing it on first use; None when it cannot be had."""
    exe = VENV / "bin" / "python"
    if exe.exists():
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", PACKAGE], check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as failure:
        print(f"  reference package unavailable ({failure}); no ratios", file=sys.stderr)
        shutil.rmtree(VENV, ignore_errors=True)
        return None
    return exe


def reference_case(world, constraints, artifact) -> dict:
    """One of our exchanges as the reference loop reads it: the world, the schema, our Player's proposals."""
    return {
        "world": {**world.model_dump(mode="json"), "open_positions": []},
        "clock": f"{world.as_of:%H:%M}",  # Eastern Time, as its cutoff breaker reads the clock
        # No ATR floor is None in our schema and 0 in theirs (their checker multiplies it by the ATR)
        "constraints": {**constraints.model_dump(mode="json"),
                        "min_stop_atr_multiple": constraints.min_stop_atr_multiple or 0.0},
        "rounds": [{"actions": [a.model_dump(mode="json", exclude_none=True) for a in r.proposal.actions],
                    "reasoning": r.proposal.reasoning} for r in artifact.rounds],
    }


def time_exchanges(cases: list[dict], n: int, batches: int, with_db: bool) -> dict | None:
    """Best-batch seconds per reference exchange over `cases`, and its mean rounds; None without the package, or
    when it did not play the rounds ours did."""
    exe = python()
    if exe is None:
        return None
    done = subprocess.run([str(exe), "-c", _TIMER], input=json.dumps([cases, n, batches, with_db]),
                          capture_output=True, text=True, check=True, timeout=1800)
    timed = json.loads(done.stdout)
    if timed["unplayed"]:  # a breaker of its own ended an exchange before round 1 that ours played
        print(f"  the reference ended {timed['unplayed']} of {n} exchanges before a round that ours played: "
              "not the same work, no ratio", file=sys.stderr)
        return None
    return timed
