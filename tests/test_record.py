"""The journal records an exchange from its events: the loop itself stores nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import core
from core.exchange.agent import Turn
from core.exchange.loop import run_exchange
from core.journal import record
from tests.support.builders import entry, proposal

ROOT = Path(__file__).resolve().parent.parent
TOO_BIG = proposal(entry(size=0.5, e=100, s=98, t=104), reasoning="too big")
GOOD = proposal(entry(size=0.03, e=100, s=98, t=104), reasoning="good")


class Scripted:
    name = "scripted"

    def __init__(self, *proposals):
        self.proposals, self.calls = proposals, 0

    def propose(self, world, constraints, portfolio, history):
        self.calls += 1
        yield "thinking"
        return Turn(self.proposals[min(self.calls, len(self.proposals)) - 1])


def test_the_exchange_package_never_imports_the_journal():
    def imported(path):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                yield node.module or ""
    offenders = {p.name: name for p in (ROOT / "core" / "exchange").rglob("*.py") for name in imported(p)
                 if name.startswith("core.journal")}
    assert offenders == {}


def test_record_writes_each_step_before_passing_the_event_on(world, moderate, store):
    seen = []
    for event in record(run_exchange(world, moderate, core.Portfolio(), Scripted(TOO_BIG, TOO_BIG, GOOD),
                                      core.HouseCoach(), run_id="r1"), store):
        seen.append(type(event).__name__)
        if isinstance(event, core.ExchangeStarted):
            assert core.Store(store.path).get_exchange("r1").outcome == "INTERRUPTED"
        if isinstance(event, core.VerdictReached):
            on_disk = core.Store(store.path).get_exchange("r1")
            assert [r.round for r in on_disk.rounds] == list(range(1, event.round + 1))
            assert on_disk.outcome == ("APPROVE" if event.last else "INTERRUPTED")
    assert seen[0] == "ExchangeStarted" and seen[-1] == "ExchangeFinished"
    stored = store.get_exchange("r1")
    assert stored == event.artifact and stored.rounds_taken == 3


def test_the_outcome_writes_the_detail_as_it_stands_at_the_end(world, moderate, store):
    # The detail written at the start is kept only while it still holds: usage that grew is written, and so is
    # a finished artifact given with snapshots of its own.
    started = core.run_exchange_sync(world, moderate, core.Portfolio(), Scripted(GOOD), core.HouseCoach())
    live = started.model_copy(update={"run_id": "grew", "outcome": "INTERRUPTED"})
    store.start_exchange(live)
    live.usage = core.Usage(input=1200, output=300, cost_usd=0.0081)
    store.finish_exchange(live)
    assert store.get_exchange("grew").usage == live.usage
    store.start_exchange(started.model_copy(update={"run_id": "anew", "outcome": "INTERRUPTED"}))
    richer = core.Portfolio(equity=99_000.0, peak_equity=100_000.0, start_of_day_equity=100_000.0, today_pnl=-1000.0)
    store.finish_exchange(started.model_copy(update={"run_id": "anew", "portfolio_snapshot": richer}))
    assert store.get_exchange("anew").portfolio_snapshot == richer


def test_the_loop_alone_leaves_nothing_on_record(world, moderate, store):
    artifact = core.exchange.loop.run_exchange_sync(world, moderate, core.Portfolio(), Scripted(GOOD),
                                                    core.HouseCoach())
    assert artifact.outcome == "APPROVE" and store.count_exchanges() == 0


def test_closing_the_recorder_mid_round_keeps_the_round_as_it_stood(world, moderate, store):
    events = record(run_exchange(world, moderate, core.Portfolio(), Scripted(TOO_BIG), core.HouseCoach(),
                                 run_id="cut"), store)
    for event in events:
        if isinstance(event, core.ProposalMade) and event.round == 2:
            break
    events.close()
    stored = store.get_exchange("cut")
    assert (stored.outcome, stored.termination_reason, stored.rounds_taken) == ("INTERRUPTED", "interrupted", 1)
    assert [(r.round, r.complete) for r in stored.rounds] == [(1, True), (2, False)]


def test_closing_right_after_the_start_records_an_interrupted_exchange(world, moderate, store):
    player = Scripted(GOOD)
    events = record(run_exchange(world, moderate, core.Portfolio(), player, core.HouseCoach(), run_id="early"), store)
    next(events)
    events.close()
    stored = store.get_exchange("early")
    assert (stored.outcome, stored.termination_reason, stored.rounds) == ("INTERRUPTED", "interrupted", [])
    assert player.calls == 0


def test_a_consumer_that_fails_still_leaves_the_exchange_closed(world, moderate, store):
    def watch():
        for event in record(run_exchange(world, moderate, core.Portfolio(), Scripted(TOO_BIG), core.HouseCoach(),
                                         run_id="boom"), store):
            if isinstance(event, core.VerdictReached):
                raise RuntimeError("the page fell over")

    try:
        watch()
    except RuntimeError:
        pass
    stored = store.get_exchange("boom")
    assert (stored.outcome, stored.rounds_taken) == ("INTERRUPTED", 1)


def test_sigkill_during_exchanges_loses_no_finished_round(tmp_path):
    """A process killed outright (no finally runs) keeps every round that had ended."""
    db = tmp_path / "killed.db"
    script = (
        "import os, signal, sys, core\n"
        "from core.exchange.agent import Turn\n"
        "from tests.support.builders import entry, proposal\n"
        "big = proposal(entry(size=0.5, e=100, s=98, t=104), reasoning='too big')\n"
        "class Dies:\n"
        "    name = 'dies'\n"
        "    calls = 0\n"
        "    def propose(self, world, constraints, portfolio, history):\n"
        "        Dies.calls += 1\n"
        "        if Dies.calls == 5:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return Turn(big)\n"
        "store = core.Store(sys.argv[1])\n"
        "w = core.WorldState(symbol='AMZN', as_of='2025-03-04 10:00', price=185, sma5=183, sma10=180)\n"
        "for n in range(2):\n"
        "    core.run_exchange_sync(w, core.load_preset('moderate'), core.Portfolio(), Dies(), core.HouseCoach(),\n"
        "                           store=store, run_id=f'x{n}')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(db)], cwd=ROOT, timeout=120)
    assert done.returncode == -9
    store = core.Store(db)
    first, second = store.get_exchange("x0"), store.get_exchange("x1")
    assert (first.outcome, first.rounds_taken) == ("REJECT-MAX", 3)
    assert second.outcome == "INTERRUPTED" and [r.round for r in second.rounds] == [1]
