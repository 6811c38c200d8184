"""History: filters narrow the rows, summaries and charts follow, and replay never calls an agent."""

from datetime import datetime, timezone

import pytest

import core
from tests.ui_fixtures import *  # noqa: F403
from tests.ui_fixtures import texts
from ui import session

PAGE = "pages/history.py"


class Broken:
    name = "broken-player"

    def propose(self, world, constraints, portfolio, history):
        yield "thinking"
        raise core.AgentError("the model returned nonsense twice")


@pytest.fixture
def stocked(app_store):
    """Exchanges of two symbols and two strategies, one ERROR and one INTERRUPTED among them."""
    moderate, strict = core.load_preset("moderate"), core.load_preset("strict")
    for n, (symbol, schema, strategy) in enumerate([("AMZN", moderate, "swing"), ("MSFT", strict, "swing"),
                                                    ("AMZN", strict, "scalp"), ("TSLA", moderate, "scalp")]):
        world = core.WorldState(symbol=symbol, as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
        core.run_exchange_sync(world, schema, core.Portfolio(), core.HousePlayer(seed=n), core.HouseCoach(),
                               store=app_store, strategy_id=strategy, run_id=f"run-{n}")
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    core.run_exchange_sync(world, moderate, core.Portfolio(), Broken(), core.HouseCoach(), store=app_store,
                           strategy_id="swing", run_id="run-error")
    no_amzn = strict.model_copy(update={"allowed_symbols": ["MSFT"]})  # round 1 rejects, so closing interrupts
    events = core.run_exchange(world, no_amzn, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                               store=app_store, strategy_id="swing", run_id="run-interrupted")
    for event in events:
        if isinstance(event, core.VerdictReached):
            events.close()
            break
    return app_store


def count(at) -> int:
    return int(at.metric[0].value.replace(",", ""))


def test_every_exchange_is_listed_newest_first_with_summary_and_charts(app, stocked):
    at = app(PAGE)
    assert count(at) == 6
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert table["run_id"].iloc[0] == "run-interrupted"
    assert {"ERROR", "INTERRUPTED"} <= set(table["outcome"])
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.parametrize("key, value, expected", [
    (session.H_OUTCOME, ["ERROR"], 1),
    (session.H_SYMBOL, ["AMZN"], 4),
    (session.H_STRATEGY, ["scalp"], 2),
])
def test_filters_narrow_the_rows(app, stocked, key, value, expected):
    at = app(PAGE)
    at.multiselect(key=key).set_value(value).run()
    assert count(at) == expected
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert len(table) == expected


def test_text_and_date_filters(app, stocked):
    at = app(PAGE)
    at.text_input(key=session.H_TEXT).input("no such words anywhere").run()
    assert count(at) == 0
    assert any("No exchanges match" in i for i in texts(at, "info"))
    at.text_input(key=session.H_TEXT).input("").run()
    today = datetime.now(timezone.utc).date()
    at.date_input(key=session.H_DATES).set_value((today, today)).run()
    assert count(at) == 6


def test_selecting_an_exchange_shows_its_rounds_as_cards(app, stocked):
    at = app(PAGE)
    at.selectbox(key=session.H_PICK).set_value("run-1").run()
    stored = stocked.get_exchange("run-1")
    cards = [e.label for e in at.expander if e.label.startswith("Round ")]
    assert len(cards) == stored["rounds_taken"]


def test_the_selection_can_come_from_the_table(app, stocked):
    at = app(PAGE)
    at.session_state[session.HISTORY_SELECTED] = "run-2"
    at.run()
    assert at.selectbox(key=session.H_PICK).value == "run-2"


@pytest.mark.parametrize("run_id, banner", [("run-0", None), ("run-error", "**ERROR**"),
                                             ("run-interrupted", "**INTERRUPTED**")])
def test_replay_renders_the_stored_rounds_without_any_agent_call(app, stocked, monkeypatch, run_id, banner):
    def no_agents(*args, **kwargs):
        raise AssertionError("replay called an agent")

    monkeypatch.setattr(core.HousePlayer, "propose", no_agents)
    monkeypatch.setattr(core.HouseCoach, "critique", no_agents)
    at = app(PAGE)
    at.selectbox(key=session.H_PICK).set_value(run_id).run()
    at.select_slider(key=session.H_SPEED).set_value("Instant")
    next(b for b in at.button if b.label == "Replay").click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = stocked.get_exchange(run_id)
    cards = [e.label for e in at.expander if e.label.startswith("Round ")]
    assert len(cards) == stored["rounds_taken"] == len(stored["rounds"])
    banners = texts(at, "success") + texts(at, "warning") + texts(at, "error") + texts(at, "info")
    assert any(b.startswith(banner or f"**{stored['outcome']}**") for b in banners)
    assert stocked.count_exchanges() == 6  # nothing new was run


def test_error_banner_carries_the_message(app, stocked):
    at = app(PAGE)
    at.selectbox(key=session.H_PICK).set_value("run-error").run()
    assert any("the model returned nonsense twice" in e for e in texts(at, "error"))


def test_exports_offer_csv_and_json(app, stocked):
    at = app(PAGE)
    labels = {b.label for b in at.get("download_button")}
    assert {"Export CSV", "Export JSON", "Download artifact JSON"} <= labels


def test_pagination_limits_the_table(app, app_store):
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    for n in range(23):
        core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=n),
                               core.HouseCoach(), store=app_store, run_id=f"p{n:02d}")
    at = app(PAGE)
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert len(table) == 20
    at.number_input(key=session.H_PAGE).set_value(2).run()
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert len(table) == 3


def test_filters_are_still_set_after_a_visit_to_another_page(app, stocked):
    at = app(PAGE)
    at.multiselect(key=session.H_SYMBOL).set_value(["MSFT"]).run()
    at.switch_page("pages/settings.py").run()
    at.switch_page(PAGE).run()
    assert at.multiselect(key=session.H_SYMBOL).value == ["MSFT"]
    assert count(at) == 1
