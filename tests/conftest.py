"""Shared fixtures: a fresh store per test, a world state, portfolios, proposals."""

from __future__ import annotations

import pytest

import core
from tests.support.builders import make_key
from tests.support.fake_anthropic import FakeAnthropic

pytest_plugins = ["tests.support.ui_fixtures"]


@pytest.fixture
def store(tmp_path):
    return core.Store(tmp_path / "test.db")


@pytest.fixture
def world():
    return core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)


@pytest.fixture
def moderate():
    return core.load_preset("moderate")


@pytest.fixture
def key():
    return make_key()


@pytest.fixture
def fake():
    """The fake Anthropic server (tests/support/fake_anthropic.py), running for one test."""
    with FakeAnthropic() as server:
        yield server
