"""Shared fixtures: a fresh store per test, a world state, portfolios, proposals."""

from __future__ import annotations

import secrets
import string

import pytest

import core
from tests.fake_anthropic import FakeAnthropic


@pytest.fixture
def store(tmp_path):
    return core.Store(tmp_path / "test.db")


@pytest.fixture
def world():
    return core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)


@pytest.fixture
def moderate():
    return core.load_preset("moderate")


def entry(side="enter_long", symbol="AMZN", size=0.03, e=264.14, s=262.14, t=267.14) -> dict:
    """An entry action as a dict (what a Player or a file would send)."""
    return {"action_type": side, "symbol": symbol, "size_pct": size, "entry_price": e, "stop_loss": s, "take_profit": t}


def proposal(*actions: dict, reasoning: str = "test") -> core.Proposal:
    return core.Proposal.model_validate({"reasoning": reasoning, "actions": list(actions)})


def make_key() -> str:
    """A fresh, distinctive Anthropic-shaped key, so a stray copy of it anywhere is easy to find."""
    return "sk-ant-test-" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


@pytest.fixture
def key():
    return make_key()


@pytest.fixture
def fake():
    """The fake Anthropic server (tests/fake_anthropic.py), running for one test."""
    with FakeAnthropic() as server:
        yield server
