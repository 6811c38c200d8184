"""Trade Review with Claude against the fault-injecting fake: a fault ends with a reason a trader
understands and a Retry; the round card says what the round cost and how the model was asked."""

import pytest

from tests.support.fake_anthropic import rate_limited
from tests.support.ui_fixtures import texts
from ui import session

PAGE = "pages/trade_review.py"


@pytest.fixture
def claude_app(app, fake, key, monkeypatch):
    """Trade Review with a key in the session and the fake as the API."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)

    def open_page(model: str | None = None):
        at = app()
        at.session_state[session.API_KEY] = key
        if model:
            at.session_state[session.MODEL] = model
        at.switch_page(PAGE).run()
        return at

    return open_page


def test_a_long_retry_after_says_how_long_and_offers_a_retry_that_runs_again(claude_app, fake, key):
    fake.enqueue(rate_limited(600))
    at = claude_app()
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = texts(at, "error")
    assert any("ERROR" in e and "asks to wait 10 min" in e and "run the exchange again in 10 min" in e
               for e in errors), errors
    assert not any(key in e for e in errors)
    at.button(key=session.TR_RETRY).click().run()  # the wait is over: the fake answers now
    assert not at.exception, [e.value for e in at.exception]
    assert any("APPROVE" in s for s in texts(at, "success"))
    assert len(fake.messages_requests) == 3


def test_a_refusal_ends_error_with_the_models_reason_on_screen(claude_app, fake):
    fake.scenario("refusal")
    at = claude_app()
    at.button(key=session.TR_RUN).click().run()
    assert any("refused the Player's request (stop reason refusal: category cyber" in e for e in texts(at, "error"))


def test_a_thinking_model_runs_through_the_fallback_and_the_round_says_so(claude_app, fake):
    fake.refuse_forced = True
    at = claude_app(model="claude-sonnet-5-5")
    at.button(key=session.TR_RUN).click().run()
    assert any("APPROVE" in s for s in texts(at, "success"))
    assert any("auto tool + strict schema" in c for c in texts(at, "caption"))


def test_an_unpriced_model_shows_its_cost_as_unknown_not_zero(claude_app, fake):
    at = claude_app(model="gateway-model-x")
    at.button(key=session.TR_RUN).click().run()
    assert any("APPROVE" in s for s in texts(at, "success"))
    assert "unknown (not priced)" in [m.value for m in at.metric if m.label == "Cost"]


def test_when_claude_cannot_be_reached_trade_review_offers_the_house_agents(app, key, monkeypatch):
    from tests.support.ui_fixtures import free_port

    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    at = app()
    at.session_state[session.API_KEY] = key
    at.switch_page(PAGE).run()
    at.button(key=session.TR_RUN).click().run()
    assert any("ERROR" in e and "Could not reach the Anthropic API" in e for e in texts(at, "error"))
    assert any("could not be reached" in w for w in texts(at, "warning"))
    at.button(key=session.TR_HOUSE_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = at.session_state[session.LAST_RUN_ID]
    assert at.sidebar.selectbox(key=session.TR_AGENTS).value == session.HOUSE
    assert not any("ERROR" in e for e in texts(at, "error")), stored
    assert any("House agents" in i for i in texts(at, "info"))


def test_a_round_shows_its_thinking_tokens_apart_and_never_the_thinking(claude_app, fake):
    from tests.support.fake_anthropic import THOUGHT

    fake.thinking_tokens = 800
    at = claude_app(model="claude-opus-5-5")
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("APPROVE" in s for s in texts(at, "success"))
    assert any("(1,600 thinking)" in c for c in texts(at, "caption")), texts(at, "caption")  # Player + Coach
    assert not any(THOUGHT in t for kind in ("markdown", "caption", "text", "info") for t in texts(at, kind))


def test_run_k_times_with_claude_says_what_k_exchanges_cost_before_it_runs(claude_app, fake):
    at = claude_app()
    at.number_input(key=session.TR_REPEAT_K).set_value(4).run()
    cost = [c for c in texts(at, "caption") if c.startswith("Run 4 times with Claude: about $")]
    assert cost and "8 calls" in cost[0] or "calls" in cost[0]
    assert not fake.messages_requests  # said before anything is asked
