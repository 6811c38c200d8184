"""Settings: the key is validated against the fake Anthropic server and lives only in session state."""

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine

import core
from core import prices
from tests.support.ui_fixtures import ROOT, texts
from ui import session

PAGE = "pages/settings.py"
KEY = "sk-ant-test-" + "Zq7XwV3k9LmP2rT8" * 3  # distinctive, so a stray copy is easy to find


def test_the_page_says_the_key_stays_in_the_session(app):
    at = app(PAGE)
    assert any("only in this browser session" in i for i in texts(at, "info"))
    assert at.text_input(key=session.S_KEY_INPUT).proto.type == at.text_input(key=session.S_KEY_INPUT).proto.PASSWORD


def test_validate_without_a_key_says_so(app):
    at = app(PAGE)
    next(b for b in at.button if b.label == "Validate").click().run()
    assert any("Enter a key first" in e for e in texts(at, "error"))
    assert session.API_KEY not in at.session_state


def test_the_database_location_size_and_download_are_shown(app, tmp_path):
    at = app(PAGE)
    assert any(str(tmp_path / "pages.db") in m for m in texts(at, "markdown"))
    assert any(b.label == "Download the database" for b in at.get("download_button"))


def test_model_and_spend_guard_limits_are_kept_in_the_session(app):
    at = app(PAGE)
    second = prices.builtin_models()[1].id
    at.selectbox(key=session.S_MODEL).set_value(second).run()
    at.number_input(key=session.S_CALLS).set_value(12).run()
    at.number_input(key=session.S_DOLLARS).set_value(0.5).run()
    at.switch_page("pages/trade_review.py").run()
    assert at.session_state[session.MODEL] == second
    assert at.session_state[session.CALLS_PER_HOUR] == 12
    assert at.session_state[session.DOLLARS_PER_SESSION] == 0.5


@pytest.fixture
def fake_anthropic(monkeypatch):

    from tests.support.fake_anthropic import FakeAnthropic

    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        yield server


def _files_touched_since(start: float, *roots: Path):
    for root in roots:
        for path in root.rglob("*"):
            if any(part in (".venv", ".git", "node_modules") for part in path.parts):
                continue
            try:
                if path.is_file() and path.stat().st_mtime >= start - 1 and path.stat().st_size < 50_000_000:
                    yield path
            except OSError:
                continue


def _validate(at, key=KEY):
    at.text_input(key=session.S_KEY_INPUT).input(key).run()
    next(b for b in at.button if b.label == "Validate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_valid_key_is_kept_in_session_state_and_written_nowhere(app, fake_anthropic, tmp_path):
    start = time.time()
    at = _validate(app(PAGE))
    assert any("Key is valid" in s for s in texts(at, "success"))
    assert at.session_state[session.API_KEY] == KEY
    assert at.text_input(key=session.S_KEY_INPUT).value == ""  # the field does not keep a copy
    # Trade Review now runs the Claude agents (against the fake server)
    at.switch_page("pages/trade_review.py").run()
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Claude" in " ".join(texts(at.sidebar, "caption"))
    assert fake_anthropic.messages_requests
    # no trace of the key: not in the database, not in any file written since, not in the URL or on screen
    secret = KEY.encode()
    for path in _files_touched_since(start, tmp_path, ROOT):
        assert secret not in path.read_bytes(), f"the key was written to {path}"
    assert KEY not in str(at.query_params)
    shown = texts(at, "markdown") + texts(at, "caption") + texts(at, "error") + texts(at, "success")
    assert not any(KEY in s for s in shown)
    assert os.environ.get("ANTHROPIC_API_KEY") is None


def test_the_claude_player_hears_its_memory_and_the_coach_can_judge_on_its_own(app, app_store, fake_anthropic):
    import core
    from core.claude.prompts import CRITIQUE_TOOL, JUDGEMENT_TOOL, PROPOSAL_TOOL

    # the default strategy on Trade Review has a history: strict rejects the house Player's hurried first proposal
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180, atr=2.8)
    core.run_exchange_sync(world, core.load_preset("strict"), core.Portfolio(), core.HousePlayer(flaw_rate=1.0), core.HouseCoach(),
                           store=app_store, strategy_id="trend-following")
    lesson = app_store.memory_summary("trend-following")[0]["constraint"]
    at = _validate(app(PAGE))
    at.toggle(key=session.S_INDEPENDENT).set_value(True).run()
    at.switch_page("pages/trade_review.py").run()
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    by_tool = {}
    for request in fake_anthropic.messages_requests:
        body = request["body"]
        by_tool.setdefault(body["tool_choice"]["name"], []).append(json.dumps(body["messages"]))
    assert "coach memory" in by_tool[PROPOSAL_TOOL][0] and lesson in by_tool[PROPOSAL_TOOL][0]
    assert JUDGEMENT_TOOL in by_tool and CRITIQUE_TOOL not in by_tool
    (row,) = app_store.list_exchanges(strategy="trend-following", limit=1)
    stored = app_store.get_exchange(row["run_id"])
    assert stored.agents.coach == "claude-coach-independent"
    assert stored.rounds[0].evaluation.coach_opinion["decision"] == "APPROVE"
    at.switch_page(PAGE).run()
    assert at.toggle(key=session.S_INDEPENDENT).value is True  # still on after a visit elsewhere


def test_a_refused_key_is_not_kept_and_not_shown(app, fake_anthropic):
    fake_anthropic.scenario("auth_401")
    at = _validate(app(PAGE))
    errors = texts(at, "error")
    assert any("Key refused" in e for e in errors)
    assert not any(KEY in e for e in errors)
    assert session.API_KEY not in at.session_state


def test_the_key_can_be_cleared(app, fake_anthropic):
    at = _validate(app(PAGE))
    next(b for b in at.button if b.label == "Clear key").click().run()
    assert session.API_KEY not in at.session_state
    assert any("Key cleared" in s for s in texts(at, "success"))


def _exchanges(store, days_ago: list[int]) -> None:
    """One exchange per age in days, run that long ago."""
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    for n, days in enumerate(days_ago):
        when = datetime.now(timezone.utc) - timedelta(days=days)
        with time_machine.travel(when, tick=False):  # recorded then, as prune reads it
            core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=n),
                                   core.HouseCoach(), store=store, now=lambda when=when: when)


def test_deleting_old_exchanges_shows_the_count_and_asks_first(app, app_store):
    _exchanges(app_store, [400, 200, 100, 10, 0])
    at = app(PAGE)
    ask = next(b for b in at.button if b.label.startswith("Delete ") and b.label.endswith("exchanges…"))
    assert ask.label == "Delete 3 exchanges…"
    assert any("3 of 5 exchanges run before" in c for c in texts(at, "caption"))
    at.number_input(key=session.S_PRUNE_DAYS).set_value(150).run()
    next(b for b in at.button if b.label == "Delete 2 exchanges…").click().run()
    assert any("for good" in w for w in texts(at, "warning"))
    assert app_store.count_exchanges() == 5  # nothing goes before the confirmation
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert not texts(at, "warning") and app_store.count_exchanges() == 5
    next(b for b in at.button if b.label == "Delete 2 exchanges…").click().run()
    next(b for b in at.button if b.label == "Yes, delete 2").click().run()
    assert app_store.count_exchanges() == 3
    assert any(s.startswith("Deleted 2 exchanges") for s in texts(at, "success"))


def test_deleting_all_exchanges(app, app_store):
    _exchanges(app_store, [3, 0])
    at = app(PAGE)
    at.radio(key=session.S_PRUNE_SCOPE).set_value("all").run()
    next(b for b in at.button if b.label == "Delete 2 exchanges…").click().run()
    next(b for b in at.button if b.label == "Yes, delete 2").click().run()
    assert app_store.count_exchanges() == 0
    assert next(b for b in at.button if b.label.endswith("exchanges…")).disabled


def test_a_malformed_key_is_told_what_is_wrong_and_stays_in_the_field(app, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    at = _validate(app(PAGE), key="sk-ant-api03-" + "Zq7XwV3k9L")
    errors = texts(at, "error")
    assert any("only 23 characters" in e and "cut off" in e for e in errors), errors
    assert not any("Key refused" in e for e in errors)
    assert session.API_KEY not in at.session_state


def test_a_network_failure_is_not_key_refused_and_keeps_key_and_field(app, fake_anthropic):
    fake_anthropic.always = {"kind": "error", "status": 529, "type": "overloaded_error", "message": "Overloaded",
                             "retry_after": None}
    at = _validate(app(PAGE))
    warnings = texts(at, "warning")
    assert any("Could not check the key now (The Anthropic API is overloaded (529)" in w for w in warnings), warnings
    assert not any("Key refused" in e for e in texts(at, "error"))
    assert at.session_state[session.API_KEY] == KEY  # kept for the session
    assert at.text_input(key=session.S_KEY_INPUT).value == KEY  # and the field is not cleared
    assert not any(KEY in w for w in warnings)
    # the models could not be listed either: the built-in list, with a note saying why
    assert any("Could not list the models for this key" in c and "built-in list" in c for c in texts(at, "caption"))


def test_a_key_that_could_not_be_checked_is_shown_unverified_in_amber_not_green(app, fake_anthropic):
    fake_anthropic.always = {"kind": "error", "status": 529, "type": "overloaded_error", "message": "Overloaded",
                             "retry_after": None}
    at = _validate(app(PAGE))
    assert not any("A key is set" in s for s in texts(at, "success"))  # no green box beside the doubt
    assert any("not verified" in w for w in texts(at, "warning"))
    assert any("not verified" in c for c in texts(at.sidebar, "caption"))  # every page says so
    at.switch_page("pages/trade_review.py").run()
    agents = at.sidebar.selectbox(key=session.TR_AGENTS)
    assert agents.value == session.CLAUDE  # the key was given to be used; who plays is said, and why to doubt it
    assert agents.options[0] == session.HOUSE and "key not verified" in agents.options[1]
    assert any("key not verified" in c and "house agents are one click away" in c for c in texts(at, "caption"))
    agents.set_value(session.HOUSE).run()  # one click: the house agents play, nothing is asked of the API
    requests = len(fake_anthropic.messages_requests)
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("House agents" in i for i in texts(at, "info"))
    assert len(fake_anthropic.messages_requests) == requests


@time_machine.travel(datetime(2026, 11, 1, 12, tzinfo=timezone.utc), tick=True)
def test_the_models_of_the_key_are_offered_newest_first_with_name_and_price(app, fake_anthropic):
    at = _validate(app(PAGE))
    picker = at.selectbox(key=session.S_MODEL)
    assert picker.options[0] == "Claude Fable 5.2 · ≈$8 / $40 per M tokens (in / out), estimated (no price list yet)"
    assert picker.options[1] == "Claude Haiku 5.5 · $0.1 / $0.5 per M tokens (in / out)"
    assert picker.value == prices.DEFAULT_MODEL  # the default preselected
    assert any(o.startswith("Claude Sonnet 4.5 · $3 / $15") and o.endswith("deprecated, retires 2026-11-30")
               for o in picker.options)
    assert not any("Opus 4.1" in o for o in picker.options)  # retired: never offered


def test_without_a_key_the_built_in_list_is_offered_with_a_note(app):
    at = app(PAGE)
    assert any("Validate a key to see the models it may use. Showing the built-in list" in c
               for c in texts(at, "caption"))
    assert at.selectbox(key=session.S_MODEL).value == prices.DEFAULT_MODEL


def test_the_spend_guard_shows_this_sessions_spend_against_its_limits(app, fake_anthropic):
    at = _validate(app(PAGE))
    at.switch_page("pages/trade_review.py").run()
    at.button(key=session.TR_RUN).click().run()
    at.switch_page(PAGE).run()
    guard = at.session_state[session.SPEND_GUARD]
    assert guard.spent_usd > 0 and guard.calls_last_hour() >= 2
    bars = [p.proto.text for p in at.get("progress")]
    assert f"{guard.calls_last_hour()} of 60 calls in the last hour" in bars
    assert f"${guard.spent_usd:.4f} of $1.00 spent this session" in bars


def test_about_names_the_version_the_libraries_the_database_and_the_data_licences(app, tmp_path):
    from core import about

    at = app(PAGE)
    assert any(f"Player–Coach Trade Review** {about.APP_VERSION}" in m for m in texts(at, "markdown"))
    captions = " ".join(texts(at, "caption"))
    assert "streamlit 1." in captions and "anthropic 2." in captions
    assert str(tmp_path / "pages.db") in captions
    table = at.dataframe[-1].value
    assert "Apache-2.0" in set(table["licence"]) and "MIT" in set(table["licence"])


def test_a_gateway_base_url_set_on_settings_takes_any_key_shape_and_serves_trade_review(app, fake, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    at = app(PAGE)
    at.text_input(key=session.S_BASE_URL).input(fake.base_url).run()
    assert any(fake.base_url in c for c in texts(at, "caption"))
    at = _validate(at, key="gateway-token-42")
    assert any("Key is valid" in s for s in texts(at, "success"))
    at.switch_page("pages/trade_review.py").run()
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    sent = fake.messages_requests[0]["headers"]
    assert "gateway-token-42" in (sent.get("x-api-key"), sent.get("authorization", "").removeprefix("Bearer ")), sent


def test_grading_the_reasoning_is_off_by_default_priced_first_and_shown_on_the_card(app, app_store, fake_anthropic):
    from core.claude import prompts

    at = _validate(app(PAGE))
    assert at.toggle(key=session.S_GRADE).value is False
    cost = prices.cost_text(prompts.grade_estimate(at.session_state[session.MODEL], core.Constraints()))
    assert any(f"about {cost} each" in c for c in texts(at, "caption"))  # said before it is turned on
    at.switch_page("pages/trade_review.py").run()
    at.button(key=session.TR_RUN).click().run()
    assert not any(r["body"]["tool_choice"].get("name") == prompts.GRADE_TOOL for r in fake_anthropic.messages_requests)
    at.switch_page(PAGE).run()
    at.toggle(key=session.S_GRADE).set_value(True).run()
    at.switch_page("pages/trade_review.py").run()
    assert any(f"Claude also grades the reasoning: about {cost} a round" in c for c in texts(at, "caption"))
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = app_store.get_exchange(at.session_state[session.LAST_RUN_ID])
    assert stored.rounds[0].reasoning_grade.score == 4
    assert any(c.startswith("Reasoning graded 4/5 by Claude: ") for c in texts(at, "caption"))
