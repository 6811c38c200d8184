"""`core` is a library: importable and usable without Streamlit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python(script: str) -> str:
    """Run a script in a fresh interpreter, as a user of the library would; its output."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_core_runs_an_exchange_a_backtest_and_a_query_without_streamlit(tmp_path):
    script = (
        "import os, sys, core\n"
        "os.environ['PLAYER_COACH_OFFLINE'] = '1'\n"
        "result = core.run_backtest('MSFT', '2021-03-01', '2021-06-30', core.load_preset('moderate'),\n"
        "                           core.HousePlayer(), core.HouseCoach())\n"
        "assert result.source == 'snapshot' and result.metrics['days'] > 60, result.metrics\n"
        f"store = core.Store({str(tmp_path / 'lib.db')!r})\n"
        "world = core.WorldState(symbol='MSFT', as_of='2025-03-04 10:00', price=400, sma5=402, sma10=398)\n"
        "artifact = core.run_exchange_sync(world, core.load_preset('moderate'), core.Portfolio(),\n"
        "                                  core.HousePlayer(), core.HouseCoach(), store=store)\n"
        "assert store.list_exchanges(outcome=artifact.outcome)[0]['run_id'] == artifact.run_id\n"
        "assert store.get_exchange(artifact.run_id) == artifact\n"
        "assert 'streamlit' not in sys.modules, 'core imported streamlit'\n"
        "print(artifact.outcome)\n"
    )
    assert python(script) == "APPROVE"


def test_no_core_module_imports_streamlit():
    offenders = [str(p) for p in (ROOT / "core").rglob("*.py") if "import streamlit" in p.read_text()
                 or "from streamlit" in p.read_text()]
    assert offenders == []


def test_claude_and_backtest_names_are_exported_without_importing_the_sdk_up_front():
    script = (
        "import sys, core\n"
        "assert 'anthropic' not in sys.modules, 'import core pulled in the SDK'\n"
        "assert callable(core.validate_key) and core.ClaudePlayer and core.ClaudeCoach and core.SpendGuard\n"
        "assert 'anthropic' in sys.modules\n"
        "assert set(core.__all__) >= {'validate_key', 'ClaudePlayer', 'ClaudeCoach', 'SpendGuard'}\n"
        "assert 'yfinance' not in sys.modules and core.run_backtest and core.load_bars and core.world_state\n"
        "try:\n    core.no_such_thing\nexcept AttributeError:\n    print('ok')\n"
    )
    assert python(script) == "ok"


PUBLIC_NAMES = {
    "Action", "AgentError", "Agents", "Artifact", "BREAKER_NAMES", "Backtest", "BacktestResult", "BreakerTripped",
    "ChallengeResult", "ChallengeRules", "Check", "Claim", "ClaudeCoach", "ClaudeGrader", "ClaudePlayer", "Coach",
    "Constraints", "Costs", "ET", "Evaluation", "Event", "ExchangeFinished", "ExchangeStarted", "HouseCoach",
    "HousePlayer", "InvalidInput", "MarketDataError", "OUTCOMES", "Player", "PlayerCoachError", "Portfolio", "Proposal",
    "ProposalMade", "RULE_NAMES", "ReasoningCheck", "ReasoningGrade", "Round", "RoundStarted", "SpendGuard",
    "SpendLimitReached", "Store", "StoreError", "TextFragment", "Turn", "Usage", "Verdict", "VerdictReached",
    "WorldState", "check_proposal", "circuit_breaker", "compare_presets", "derive_constraints", "list_models",
    "list_presets", "load_bars", "load_preset", "parse_constraints", "pass_probability", "reasoning_check",
    "replay_exchange", "risk_reward", "rolling_pass_rate", "run_backtest", "run_exchange", "run_exchange_sync", "sweep",
    "validate_key", "world_state",
}
"""What `import core` offered users before the engines moved into packages: none of it may go."""


def test_core_keeps_every_public_name_it_has_offered():
    names = python("import core\nprint(' '.join(n for n in core.__all__ if getattr(core, n, None) is not None))").split()
    assert PUBLIC_NAMES <= set(names), sorted(PUBLIC_NAMES - set(names))
