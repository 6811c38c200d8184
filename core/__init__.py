"""Player-Coach Trade Review engine: a library with no Streamlit in it.

    import core
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    artifact = core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(),
                                      core.HousePlayer(), core.HouseCoach(), store=core.Store())
    result = core.run_backtest("MSFT", "2021-03-01", "2021-06-30", core.load_preset("moderate"),
                               core.HousePlayer(), core.HouseCoach())
    portfolio = core.Backtest(["MSFT", "BTC-USD"], "2020-03-02", "2020-12-31", core.load_preset("aggressive"),
                              core.HousePlayer(), core.HouseCoach(), costs=core.Costs(fee_bps=1)).run()
"""

import importlib

from core.exchange.agent import Coach, Player, Turn
from core.journal.deriver import derive_constraints
from core.exchange.errors import AgentError, InvalidInput, MarketDataError, PlayerCoachError, SpendLimitReached, StoreError
from core.exchange.house import HouseCoach, HousePlayer
from core.exchange.loop import (
    BreakerTripped, Event, ExchangeFinished, ExchangeStarted, ProposalMade, RoundStarted, TextFragment,
    VerdictReached, replay_exchange,
)
from core.exchange.presets import list_presets, load_preset, parse_constraints
from core.exchange.reasoning import Claim, ReasoningCheck, reasoning_check
from core.exchange.repeat import Repeatability, Spread, repeat
from core.exchange.rules import check_proposal, circuit_breaker, risk_reward
from core.exchange.schema import (
    BREAKER_NAMES, ET, OUTCOMES, RULE_NAMES, Action, Constraints, Portfolio, Proposal, WorldState,
)
from core.exchange.artifact import Agents, Artifact, Check, Evaluation, ReasoningGrade, Round, Usage, Verdict
from core.claude.spend_guard import SpendGuard
from core.journal.record import run_exchange, run_exchange_sync  # the loop, recorded when given a store=
from core.journal.store import HistoryFilter, Store

_LAZY = {
    "ClaudeCoach": "claude.agents", "ClaudeGrader": "claude.agents", "ClaudePlayer": "claude.agents",
    "list_models": "claude.models", "validate_key": "claude.models",
    "Backtest": "backtest.engine", "BacktestResult": "backtest.result", "compare_presets": "backtest.job",
    "run_backtest": "backtest.job", "Costs": "backtest.spec", "BacktestSpec": "backtest.spec",
    "load_bars": "market", "world_state": "market",
    "ChallengeResult": "backtest.challenge", "ChallengeRules": "backtest.challenge",
    "pass_probability": "backtest.challenge", "rolling_pass_rate": "backtest.challenge", "sweep": "backtest.sweeps",
    "Challenge": "backtest.challenge", "list_challenges": "backtest.templates", "load_challenge": "backtest.templates",
    "attribution": "backtest.whatif", "sensitivity": "backtest.whatif", "frontier": "backtest.whatif",
}
"""Names whose modules load on first use: the Anthropic SDK and yfinance each take a second to import."""


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"core.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")


__all__ = [
    "Action", "AgentError", "Agents", "Artifact", "BREAKER_NAMES", "Backtest", "BacktestResult", "BacktestSpec", "BreakerTripped",
    "ChallengeResult", "ChallengeRules", "Check", "Claim", "ClaudeCoach", "ClaudeGrader", "ClaudePlayer", "Coach",
    "Constraints", "Costs", "ET", "Evaluation", "Event", "ExchangeFinished", "ExchangeStarted", "HouseCoach",
    "HistoryFilter", "HousePlayer", "InvalidInput", "MarketDataError", "OUTCOMES", "Player", "PlayerCoachError", "Portfolio",
    "Proposal", "ProposalMade", "RULE_NAMES", "ReasoningCheck", "Repeatability", "ReasoningGrade", "Round", "RoundStarted",
    "SpendGuard", "SpendLimitReached", "Spread", "Store", "StoreError", "TextFragment", "Turn", "Usage", "Verdict",
    "VerdictReached", "WorldState", "attribution", "frontier", "sensitivity", "check_proposal", "circuit_breaker", "compare_presets", "derive_constraints",
    "list_models", "list_presets", "load_bars", "load_preset", "parse_constraints", "pass_probability",
    "reasoning_check", "repeat", "replay_exchange", "risk_reward", "rolling_pass_rate", "run_backtest", "run_exchange",
    "run_exchange_sync", "sweep", "validate_key", "world_state",
    "Challenge", "list_challenges", "load_challenge",  # named challenge templates (issue 18 §5)
]
