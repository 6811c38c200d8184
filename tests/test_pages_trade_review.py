"""Trade Review runs a house exchange, draws it, stores it, and shows breakers, stops and text safely."""

import re
from datetime import date, time

import pytest
from streamlit.testing.v1 import AppTest

import core
from tests.support.ui_fixtures import plain, reject_then_approve_seed, texts
from tests.support.files import sql
from ui import exchange_view, session
from ui.text import escape, literal


def run_exchange(at):
    at.button(key=session.TR_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def round_cards(at) -> list[str]:
    return [e.label for e in at.expander if e.label.startswith("Round ")]


def test_house_exchange_draws_round_cards_banner_and_stores_the_artifact(app, app_store):
    at = run_exchange(app())
    cards = round_cards(at)
    assert cards and cards[0].startswith("Round 1 — ")
    banners = texts(at, "success") + texts(at, "warning") + texts(at, "error")
    run_id = at.session_state[session.LAST_RUN_ID]
    stored = app_store.get_exchange(run_id)
    assert stored is not None and stored.outcome in ("APPROVE", "REJECT-MAX", "ABORT")
    assert any(b.startswith(f"**{stored.outcome}**") for b in banners)
    assert len(cards) == stored.rounds_taken
    # every check is listed with its arithmetic and a mark
    checks = [t.value for t in at.table if "arithmetic" in t.value.columns]
    assert len(checks) == stored.rounds_taken
    assert set(checks[0]["check"]) <= {"✓ pass", "✗ FAIL"} and checks[0]["arithmetic"].str.len().min() > 0
    assert "House agents" in " ".join(texts(at, "info"))
    assert any(b.label == "Download artifact JSON" for b in at.get("download_button"))


def test_the_exchange_stays_on_screen_after_a_rerun(app):
    at = run_exchange(app())
    before = round_cards(at)
    at.run()
    assert round_cards(at) == before


def test_only_the_last_round_card_is_open(app, app_store):
    at = app()
    at.number_input(key=session.TR_SEED).set_value(reject_then_approve_seed()).run()  # two rounds
    run_exchange(at)
    cards = [e for e in at.expander if e.label.startswith("Round ")]
    assert len(cards) > 1
    assert [c.proto.expanded for c in cards] == [False] * (len(cards) - 1) + [True]


def test_a_circuit_breaker_is_shown_as_such_with_no_rounds(app, app_store):
    at = app()
    at.time_input(key=session.TR_TIME).set_value(time(16, 45)).run()
    run_exchange(at)
    assert round_cards(at) == []
    assert any("Circuit breaker tripped: trading_cutoff" in e for e in texts(at, "error"))
    stored = app_store.get_exchange(at.session_state[session.LAST_RUN_ID])
    assert (stored.outcome, stored.rounds_taken, stored.termination_reason) == ("ABORT", 0, "trading_cutoff")


def test_a_bad_portfolio_names_the_field_and_blocks_the_run(app):
    at = app()
    at.text_input(key=session.TR_POSITIONS).input('{"AMZN": "lots"}').run()
    assert any("positions" in e for e in texts(at, "error"))
    assert at.button(key=session.TR_RUN).disabled


@pytest.mark.parametrize("typed,says", [
    ("[" * 100_000, "positions: nested too deeply to read"),
    ('{"AMZN": ' + "1" * 5000 + "}", "positions: a number with more than 4,300 digits"),
    ('{"AMZN": 0.5, "AMZN": 0.03}', "positions: duplicate key 'AMZN' in one object"),
    ('{"AMZN": 0.14, "amzn": 0.0}', "'AMZN' and 'amzn' are the same symbol AMZN"),
])
def test_hostile_positions_are_one_short_error_not_a_crash(app, typed, says):
    at = app()
    at.text_input(key=session.TR_POSITIONS).input(typed).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e for e in texts(at, "error") if "Portfolio" in e]
    assert len(errors) == 1 and says.replace("'", "") in errors[0].replace("\\", "").replace("'", "")
    assert len(errors[0]) < 600 and at.button(key=session.TR_RUN).disabled


def test_house_agents_are_named_with_how_to_add_a_key(app):
    at = app()
    note = " ".join(texts(at, "info"))
    assert "House agents" in note and "Settings" in note


class Interrupt(Exception):
    """What Streamlit raises inside a drawing call when a click (Stop) reruns the script."""


def test_stopping_mid_exchange_stores_interrupted_with_the_finished_rounds(store, world):
    # A hurried house Player: its first proposal is always flawed, so round 1 rejects and round 2 starts
    hurried = core.HousePlayer(flaw_rate=1.0)

    class StopAtRound2:
        def handle(self, event):
            if isinstance(event, core.RoundStarted) and event.round == 2:
                raise Interrupt

    moderate = core.load_preset("moderate")
    events = core.run_exchange(world, moderate, core.Portfolio(), hurried, core.HouseCoach(), store=store,
                               run_id="stopped")
    with pytest.raises(Interrupt):
        exchange_view.play(events, StopAtRound2())
    stored = store.get_exchange("stopped")
    assert stored.outcome == "INTERRUPTED"
    assert [r.round for r in stored.rounds] == [1]


def _artifact_with(reasoning: str, store, world) -> core.Artifact:
    class Player:
        name = "stub-player"

        def propose(self, world, constraints, portfolio, history):
            yield reasoning
            return core.Turn(core.Proposal(reasoning=reasoning, actions=[{"action_type": "hold", "symbol": "AMZN"}]))

    return core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), Player(), core.HouseCoach(),
                                  store=store, run_id="escape")


HOSTILE = "<script>alert(1)</script><b>x</b> **bold** $x$"


def _draw(artifact):
    from ui import exchange_view

    exchange_view.show(artifact)


def test_the_check_list_is_said_once_in_full_and_the_bubble_carries_the_verdict_and_the_failures(store, world):
    artifact = core.run_exchange_sync(world, core.load_preset("strict"), core.Portfolio(), core.HousePlayer(),
                                      core.HouseCoach(), store=store)
    at = AppTest.from_function(_draw, args=(artifact,), default_timeout=30).run()
    assert not at.exception
    tables = [t.value for t in at.table if "arithmetic" in t.value.columns]
    assert len(tables) == len(artifact.rounds)
    last = artifact.rounds[-1].evaluation
    shown = [plain(text) for text in tables[-1]["arithmetic"]]
    assert shown == [c.arithmetic for c in last.checks]  # every check, whole
    stage = next(m.value for m in at.markdown if 'class="pc-stage"' in m.value)
    bubble = stage[stage.index('data-role="coach"'):]
    assert escape(exchange_view.headline(last)) in bubble
    assert bubble.index("pc-verdict") < bubble.index(escape(last.feedback.split("\n")[0]))
    assert any(c.passed for c in last.checks)
    for check in last.checks:
        assert (escape(check.arithmetic) in bubble) == (not check.passed), check


def test_html_in_agent_text_is_rendered_as_text(store, world):
    artifact = _artifact_with(HOSTILE, store, world)
    at = AppTest.from_function(_draw, args=(artifact,), default_timeout=30).run()
    assert not at.exception
    bodies = " ".join(m.value for m in at.markdown)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in bodies
    assert "<script>" not in bodies and "<b>x" not in bodies
    assert "&#42;&#42;bold&#42;&#42;" in bodies and "&#36;x&#36;" in bodies  # no markdown or maths either


def test_escape_keeps_every_character_literal():
    assert escape('<a href="x">&</a>\nnext') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;<br>next"


def test_the_page_opens_on_the_newest_day_of_a_symbol_the_preset_allows(app):
    from core import market

    allowed = [s for s in core.load_preset("moderate").allowed_symbols if s in market.snapshot_symbols()]
    newest = max(allowed, key=lambda s: market.available_dates(s)[-1])
    assert "AMZN" in allowed and newest != "AMZN"  # AMZN's data ends in 2010: not the day a new user should land on
    at = app()
    assert at.selectbox(key=session.TR_SYMBOL).value == newest
    assert at.date_input(key=session.TR_DATE).value == market.available_dates(newest)[-1]


def test_dates_are_the_days_the_market_data_has_and_fill_the_world_state(app):
    from core import market

    at = app()
    at.selectbox(key=session.TR_SYMBOL).set_value("AMZN").run()
    amzn = market.available_dates("AMZN")[market.MIN_HISTORY:]
    day = at.date_input(key=session.TR_DATE)
    assert (day.min, day.max, day.value) == (amzn[0], amzn[-1], amzn[-1])  # offline: the last day available
    expected = market.world_state("AMZN", amzn[-1], market.load_bars("AMZN", online=False))
    assert at.number_input(key=session.TR_PRICE).value == round(expected.price, 2)
    at.selectbox(key=session.TR_SYMBOL).set_value("MSFT").run()
    msft = market.available_dates("MSFT")[market.MIN_HISTORY:]
    assert at.date_input(key=session.TR_DATE).value == amzn[-1] and amzn[-1] in msft  # MSFT has it too: kept
    expected = market.world_state("MSFT", amzn[-1], market.load_bars("MSFT", "2009-01-01", amzn[-1], online=False))
    assert at.number_input(key=session.TR_PRICE).value == round(expected.price, 2)
    at.number_input(key=session.TR_PRICE).set_value(300.0).run()  # an edit survives a rerun
    at.run()
    assert at.number_input(key=session.TR_PRICE).value == 300.0


def test_a_day_without_a_bar_uses_the_trading_day_before_it_and_says_so(app):
    from core import market

    at = app()
    at.selectbox(key=session.TR_SYMBOL).set_value("MSFT").run()
    at.date_input(key=session.TR_DATE).set_value(date(2020, 1, 4)).run()  # a Saturday
    assert "No bar on Sat 04 Jan 2020: using Fri 03 Jan 2020" in texts(at, "caption")
    assert at.session_state[session.TR_FILLED_FOR] == ("MSFT", "2020-01-03")
    expected = market.world_state("MSFT", date(2020, 1, 3), market.load_bars("MSFT", "2019-01-01", date(2020, 1, 3),
                                                                             online=False))
    assert at.number_input(key=session.TR_PRICE).value == round(expected.price, 2)
    at.date_input(key=session.TR_DATE).set_value(date(2020, 1, 3)).run()  # a trading day: used as it is, no word
    assert at.session_state[session.TR_FILLED_FOR] == ("MSFT", "2020-01-03")
    assert not [c for c in texts(at, "caption") if c.startswith("No bar on")]


def test_another_symbols_day_outside_this_ones_data_moves_to_its_nearest_day(app):
    from core import market

    at = app()
    at.selectbox(key=session.TR_SYMBOL).set_value("MSFT").run()
    at.date_input(key=session.TR_DATE).set_value(date(2018, 6, 1)).run()
    at.selectbox(key=session.TR_SYMBOL).set_value("AMZN").run()  # AMZN's data ends in 2010: its last day
    amzn = market.available_dates("AMZN")[market.MIN_HISTORY:]
    assert at.date_input(key=session.TR_DATE).value == amzn[-1]
    at.selectbox(key=session.TR_SYMBOL).set_value("TSLA").run()  # before TSLA's first day: its first
    tsla = market.available_dates("TSLA")[market.MIN_HISTORY:]
    assert amzn[-1] < tsla[0] and at.date_input(key=session.TR_DATE).value == tsla[0]
    assert at.session_state[session.TR_FILLED_FOR] == ("TSLA", str(tsla[0]))


def test_sidebar_values_survive_a_visit_to_another_page(app):
    at = app()
    at.number_input(key=session.TR_EQUITY).set_value(90_000.0).run()
    at.switch_page("pages/settings.py").run()
    at.switch_page("pages/trade_review.py").run()
    assert at.number_input(key=session.TR_EQUITY).value == 90_000.0


def test_literal_text_cannot_become_a_link_an_image_html_or_an_entity():
    shown = literal("![x](http://e/x.png) [click](http://e) <b>&lt;")
    assert shown == "!\\[x\\](http:\u2060//e/x.png) \\[click\\](http:\u2060//e) \\<b\\>\\&lt;"


def _moods(at) -> dict[str, str]:
    stage = next(m.value for m in at.markdown if 'class="pc-stage"' in m.value)
    return dict(re.findall(r'data-role="(\w+)" data-mood="(\w+)"', stage))


class _Broken:
    name = "broken-player"

    def propose(self, world, constraints, portfolio, history):
        yield "Let me think"
        raise core.AgentError("the model sent no proposal")


@pytest.mark.parametrize("case, moods", [
    ("approve", {"player": "pleased", "coach": "pleased"}),
    ("reject_max", {"player": "chastened", "coach": "stern"}),
    ("breaker", {"player": "alarmed", "coach": "alarmed"}),
    ("error", {"player": "puzzled", "coach": "puzzled"}),
])
def test_a_replay_ends_on_the_faces_of_its_outcome(case, moods, store, world):
    one_round = core.load_preset("moderate").model_copy(update={"max_rounds": 1})  # too few for a hurried Player
    late = world.model_copy(update={"as_of": world.as_of.replace(hour=16, minute=45)})
    artifact = {
        "approve": lambda: core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(),
                                                  core.HousePlayer(), core.HouseCoach()),
        "reject_max": lambda: core.run_exchange_sync(world, one_round, core.Portfolio(),
                                                     core.HousePlayer(flaw_rate=1.0), core.HouseCoach()),
        "breaker": lambda: core.run_exchange_sync(late, core.load_preset("moderate"), core.Portfolio(),
                                                  core.HousePlayer(), core.HouseCoach()),
        "error": lambda: core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), _Broken(),
                                                core.HouseCoach()),
    }[case]()
    assert artifact.outcome == {"approve": "APPROVE", "reject_max": "REJECT-MAX", "breaker": "ABORT",
                                   "error": "ERROR"}[case]
    at = AppTest.from_function(_draw, args=(artifact,), default_timeout=30).run()
    assert not at.exception
    assert _moods(at) == moods


def test_a_shown_result_names_its_schema_after_the_sidebar_changes(app):
    at = run_exchange(app())
    assert any("under **moderate**" in c for c in texts(at, "caption"))
    assert not any("This result came from" in i for i in texts(at, "info"))
    at.selectbox(key=session.TR_SCHEMA).set_value("strict").run()
    note = " ".join(texts(at, "info"))
    assert "This result came from **moderate**; the sidebar now selects **strict**" in note


def test_stop_is_disabled_when_nothing_runs(app):
    at = app()
    assert at.button(key=session.TR_STOP).disabled
    run_exchange(at)
    assert at.button(key=session.TR_STOP).disabled and not at.button(key=session.TR_RUN).disabled
    assert not at.selectbox(key=session.TR_SYMBOL).disabled


def test_an_exchange_cut_short_by_leaving_the_page_says_so(app, app_store, world):
    at = app()
    cut = core.run_exchange(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(),
                            core.HouseCoach(), store=app_store, run_id="left")
    next(cut)
    cut.close()  # what Streamlit does to the page's run when the user opens another page
    at.session_state[session.LAST_RUN_ID] = at.session_state[session.TR_LIVE] = "left"
    at.run()
    banners = texts(at, "info")
    assert any(b.startswith("**INTERRUPTED** — stopped because you left Trade Review") for b in banners), banners
    assert app_store.get_exchange("left").termination_reason == "stopped because you left Trade Review"


def test_the_reason_is_on_record_at_once_whichever_page_comes_next(app, app_store, world):
    at = app()
    cut = core.run_exchange(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(),
                            core.HouseCoach(), store=app_store, run_id="left")
    next(cut)
    cut.close()
    assert app_store.get_exchange("left").termination_reason == "interrupted"
    at.session_state[session.LAST_RUN_ID] = at.session_state[session.TR_LIVE] = "left"
    at.switch_page("pages/history.py").run()  # the trader opened History mid-exchange
    assert app_store.get_exchange("left").termination_reason == "stopped because you left Trade Review"
    assert session.TR_LIVE not in at.session_state


def test_an_interrupted_exchange_shows_the_reason_on_record(app, app_store, world):
    from core.exchange.loop import stop

    at = app()
    events = core.run_exchange(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(),
                               core.HouseCoach(), store=app_store, run_id="timed-out")
    next(events)
    stop(events, "timed out: no proposal within 1800 s")  # as the MCP server ends one
    at.session_state[session.LAST_RUN_ID] = "timed-out"
    at.run()
    banners = texts(at, "info")
    assert any(b.startswith("**INTERRUPTED** — timed out: no proposal within 1800 s;") for b in banners), banners


def test_a_saved_preset_that_no_longer_validates_is_named_unusable_not_a_crash(app, app_store):
    app_store.save_preset("mine", core.load_preset("moderate"))
    sql(app_store.path, "insert into presets (name, constraints, saved_at) values ('old', ?, '2024-01-01')",
        ['{"max_rounds": 99}'])
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    assert "mine (custom)" in at.selectbox(key=session.TR_SCHEMA).options
    assert "old (custom)" not in at.selectbox(key=session.TR_SCHEMA).options
    warning, = [w for w in texts(at, "warning") if "unusable" in w]
    assert warning.replace("**", "").startswith("Saved preset old is unusable and not offered: max_rounds")


def test_the_sidebar_warns_as_soon_as_the_symbol_is_not_in_the_presets_allowed_symbols(app):
    at = app()
    at.selectbox(key=session.TR_SCHEMA).set_value("strict").run()
    at.selectbox(key=session.TR_SYMBOL).set_value("MSFT").run()
    assert not any("allowed_symbols" in w for w in texts(at.sidebar, "warning"))
    at.selectbox(key=session.TR_SYMBOL).set_value("TSLA").run()  # strict allows AMZN and MSFT only
    warnings = [w for w in texts(at.sidebar, "warning") if "allowed_symbols" in w]
    assert warnings and "TSLA" in warnings[0] and "strict" in warnings[0] and "AMZN, MSFT" in warnings[0]
    assert "no agent called" in warnings[0]


def test_run_k_times_shows_the_outcomes_as_a_strip_and_the_agreement(app, app_store):
    at = app()
    at.number_input(key=session.TR_REPEAT_K).set_value(3).run()
    at.button(key=session.TR_REPEAT_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    group = at.session_state[session.TR_LAST_REPEAT]
    stored = app_store.list_exchanges(repeat_id=group, limit=None)
    assert len(stored) == 3 and len({r["outcome"] for r in stored}) == 1  # the house agents, one seed
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Outcome agreement"] == "100%" and metrics["Side agreement"] == "100%"
    badges = [m for m in texts(at, "markdown") if re.search(r"-badge\[\d · ", m)]
    assert len(badges) == 3 and all(stored[0]["outcome"] in b for b in badges)
    spread = next(t.value for t in at.table if "median" in t.value.columns)
    assert {"entry", "rounds", "cost $"} <= set(spread["figure"])
    assert round_cards(at)  # the last of them, round by round
    at.button(key=session.TR_RUN).click().run()  # a single run shows a single exchange again
    assert session.TR_LAST_REPEAT not in at.session_state and not [m for m in at.metric if m.label == "Outcome agreement"]


def test_a_symbol_the_preset_forbids_ends_abort_before_round_1_with_no_agent_called(app, app_store):
    at = app()
    at.selectbox(key=session.TR_SCHEMA).set_value("strict").run()
    at.selectbox(key=session.TR_SYMBOL).set_value("TSLA").run()
    run_exchange(at)
    stored = app_store.get_exchange(at.session_state[session.LAST_RUN_ID])
    assert (stored.outcome, stored.rounds_taken, stored.total_tokens) == ("ABORT", 0, 0)
    assert "allowed_symbols" in stored.termination_reason and stored.rounds == []
    assert any("ABORT" in e and "before round 1" in e for e in texts(at, "error"))
    assert round_cards(at) == []
