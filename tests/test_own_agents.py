"""Bring your own agent: a user's Player or Coach from Python, the command line and an installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

import core
from core.exchange.plugins import ENTRY_POINT_GROUP, agent_class, installed_agents, load_agent
from tests.support.ui_fixtures import texts
from ui import session

ROOT = Path(__file__).resolve().parent.parent
WORLD = ["--symbol", "AMZN", "--price", "180", "--sma5", "182", "--sma10", "185", "--as-of", "2025-03-04 10:00"]

AGENTS_MODULE = '''
import core


class Stubborn:
    """Always the same long: risk 2.00, reward 5.00 (ratio 2.50), 3 % of equity."""

    name = "stubborn"

    def propose(self, world, constraints, portfolio, history):
        said = "Long 3% at 100.00, stop 98.00, target 105.00: risk 2.00, reward 5.00, ratio 2.50."
        yield said
        return core.Turn(core.Proposal(reasoning=said, actions=[core.Action(
            action_type="enter_long", symbol=world.symbol, size_pct=0.03, entry_price=100.0, stop_loss=98.0,
            take_profit=105.0)]))


class Liar(Stubborn):
    name = "liar"

    def propose(self, world, constraints, portfolio, history):
        turn = yield from super().propose(world, constraints, portfolio, history)
        said = "Long 3% at 100.00, stop 98.00, target 105.00: risk 2.00, reward 8.00, ratio 4.00."
        return core.Turn(turn.value.model_copy(update={"reasoning": said}))


class Terse:
    """A Coach that says one word."""

    name = "terse"

    def critique(self, proposal, verdict, constraints, world, portfolio):
        yield verdict.decision.lower()
        return core.Turn(verdict.decision.lower() + ".")


class Crashes(Stubborn):
    def propose(self, world, constraints, portfolio, history):
        raise RuntimeError("my model file is missing")
        yield


class Garbage(Stubborn):
    def propose(self, world, constraints, portfolio, history):
        yield "here you go"
        return "buy everything"


class NotAnAgent:
    pass
'''


@pytest.fixture
def site(tmp_path):
    """A site folder holding the package `byo_agents` and its dist-info, entry points included."""
    (tmp_path / "byo_agents").mkdir()
    (tmp_path / "byo_agents" / "__init__.py").write_text(textwrap.dedent(AGENTS_MODULE))
    info = tmp_path / "byo_agents-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: byo-agents\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nstubborn = byo_agents:Stubborn\nterse = byo_agents:Terse\n"
        "not-an-agent = byo_agents:NotAnAgent\nmissing = byo_agents_gone:Agent\n")
    return tmp_path


def cli(*args: str, site: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(site or ""), str(ROOT)) if p)}
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=60)


def test_the_example_runs_from_python():
    result = subprocess.run([sys.executable, "-m", "examples.dip_buyer"], capture_output=True, text=True, cwd=ROOT,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("APPROVE A dip below the 10-day average: long 2.00% at 180.00")


def test_the_example_runs_from_the_command_line_and_the_artifact_names_its_class():
    result = cli("exchange", *WORLD, "--player", "examples.dip_buyer:DipBuyer")
    assert result.returncode == 0, result.stderr
    artifact = json.loads(result.stdout)
    assert artifact["outcome"] == "APPROVE"
    assert artifact["agents"]["player"] == "dip-buyer" and artifact["agents"]["coach"] == "house-coach"


@pytest.mark.parametrize("spec,message", [
    ("examples.dip_buyer:Nope", "--player 'examples.dip_buyer:Nope': examples.dip_buyer has no Nope"),
    ("no_such_package.agents:Player", "--player 'no_such_package.agents:Player': cannot import no_such_package"),
    ("nobody", "--player 'nobody': not module:Class and not an installed agent (none installed)"),
])
def test_a_player_that_cannot_be_loaded_is_one_line_and_exit_3(spec, message):
    result = cli("exchange", *WORLD, "--player", spec)
    assert result.returncode == 3
    assert result.stderr.strip().startswith("error: " + message) and "Traceback" not in result.stderr


def test_a_player_cannot_coach():
    result = cli("exchange", *WORLD, "--coach", "examples.dip_buyer:DipBuyer")
    assert result.returncode == 3
    assert "DipBuyer has no critique() method, so it cannot be the coach" in result.stderr


def test_installed_agents_are_found_by_entry_point(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    found = {agent.name: agent for agent in installed_agents()}
    assert found["stubborn"].roles == ("player",) and found["terse"].roles == ("coach",)
    assert found["not-an-agent"].problem == "it has neither propose() nor critique()"
    assert found["missing"].problem.startswith("cannot be loaded (ModuleNotFoundError")
    assert [a.name for a in installed_agents("coach")] == ["terse"]
    player = load_agent("stubborn", "player")
    assert agent_class(player) == "byo_agents:Stubborn"


def test_an_installed_agent_runs_from_the_command_line(site):
    listed = cli("agents", site=site)
    assert "stubborn\tbyo_agents:Stubborn\tplayer" in listed.stdout.splitlines()
    result = cli("exchange", *WORLD, "--player", "stubborn", "--coach", "terse", site=site)
    assert result.returncode == 0, result.stderr
    artifact = json.loads(result.stdout)
    assert artifact["outcome"] == "APPROVE"
    assert artifact["agents"]["player"] == "stubborn" and artifact["rounds"][0]["evaluation"]["feedback"] == "approve."


def test_an_installed_agent_is_offered_on_trade_review_and_plays(site, monkeypatch, app, app_store):
    monkeypatch.syspath_prepend(str(site))
    at = app()
    agents = at.selectbox(key=session.TR_AGENTS)
    assert agents.options == ["House agents", "stubborn", "terse"]  # the broken ones are not offered
    assert agents.value == "House agents"
    agents.set_value("stubborn").run()
    assert any("stubborn (byo_agents:Stubborn) as player, the house agent as the other" in t for t in texts(at, "info"))
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = app_store.get_exchange(at.session_state[session.LAST_RUN_ID])
    assert stored.agents.player == "stubborn" and stored.agents.coach == "house-coach"


def test_without_an_installed_agent_trade_review_offers_no_choice(app):
    at = app()
    assert not [s for s in at.selectbox if s.key == session.TR_AGENTS]


def test_an_installed_agent_backtests_from_the_command_line(site, tmp_path):
    db = tmp_path / "bt.db"
    result = cli("backtest", "--symbol", "MSFT", "--start", "2020-01-02", "--end", "2020-03-31", "--offline", "--json",
                 "--player", "stubborn", "--coach", "byo_agents:Terse", "--db", str(db), site=site)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)["moderate"]
    assert out["metrics"]["days"] == 62
    assert core.Store(db).get_backtest(out["run_key"])["player"] == "stubborn"


def test_an_installed_agent_is_offered_on_backtest_and_runs(site, monkeypatch, app, app_store, tmp_path):
    from core import market

    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.syspath_prepend(str(site))
    at = app("pages/backtest.py")
    agents = at.radio(key=session.BT_AGENTS)
    assert agents.options == ["House agents (offline, free)", "stubborn", "terse"]
    agents.set_value("stubborn").run()
    at.selectbox(key=session.BT_SYMBOL).set_value("MSFT").run()
    at.date_input(key=session.BT_START).set_value(date(2021, 1, 4)).run()
    at.date_input(key=session.BT_END).set_value(date(2021, 1, 15)).run()
    at.selectbox(key=session.BT_COMPARE).set_value("(none)").run()
    at.button(key=session.BT_RUN).click().run()
    for _ in range(200):  # a slice of a few days per run, as the page redraws its progress
        assert not at.exception, [e.value for e in at.exception]
        if not at.session_state[session.BT_JOB] if session.BT_JOB in at.session_state else True:
            break
        at.run()
    (run_key,) = at.session_state[session.BT_SHOWN]
    assert app_store.get_backtest(run_key)["player"] == "stubborn"


@pytest.mark.parametrize("name,reason", [
    ("Crashes", "RuntimeError: my model file is missing"),
    ("Garbage", "the player Garbage returned str ('buy everything'), not a Turn with a Proposal"),
])
def test_an_agent_that_raises_or_returns_garbage_ends_the_exchange_error_with_its_message(site, monkeypatch, name,
                                                                                          reason, world, moderate):
    monkeypatch.syspath_prepend(str(site))
    player = load_agent(f"byo_agents:{name}", "player")
    player.name = name
    artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), player, core.HouseCoach())
    assert (artifact.outcome, artifact.termination_reason, artifact.rounds_taken) == ("ERROR", reason, 0)


def test_a_plain_method_and_a_proposal_as_a_dict_are_accepted_a_bad_dict_is_named(world, moderate):
    class Plain:
        name = "plain"

        def __init__(self, actions):
            self.actions = actions

        def propose(self, world, constraints, portfolio, history):  # no streaming: the answer at once
            return {"reasoning": "Long 3%.", "actions": self.actions}

    good = [{"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.03, "entry_price": 100.0, "stop_loss": 98.0,
             "take_profit": 105.0}]
    artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), Plain(good), core.HouseCoach())
    assert artifact.outcome == "APPROVE" and artifact.rounds[0].reasoning_check.score == 1.0
    artifact = core.run_exchange_sync(world, moderate, core.Portfolio(), Plain([{**good[0], "size_pct": "big"}]),
                                      core.HouseCoach())
    assert artifact.outcome == "ERROR"
    assert artifact.termination_reason.startswith("the player plain returned an invalid proposal: actions.0.size_pct")


def test_the_artifact_names_the_agent_classes(site, monkeypatch):
    result = cli("exchange", *WORLD, "--player", "stubborn", "--coach", "terse", site=site)
    agents = json.loads(result.stdout)["agents"]
    assert agents["player_class"] == "byo_agents:Stubborn" and agents["coach_class"] == "byo_agents:Terse"


UNRULY_MODULE = '''
import core


class Exits:
    name = "exits"

    def propose(self, world, constraints, portfolio, history):
        yield "thinking..."
        raise SystemExit(0)


class Interrupts(Exits):
    name = "interrupts"

    def propose(self, world, constraints, portfolio, history):
        yield "thinking..."
        raise KeyboardInterrupt


class Spins:
    """Too big in round 1 (rejected), then loops forever in round 2."""

    name = "spins"

    def propose(self, world, constraints, portfolio, history):
        if history:
            while True:
                pass
        said = "Long 50% at 100.00, stop 98.00, target 105.00."
        yield said
        return core.Turn(core.Proposal(reasoning=said, actions=[core.Action(
            action_type="enter_long", symbol=world.symbol, size_pct=0.5, entry_price=100.0, stop_loss=98.0,
            take_profit=105.0)]))


class Chatters(Exits):
    name = "chatters"

    def propose(self, world, constraints, portfolio, history):
        while True:
            yield "and another thing... "


class NameRaises(Exits):
    @property
    def name(self):
        raise RuntimeError("no name today")


class NameIsANumber(Exits):
    name = 42
'''


@pytest.fixture
def unruly(site):
    """`site` plus the package `unruly` (agents that misbehave at run time) and modules that fail at import."""
    (site / "unruly.py").write_text(textwrap.dedent(UNRULY_MODULE))
    (site / "boom.py").write_text("raise RuntimeError('boom at import')\n")
    (site / "broken_syntax.py").write_text("def propose(:\n")
    (site / "exits_at_import.py").write_text("import sys\nsys.exit(0)\n")
    (site / "interrupts_at_import.py").write_text("raise KeyboardInterrupt\n")
    (site / "byo_agents-1.0.dist-info" / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nstubborn = byo_agents:Stubborn\nquits = exits_at_import:Agent\n"
        "stops = interrupts_at_import:Agent\n")
    return site


@pytest.mark.parametrize("spec,message", [
    ("boom:Agent", "cannot import boom (RuntimeError: boom at import)"),
    ("broken_syntax:Agent", "cannot import broken_syntax (SyntaxError:"),
    ("exits_at_import:Agent", "cannot import exits_at_import (SystemExit: 0)"),
    ("interrupts_at_import:Agent", "cannot import interrupts_at_import (KeyboardInterrupt"),
    (":Agent", "give module:Class, both parts (got ':Agent')"),
    ("unruly:NameRaises", "cannot make one with no arguments (RuntimeError: no name today)"),
    ("unruly:NameIsANumber", "its name must be non-empty text, not int '42'"),
])
def test_an_agent_that_fails_to_load_is_exit_3_and_one_line(unruly, spec, message):
    result = cli("exchange", *WORLD, "--player", spec, site=unruly)
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("spec,reason", [
    ("unruly:Exits", "the player exits raised SystemExit(0): ended, not obeyed"),
    ("unruly:Interrupts", "the player interrupts raised KeyboardInterrupt(): ended, not obeyed"),
    ("unruly:Chatters", "the player chatters streamed more than 20,000 characters in one turn"),
])
def test_an_agent_that_exits_or_never_stops_talking_ends_error_exit_4(unruly, spec, reason):
    result = cli("exchange", *WORLD, "--player", spec, site=unruly)
    assert result.returncode == 4, (result.returncode, result.stderr)
    artifact = json.loads(result.stdout)
    assert artifact["outcome"] == "ERROR" and reason in artifact["termination_reason"]


def test_a_runaway_agent_ends_error_after_its_time_limit_keeping_the_rounds_before(unruly, tmp_path):
    result = cli("exchange", *WORLD, "--player", "unruly:Spins", "--agent-timeout", "1", "--db", str(tmp_path / "x.db"),
                 site=unruly)
    assert result.returncode == 4, (result.returncode, result.stderr)
    artifact = json.loads(result.stdout)
    assert artifact["outcome"] == "ERROR"
    assert "the player spins took longer than 1 s for one turn" in artifact["termination_reason"]
    assert artifact["rounds_taken"] == 1 and artifact["rounds"][0]["evaluation"]["decision"] == "REJECT"
    assert core.Store(tmp_path / "x.db").get_exchange(artifact["run_id"]).rounds_taken == 1


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon", "3601"])
def test_a_bad_agent_timeout_is_exit_3(value):
    result = cli("exchange", *WORLD, "--agent-timeout", value)
    assert result.returncode == 3
    assert "--agent-timeout" in result.stderr and "Traceback" not in result.stderr


def test_an_entry_point_that_exits_at_import_is_listed_broken_and_the_pages_still_draw(unruly, monkeypatch, app):
    listed = cli("agents", site=unruly)
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert "quits\texits_at_import:Agent\tbroken: cannot be loaded (SystemExit: 0)" in lines
    assert any(line.startswith("stops\tinterrupts_at_import:Agent\tbroken: cannot be loaded (KeyboardInterrupt")
               for line in lines)
    monkeypatch.syspath_prepend(str(unruly))
    at = app()
    assert at.button(key=session.TR_RUN) is not None and at.title
    assert at.selectbox(key=session.TR_AGENTS).options == ["House agents", "stubborn"]
    backtest = app("pages/backtest.py")
    assert backtest.button(key=session.BT_RUN) is not None
